"""EE 541 Unit 7B, "gradient filtering": momentum, Nesterov and Adam as filters on the gradient.

Reproduces the gradient-filtering part of the EE 541 lecture "Training Deep
Neural Networks II" (Unit 7B): the frequency responses of torch's SGD
momentum, of Bengio's form of Nesterov momentum (torch's ``nesterov=True``)
and of Adam's moment filters, the step responses of the unit-DC-gain and
unit-input-gain AR1 filters, Adam's bias correction of a step and of a
noisy cosine, and the summary-of-optimizers table, now generated from the catalogue (:func:`optfilters.summary_table`)
with its corrections (:data:`optfilters.table.CORRECTIONS`).

Everything is derived here, not copied from the slides (which have slips:
``1 + a z^-1`` for the AR1 denominators, the Nesterov zero written as the
root in ``z^-1``).  With ``w = 2 pi f`` (``f`` in cycles per step):

* torch momentum, ``buf = mu buf + g``, ``d = buf``:
  ``H = 1/(1 - mu z^-1)``, ``|H|^2 = 1/(1 - 2 mu cos w + mu^2)``; DC gain
  ``1/(1 - mu)``, Nyquist gain ``1/(1 + mu)``; ``|H|`` falls to ``H(1)/sqrt 2``
  where ``1 - cos w = (1 - mu)^2/(2 mu)``, i.e.
  ``f_c = asin((1 - mu)/(2 sqrt(mu)))/pi`` (:func:`ar1_cutoff`; exists for
  ``mu >= 3 - 2 sqrt 2``); largest phase lag ``asin(mu)`` at
  ``cos w = mu``.
* Nesterov, ``buf = mu buf + g``, ``d = g + mu buf``:
  ``H = 1 + mu/(1 - mu z^-1) = ((1 + mu) - mu z^-1)/(1 - mu z^-1)``; pole
  ``mu``, zero ``z = mu/(1 + mu)`` (``(1 + mu)/mu`` is the root in ``z^-1``);
  DC gain ``1/(1 - mu)``, Nyquist gain ``(1 + 2 mu)/(1 + mu)``; cutoff
  ``f_c = asin((1 - mu)/(2 sqrt(mu (1 - 2 (1 + mu)(1 - mu)^2))))/pi``
  (:func:`nesterov_cutoff`); largest phase lag ``asin((p - q)/(1 - p q))``
  with ``p = mu``, ``q = mu/(1 + mu)``, i.e. ``asin(mu^2/(1 + mu - mu^2))``, at
  ``cos w = (p + q)/(1 + p q)`` (:func:`phase_extremum`).  Nesterov /
  standard ``= |(1 + mu) - mu e^{-jw}|``, rising from 1 at DC to ``1 + 2 mu``
  at Nyquist: standard momentum attenuates every non-zero frequency more.
* Adam's moments, ``m = b m + (1 - b) g``: ``H = (1 - b)/(1 - b z^-1)``, DC
  gain 1 (no coupling with the learning rate), Nyquist gain
  ``(1 - b)/(1 + b)`` (also its white-noise power gain), the same cutoff as
  momentum at ``mu = b``.
* Step responses from rest, steps counted from ``t = 1`` (the library's
  convention; the slides count ``n = t - 1`` from 0): unit DC gain
  ``1 - a^t = 1 - a^(n+1)``, unit input gain ``(1 - a^t)/(1 - a)``.
* Bias correction divides by ``1 - b^t``: a step (of any height)
  comes out exact from ``t = 1``; for any input
  ``raw_t - corrected_t = -b^t corrected_t`` exactly.

Every number is read back from the drawn lines (the figures' frequency
grids include the closed-form cutoff and phase-extremum frequencies) and
compared with the closed form; :func:`reproduce` raises if any differs by
more than its tolerance (1e-9 relative for all of them).

Run ``python -m optfilters.papers.ee541_unit7b [OUT_DIR] [--quick]`` (or
``optfilters figures ee541_unit7b``).

Numbers (full mode; every value read off the figures equals its closed form
to 1e-13 relative or better; the library's ``cutoff_frequency`` agrees to its
absolute tolerance 1e-12, i.e. 1.5e-9 relative at the smallest cutoff):

==========================  ===================  ===================  ==============
quantity                    mu (or beta) = 0.5   0.9                  0.99
==========================  ===================  ===================  ==============
momentum DC / Nyquist gain  2 / 0.6667           10 / 0.5263          100 / 0.5025
momentum -3 dB cutoff       0.11503              0.016784             0.0015996
Nesterov DC / Nyquist gain  2 / 1.333            10 / 1.474           100 / 1.498
Nesterov zero (z)           0.3333               0.4737               0.4975
Nesterov -3 dB cutoff       0.25                 0.017113             0.0015999
==========================  ===================  ===================  ==============

At ``mu = 0.9`` Nesterov's Nyquist gain is ``1 + 2 mu = 2.8`` times standard
momentum's (1.474 against 0.5263: -16.6 dB against -25.6 dB relative to DC).
Adam, ``beta1 = 0.8, 0.9, 0.99``: DC gain 1, Nyquist gains 0.1111, 0.05263,
0.005025, cutoffs 0.035663, 0.016784, 0.0015996; ``beta2 = 0.999``: Nyquist
5.0025e-4, cutoff 1.5923e-4 cycles/step.  Largest phase lags: momentum 30,
64.16, 81.89 degrees; Nesterov 11.54, 48.00, 76.05 degrees.  AR1 step
responses equal ``1 - a^t`` and ``(1 - a^t)/(1 - a)`` to 3e-16; the
bias-corrected step is 1 to 3e-16, the bias-corrected noisy cosine starts at
``x_1`` exactly and matches a plain loop of Adam's ``m_t/(1 - b^t)`` exactly;
after ``5/(1 - b) = 50`` steps ``|raw - corrected| <= 0.0023``
(``= b^t |corrected|``).  About 3 s on one core (5 s with cold imports).
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
from optfilters.papers import Check, caption_number, run_source, save_figure, write_outputs

TITLE = "EE 541 Unit 7B, gradient filtering: momentum, Nesterov and Adam as filters on the gradient"

#: Momentum values of the standard-momentum and Nesterov figures.
MOMENTA: tuple[float, ...] = (0.5, 0.9, 0.99)
#: Adam's beta1 values, and its beta2, in the Adam figure.
BETA1S: tuple[float, ...] = (0.8, 0.9, 0.99)
BETA2 = 0.999
#: Momentum of the standard-vs-Nesterov comparison.
COMPARE_MU = 0.9
#: Poles of the AR1 step responses (the slides use 0.9).
STEP_ALPHAS: tuple[float, ...] = (0.5, 0.9)
#: EMA coefficient of the bias-correction figure (the slides' alpha = 0.9).
EMA_BETA = 0.9
#: The noisy cosine x_t = cos(2 pi f t) + sigma e_t, e_t ~ N(0, 1) from numpy's default_rng(seed), t = 1..steps.
COSINE: dict[str, Any] = {"frequency": 0.01, "noise": 0.5, "seed": 0, "steps": 150}
#: Height of the scaled step bias-corrected next to the unit step.
SCALED_STEP = 2.5
#: Lecture rows of the summary table drawn as a figure (the full table goes to summary_table.md).
TABLE_FIGURE_ROWS: tuple[str, ...] = ("sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam", "nadam")

#: Tolerance of every drawn-versus-closed-form check.
TOLERANCE = 1e-9

_HALF_POWER_DB = -10.0 * math.log10(2.0)  # the "-3 dB" drop: |H| = H(1)/sqrt(2)


# ----------------------------------------------------------------------------- closed forms


def _check_pole(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {value!r}")
    return float(value)


def ar1_cutoff(pole: float) -> float | None:
    """Closed-form -3 dB frequency of ``k/(1 - p z^-1)`` (momentum, EMA), in cycles per step.

    ``|H|^2 = k^2/(1 - 2 p cos w + p^2)`` equals ``H(1)^2/2`` where
    ``1 - cos w = (1 - p)^2/(2 p)``, i.e. ``sin(w/2) = (1 - p)/(2 sqrt p)``:
    ``f_c = asin((1 - p)/(2 sqrt p))/pi``.  None when the response never
    falls that far (``p < 3 - 2 sqrt 2``).

    Parameters
    ----------
    pole : float
        The pole ``p`` (momentum ``mu`` or EMA ``beta``), in (0, 1).

    Returns
    -------
    float or None

    Examples
    --------
    >>> from optfilters.papers.ee541_unit7b import ar1_cutoff
    >>> round(ar1_cutoff(0.9), 6), ar1_cutoff(0.1)
    (0.016784, None)
    """
    p = _check_pole("pole", pole)
    s = (1.0 - p) / (2.0 * math.sqrt(p))
    return math.asin(s) / math.pi if s <= 1.0 else None


def nesterov_cutoff(mu: float) -> float | None:
    """Closed-form -3 dB frequency of torch's Nesterov filter ``((1 + mu) - mu z^-1)/(1 - mu z^-1)``.

    For ``(b0 + b1 z^-1)/(1 - p z^-1)`` with ``K = b0 + b1``, ``|H|^2`` is a
    ratio of functions linear in ``cos w``, so it is monotone and crosses
    ``H(1)^2/2`` once, where
    ``sin^2(w/2) = K^2 (1 - p)^2 / (8 b0 b1 (1 - p)^2 + 4 p K^2)``; Nesterov
    has ``b0 = 1 + mu``, ``b1 = -mu``, ``K = 1``, ``p = mu``:
    ``f_c = asin((1 - mu)/(2 sqrt(mu (1 - 2 (1 + mu)(1 - mu)^2))))/pi``.

    Parameters
    ----------
    mu : float
        Momentum, in (0, 1).

    Returns
    -------
    float or None
        None when the response never falls to ``H(1)/sqrt 2``.

    Examples
    --------
    >>> from optfilters.papers.ee541_unit7b import nesterov_cutoff
    >>> nesterov_cutoff(0.5), round(nesterov_cutoff(0.9), 6)
    (0.25, 0.017113)
    """
    m = _check_pole("mu", mu)
    inner = m * (1.0 - 2.0 * (1.0 + m) * (1.0 - m) ** 2)
    if inner <= 0.0:
        return None
    s = (1.0 - m) / (2.0 * math.sqrt(inner))
    return math.asin(s) / math.pi if s <= 1.0 else None


def phase_extremum(pole: float, zero: float = 0.0) -> tuple[float, float]:
    """Frequency and value of the largest phase lag of ``(1 - q z^-1)/(1 - p z^-1)``, ``0 <= q < p < 1``.

    The phase is ``atan2(q sin w, 1 - q cos w) - atan2(p sin w, 1 - p cos w)``;
    its derivative vanishes where ``cos w = (p + q)/(1 + p q)``, and there the
    phase is ``-asin((p - q)/(1 - p q))``.  Momentum has ``q = 0`` (lag
    ``asin(mu)`` at ``cos w = mu``), Nesterov ``q = mu/(1 + mu)``.  A positive
    gain in front does not change the phase.

    Parameters
    ----------
    pole : float
        ``p``, in (0, 1).
    zero : float
        ``q``, in [0, p).

    Returns
    -------
    tuple of float
        ``(frequency in cycles/step, phase in degrees)`` (the phase is negative).

    Examples
    --------
    >>> from optfilters.papers.ee541_unit7b import phase_extremum
    >>> f, phase = phase_extremum(0.5)
    >>> round(f, 9), round(phase, 9)   # cos w = 0.5, lag asin(0.5) = 30 degrees
    (0.166666667, -30.0)
    """
    p = _check_pole("pole", pole)
    if isinstance(zero, bool) or not isinstance(zero, (int, float)) or not 0.0 <= zero < p:
        raise ValueError(f"zero must be in [0, pole) = [0, {p:g}), got {zero!r}")
    q = float(zero)
    frequency = math.acos((p + q) / (1.0 + p * q)) / (2.0 * math.pi)
    return frequency, -math.degrees(math.asin((p - q) / (1.0 - p * q)))


def _momentum_closed_forms(mu: float) -> dict[str, Any]:
    f_phase, lag = phase_extremum(mu)
    return {
        "dc_gain": ("1/(1-mu)", 1.0 / (1.0 - mu)),
        "nyquist_gain": ("1/(1+mu)", 1.0 / (1.0 + mu)),
        "cutoff": ("asin((1-mu)/(2 sqrt mu))/pi", ar1_cutoff(mu)),
        "phase_extremum_frequency": ("acos(mu)/(2 pi)", f_phase),
        "max_phase_lag_deg": ("-asin(mu)", lag),
        "noise_gain": ("1/(1-mu^2)", 1.0 / (1.0 - mu * mu)),
    }


def _nesterov_closed_forms(mu: float) -> dict[str, Any]:
    q = mu / (1.0 + mu)
    f_phase, lag = phase_extremum(mu, q)
    return {
        "dc_gain": ("1/(1-mu)", 1.0 / (1.0 - mu)),
        "nyquist_gain": ("(1+2mu)/(1+mu)", (1.0 + 2.0 * mu) / (1.0 + mu)),
        "cutoff": ("asin((1-mu)/(2 sqrt(mu(1-2(1+mu)(1-mu)^2))))/pi", nesterov_cutoff(mu)),
        "phase_extremum_frequency": ("acos(mu(2+mu)/(1+mu+mu^2))/(2 pi)", f_phase),
        "max_phase_lag_deg": ("-asin(mu^2/(1+mu-mu^2))", lag),
        "noise_gain": ("(1+mu)^2 + mu^4/(1-mu^2)", (1.0 + mu) ** 2 + mu**4 / (1.0 - mu * mu)),
        "zero": ("mu/(1+mu)", q),
        "pole": ("mu", mu),
    }


def _ema_closed_forms(beta: float) -> dict[str, Any]:
    f_phase, lag = phase_extremum(beta)
    return {
        "dc_gain": ("1", 1.0),
        "nyquist_gain": ("(1-b)/(1+b)", (1.0 - beta) / (1.0 + beta)),
        "cutoff": ("asin((1-b)/(2 sqrt b))/pi", ar1_cutoff(beta)),
        "phase_extremum_frequency": ("acos(b)/(2 pi)", f_phase),
        "max_phase_lag_deg": ("-asin(b)", lag),
        "noise_gain": ("(1-b)/(1+b)", (1.0 - beta) / (1.0 + beta)),
    }


# ----------------------------------------------------------------------------- independent recursions


def _torch_semantics_difference(seed: int = 1, steps: int = 200) -> dict[str, float]:
    """Max |catalogue filter output - plain loop of torch.optim's documented update| on a random sequence."""
    import optfilters

    rng = np.random.default_rng(seed)
    g = rng.standard_normal(steps)
    out: dict[str, float] = {}
    for mu in MOMENTA:
        buf = 0.0
        plain, nesterov = [], []
        for t, gt in enumerate(g):
            buf = gt if t == 0 else mu * buf + gt  # torch: buf_1 = g_1, then mu buf + (1 - dampening) g
            plain.append(buf)
            nesterov.append(gt + mu * buf)
        heavy = optfilters.get("momentum", momentum=mu).filters()["gradient"].filter(g)
        nest = optfilters.get("nesterov", momentum=mu).filters()["gradient"].filter(g)
        out[f"momentum mu={mu:g}"] = float(np.max(np.abs(heavy - np.array(plain))))
        out[f"nesterov mu={mu:g}"] = float(np.max(np.abs(nest - np.array(nesterov))))
    for beta in (*BETA1S, BETA2):
        m = 0.0
        moment = []
        for gt in g:
            m = m + (1.0 - beta) * (gt - m)  # torch: exp_avg.lerp_(grad, 1 - beta)
            moment.append(m)
        f = optfilters.get("adam", betas=(beta, BETA2)).filters()["gradient"]
        out[f"adam exp_avg beta={beta:g}"] = float(np.max(np.abs(f.filter(g) - np.array(moment))))
    return out


# ----------------------------------------------------------------------------- reading drawn data


def _at(line: Any, x0: float) -> float:
    """The y value a line draws at exactly ``x0`` (the grids include every checked abscissa)."""
    x = np.asarray(line.get_xdata(), dtype=np.float64)
    hits = np.flatnonzero(x == x0)
    if hits.size != 1:
        raise RuntimeError(f"line {line.get_label()!r} has {hits.size} points at x = {x0!r}")
    return float(np.asarray(line.get_ydata(), dtype=np.float64)[hits[0]])


def _check(formula: str, closed: float, drawn: float, source: str = "drawn", tolerance: float = TOLERANCE) -> dict:
    error = abs(drawn - closed) / abs(closed) if closed != 0.0 else abs(drawn - closed)
    return {
        "formula": formula,
        "closed_form": float(closed),
        source: float(drawn),
        "rel_error": float(error),
        "tolerance": tolerance,
    }


def _all_checks(value: Any, path: str = "") -> list[tuple[str, dict]]:
    if isinstance(value, dict):
        if "closed_form" in value and "rel_error" in value:
            return [(path, value)]
        return [c for k, v in value.items() for c in _all_checks(v, f"{path}/{k}" if path else str(k))]
    return []


# ----------------------------------------------------------------------------- frequency-response figures


def _grid(n: int, fmin: float, extra: list[float]) -> np.ndarray:
    linear = np.linspace(0.0, fmin, 9)  # the symlog axis is linear below fmin
    return np.unique(np.concatenate([linear, np.geomspace(fmin, 0.5, n), np.asarray(extra, dtype=np.float64)]))


def _symlog(axes: Any, fmin: float) -> None:
    for ax in axes:
        ax.set_xscale("symlog", linthresh=fmin, linscale=0.25)
        ax.set_xlim(0.0, 0.5)
    axes[-1].set_xlabel(f"frequency (cycles/step; linear below {fmin:g}, logarithmic above)")


def _series_checks(mag: Any, phase: Any, filt: Any, closed: dict[str, Any]) -> dict[str, Any]:
    """Read DC/Nyquist gains, the -3 dB point and the phase extremum off the drawn lines; compare."""
    import optfilters

    rows: dict[str, Any] = {}
    dc_db = _at(mag, 0.0)
    rows["dc_gain"] = _check(closed["dc_gain"][0], closed["dc_gain"][1], 10.0 ** (dc_db / 20.0))
    rows["nyquist_gain"] = _check(closed["nyquist_gain"][0], closed["nyquist_gain"][1], 10.0 ** (_at(mag, 0.5) / 20.0))
    fc = closed["cutoff"][1]
    if fc is not None:
        # cutoff_frequency solves with brentq(xtol=1e-12), an absolute tolerance: allow that much for tiny cutoffs.
        library = optfilters.cutoff_frequency(filt) or math.nan
        rows["cutoff"] = _check(closed["cutoff"][0], fc, library, "library", max(TOLERANCE, 1e-12 / fc))
        rows["drop_at_cutoff_db"] = _check("-10 log10 2", _HALF_POWER_DB, _at(mag, fc) - dc_db)
    f_phase = closed["phase_extremum_frequency"][1]
    x = np.asarray(phase.get_xdata(), dtype=np.float64)
    y = np.asarray(phase.get_ydata(), dtype=np.float64)
    rows["max_phase_lag_deg"] = _check(closed["max_phase_lag_deg"][0], closed["max_phase_lag_deg"][1], float(y.min()))
    rows["phase_extremum_frequency"] = _check(closed["phase_extremum_frequency"][0], f_phase, float(x[np.argmin(y)]))
    rows["noise_gain"] = _check(
        closed["noise_gain"][0], closed["noise_gain"][1], optfilters.noise_gain(filt), "library"
    )
    return rows


def _draw_family(
    axes: Any, series: dict[str, tuple[Any, dict[str, Any]]], n: int, fmin: float, title: str
) -> tuple[Any, dict[str, Any]]:
    """Bode (magnitude, phase) of several filters on a symlog frequency axis, with the -3 dB points marked."""
    import optfilters
    from optfilters import plot

    responses = {}
    for label, (filt, closed) in series.items():
        extra = [v for v in (closed["cutoff"][1], closed["phase_extremum_frequency"][1]) if v is not None]
        responses[label] = optfilters.frequency_response(filt, freqs=_grid(n, fmin, extra))
    result = plot.bode_plot(responses, ax=list(axes), phase=True, title=title, legend=False)
    rows: dict[str, Any] = {}
    for i, (label, (filt, closed)) in enumerate(series.items()):
        mag, phase = result.artists["magnitude"][i], result.artists["phase"][i]
        rows[label] = _series_checks(mag, phase, filt, closed)
        fc = closed["cutoff"][1]
        if fc is not None:
            axes[0].plot(fc, _at(mag, fc), "o", color=mag.get_color(), markersize=5, zorder=4, label="_cutoff")
        fp = closed["phase_extremum_frequency"][1]
        axes[1].plot(fp, _at(phase, fp), "v", color=mag.get_color(), markersize=5, zorder=4, label="_lag")
    _symlog(axes, fmin)
    return result, rows


def _legend_with_markers(ax: Any, **kwargs: Any) -> None:
    from matplotlib.lines import Line2D

    handles, labels = ax.get_legend_handles_labels()
    handles += [
        Line2D([], [], linestyle="none", marker="o", color="0.3", markersize=5),
        Line2D([], [], linestyle="none", marker="v", color="0.3", markersize=5),
    ]
    labels += ["-3 dB point (closed form)", "largest phase lag (closed form)"]
    ax.legend(handles, labels, **kwargs)


def _momentum_figure(out: Path, n: int, dpi: int) -> tuple[str, dict[str, Any]]:
    import matplotlib.pyplot as plt

    import optfilters
    from optfilters import plot

    series = {
        f"mu = {mu:g}": (optfilters.get("momentum", momentum=mu).filters()["gradient"], _momentum_closed_forms(mu))
        for mu in MOMENTA
    }
    with plot.style():
        fig, axes = plt.subplots(2, 1, figsize=(6.8, 6.0), sharex=True)
        _, rows = _draw_family(axes, series, n, 1e-4, "Standard momentum (torch SGD): H = 1/(1 - mu z^-1)")
        _legend_with_markers(axes[0], loc="upper right")
        name = save_figure(fig, out / "momentum_response.png", dpi)
    return name, rows


def _nesterov_figure(out: Path, n: int, dpi: int) -> tuple[str, dict[str, Any]]:
    import matplotlib.pyplot as plt

    import optfilters
    from optfilters import plot

    filters = {mu: optfilters.get("nesterov", momentum=mu).filters()["gradient"] for mu in MOMENTA}
    series = {f"mu = {mu:g}": (filters[mu], _nesterov_closed_forms(mu)) for mu in MOMENTA}
    with plot.style():
        fig = plt.figure(figsize=(11.5, 6.0))
        grid = fig.add_gridspec(2, 2, width_ratios=(1.6, 1.0))
        ax_mag = fig.add_subplot(grid[0, 0])
        ax_phase = fig.add_subplot(grid[1, 0], sharex=ax_mag)
        ax_pz = fig.add_subplot(grid[:, 1])
        _, rows = _draw_family(
            (ax_mag, ax_phase),
            series,
            n,
            1e-4,
            "Nesterov (Bengio form, torch nesterov=True): H = ((1 + mu) - mu z^-1)/(1 - mu z^-1)",
        )
        _legend_with_markers(ax_mag, loc="upper right")
        ax_mag.tick_params(labelbottom=False)
        pz = plot.pole_zero_plot(
            {label: filt for label, (filt, _) in series.items()},
            ax=ax_pz,
            title="pole (x) at z = mu, zero (o) at z = mu/(1 + mu)",
            legend=False,
        )
        _annotate_roots(ax_pz, pz, series)
        for i, (label, (_, closed)) in enumerate(series.items()):
            zeros = np.asarray(pz.artists["zeros"][i].get_xdata(), dtype=np.float64)
            poles = np.asarray(pz.artists["poles"][i].get_xdata(), dtype=np.float64)
            zero_im = np.asarray(pz.artists["zeros"][i].get_ydata(), dtype=np.float64)
            if zeros.size != 1 or poles.size != 1 or zero_im[0] != 0.0:
                raise RuntimeError(f"{label}: expected one real pole and one real zero, got {zeros}, {poles}")
            rows[label]["zero"] = _check(closed["zero"][0], closed["zero"][1], float(zeros[0]))
            rows[label]["pole"] = _check(closed["pole"][0], closed["pole"][1], float(poles[0]))
            rows[label]["zero_in_z_inverse"] = _check("(1+mu)/mu", 1.0 / closed["zero"][1], 1.0 / float(zeros[0]))
        name = save_figure(fig, out / "nesterov_response.png", dpi)
    return name, rows


def _annotate_roots(ax: Any, pz: Any, series: dict[str, tuple[Any, dict[str, Any]]]) -> None:
    """Zoom the pole-zero map onto the real segment holding the roots and label each root with its value."""
    from matplotlib.lines import Line2D

    ax.set_xlim(0.2, 1.08)
    ax.set_ylim(-0.3, 0.3)
    for i in range(len(series)):
        colour = pz.artists["poles"][i].get_color()
        for role, sign in (("poles", 1), ("zeros", -1)):
            (value,) = np.asarray(pz.artists[role][i].get_xdata(), dtype=np.float64)
            ax.annotate(
                f"{value:.4g}",
                (value, 0.0),
                xytext=(0, sign * (16 + 13 * i)),
                textcoords="offset points",
                ha="center",
                va="center",
                fontsize="small",
                color=colour,
            )
    handles = [Line2D([], [], color=pz.artists["poles"][i].get_color(), label=label) for i, label in enumerate(series)]
    handles += [
        Line2D([], [], linestyle="none", marker="x", color="0.3", markeredgewidth=2, label="pole"),
        Line2D([], [], linestyle="none", marker="o", markerfacecolor="none", color="0.3", label="zero"),
    ]
    ax.legend(handles=handles, loc="upper left", fontsize="small", ncols=2)


def _comparison_figure(out: Path, n: int, dpi: int) -> tuple[str, dict[str, Any]]:
    import matplotlib.pyplot as plt

    import optfilters
    from optfilters import plot

    mu = COMPARE_MU
    std = optfilters.get("momentum", momentum=mu).filters()["gradient"]
    nes = optfilters.get("nesterov", momentum=mu).filters()["gradient"]
    closed_std, closed_nes = _momentum_closed_forms(mu), _nesterov_closed_forms(mu)
    extra = [
        v for c in (closed_std, closed_nes) for v in (c["cutoff"][1], c["phase_extremum_frequency"][1]) if v is not None
    ]
    grid = _grid(n, 1e-4, extra)
    responses = {
        f"standard, mu = {mu:g}": optfilters.frequency_response(std, freqs=grid),
        f"Nesterov, mu = {mu:g}": optfilters.frequency_response(nes, freqs=grid),
    }
    with plot.style():
        fig, axes = plt.subplots(3, 1, figsize=(6.8, 7.6), sharex=True, height_ratios=(1.2, 1.0, 0.8))
        result = plot.bode_plot(
            responses, ax=list(axes[:2]), phase=True, title=f"Standard vs Nesterov momentum at mu = {mu:g}"
        )
        mags = result.artists["magnitude"]
        x = np.asarray(mags[0].get_xdata(), dtype=np.float64)
        ratio_db = np.asarray(mags[1].get_ydata(), dtype=np.float64) - np.asarray(mags[0].get_ydata(), dtype=np.float64)
        (ratio_line,) = axes[2].plot(x, ratio_db, color=plot.PALETTE[2], label="Nesterov / standard")
        axes[1].set_xlabel("")
        axes[2].set_ylabel("|H_N| / |H_S| (dB)")
        axes[2].legend(loc="upper left")
        text = ["Nyquist gains (drawn):"]
        for line, who, formula in zip(
            mags, ("standard", "Nesterov"), ("1/(1 + mu)", "(1 + 2 mu)/(1 + mu)"), strict=True
        ):
            y_ny = _at(line, 0.5)
            axes[0].plot(0.5, y_ny, "s", color=line.get_color(), markersize=5, clip_on=False, zorder=4)
            text.append(f"{who}: {formula} = {10 ** (y_ny / 20):.4g} ({y_ny - _at(line, 0.0):.1f} dB re DC)")
        axes[0].text(0.02, 0.05, "\n".join(text), transform=axes[0].transAxes, fontsize="small", va="bottom")
        top = _at(ratio_line, 0.5)
        axes[2].plot(0.5, top, "s", color=ratio_line.get_color(), markersize=5, clip_on=False, zorder=4)
        axes[2].text(
            0.02,
            0.45,
            f"at Nyquist: 1 + 2 mu = {10 ** (top / 20):.4g} ({top:.2f} dB);\n"
            "> 1 at every f > 0: standard momentum attenuates more",
            transform=axes[2].transAxes,
            fontsize="small",
            va="bottom",
        )
        _symlog(axes, 1e-4)
        name = save_figure(fig, out / "momentum_vs_nesterov.png", dpi)
    w = 2.0 * np.pi * x
    closed_ratio = np.sqrt((1.0 + mu) ** 2 - 2.0 * mu * (1.0 + mu) * np.cos(w) + mu * mu)
    drawn_ratio = 10.0 ** (ratio_db / 20.0)
    rows: dict[str, Any] = {
        "mu": mu,
        "standard": _series_checks(mags[0], result.artists["phase"][0], std, closed_std),
        "nesterov": _series_checks(mags[1], result.artists["phase"][1], nes, closed_nes),
        "nyquist_ratio": _check("1+2mu", 1.0 + 2.0 * mu, 10.0 ** (_at(ratio_line, 0.5) / 20.0)),
        "ratio_curve_max_rel_error": float(np.max(np.abs(drawn_ratio - closed_ratio) / closed_ratio)),
        "ratio_min": float(drawn_ratio.min()),
        "ratio_nondecreasing": bool(np.all(np.diff(drawn_ratio) >= -1e-12)),
        "nyquist_relative_db_standard": _check(
            "20 log10((1-mu)/(1+mu))",
            20.0 * math.log10((1.0 - mu) / (1.0 + mu)),
            _at(mags[0], 0.5) - _at(mags[0], 0.0),
        ),
        "nyquist_relative_db_nesterov": _check(
            "20 log10((1-mu)(1+2mu)/(1+mu))",
            20.0 * math.log10((1.0 - mu) * (1.0 + 2.0 * mu) / (1.0 + mu)),
            _at(mags[1], 0.5) - _at(mags[1], 0.0),
        ),
        "standard_attenuates_more": bool(np.all(drawn_ratio[x > 0] > 1.0)),
    }
    return name, rows


def _adam_figure(out: Path, n: int, dpi: int) -> tuple[str, dict[str, Any]]:
    import matplotlib.pyplot as plt

    import optfilters
    from optfilters import plot

    series: dict[str, tuple[Any, dict[str, Any]]] = {}
    for beta in BETA1S:
        f = optfilters.get("adam", betas=(beta, BETA2)).filters()
        series[f"first moment, beta1 = {beta:g}"] = (f["gradient"], _ema_closed_forms(beta))
    second = optfilters.get("adam", betas=(BETA1S[0], BETA2)).filters()["second_moment"]
    series[f"second moment, beta2 = {BETA2:g}"] = (second, _ema_closed_forms(BETA2))
    with plot.style():
        fig, axes = plt.subplots(2, 1, figsize=(6.8, 6.0), sharex=True)
        result, rows = _draw_family(
            axes, series, n, 1e-5, "Adam's moment filters: H = (1 - b)/(1 - b z^-1), unit DC gain"
        )
        for role in ("magnitude", "phase"):
            line = result.artists[role][-1]
            line.set_color("0.15")
            line.set_linestyle("--")
        for marker_line in axes[0].lines[-1:] + axes[1].lines[-1:]:
            marker_line.set_color("0.15")
        _legend_with_markers(axes[0], loc="lower left")
        name = save_figure(fig, out / "adam_response.png", dpi)
    return name, rows


# ----------------------------------------------------------------------------- time-domain figures


def _step_figure(out: Path, dpi: int, steps: int) -> tuple[str, dict[str, Any]]:
    import matplotlib.pyplot as plt

    from optfilters import ArmaFilter, plot

    rows: dict[str, Any] = {}
    with plot.style():
        fig, axes = plt.subplots(1, 2, figsize=(11.0, 4.2))
        unit_dc = plot.step_plot(
            {f"alpha = {a:g}": ArmaFilter.ema(a) for a in STEP_ALPHAS},
            ax=axes[0],
            n=steps,
            bias_corrected=False,
            title="unit DC gain: y = alpha y + (1 - alpha) x;  s_t = 1 - alpha^t",
        )
        unit_input = plot.step_plot(
            {f"alpha = {a:g}": ArmaFilter.leaky_integrator(a) for a in STEP_ALPHAS},
            ax=axes[1],
            n=steps,
            bias_corrected=False,
            title="unit input gain: y = alpha y + x;  s_t = (1 - alpha^t)/(1 - alpha)",
        )
        for i, a in enumerate(STEP_ALPHAS):
            for ax, level in ((axes[0], 1.0), (axes[1], 1.0 / (1.0 - a))):
                ax.axhline(level, color=plot.PALETTE[i], linewidth=0.8, linestyle=":", zorder=1)
            dc_line, in_line = unit_dc.artists["raw"][i], unit_input.artists["raw"][i]
            t = np.asarray(dc_line.get_xdata(), dtype=np.float64)
            y_dc = np.asarray(dc_line.get_ydata(), dtype=np.float64)
            y_in = np.asarray(in_line.get_ydata(), dtype=np.float64)
            closed_dc = 1.0 - a**t  # = 1 - a^(n+1) with the slides' n = t - 1
            closed_in = (1.0 - a**t) / (1.0 - a)
            slides_sign = (1.0 - a) * (1.0 - (-a) ** t) / (1.0 + a)  # step response of (1-a)/(1 + a z^-1)
            rows[f"alpha = {a:g}"] = {
                "first_step": float(t[0]),
                "unit_dc_first_value": _check("1-alpha", 1.0 - a, float(y_dc[0])),
                "unit_dc_max_rel_error": float(np.max(np.abs(y_dc - closed_dc) / closed_dc)),
                "unit_input_max_rel_error": float(np.max(np.abs(y_in - closed_in) / closed_in)),
                "unit_dc_last": _check("1-alpha^t", float(closed_dc[-1]), float(y_dc[-1])),
                "unit_input_last": _check("(1-alpha^t)/(1-alpha)", float(closed_in[-1]), float(y_in[-1])),
                "slides_sign_form_max_abs_deviation": float(np.max(np.abs(y_dc - slides_sign))),
                "slides_sign_form_dc_gain": (1.0 - a) / (1.0 + a),
            }
        axes[0].set_ylim(0.0, 1.1)
        axes[1].set_ylim(0.0, 1.1 / (1.0 - max(STEP_ALPHAS)))
        for ax in axes:
            ax.legend(loc="lower right")
        name = save_figure(fig, out / "ar1_step_responses.png", dpi)
    return name, rows


def noisy_cosine(steps: int, frequency: float = 0.01, noise: float = 0.5, seed: int = 0) -> np.ndarray:
    """The noisy cosine ``x_t = cos(2 pi f t) + noise * e_t``, ``t = 1..steps``, ``e_t ~ N(0, 1)`` (seeded).

    Examples
    --------
    >>> from optfilters.papers.ee541_unit7b import noisy_cosine
    >>> noisy_cosine(3, noise=0.0, frequency=0.5).tolist()
    [-1.0, 1.0, -1.0]
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    t = np.arange(1, steps + 1, dtype=np.float64)
    rng = np.random.default_rng(seed)
    return np.cos(2.0 * np.pi * frequency * t) + noise * rng.standard_normal(steps)


def _bias_correction_figure(out: Path, dpi: int, steps: int) -> tuple[str, dict[str, Any]]:
    import matplotlib.pyplot as plt

    import optfilters
    from optfilters import ArmaFilter, StepResponse, plot

    beta = EMA_BETA
    ema = ArmaFilter.ema(beta)
    cos = dict(COSINE)
    x = noisy_cosine(cos["steps"], cos["frequency"], cos["noise"], cos["seed"])
    t = np.arange(1, x.size + 1, dtype=np.float64)
    raw = ema.filter(x)
    corrected = optfilters.bias_correct(ema, x)
    settle = round(5.0 / (1.0 - beta))
    ones = np.ones(steps)
    scaled = StepResponse(
        np.arange(1, steps + 1), ema.filter(SCALED_STEP * ones), optfilters.bias_correct(ema, SCALED_STEP * ones)
    )
    with plot.style():
        fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.4), width_ratios=(1.0, 1.5))
        st = plot.step_plot(
            {"unit step": ema, f"step of {SCALED_STEP:g}": scaled},
            ax=axes[0],
            n=steps,
            title=f"EMA (1 - b)/(1 - b z^-1), b = {beta:g}: step responses",
        )
        axes[0].set_ylim(0.0, SCALED_STEP * 1.1)
        axes[0].legend(loc="center right")
        ax = axes[1]
        (x_line,) = ax.plot(
            t, x, color="0.6", linewidth=0.8, marker="o", markersize=2.0, label="input x (noisy cosine)"
        )
        ax.plot(t, np.cos(2 * np.pi * cos["frequency"] * t), color="0.2", linewidth=0.8, linestyle=":", label="cosine")
        (raw_line,) = ax.plot(t, raw, color=plot.PALETTE[0], label="raw EMA")
        (comp_line,) = ax.plot(t, corrected, color=plot.PALETTE[1], linestyle="--", label="bias-corrected EMA")
        ax.axvline(settle, color="0.45", linewidth=0.9, linestyle="--", zorder=1)
        ax.annotate(
            f"t = 5/(1 - b) = {settle}: from here |raw - comp| = b^t |comp| <= {beta**settle:.2g} |comp|",
            (settle, 0.03),
            xytext=(5, 0),
            textcoords="offset points",
            fontsize="small",
            xycoords=("data", "axes fraction"),
            va="bottom",
        )
        ax.set_xlabel("step t")
        ax.set_ylabel("value")
        ax.set_title(
            f"cosine in noise (f = {cos['frequency']:g} cycles/step, sigma = {cos['noise']:g}, seed {cos['seed']})"
        )
        ax.set_xlim(0, x.size + 1)
        low, high = float(np.min(x)), float(np.max(x))
        ax.set_ylim(low - 0.45 * (high - low), high + 0.3 * (high - low))
        ax.legend(loc="upper right", ncols=2, fontsize="small")
        name = save_figure(fig, out / "bias_correction.png", dpi)

    # Read everything back from the drawn lines.
    drawn_t = np.asarray(comp_line.get_xdata(), dtype=np.float64)
    drawn_x = np.asarray(x_line.get_ydata(), dtype=np.float64)
    drawn_raw = np.asarray(raw_line.get_ydata(), dtype=np.float64)
    drawn_comp = np.asarray(comp_line.get_ydata(), dtype=np.float64)
    # Independent implementation: Adam's bias-corrected first moment m_t/(1 - b^t), from m_0 = 0.
    m, adam_hat = 0.0, []
    for k, xk in enumerate(drawn_x, start=1):
        m = beta * m + (1.0 - beta) * xk
        adam_hat.append(m / (1.0 - beta**k))
    powers = beta**drawn_t
    late = drawn_t >= settle
    late_bound = float(np.max(powers[late] * np.abs(drawn_comp[late])))
    unit = st.artists["bias_corrected"][0]
    scaled_line = st.artists["bias_corrected"][1]
    rows: dict[str, Any] = {
        "beta": beta,
        "cosine": cos,
        "settle_step": settle,
        "unit_step_bias_corrected_max_abs_error": float(np.max(np.abs(np.asarray(unit.get_ydata()) - 1.0))),
        "scaled_step_bias_corrected_max_abs_error": float(
            np.max(np.abs(np.asarray(scaled_line.get_ydata()) - SCALED_STEP))
        ),
        "unit_step_raw_max_abs_error": float(
            np.max(np.abs(np.asarray(st.artists["raw"][0].get_ydata()) - (1.0 - beta ** np.arange(1, steps + 1))))
        ),
        "bias_corrected_first_step": _check("x_1", float(drawn_x[0]), float(drawn_comp[0])),
        "raw_first_step": _check("(1-b) x_1", (1.0 - beta) * float(drawn_x[0]), float(drawn_raw[0])),
        "bias_corrected_vs_adam_loop_max_abs": float(np.max(np.abs(drawn_comp - np.array(adam_hat)))),
        "identity_max_abs_error": float(np.max(np.abs((drawn_raw - drawn_comp) + powers * drawn_comp))),
        "late_max_abs_difference": float(np.max(np.abs(drawn_raw[late] - drawn_comp[late]))),
        "late_bound_beta_t_abs_comp": late_bound,
        "late_agree_within_beta_t": bool(
            np.all(np.abs(drawn_raw[late] - drawn_comp[late]) <= powers[late] * np.abs(drawn_comp[late]) + 1e-12)
        ),
        "beta_to_settle": beta**settle,
        "early_max_abs_difference": float(np.max(np.abs(drawn_raw[~late] - drawn_comp[~late]))),
    }
    return name, rows


# ----------------------------------------------------------------------------- the table


def _table_figure(out: Path, dpi: int) -> tuple[str, dict[str, Any]]:
    import matplotlib.pyplot as plt

    from optfilters import plot
    from optfilters.table import CORRECTIONS, summary_table

    full = summary_table()
    (out / "summary_table.md").write_text(
        "# Summary of optimizers (generated by optfilters.table.summary_table)\n\n" + full.to_markdown() + "\n"
    )
    lecture = summary_table(TABLE_FIGURE_ROWS)
    keep = ("optimizer", "gradient filtering", "gradient normalisation", "variance filter", "learning-rate schedule")
    index = [lecture.columns.index(c) for c in keep]
    widths = (11, 44, 30, 40, 30)
    cells = [[textwrap.fill(row[j], w) for j, w in zip(index, widths, strict=True)] for row in lecture.rows]
    header = [textwrap.fill(c, w) for c, w in zip(keep, widths, strict=True)]
    # Row heights in text lines, plus padding.
    heights = [max(c.count("\n") + 1 for c in row) + 0.7 for row in [header, *cells]]
    total = sum(heights)
    note = textwrap.fill(
        "Against the lecture's table: momentum 'AR1, unit input gain' holds (with dampening 0); Nesterov's "
        "ARMA(1,1) zero is at z = mu/(1 + mu); Adam's filters are unit-DC-gain AR1 (the table said unit "
        "input gain); NAdam's variance filter is AR1, not ARMA1; RMSprop and Adadelta have no bias "
        "correction; Adadelta has a second AR1 on the squared updates.",
        170,
    )
    line_in = 0.17  # inches per text line at 8.5 pt
    with plot.style():
        fig, (ax, ax_note) = plt.subplots(
            2,
            1,
            figsize=(12.0, line_in * (total + 3.0) + 0.6),
            height_ratios=(total, 3.0),
            layout="constrained",
        )
        for a in (ax, ax_note):
            a.axis("off")
        table = ax.table(
            cellText=cells,
            colLabels=header,
            colWidths=[w / sum(widths) for w in widths],
            cellLoc="left",
            colLoc="left",
            bbox=(0.0, 0.0, 1.0, 1.0),
        )
        table.auto_set_font_size(False)
        table.set_fontsize(8.5)
        for (r, c), cell in table.get_celld().items():
            cell.set_height(heights[r] / total)
            cell.set_edgecolor("0.75")
            cell.PAD = 0.015
            if r == 0:
                cell.set_text_props(weight="bold")
                cell.set_facecolor("#e8eef5")
            elif c == 0:
                cell.set_text_props(weight="bold")
        ax.set_title(
            "Summary of optimizers, generated from the catalogue models (torch defaults); "
            f"corrected ({len(CORRECTIONS)} corrections: see summary_table.md)",
            fontsize=10,
        )
        ax_note.text(0.0, 1.0, note, transform=ax_note.transAxes, fontsize=8.5, va="top")
        name = save_figure(fig, out / "summary_table.png", dpi)
    rows = {r[0]: dict(zip(lecture.columns, r, strict=True)) for r in lecture.rows}
    return name, {
        "rows_in_figure": list(TABLE_FIGURE_ROWS),
        "rows_in_markdown": [r[0] for r in full.rows],
        "columns": list(full.columns),
        "corrections": list(CORRECTIONS),
        "lecture_rows": rows,
    }


# ----------------------------------------------------------------------------- captions


def _g(value: Any, digits: int = 6) -> str:
    return caption_number(value, digits, yes_no=False)


_QUANTITY = {
    "dc_gain": "DC gain H(1)",
    "nyquist_gain": "Nyquist gain H(-1)",
    "cutoff": "-3 dB frequency (library cutoff_frequency)",
    "drop_at_cutoff_db": "drawn magnitude there minus DC (dB)",
    "max_phase_lag_deg": "largest phase lag (degrees, drawn minimum)",
    "phase_extremum_frequency": "its frequency (drawn argmin)",
    "noise_gain": "white-noise power gain (library noise_gain)",
    "zero": "zero in z (drawn marker)",
    "pole": "pole (drawn marker)",
    "zero_in_z_inverse": "root in z^-1 (the slides' value)",
}


def _check_table(rows: dict[str, Any]) -> list[str]:
    lines = ["| filter | quantity | closed form | value | read | rel. error |", "|---|---|---|---|---|---|"]
    for label, checks in rows.items():
        for key, c in checks.items():
            if not isinstance(c, dict) or "closed_form" not in c:
                continue
            value = c.get("drawn", c.get("library"))
            source = "drawn" if "drawn" in c else "library"
            lines.append(
                f"| {label} | {_QUANTITY.get(key, key)} | {c['formula']} | {_g(c['closed_form'], 7)} | "
                f"{_g(value, 7)} ({source}) | {c['rel_error']:.1e} |"
            )
    return lines


def _captions(numbers: dict[str, Any]) -> str:
    cmp = numbers["comparison"]
    comp = numbers["bias_correction"]
    mode = "Quick (CI) settings" if numbers["quick"] else "Full settings"
    lines = [
        f"# {TITLE}",
        "",
        f"{mode}: {numbers['frequency_points']} log-spaced frequencies per curve plus 0, 0.5 and the closed-form "
        "check points. Frequencies in cycles per step (w = 2 pi f); magnitude 20 log10 |H|; the frequency axes "
        "are linear up to 1e-4 (1e-5 for Adam), so DC (f = 0) is drawn, and logarithmic above. Every 'drawn' "
        "number below is read back from the plotted lines (PlotResult artists) and compared with a closed form "
        f"derived in the module docstring (papers/ee541_unit7b.py); tolerance {TOLERANCE:g} relative (for the "
        "library's cutoff_frequency, which solves to an absolute 1e-12, max(1e-9, 1e-12/f_c)). The filters "
        "are the catalogue models' (optfilters.get), whose recursions equal torch.optim's (max |difference| "
        f"on 200 random gradients: {max(numbers['torch_semantics'].values()):.1e}).",
        "",
        f"## {numbers['files'][0]}",
        "Frequency response of torch's SGD momentum (buf = mu buf + g, update direction buf): "
        "H = 1/(1 - mu z^-1), pole at z = mu. Larger mu: more low-pass (and a larger DC gain 1/(1 - mu), which "
        "couples momentum with the learning rate). Dots: the -3 dB points at the closed-form cutoff "
        "f_c = asin((1 - mu)/(2 sqrt mu))/pi; triangles: the largest phase lag, asin(mu) at cos w = mu.",
        "",
        *_check_table(numbers["momentum"]),
        "",
        f"## {numbers['files'][1]}",
        "Frequency response of Nesterov momentum in Bengio's form, torch's SGD(nesterov=True): buf = mu buf + g, "
        "direction g + mu buf, so H = ((1 + mu) - mu z^-1)/(1 - mu z^-1) (the same as the slides' "
        "(1 + mu) v[i] - mu v[i-1]). Pole at mu; zero at z = mu/(1 + mu): the slides' '(1 + mu)/mu' is the root in "
        "z^-1. DC gain 1/(1 - mu) as for standard momentum; Nyquist gain (1 + 2 mu)/(1 + mu) > 1 for every mu, "
        "so Nesterov's high-frequency floor stays above 1 while standard momentum's falls to 1/(1 + mu). At "
        "mu = 0.5 the cutoff is exactly 0.25 cycles/step. Right: poles and zeros read off the drawn markers.",
        "",
        *_check_table(numbers["nesterov"]),
        "",
        f"## {numbers['files'][2]}",
        f"Standard (torch momentum) against Nesterov at mu = {cmp['mu']:g}. Both have DC gain 10. Bottom: the "
        "ratio |H_N/H_S| = |(1 + mu) - mu e^{-jw}|, read from the two drawn magnitudes, rises monotonically from "
        "1 at DC to 1 + 2 mu at Nyquist: standard momentum attenuates every non-zero frequency more, as the "
        "slide says, and passes less white noise (power gain 1/(1 - mu^2) = 5.263 against "
        "(1 + mu)^2 + mu^4/(1 - mu^2) = 7.063). Nesterov also lags less (48.0 against 64.2 degrees at most).",
        "",
        "| quantity | closed form | value | drawn | rel. error |",
        "|---|---|---|---|---|",
    ]
    for key, text in (
        ("nyquist_ratio", "Nyquist gain ratio Nesterov / standard"),
        ("nyquist_relative_db_standard", "standard: Nyquist relative to DC (dB)"),
        ("nyquist_relative_db_nesterov", "Nesterov: Nyquist relative to DC (dB)"),
    ):
        c = cmp[key]
        lines.append(f"| {text} | {c['formula']} | {_g(c['closed_form'])} | {_g(c['drawn'])} | {c['rel_error']:.1e} |")
    for who in ("standard", "nesterov"):
        for key in ("nyquist_gain", "cutoff", "max_phase_lag_deg"):
            c = cmp[who][key]
            value = c.get("drawn", c.get("library"))
            lines.append(
                f"| {who}: {_QUANTITY[key]} | {c['formula']} | {_g(c['closed_form'])} | {_g(value)} | "
                f"{c['rel_error']:.1e} |"
            )
    lines += [
        "",
        f"Whole drawn ratio curve against the closed form: max relative error {cmp['ratio_curve_max_rel_error']:.1e}; "
        f"minimum {cmp['ratio_min']:.6g} (at DC); non-decreasing: {cmp['ratio_nondecreasing']}.",
        "",
        f"## {numbers['files'][3]}",
        "Adam's moment filters (catalogue 'adam', as torch runs them: m = beta m + (1 - beta) g): "
        "H = (1 - b)/(1 - b z^-1), unit DC gain whatever b (no coupling between momentum and learning rate, "
        "unlike standard momentum), Nyquist gain (1 - b)/(1 + b), which is also the white-noise power gain; the "
        "cutoff is standard momentum's at mu = b. Dashed: the second-moment filter (on g^2) at beta2 = 0.999. "
        "Adam is not a linear filter as a whole (it divides by sqrt(v)); these are its two linear stages, "
        "without the bias correction (a transient, next figures).",
        "",
        *_check_table(numbers["adam"]),
        "",
        f"## {numbers['files'][4]}",
        "Step responses of the two AR1 special cases, from rest, steps counted from t = 1 (the library's "
        "convention: the first output is (1 - alpha) x_1, so the slides' s[n] = 1 - alpha^(n+1), n from 0, is "
        "1 - alpha^t here). Left: unit DC gain, y = alpha y + (1 - alpha) x, H = (1 - alpha)/(1 - alpha z^-1), "
        "s_t = 1 - alpha^t -> 1 (dotted). Right: unit input gain, y = alpha y + x, H = 1/(1 - alpha z^-1), "
        "s_t = (1 - alpha^t)/(1 - alpha) -> 1/(1 - alpha). The slides' denominators 1 + alpha z^-1 would give "
        "(1 - alpha)(1 - (-alpha)^t)/(1 + alpha): an oscillating response settling at (1 - alpha)/(1 + alpha).",
        "",
        "| alpha | first drawn value (1 - alpha) | max rel. error vs 1 - alpha^t | "
        "max rel. error vs (1 - alpha^t)/(1 - alpha) | max deviation from the slides' sign |",
        "|---|---|---|---|---|",
    ]
    for label, row in numbers["step"].items():
        lines.append(
            f"| {label.split('= ')[1]} | {_g(row['unit_dc_first_value']['drawn'])} | "
            f"{row['unit_dc_max_rel_error']:.1e} | {row['unit_input_max_rel_error']:.1e} | "
            f"{_g(row['slides_sign_form_max_abs_deviation'], 4)} |"
        )
    lines += [
        "",
        f"## {numbers['files'][5]}",
        f"Adam's bias correction of the EMA with b = {comp['beta']:g}: divide by "
        "s_t/H(1) = 1 - b^t. Left: raw (solid) and bias-corrected (dashed) responses to a unit step and to a step of "
        f"{SCALED_STEP:g}: the bias-corrected ones are exact from the first step ('works for any scaled step'). "
        f"Right: a cosine in noise, x_t = cos(2 pi {comp['cosine']['frequency']:g} t) + "
        f"{comp['cosine']['noise']:g} e_t (numpy default_rng({comp['cosine']['seed']}), t = 1..."
        f"{comp['cosine']['steps']}): the raw EMA starts near 0, the bias-corrected EMA starts at x_1. "
        "raw_t = (1 - b^t) comp_t, so raw_t - comp_t = -b^t comp_t exactly; after 5/(1 - b) = "
        f"{comp['settle_step']} steps the two agree within b^t |comp_t| (b^{comp['settle_step']} = "
        f"{comp['beta_to_settle']:.3g}).",
        "",
        "| quantity | closed form / bound | drawn |",
        "|---|---|---|",
        "| bias-corrected unit step, max abs error | 0 (exactly 1) | "
        f"{comp['unit_step_bias_corrected_max_abs_error']:.1e} |",
        f"| bias-corrected step of {SCALED_STEP:g}, max abs error | 0 | "
        f"{comp['scaled_step_bias_corrected_max_abs_error']:.1e} |",
        f"| raw unit step vs 1 - b^t, max abs error | 0 | {comp['unit_step_raw_max_abs_error']:.1e} |",
        f"| bias-corrected output at t = 1 | x_1 = {_g(comp['bias_corrected_first_step']['closed_form'])} | "
        f"{_g(comp['bias_corrected_first_step']['drawn'])} "
        f"(rel. error {comp['bias_corrected_first_step']['rel_error']:.1e}) |",
        f"| raw output at t = 1 | (1 - b) x_1 = {_g(comp['raw_first_step']['closed_form'])} | "
        f"{_g(comp['raw_first_step']['drawn'])} |",
        "| bias-corrected vs an independent loop of Adam's m_t/(1 - b^t), max abs | 0 | "
        f"{comp['bias_corrected_vs_adam_loop_max_abs']:.1e} |",
        f"| raw - comp + b^t comp, max abs | 0 | {comp['identity_max_abs_error']:.1e} |",
        f"| max abs(raw - comp), t < {comp['settle_step']} | (transient) | {comp['early_max_abs_difference']:.3g} |",
        f"| max abs(raw - comp), t >= {comp['settle_step']} | <= max b^t abs(comp) = "
        f"{comp['late_bound_beta_t_abs_comp']:.3g} | {comp['late_max_abs_difference']:.3g} |",
        "",
        f"## {numbers['files'][6]}",
        "The summary-of-optimizers table generated from the catalogue models "
        "(optfilters.table.summary_table(), default hyperparameters), here the lecture's rows; every row of "
        "the catalogue is in summary_table.md. It corrects the lecture's table:",
        "",
        *[f"{i}. {text}" for i, text in enumerate(numbers["table"]["corrections"], start=1)],
        "",
        "Consistency with the figures above: the momentum row reads 'AR1, unit input gain (pole 0.9)', the "
        "Nesterov row 'ARMA(1,1) (pole 0.9, zero 0.4737)' (mu/(1 + mu) at mu = 0.9) and the Adam row 'AR1, unit "
        "DC gain (pole 0.9), bias correction'.",
        "",
        "",
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- entry point


def reproduce(out_dir: str | Path = "figures/ee541_unit7b", quick: bool = False) -> dict[str, Any]:
    """Draw the lecture's gradient-filtering figures, check them against closed forms, write captions and numbers.

    Parameters
    ----------
    out_dir : str or Path
        Output folder (created).
    quick : bool
        CI size: 129 frequencies per curve instead of 2049 and a lower
        resolution; the checks are the same.

    Returns
    -------
    dict
        ``momentum``, ``nesterov``, ``adam``: per series the checks (each
        ``formula``, ``closed_form``, the value read off the ``drawn`` lines
        or computed by the ``library``, ``rel_error``, ``tolerance``) of the
        DC and Nyquist gains, the -3 dB point, the phase extremum, the noise
        gain (and Nesterov's pole and zero); ``comparison`` (standard vs
        Nesterov), ``step`` (AR1 step responses), ``bias_correction`` (Adam's
        bias correction), ``table`` (the generated table's rows and
        corrections), ``torch_semantics``, ``max_rel_error``, ``files``,
        ``quick``, ``checks`` (one :class:`~optfilters.papers.Check` per
        comparison; none raises: the caller reads them).

    Examples
    --------
    >>> from optfilters.papers import ee541_unit7b
    >>> ee541_unit7b.MOMENTA
    (0.5, 0.9, 0.99)
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n = 129 if quick else 2049
    dpi = 90 if quick else 150
    steps = 50
    files: list[str] = []
    numbers: dict[str, Any] = {"title": TITLE, "quick": quick, "frequency_points": n}
    name, numbers["momentum"] = _momentum_figure(out, n, dpi)
    files.append(name)
    name, numbers["nesterov"] = _nesterov_figure(out, n, dpi)
    files.append(name)
    name, numbers["comparison"] = _comparison_figure(out, n, dpi)
    files.append(name)
    name, numbers["adam"] = _adam_figure(out, n, dpi)
    files.append(name)
    name, numbers["step"] = _step_figure(out, dpi, steps)
    files.append(name)
    name, numbers["bias_correction"] = _bias_correction_figure(out, dpi, steps)
    files.append(name)
    name, numbers["table"] = _table_figure(out, dpi)
    files += [name, "summary_table.md", "captions.md", "numbers.json"]
    numbers["torch_semantics"] = _torch_semantics_difference()
    numbers["files"] = files

    closed_form = _all_checks(numbers)
    numbers["max_rel_error"] = max(c["rel_error"] for _, c in closed_form)
    numbers["checks"] = [
        Check.close(path, c.get("drawn", c.get("library")), c["closed_form"], c["tolerance"]) for path, c in closed_form
    ] + _extra_checks(numbers)
    write_outputs(out, numbers, _captions(numbers))
    return numbers


def _extra_checks(numbers: dict[str, Any]) -> list[Check]:
    """The checks that are not a single closed-form comparison."""
    cmp, comp = numbers["comparison"], numbers["bias_correction"]
    out = [
        Check.within("comparison: ratio curve max relative error", cmp["ratio_curve_max_rel_error"], high=TOLERANCE),
        Check.holds("comparison: Nesterov/standard ratio non-decreasing", cmp["ratio_nondecreasing"]),
        Check.holds(
            "comparison: standard momentum attenuates every non-zero frequency more", cmp["standard_attenuates_more"]
        ),
    ]
    for label, row in numbers["step"].items():
        worst = max(row["unit_dc_max_rel_error"], row["unit_input_max_rel_error"])
        out.append(Check.within(f"step {label}: max relative error against the closed forms", worst, high=TOLERANCE))
    for key in (
        "unit_step_bias_corrected_max_abs_error",
        "scaled_step_bias_corrected_max_abs_error",
        "unit_step_raw_max_abs_error",
        "bias_corrected_vs_adam_loop_max_abs",
        "identity_max_abs_error",
    ):
        out.append(Check.within(f"bias correction: {key}", comp[key], high=TOLERANCE))
    out.append(
        Check.holds(
            "bias correction: raw and bias-corrected agree within beta^t after 5/(1 - beta) steps",
            comp["late_agree_within_beta_t"],
        )
    )
    for label, difference in numbers["torch_semantics"].items():
        out.append(Check.within(f"torch recursion {label}: max abs difference", difference, high=TOLERANCE))
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: ``[OUT_DIR] [--quick]``; prints the checked gains and the check summary; 1 when a check fails."""
    return run_source("ee541_unit7b", argv, _report)


def _report(numbers: dict[str, Any]) -> None:
    for family in ("momentum", "nesterov", "adam"):
        for label, row in numbers[family].items():
            cutoff = row.get("cutoff", {}).get("library")
            print(
                f"{family:9s} {label:32s} DC {row['dc_gain']['drawn']:9.5g}  "
                f"Nyquist {row['nyquist_gain']['drawn']:9.5g}"
                f"  cutoff {_g(cutoff, 5):>9s}"
            )
    print(f"Nesterov/standard Nyquist ratio: {numbers['comparison']['nyquist_ratio']['drawn']:.6g}")
    print(f"max relative error of the closed-form checks {numbers['max_rel_error']:.2g}")


if __name__ == "__main__":
    raise SystemExit(main())
