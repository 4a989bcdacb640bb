"""The catalogue: every optimizer as an :class:`OptimizerModel`, with one registry.

``CATALOGUE`` maps each name to a :class:`CatalogueEntry` holding the
factory, its hyperparameters (torch.optim's names and defaults where torch has
the optimizer), aliases, the torch counterpart, example settings and bad
inputs with the errors they must raise.  Tests, the CLI and the figure
scripts all read it.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import InvalidFilterError, InvalidHyperparameterError, UnknownNameError
from .filters import ArmaFilter
from .gains import Constant, InverseTimeDecay, NadamCurrentGain, NadamMomentumGain, RAdamRectification
from .hyperparameters import Hyperparameter
from .matrix_stages import MUON_COEFFICIENTS, FactoredNormaliser, Orthogonalise
from .model import OptimizerModel, chain
from .package_stages import (
    AccumulatingEma,
    AdanNumerator,
    CautiousMask,
    Clip,
    DelayedNormaliser,
    DirectionDecay,
    LeadFilter,
    LionInterpolation,
    LrWeightedMomentum,
    MeasurementFilter,
    OffsetRmsNormaliser,
    PostUpdateDecay,
    ScheduledMixture,
    ScheduleFree,
    YogiNormaliser,
)
from .parameter_stages import (
    AsgdUpdate,
    EmaAverage,
    Lookahead,
    PolyakAverage,
    RelativeStep,
    RpropUpdate,
    SwaAverage,
    _wrap,
)
from .stages import (
    AdadeltaNormaliser,
    FilterTerm,
    LearningRate,
    LinearStage,
    PeakNormaliser,
    RmsNormaliser,
    SignNonlinearity,
    Stage,
    WeightDecay,
)
from .validation import MAX_PERIOD, check_number

__all__ = [
    "CATALOGUE",
    "CatalogueEntry",
    "CatalogueFacts",
    "ModelLike",
    "as_model",
    "catalogue_docs",
    "get",
    "names",
    "register",
    "resolve_name",
    "unregister",
]

#: What every analysis function accepts as an optimizer: a catalogue name, a model, a stage or a filter.
ModelLike = OptimizerModel | ArmaFilter | Stage | str

Params = dict[str, Any]


def _rst(text: str) -> str:
    """Plain text as reStructuredText: the markup characters escaped (``|g|`` is no substitution)."""
    return "".join("\\" + c if c in "\\|*`_[]<>" else c for c in text)


@dataclass(frozen=True)
class CatalogueEntry:
    """A catalogue optimizer: factory, hyperparameters and metadata.

    Parameters
    ----------
    name : str
        Canonical (lower-case) name.
    summary : str
        One line for ``optfilters list``.
    hyperparameters : tuple of Hyperparameter
        In torch.optim's keyword order where torch has the optimizer.
    build : callable
        ``build(params) -> OptimizerModel`` from validated parameters.
    aliases : tuple of str
        Other accepted names.
    torch_class : str or None
        Dotted path of the torch.optim counterpart with identical semantics.
    torch_fixed : mapping
        Extra keyword arguments for the torch counterpart (e.g. ``nesterov=True``).
    torch_state : mapping
        The counterpart's per-parameter state keys and the bridge's keys that
        hold the same tensors (``{"exp_avg": "gradient.0", ...}``;
        ``step`` is ``step`` in both): what checkpoint conversion maps
        (:mod:`optfilters.torch.checkpoint`).
    source : str
        Where the update rule comes from.
    examples : tuple of dict
        Non-default settings that tests exercise.
    bad_inputs : tuple of (dict, str)
        Settings that must fail, with a regular expression for the message.
    check : callable or None
        Cross-parameter validation, raising InvalidHyperparameterError.
    reference : str or None
        Dotted import path of a third-party reference implementation (a
        ``torch.optim.Optimizer`` from a package in the test extras) whose
        parity the tests check; ``torch_class`` stays for torch.optim's own.
    reference_fixed : mapping
        Extra keyword arguments for :attr:`reference`.
    reference_adapt : callable or None
        ``adapt(kwargs) -> kwargs``: a last rewrite for the reference's
        signature (see :meth:`reference_kwargs`).
    packed : mapping
        torch.optim tuples spelled as separate hyperparameters, like ``betas``
        for ``beta1``/``beta2`` (e.g. Adafactor's ``eps`` for ``eps1``/``eps2``):
        :meth:`validate` accepts the tuple, :meth:`torch_kwargs` packs it.
    parameter_ndim : int or None
        The number of dimensions the optimizer's parameters must have
        (``2``: matrices only, like torch.optim.Muon); None for any.
    tuned : tuple of str
        Hyperparameters tuned by default besides ``lr`` (those that shape the
        filter): :func:`optfilters.closed_loop.tune` and the IQC tuner.
    poles : tuple of str
        Hyperparameters that are poles (EMA coefficients) of the optimizer's
        filters: the batch-size scaling rules rescale them.
    decoupled_weight_decay : bool
        True when the optimizer's ``weight_decay`` acts on the parameter
        directly (AdamW's decoupled form), for the summary table.

    Examples
    --------
    >>> from optfilters import CATALOGUE
    >>> CATALOGUE["adam"].defaults()["beta2"]
    0.999
    """

    name: str
    summary: str
    hyperparameters: tuple[Hyperparameter, ...]
    build: Callable[[Params], OptimizerModel]
    aliases: tuple[str, ...] = ()
    torch_class: str | None = None
    torch_fixed: Mapping[str, Any] = field(default_factory=dict)
    torch_state: Mapping[str, str] = field(default_factory=dict)
    source: str = ""
    examples: tuple[Params, ...] = ()
    bad_inputs: tuple[tuple[Params, str], ...] = ()
    check: Callable[[Params], None] | None = None
    reference: str | None = None
    reference_fixed: Mapping[str, Any] = field(default_factory=dict)
    reference_adapt: Callable[[Params], Params] | None = None
    packed: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    parameter_ndim: int | None = None
    tuned: tuple[str, ...] = ()
    poles: tuple[str, ...] = ()
    decoupled_weight_decay: bool = False

    def docs_line(self) -> str:
        """The entry's line in the documentation's catalogue list (reStructuredText).

        Returns
        -------
        str
            ``name`` (aliases): summary, hyperparameters and the source.

        Examples
        --------
        >>> from optfilters import CATALOGUE
        >>> CATALOGUE["nesterov"].docs_line().split(":")[0]
        '``nesterov`` (nag, sgd-nesterov)'
        """
        aliases = f" ({_rst(', '.join(self.aliases))})" if self.aliases else ""
        hps = _rst(", ".join(hp.name for hp in self.hyperparameters) or "none")
        source = f" Source: {_rst(self.source)}." if self.source else ""
        return f"``{self.name}``{aliases}: {_rst(self.summary)}. Hyperparameters: {hps}.{source}"

    def __reduce__(self) -> Any:
        """Pickle a catalogue entry by name (its ``build`` is a local function); others field by field."""
        if CATALOGUE.get(self.name) is self:
            return (_catalogue_entry, (self.name,))
        return object.__reduce__(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> CatalogueEntry:
        return self  # immutable: a copy is the same entry

    def defaults(self) -> Params:
        """Default value of every hyperparameter (None for required ones).

        Returns
        -------
        dict of str to object
            By hyperparameter name, in the entry's order.
        """
        return {hp.name: hp.default for hp in self.hyperparameters}

    def hyperparameter(self, name: str) -> Hyperparameter:
        """The specification of one hyperparameter.

        Parameters
        ----------
        name : str
            The hyperparameter's name.

        Returns
        -------
        Hyperparameter
            Its specification (default, range, kind).

        Raises
        ------
        InvalidHyperparameterError
            If the entry has no hyperparameter of that name (the message lists the known ones).
        """
        for hp in self.hyperparameters:
            if hp.name == name:
                return hp
        raise InvalidHyperparameterError(_unknown_hyperparameter_message(self, name))

    def validate(self, overrides: Mapping[str, Any]) -> Params:
        """Defaults updated with ``overrides``, each checked; unknown names are refused.

        torch.optim's ``betas=(beta1, beta2[, beta3])`` is accepted where the
        entry has those betas (not together with ``beta1=`` etc.).

        Parameters
        ----------
        overrides : mapping of str to object
            Hyperparameters given by name (CLI text accepted), maybe ``betas``.

        Returns
        -------
        dict of str to object
            Every hyperparameter of the entry, checked and converted (:meth:`Hyperparameter.validate`).

        Raises
        ------
        InvalidHyperparameterError
            For an unknown name, a required hyperparameter missing, ``betas`` of the
            wrong length or together with ``beta1=``, or a value out of its range.

        Examples
        --------
        >>> from optfilters import CATALOGUE
        >>> CATALOGUE["adam"].validate({"betas": (0.8, 0.99)})["beta2"]
        0.99
        """
        known = {hp.name for hp in self.hyperparameters}
        if "betas" in overrides and "betas" not in known:
            overrides = self._split_betas(overrides, known)
        for packed, names in self.packed.items():
            if packed in overrides and packed not in known:
                overrides = _split_packed(overrides, packed, names)
        for key in overrides:
            if key not in known:
                raise InvalidHyperparameterError(_unknown_hyperparameter_message(self, key))
        params: Params = {}
        for hp in self.hyperparameters:
            value = overrides.get(hp.name, hp.default)
            if value is None and hp.required:
                raise InvalidHyperparameterError(f"{self.name} needs {hp.name} (no default)")
            params[hp.name] = hp.validate(value)
        if self.check is not None:
            self.check(params)
        return params

    def _split_betas(self, overrides: Mapping[str, Any], known: set[str]) -> dict[str, Any]:
        names = [f"beta{k}" for k in range(1, 4) if f"beta{k}" in known]
        if len(names) < 2:
            raise InvalidHyperparameterError(_unknown_hyperparameter_message(self, "betas"))
        return _split_packed(overrides, "betas", tuple(names), "numbers")

    def torch_kwargs(self, params: Mapping[str, Any]) -> Params:
        """Keyword arguments for :attr:`torch_class` (``beta1``/``beta2`` become ``betas``).

        Parameters
        ----------
        params : mapping of str to object
            Validated hyperparameters (:meth:`validate`).

        Returns
        -------
        dict of str to object
            The constructor's keyword arguments of the torch.optim class.

        Examples
        --------
        >>> from optfilters import CATALOGUE
        >>> CATALOGUE["nesterov"].torch_kwargs({"lr": 0.1, "momentum": 0.9})
        {'lr': 0.1, 'momentum': 0.9, 'nesterov': True}
        """
        kwargs = dict(params)
        if "beta1" in kwargs and "beta2" in kwargs:
            kwargs["betas"] = (kwargs.pop("beta1"), kwargs.pop("beta2"))
        for packed, names in self.packed.items():
            if all(name in kwargs for name in names):
                kwargs[packed] = tuple(kwargs.pop(name) for name in names)
        kwargs.update(self.torch_fixed)
        return kwargs

    def reference_kwargs(self, params: Mapping[str, Any]) -> Params:
        """Keyword arguments for :attr:`reference` (``beta1``.. ``beta3`` become ``betas``, then the fixed ones).

        Parameters
        ----------
        params : mapping of str to object
            Validated hyperparameters (:meth:`validate`).

        Returns
        -------
        dict of str to object
            The constructor's keyword arguments of the reference package's optimizer.

        Examples
        --------
        >>> from optfilters import CATALOGUE
        >>> CATALOGUE["adan"].reference_kwargs({"lr": 0.1, "beta1": 0.9, "beta2": 0.8, "beta3": 0.7})
        {'lr': 0.1, 'betas': (0.9, 0.8, 0.7)}
        """
        kwargs = dict(params)
        names = [f"beta{k}" for k in range(1, 4) if f"beta{k}" in kwargs]
        if len(names) >= 2:
            kwargs["betas"] = tuple(kwargs.pop(name) for name in names)
        kwargs.update(self.reference_fixed)
        if self.reference_adapt is not None:
            kwargs = self.reference_adapt(kwargs)
        return kwargs


def _split_packed(
    overrides: Mapping[str, Any], packed: str, names: tuple[str, ...], what: str = "values"
) -> dict[str, Any]:
    """``overrides`` with the tuple ``packed`` (torch's ``eps=(eps1, eps2)``, ``betas``) split into ``names``."""
    value = overrides[packed]
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != len(names):
        raise InvalidHyperparameterError(
            f"{packed} must be a tuple ({', '.join(names)}) of {len(names)} {what}, got {value!r}"
        )
    given = [name for name in names if name in overrides]
    if given:
        raise InvalidHyperparameterError(f"give {packed} or {', '.join(given)}, not both")
    split = {key: v for key, v in overrides.items() if key != packed}
    split.update(zip(names, value, strict=True))
    return split


def _edit_distance(a: str, b: str) -> int:
    """Optimal-string-alignment distance: insertions, deletions, substitutions and adjacent transpositions."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def close_matches(word: str, candidates: list[str], n: int = 3) -> list[str]:
    """Candidates close to ``word``, best first (typo distance, then similarity ratio).

    Examples
    --------
    >>> from optfilters.catalogue import close_matches
    >>> close_matches("adma", ["adamax", "adam", "arma", "sgd"])
    ['adam', 'arma', 'adamax']
    """
    limit = max(2, len(word) // 3)
    scored = []
    for candidate in candidates:
        distance = _edit_distance(word, candidate)
        ratio = difflib.SequenceMatcher(None, word, candidate).ratio()
        if distance <= limit or ratio >= 0.75:
            scored.append((distance, -ratio, candidate))
    return [c for _, _, c in sorted(scored)[:n]]


def _unknown_hyperparameter_message(entry: CatalogueEntry, key: str) -> str:
    names = [hp.name for hp in entry.hyperparameters]
    close = close_matches(key, names, n=2)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"{entry.name} has no hyperparameter {key!r} (it takes {', '.join(names)}){hint}"


# ----------------------------------------------------------------------------- hyperparameter specs

UNIT_OPEN = {"low": 0.0, "high": 1.0, "high_open": True}


def _lr(default: float) -> Hyperparameter:
    return Hyperparameter("lr", default, low=0.0, help="learning rate")


def _beta(name: str, default: float, text: str) -> Hyperparameter:
    return Hyperparameter(name, default, help=text, **UNIT_OPEN)  # type: ignore[arg-type]


def _nonneg(name: str, default: float, text: str) -> Hyperparameter:
    return Hyperparameter(name, default, low=0.0, help=text)


def _flag(name: str, text: str, default: bool = False) -> Hyperparameter:
    return Hyperparameter(name, default, "bool", help=text)


WEIGHT_DECAY = _nonneg("weight_decay", 0.0, "weight decay (L2 penalty into the gradient)")
MAXIMIZE = _flag("maximize", "maximize the objective (negate the gradient)")
EPS_8 = _nonneg("eps", 1e-8, "added to the denominator for numerical stability")
BETA1 = _beta("beta1", 0.9, "first-moment (gradient) EMA coefficient")
BETA2 = _beta("beta2", 0.999, "second-moment EMA coefficient")
DECOUPLED = _flag("decoupled_weight_decay", "decouple the weight decay from the gradient (AdamW style)")


# ----------------------------------------------------------------------------- helpers


def _weight_decay(params: Params, decoupled: bool = False) -> WeightDecay | None:
    wd = float(params.get("weight_decay", 0.0))
    if wd == 0.0:
        return None
    return WeightDecay(wd, decoupled=decoupled)


def _model(name: str, params: Params, **stages: Any) -> OptimizerModel:
    summary = CATALOGUE[name].summary if name in CATALOGUE else ""
    return OptimizerModel(
        name=name, hyperparameters=params, maximize=bool(params.get("maximize", False)), description=summary, **stages
    )


def _ema_moment(beta: float, name: str) -> LinearStage:
    return LinearStage.of(ArmaFilter.ema(beta), name, bias_corrected=True)


def _adam_normaliser(params: Params, amsgrad: bool = False, correction_inside_root: bool = False) -> RmsNormaliser:
    return RmsNormaliser(
        _ema_moment(params["beta2"], "second_moment"),
        eps=params["eps"],
        amsgrad=amsgrad,
        correction_inside_root=correction_inside_root,
    )


# ----------------------------------------------------------------------------- builders


def _sgd_gradient(momentum: float, dampening: float, nesterov: bool) -> LinearStage | None:
    if momentum == 0.0:
        return None
    # torch: buf_1 = g_1 (no (1 - dampening) factor), then buf = mu buf + (1 - dampening) g
    buffer = ArmaFilter([1.0 - dampening], [1.0, -momentum])
    if nesterov:
        # torch's own state form, d = g + mu buf (the buffer is gradient.0 either way): exact when mu changes
        # between steps, where the transfer function ((1 + mu) - mu z^-1) / (1 - mu z^-1) of constant mu is not
        terms = (
            FilterTerm(buffer, gain=Constant(momentum), first_output_is_input=dampening != 0.0),
            FilterTerm(ArmaFilter.identity()),
        )
        return LinearStage(terms, "gradient", summed=True)
    return LinearStage.of(buffer, "gradient", first_output_is_input=dampening != 0.0)


def _build_sgd(name: str, nesterov: bool = False) -> Callable[[Params], OptimizerModel]:
    def build(p: Params) -> OptimizerModel:
        use_nesterov = nesterov or bool(p.get("nesterov", False))
        gradient = _sgd_gradient(p.get("momentum", 0.0), p.get("dampening", 0.0), use_nesterov)
        return _model(name, p, gradient=gradient, weight_decay=_weight_decay(p))

    return build


def _check_sgd(p: Params) -> None:
    if p.get("nesterov") and (p.get("momentum", 0.0) <= 0.0 or p.get("dampening", 0.0) != 0.0):
        raise InvalidHyperparameterError(
            f"nesterov needs momentum > 0 and dampening = 0, got momentum={p.get('momentum')}, "
            f"dampening={p.get('dampening')}"
        )


def _build_adam(name: str, amsgrad: bool | None = None, decoupled: bool | None = None) -> Callable[..., Any]:
    def build(p: Params) -> OptimizerModel:
        use_amsgrad = p.get("amsgrad", False) if amsgrad is None else amsgrad
        use_decoupled = p.get("decoupled_weight_decay", False) if decoupled is None else decoupled
        return _model(
            name,
            p,
            gradient=_ema_moment(p["beta1"], "gradient"),
            normaliser=_adam_normaliser(p, amsgrad=use_amsgrad),
            weight_decay=_weight_decay(p, use_decoupled),
        )

    return build


def _build_nadam(p: Params) -> OptimizerModel:
    beta1, psi = p["beta1"], p["momentum_decay"]
    gradient = LinearStage(
        (
            FilterTerm(ArmaFilter.identity(), gain=NadamCurrentGain(beta1, psi)),
            FilterTerm(ArmaFilter.ema(beta1), gain=NadamMomentumGain(beta1, psi)),
        ),
        "gradient",
    )
    return _model(
        "nadam",
        p,
        gradient=gradient,
        normaliser=_adam_normaliser(p, correction_inside_root=True),  # torch: sqrt(v / bias_correction2)
        weight_decay=_weight_decay(p, p["decoupled_weight_decay"]),
    )


def _build_radam(p: Params) -> OptimizerModel:
    normaliser = RmsNormaliser(
        _ema_moment(p["beta2"], "second_moment"),
        eps=p["eps"],
        eps_placement="before_correction",
        rectification=RAdamRectification(p["beta2"]),
    )
    return _model(
        "radam",
        p,
        gradient=_ema_moment(p["beta1"], "gradient"),
        normaliser=normaliser,
        weight_decay=_weight_decay(p, p["decoupled_weight_decay"]),
    )


def _build_adamax(p: Params) -> OptimizerModel:
    return _model(
        "adamax",
        p,
        gradient=_ema_moment(p["beta1"], "gradient"),
        normaliser=PeakNormaliser(p["beta2"], p["eps"]),
        weight_decay=_weight_decay(p),
    )


def _build_adagrad(p: Params) -> OptimizerModel:
    summer = LinearStage.of(
        ArmaFilter([1.0], [1.0, -1.0], name="summer"), "second_moment", initial_output=p["initial_accumulator_value"]
    )
    lr_gain = InverseTimeDecay(p["lr_decay"]) if p["lr_decay"] else Constant(1.0)
    return _model(
        "adagrad",
        p,
        normaliser=RmsNormaliser(summer, eps=p["eps"]),
        weight_decay=_weight_decay(p),
        lr_gain=lr_gain,
    )


def _build_adadelta(p: Params) -> OptimizerModel:
    return _model("adadelta", p, normaliser=AdadeltaNormaliser(p["rho"], p["eps"]), weight_decay=_weight_decay(p))


def _build_rmsprop(p: Params) -> OptimizerModel:
    alpha = p["alpha"]
    center = LinearStage.of(ArmaFilter.ema(alpha), "center") if p["centered"] else None
    normaliser = RmsNormaliser(LinearStage.of(ArmaFilter.ema(alpha), "second_moment"), eps=p["eps"], center=center)
    post = None
    if p["momentum"] > 0.0:
        post = LinearStage.of(ArmaFilter.leaky_integrator(p["momentum"]), "post")
    return _model("rmsprop", p, normaliser=normaliser, post=post, weight_decay=_weight_decay(p))


def _quasi_hyperbolic(nu: float, beta: float, name: str, bias_corrected: bool = False) -> LinearStage:
    return LinearStage(
        (
            FilterTerm(ArmaFilter.identity(), gain=Constant(1.0 - nu)),
            FilterTerm(ArmaFilter.ema(beta), gain=Constant(nu), bias_corrected=bias_corrected),
        ),
        name,
    )


def _build_qhm(p: Params) -> OptimizerModel:
    return _model("qhm", p, gradient=_quasi_hyperbolic(p["nu"], p["beta"], "gradient"), weight_decay=_weight_decay(p))


def _build_qhadam(p: Params) -> OptimizerModel:
    second = _quasi_hyperbolic(p["nu2"], p["beta2"], "second_moment", bias_corrected=True)
    return _model(
        "qhadam",
        p,
        gradient=_quasi_hyperbolic(p["nu1"], p["beta1"], "gradient", bias_corrected=True),
        normaliser=RmsNormaliser(second, eps=p["eps"]),
        weight_decay=_weight_decay(p),
    )


def _build_aggmo(p: Params) -> OptimizerModel:
    betas = p["betas"]
    terms = tuple(FilterTerm(ArmaFilter.leaky_integrator(beta), gain=Constant(1.0 / len(betas))) for beta in betas)
    return _model("aggmo", p, gradient=LinearStage(terms, "gradient"), weight_decay=_weight_decay(p))


def _build_lion(p: Params) -> OptimizerModel:
    beta1, beta2 = p["beta1"], p["beta2"]
    # c = beta1 m + (1 - beta1) g, then m = beta2 m + (1 - beta2) g  =>  ((1-b1) + (b1-b2) z^-1) / (1 - b2 z^-1);
    # in the reference's state form (m, read before its update), which stays exact when the betas change
    late_ema = ArmaFilter([0.0, 1.0 - beta2], [1.0, -beta2], name="ema, one step late")
    interpolation = LinearStage(
        (FilterTerm(late_ema, gain=Constant(beta1)), FilterTerm(ArmaFilter.identity(), gain=Constant(1.0 - beta1))),
        "gradient",
        summed=True,
    )
    return _model(
        "lion",
        p,
        gradient=interpolation,
        nonlinearity=SignNonlinearity(),
        weight_decay=_weight_decay(p, decoupled=True),
    )


def _build_ademamix(p: Params) -> OptimizerModel:
    gradient = LinearStage(
        (
            FilterTerm(ArmaFilter.ema(p["beta1"]), bias_corrected=True),
            FilterTerm(ArmaFilter.ema(p["beta3"]), gain=Constant(p["alpha"])),
        ),
        "gradient",
    )
    return _model(
        "ademamix",
        p,
        gradient=gradient,
        normaliser=_adam_normaliser(p),
        weight_decay=_weight_decay(p, decoupled=True),
    )


def _build_grokfast(p: Params) -> OptimizerModel:
    gradient = LinearStage(
        (
            FilterTerm(ArmaFilter.identity()),
            FilterTerm(ArmaFilter.ema(p["alpha"]), gain=Constant(p["lamb"]), first_output_is_input=True),
        ),
        "gradient",
    )
    return _model("grokfast", p, gradient=gradient)


def _build_pid(p: Params) -> OptimizerModel:
    beta, damp = p["momentum"], p["dampening"]
    gradient = LinearStage(
        (
            FilterTerm(ArmaFilter.identity(), gain=Constant(p["kp"])),
            FilterTerm(ArmaFilter([1.0 - damp], [1.0, -beta], name="integral"), gain=Constant(p["ki"])),
            FilterTerm(
                ArmaFilter([1.0 - beta, -(1.0 - beta)], [1.0, -beta], name="derivative"), gain=Constant(p["kd"])
            ),
        ),
        "gradient",
    )
    return _model("pid", p, gradient=gradient, weight_decay=_weight_decay(p))


#: The designed filters' checked ranges.  Inside them the design (SciPy's zeros, poles and gain) and the
#: analysis are accurate at every order up to 16 (tests/optfilters/test_validation.py); outside, SciPy's
#: Chebyshev design overflows or divides by zero (ripple), the poles crowd onto z = 1 beyond what the closed
#: loop resolves (cutoff), or the stability edge lr*h ~ 1/dc_gain falls below its resolution (dc_gain).
DESIGN_CUTOFF = (1e-6, 0.5)
DESIGN_RIPPLE = (1e-9, 100.0)
DESIGN_DC_GAIN = (1e-6, 1e6)


def _design_cutoff(help_text: str) -> Hyperparameter:
    return Hyperparameter("cutoff", 0.05, low=DESIGN_CUTOFF[0], high=DESIGN_CUTOFF[1], high_open=True, help=help_text)


def _design_dc_gain(help_text: str) -> Hyperparameter:
    return Hyperparameter("dc_gain", 10.0, low=DESIGN_DC_GAIN[0], high=DESIGN_DC_GAIN[1], help=help_text)


def _designed(kind: str) -> Callable[[Params], OptimizerModel]:
    def build(p: Params) -> OptimizerModel:
        from scipy import signal

        order, wn = int(p["order"]), 2.0 * p["cutoff"]  # scipy's Wn is relative to Nyquist
        if kind == "butterworth":
            z, poles, k = signal.butter(order, wn, output="zpk")
        elif kind == "chebyshev1":
            z, poles, k = signal.cheby1(order, p["ripple"], wn, output="zpk")
        else:
            z, poles, k = signal.bessel(order, wn, norm="mag", output="zpk")
        h1 = k * np.prod(1.0 - np.asarray(z)) / np.prod(1.0 - np.asarray(poles))
        design = ArmaFilter.from_zpk(z, poles, float(k * p["dc_gain"] / np.real(h1)), name=kind)
        return _model(kind, p, gradient=LinearStage.of(design, "gradient"), weight_decay=_weight_decay(p))

    return build


def _build_custom(p: Params) -> OptimizerModel:
    try:
        f = ArmaFilter(p["b"], p["a"], name="custom")
    except InvalidFilterError as exc:
        raise InvalidHyperparameterError(str(exc)) from None
    return _model("custom", p, gradient=LinearStage.of(f, "gradient"), weight_decay=_weight_decay(p))


def _check_custom(p: Params) -> None:
    if p["a"][0] == 0.0:
        raise InvalidHyperparameterError(f"a[0] must be non-zero, got a = {list(p['a'])}")


def _check_nesterov_entry(p: Params) -> None:
    if p["momentum"] <= 0.0:
        raise InvalidHyperparameterError(f"nesterov needs momentum > 0, got {p['momentum']}")


# ----------------------------------------------------------------------------- builders: third-party packages (14b)


def _package_decay(p: Params) -> WeightDecay:
    """pytorch-optimizer's ``apply_weight_decay`` before the step: decoupled ``p *= 1 - wd lr`` or coupled L2.

    Present at ``weight_decay = 0`` too (it then does nothing), so that the table names the kind of decay.
    """
    return WeightDecay(float(p["weight_decay"]), decoupled=bool(p.get("weight_decouple", False)))


def _package_model(name: str, p: Params, *stages: Stage | None) -> OptimizerModel:
    return _model(name, p, pipeline=[stage for stage in stages if stage is not None])


def _build_sgd_schedule_free(p: Params) -> OptimizerModel:
    update = ScheduleFree(p["momentum"], p["warmup_steps"], p["r"], p["weight_lr_power"])
    return _package_model("sgd-schedule-free", p, WeightDecay(p["weight_decay"]), update)


def _build_adamw_schedule_free(p: Params) -> OptimizerModel:
    # schedulefree 1.4.1: denom = exp_avg_sq.div(bias_correction2).sqrt_().add_(eps); grad/denom + decay * y
    normaliser = _adam_normaliser(p, correction_inside_root=True)
    decay = DirectionDecay(p["weight_decay"])
    update = ScheduleFree(p["beta1"], p["warmup_steps"], p["r"], p["weight_lr_power"])
    return _package_model("adamw-schedule-free", p, normaliser, decay, update)


def _build_adan(p: Params) -> OptimizerModel:
    decouple = p["weight_decouple"]
    # pytorch-optimizer 4.1.0 starts its previous gradient at the raw first gradient, before maximize negates it
    start = -1.0 if p["maximize"] else 1.0
    return _package_model(
        "adan",
        p,
        WeightDecay(p["weight_decay"], decoupled=True) if decouple else None,
        AdanNumerator.of_betas(p["beta1"], p["beta2"], start=start),
        MeasurementFilter(LeadFilter.of_gain(p["beta2"], start=start)),
        RmsNormaliser(_ema_moment(p["beta3"], "second_moment"), eps=p["eps"]),
        LearningRate(),
        None if decouple else PostUpdateDecay(p["weight_decay"]),
    )


def _build_adabelief(p: Params) -> OptimizerModel:
    beta1 = p["beta1"]
    residual = LinearStage(
        (FilterTerm(ArmaFilter.identity()), FilterTerm(ArmaFilter.ema(beta1), gain=Constant(-1.0))), "measurement"
    )
    return _package_model(
        "adabelief",
        p,
        _package_decay(p),
        _ema_moment(beta1, "gradient"),
        MeasurementFilter(residual),
        RmsNormaliser(AccumulatingEma.of_beta(p["beta2"], p["eps"]), eps=p["eps"]),
    )


def _build_adopt(p: Params) -> OptimizerModel:
    return _package_model(
        "adopt",
        p,
        _package_decay(p),
        DelayedNormaliser(p["beta2"], p["eps"]),
        Clip(0.25),
        LinearStage.of(ArmaFilter.ema(p["beta1"]), "post"),
    )


def _build_laprop(p: Params) -> OptimizerModel:
    # pytorch-optimizer 4.1.0 applies the decay after the update; coupled decay is then added to a gradient
    # that was already used (no effect on the parameters), which the model follows.
    decay = p["weight_decay"] if p["weight_decouple"] else 0.0
    return _package_model(
        "laprop",
        p,
        OffsetRmsNormaliser(p["beta2"], 1e-15, p["eps"]),
        LrWeightedMomentum(p["beta1"]),
        PostUpdateDecay(decay, proximal=False),
    )


def _build_yogi(p: Params) -> OptimizerModel:
    initial = p["initial_accumulator"]
    gradient = LinearStage.of(ArmaFilter.ema(p["beta1"]), "gradient", bias_corrected=True, initial_output=initial)
    return _package_model("yogi", p, _package_decay(p), gradient, YogiNormaliser(p["beta2"], p["eps"], initial))


def _build_signum(p: Params) -> OptimizerModel:
    gradient = LinearStage.of(ArmaFilter.ema(p["momentum"]), "gradient") if p["momentum"] > 0.0 else None
    return _package_model("signum", p, _package_decay(p), gradient, SignNonlinearity())


def _build_lion_cautious(p: Params) -> OptimizerModel:
    return _package_model(
        "lion-cautious",
        p,
        _package_decay(p),
        LionInterpolation.of_betas(p["beta1"], p["beta2"]),
        SignNonlinearity(),
        CautiousMask(),
    )


def _build_adam_cautious(p: Params) -> OptimizerModel:
    return _package_model(
        "adam-cautious",
        p,
        _package_decay(p),
        _ema_moment(p["beta1"], "gradient"),
        CautiousMask(),
        _adam_normaliser(p),
    )


def _build_ademamix_scheduled(p: Params) -> OptimizerModel:
    warm = p["t_alpha_beta3"] or None
    return _package_model(
        "ademamix-scheduled",
        p,
        _package_decay(p),
        ScheduledMixture.of_mixture(p["beta1"], p["beta3"], p["alpha"], warm),
        _adam_normaliser(p),
    )


def _ademamix_reference(kwargs: Params) -> Params:
    kwargs["t_alpha_beta3"] = kwargs["t_alpha_beta3"] or None  # 0: no warm-up (the package's None)
    return kwargs


def _cautious_adam_reference(kwargs: Params) -> Params:
    kwargs["betas"] = (*kwargs["betas"], 0.9999)  # the slow EMA is unused with alpha = 0
    return kwargs


# ----------------------------------------------------------------------------- the registry

_SGD_HPS = (
    _lr(1e-3),
    _nonneg("momentum", 0.0, "momentum factor (pole of the gradient filter)"),
    Hyperparameter("dampening", 0.0, low=0.0, high=1.0, help="dampening for momentum: input gain 1 - dampening"),
    WEIGHT_DECAY,
    _flag("nesterov", "Nesterov momentum (adds a zero)"),
    MAXIMIZE,
)

_ADAM_STATE = {"exp_avg": "gradient.0", "exp_avg_sq": "second_moment.0", "max_exp_avg_sq": "second_moment.max"}

_ENTRIES: list[CatalogueEntry] = [
    CatalogueEntry(
        "sgd",
        "stochastic gradient descent: the identity filter (torch.optim.SGD, every option)",
        _SGD_HPS,
        _build_sgd("sgd"),
        aliases=("gd",),
        torch_class="torch.optim.SGD",
        torch_state={"momentum_buffer": "gradient.0"},
        source="torch.optim.SGD",
        examples=({"lr": 0.1}, {"momentum": 0.9, "dampening": 0.5}, {"momentum": 0.8, "nesterov": True}),
        bad_inputs=(
            ({"lr": -1.0}, r"lr must be >= 0, got -1"),
            ({"nesterov": True}, r"nesterov needs momentum > 0"),
            ({"momentum": float("nan")}, r"momentum must be a finite number"),
        ),
        check=_check_sgd,
        tuned=(),
        poles=("momentum",),
    ),
    CatalogueEntry(
        "momentum",
        "heavy-ball momentum: unit-input-gain AR1 1/(1 - mu z^-1) (torch SGD, momentum=0.9)",
        (
            _lr(1e-3),
            _nonneg("momentum", 0.9, "momentum factor (the filter's pole)"),
            Hyperparameter("dampening", 0.0, low=0.0, high=1.0, help="input gain 1 - dampening"),
            WEIGHT_DECAY,
            MAXIMIZE,
        ),
        _build_sgd("momentum"),
        aliases=("heavy-ball", "heavyball", "polyak", "sgdm", "sgd-momentum"),
        torch_class="torch.optim.SGD",
        torch_state={"momentum_buffer": "gradient.0"},
        source="torch.optim.SGD(momentum=...)",
        examples=({"momentum": 0.5}, {"momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01}),
        bad_inputs=(({"momentum": -0.1}, r"momentum must be >= 0"), ({"dampening": 2.0}, r"dampening must be in")),
        tuned=("momentum",),
        poles=("momentum",),
    ),
    CatalogueEntry(
        "nesterov",
        "Nesterov momentum (torch form): ARMA(1,1), pole mu, zero mu/(1+mu)",
        (_lr(1e-3), _nonneg("momentum", 0.9, "momentum factor (the pole)"), WEIGHT_DECAY, MAXIMIZE),
        _build_sgd("nesterov", nesterov=True),
        aliases=("nag", "sgd-nesterov"),
        torch_class="torch.optim.SGD",
        torch_state={"momentum_buffer": "gradient.0"},
        torch_fixed={"nesterov": True},
        source="torch.optim.SGD(nesterov=True)",
        examples=({"momentum": 0.5}, {"momentum": 0.99, "weight_decay": 0.001}),
        bad_inputs=(({"momentum": 0.0}, r"nesterov needs momentum > 0"),),
        check=_check_nesterov_entry,
        tuned=("momentum",),
        poles=("momentum",),
    ),
    CatalogueEntry(
        "adagrad",
        "Adagrad: normaliser with a summer (marginal pole at 1) on g^2",
        (
            _lr(1e-2),
            _nonneg("lr_decay", 0.0, "learning-rate decay lr / (1 + (t-1) lr_decay)"),
            WEIGHT_DECAY,
            _nonneg("initial_accumulator_value", 0.0, "initial value of the sum of squares"),
            _nonneg("eps", 1e-10, "added to the denominator"),
            MAXIMIZE,
        ),
        _build_adagrad,
        torch_class="torch.optim.Adagrad",
        torch_state={"sum": "second_moment.0"},
        source="torch.optim.Adagrad",
        examples=({"lr_decay": 0.01, "initial_accumulator_value": 0.1}, {"weight_decay": 0.01}),
        bad_inputs=(({"eps": -1.0}, r"eps must be >= 0"), ({"lr_decay": -0.1}, r"lr_decay must be >= 0")),
        tuned=(),
        poles=(),
    ),
    CatalogueEntry(
        "adadelta",
        "Adadelta: EMA normaliser on g^2 and on the squared updates",
        (
            _lr(1.0),
            Hyperparameter("rho", 0.9, low=0.0, high=1.0, help="EMA coefficient of both accumulators"),
            _nonneg("eps", 1e-6, "added inside both square roots"),
            WEIGHT_DECAY,
            MAXIMIZE,
        ),
        _build_adadelta,
        torch_class="torch.optim.Adadelta",
        torch_state={"square_avg": "adadelta.v", "acc_delta": "adadelta.u"},
        source="torch.optim.Adadelta",
        examples=({"rho": 0.95, "eps": 1e-5}, {"weight_decay": 0.01}),
        bad_inputs=(({"rho": 1.5}, r"rho must be in \[0, 1\]"),),
        tuned=(),
        poles=("rho",),
    ),
    CatalogueEntry(
        "rmsprop",
        "RMSprop: unit-DC-gain EMA normaliser on g^2 (optional centering and momentum post-filter)",
        (
            _lr(1e-2),
            _beta("alpha", 0.99, "EMA coefficient of the squared gradient"),
            EPS_8,
            WEIGHT_DECAY,
            _nonneg("momentum", 0.0, "momentum on the normalised gradient (post-filter pole)"),
            _flag("centered", "subtract the squared mean gradient"),
            MAXIMIZE,
        ),
        _build_rmsprop,
        torch_class="torch.optim.RMSprop",
        torch_state={"square_avg": "second_moment.0", "momentum_buffer": "post.0", "grad_avg": "center.0"},
        source="torch.optim.RMSprop",
        examples=({"centered": True}, {"momentum": 0.9}, {"centered": True, "momentum": 0.5, "alpha": 0.9}),
        bad_inputs=(({"alpha": 1.0}, r"alpha must be in \[0, 1\)"),),
        tuned=("momentum",),
        poles=("alpha", "momentum"),
    ),
    CatalogueEntry(
        "adam",
        "Adam: bias-corrected unit-DC-gain EMAs of g and g^2, update m_hat / (sqrt(v_hat) + eps)",
        (
            _lr(1e-3),
            BETA1,
            BETA2,
            EPS_8,
            WEIGHT_DECAY,
            _flag("amsgrad", "use the running max of v"),
            MAXIMIZE,
            DECOUPLED,
        ),
        _build_adam("adam"),
        torch_class="torch.optim.Adam",
        torch_state=_ADAM_STATE,
        source="torch.optim.Adam",
        examples=({"beta1": 0.8, "beta2": 0.99}, {"weight_decay": 0.01}, {"amsgrad": True}),
        bad_inputs=(
            ({"beta1": 1.5}, r"beta1 must be in \[0, 1\), got 1.5"),
            ({"beta2": 1.0}, r"beta2 must be in \[0, 1\)"),
            ({"eps": -1.0}, r"eps must be >= 0, got -1"),
            ({"lr": float("nan")}, r"lr must be a finite number"),
            ({"momentum": 0.9}, r"adam has no hyperparameter 'momentum'"),
        ),
        tuned=("beta1",),
        poles=("beta1", "beta2"),
    ),
    CatalogueEntry(
        "adamw",
        "AdamW: Adam with decoupled weight decay (default 1e-2)",
        (
            _lr(1e-3),
            BETA1,
            BETA2,
            EPS_8,
            _nonneg("weight_decay", 1e-2, "decoupled weight decay"),
            _flag("amsgrad", "use the running max of v"),
            MAXIMIZE,
        ),
        _build_adam("adamw", decoupled=True),
        aliases=("adam-w",),
        torch_class="torch.optim.AdamW",
        torch_state=_ADAM_STATE,
        source="torch.optim.AdamW",
        examples=({"weight_decay": 0.1}, {"amsgrad": True}),
        bad_inputs=(({"weight_decay": -0.1}, r"weight_decay must be >= 0"),),
        tuned=("beta1",),
        poles=("beta1", "beta2"),
        decoupled_weight_decay=True,
    ),
    CatalogueEntry(
        "amsgrad",
        "AMSGrad: Adam normalised by the running max of the second moment",
        (_lr(1e-3), BETA1, BETA2, EPS_8, WEIGHT_DECAY, MAXIMIZE, DECOUPLED),
        _build_adam("amsgrad", amsgrad=True),
        torch_class="torch.optim.Adam",
        torch_state=_ADAM_STATE,
        torch_fixed={"amsgrad": True},
        source="torch.optim.Adam(amsgrad=True)",
        examples=({"beta2": 0.99},),
        bad_inputs=(({"beta1": -0.1}, r"beta1 must be in \[0, 1\)"),),
        tuned=("beta1",),
        poles=("beta1", "beta2"),
    ),
    CatalogueEntry(
        "nadam",
        "NAdam: time-varying Nesterov-form numerator (momentum schedule), Adam's normaliser",
        (
            _lr(2e-3),
            BETA1,
            BETA2,
            EPS_8,
            WEIGHT_DECAY,
            _nonneg("momentum_decay", 4e-3, "psi of the momentum schedule mu_t"),
            DECOUPLED,
            MAXIMIZE,
        ),
        _build_nadam,
        torch_class="torch.optim.NAdam",
        torch_state={"exp_avg": "gradient.1", "exp_avg_sq": "second_moment.0", "mu_product": "mu_product"},
        source="torch.optim.NAdam",
        examples=({"momentum_decay": 0.01}, {"weight_decay": 0.01, "decoupled_weight_decay": True}),
        bad_inputs=(({"momentum_decay": -1.0}, r"momentum_decay must be >= 0"),),
        tuned=("beta1",),
        poles=("beta1", "beta2"),
    ),
    CatalogueEntry(
        "radam",
        "RAdam: Adam with variance rectification (unnormalised for the first steps)",
        (_lr(1e-3), BETA1, BETA2, EPS_8, WEIGHT_DECAY, DECOUPLED, MAXIMIZE),
        _build_radam,
        torch_class="torch.optim.RAdam",
        torch_state={"exp_avg": "gradient.0", "exp_avg_sq": "second_moment.0"},
        source="torch.optim.RAdam",
        examples=({"beta2": 0.99}, {"weight_decay": 0.01, "decoupled_weight_decay": True}),
        bad_inputs=(({"beta2": 1.2}, r"beta2 must be in \[0, 1\)"),),
        tuned=("beta1",),
        poles=("beta1", "beta2"),
    ),
    CatalogueEntry(
        "adamax",
        "Adamax: bias-corrected EMA of g over a peak envelope of |g|",
        (_lr(2e-3), BETA1, BETA2, EPS_8, WEIGHT_DECAY, MAXIMIZE),
        _build_adamax,
        torch_class="torch.optim.Adamax",
        torch_state={"exp_avg": "gradient.0", "exp_inf": "peak"},
        source="torch.optim.Adamax",
        examples=({"beta2": 0.99},),
        bad_inputs=(({"beta1": 1.0}, r"beta1 must be in \[0, 1\)"),),
        tuned=("beta1",),
        poles=("beta1", "beta2"),
    ),
    CatalogueEntry(
        "qhm",
        "quasi-hyperbolic momentum: (1 - nu) g + nu EMA_beta(g) (Ma & Yarats 2019)",
        (
            _lr(1e-3),
            Hyperparameter("nu", 0.7, low=0.0, high=1.0, help="weight of the momentum term"),
            _beta("beta", 0.999, "EMA coefficient"),
            WEIGHT_DECAY,
        ),
        _build_qhm,
        aliases=("quasi-hyperbolic",),
        source="Ma & Yarats, ICLR 2019 (facebookresearch/qhoptim QHM)",
        examples=({"nu": 0.9, "beta": 0.9},),
        bad_inputs=(({"nu": 1.5}, r"nu must be in \[0, 1\]"),),
        tuned=("nu", "beta"),
        poles=("beta",),
    ),
    CatalogueEntry(
        "qhadam",
        "QHAdam: quasi-hyperbolic forms of Adam's two moments (Ma & Yarats 2019)",
        (
            _lr(1e-3),
            Hyperparameter("nu1", 0.7, low=0.0, high=1.0, help="weight of the first-moment EMA"),
            Hyperparameter("nu2", 1.0, low=0.0, high=1.0, help="weight of the second-moment EMA"),
            _beta("beta1", 0.995, "first-moment EMA coefficient"),
            _beta("beta2", 0.999, "second-moment EMA coefficient"),
            EPS_8,
            WEIGHT_DECAY,
        ),
        _build_qhadam,
        source="Ma & Yarats, ICLR 2019 (facebookresearch/qhoptim QHAdam)",
        examples=({"nu1": 0.9, "nu2": 0.5, "beta1": 0.9},),
        bad_inputs=(({"nu2": -0.5}, r"nu2 must be in \[0, 1\]"),),
        tuned=("nu1", "beta1"),
        poles=("beta1", "beta2"),
    ),
    CatalogueEntry(
        "aggmo",
        "aggregated momentum: the average of heavy-ball filters with several betas (Lucas et al. 2019)",
        (
            _lr(1e-3),
            Hyperparameter("betas", (0.0, 0.9, 0.99), "floats", help="momentum coefficients", **UNIT_OPEN),  # type: ignore[arg-type]
            WEIGHT_DECAY,
        ),
        _build_aggmo,
        source="Lucas, Sun, Zemel & Grosse, ICLR 2019 (AtheMathmo/AggMo)",
        examples=({"betas": (0.0, 0.5)},),
        bad_inputs=(({"betas": (0.5, 1.2)}, r"betas\[1\] must be in \[0, 1\)"), ({"betas": ()}, r"at least 1")),
        tuned=(),
        poles=("betas",),
    ),
    CatalogueEntry(
        "lion",
        "Lion: sign of an ARMA(1,1) interpolation filter (QHM with nu = beta1/beta2), decoupled decay",
        (
            _lr(1e-4),
            _beta("beta1", 0.9, "interpolation coefficient"),
            _beta("beta2", 0.99, "momentum EMA coefficient"),
            _nonneg("weight_decay", 0.0, "decoupled weight decay"),
        ),
        _build_lion,
        source="Chen et al. 2023 (lucidrains/lion-pytorch)",
        examples=({"beta1": 0.95, "beta2": 0.98},),
        bad_inputs=(({"beta2": 1.0}, r"beta2 must be in \[0, 1\)"),),
        tuned=("beta1", "beta2"),
        poles=("beta1", "beta2"),
        decoupled_weight_decay=True,
    ),
    CatalogueEntry(
        "ademamix",
        "AdEMAMix: bias-corrected fast EMA plus alpha times a slow EMA, Adam's normaliser",
        (
            _lr(1e-3),
            BETA1,
            BETA2,
            _beta("beta3", 0.9999, "slow EMA coefficient"),
            _nonneg("alpha", 2.0, "weight of the slow EMA"),
            EPS_8,
            _nonneg("weight_decay", 0.0, "decoupled weight decay"),
        ),
        _build_ademamix,
        source="Pagliardini, Ablin & Grangier 2024 (apple/ml-ademamix, no warm-up schedulers)",
        examples=({"alpha": 8.0, "beta3": 0.999},),
        bad_inputs=(({"beta3": 1.0}, r"beta3 must be in \[0, 1\)"),),
        tuned=("beta1", "beta3", "alpha"),
        poles=("beta1", "beta2", "beta3"),
        decoupled_weight_decay=True,
    ),
    CatalogueEntry(
        "grokfast",
        "Grokfast-EMA: g + lamb EMA_alpha(g) (EMA started at the first gradient) feeding SGD",
        (_lr(1e-3), _beta("alpha", 0.98, "EMA coefficient"), _nonneg("lamb", 2.0, "amplification of the slow part")),
        _build_grokfast,
        aliases=("grokfast-ema",),
        source="Lee et al. 2024 (ironjr/grokfast gradfilter_ema) over plain SGD",
        examples=({"alpha": 0.9, "lamb": 5.0},),
        bad_inputs=(({"alpha": 1.0}, r"alpha must be in \[0, 1\)"),),
        tuned=("alpha", "lamb"),
        poles=("alpha",),
    ),
    CatalogueEntry(
        "pid",
        "PID optimizer: kp g + ki I + kd D with I, D low-passed by momentum (An et al. 2018)",
        (
            _lr(1e-3),
            Hyperparameter("kp", 1.0, help="proportional gain"),
            Hyperparameter("ki", 5.0, help="integral gain"),
            Hyperparameter("kd", 10.0, help="derivative gain"),
            _beta("momentum", 0.9, "pole of the integral and derivative filters"),
            Hyperparameter("dampening", 0.0, low=0.0, high=1.0, help="integral input gain 1 - dampening"),
            WEIGHT_DECAY,
        ),
        _build_pid,
        source="An et al., CVPR 2018; I = beta I + (1-d) g, D = beta D + (1-beta)(g - g_prev), from rest",
        examples=({"kp": 1.0, "ki": 2.0, "kd": 1.0, "momentum": 0.5},),
        bad_inputs=(({"kd": "x"}, r"kd must be a number"),),
        tuned=("ki", "kd", "momentum"),
        poles=("momentum",),
    ),
    CatalogueEntry(
        "butterworth",
        "designed Butterworth low-pass gradient filter, scaled to a DC gain (momentum stand-in)",
        (
            _lr(1e-3),
            Hyperparameter("order", 2, "int", low=1, high=16, help="filter order"),
            _design_cutoff("-3 dB cutoff in cycles/step"),
            _design_dc_gain("DC gain (10 matches momentum 0.9)"),
            WEIGHT_DECAY,
        ),
        _designed("butterworth"),
        aliases=("butter",),
        source="scipy.signal.butter",
        examples=({"order": 4, "cutoff": 0.02}, {"order": 8, "cutoff": 0.005, "dc_gain": 1.0}),
        bad_inputs=(
            ({"cutoff": 0.6}, r"cutoff must be in \[1e-06, 0.5\)"),
            ({"order": 2.5}, r"order must be an integer"),
            ({"dc_gain": 1e308}, r"dc_gain must be in \[1e-06, 1000000\]"),
        ),
        tuned=("cutoff",),
    ),
    CatalogueEntry(
        "chebyshev1",
        "designed Chebyshev type-I low-pass gradient filter, scaled to a DC gain",
        (
            _lr(1e-3),
            Hyperparameter("order", 2, "int", low=1, high=16, help="filter order"),
            _design_cutoff("passband edge in cycles/step"),
            Hyperparameter(
                "ripple",
                1.0,
                low=DESIGN_RIPPLE[0],
                high=DESIGN_RIPPLE[1],
                help="passband ripple in dB (beyond this range SciPy's design loses its poles to rounding)",
            ),
            _design_dc_gain("DC gain"),
            WEIGHT_DECAY,
        ),
        _designed("chebyshev1"),
        aliases=("cheby1", "chebyshev"),
        source="scipy.signal.cheby1",
        examples=({"order": 3, "ripple": 0.5},),
        bad_inputs=(({"ripple": 0.0}, r"ripple must be in \[1e-09, 100\]"), ({"ripple": 3083}, r"ripple")),
        tuned=("cutoff",),
    ),
    CatalogueEntry(
        "bessel",
        "designed Bessel (maximally flat delay) low-pass gradient filter, scaled to a DC gain",
        (
            _lr(1e-3),
            Hyperparameter("order", 2, "int", low=1, high=16, help="filter order"),
            _design_cutoff("-3 dB cutoff in cycles/step"),
            _design_dc_gain("DC gain"),
            WEIGHT_DECAY,
        ),
        _designed("bessel"),
        source="scipy.signal.bessel(norm='mag')",
        examples=({"order": 4, "cutoff": 0.1},),
        bad_inputs=(({"dc_gain": -1.0}, r"dc_gain must be in"), ({"cutoff": 1e-300}, r"cutoff must be in")),
        tuned=("cutoff",),
    ),
    CatalogueEntry(
        "custom",
        "any gradient filter from raw b, a (powers of z^-1)",
        (
            _lr(1e-3),
            Hyperparameter("b", None, "floats", help="numerator coefficients, e.g. 0.1"),
            Hyperparameter("a", (1.0,), "floats", help="denominator coefficients, e.g. 1,-0.9"),
            WEIGHT_DECAY,
        ),
        _build_custom,
        aliases=("ba",),
        source="user supplied",
        examples=({"b": (0.1,), "a": (1.0, -0.9)}, {"b": (1.0, 0.5), "a": (1.0, -0.5, 0.06)}),
        bad_inputs=(({"b": (1.0,), "a": (0.0, 1.0)}, r"a\[0\] must be non-zero"), ({}, r"custom needs b")),
        check=_check_custom,
        tuned=(),
    ),
]

# --- 2025-26: third-party packages (issue 14b)
_WEIGHT_DECOUPLE = _flag("weight_decouple", "decoupled weight decay (p *= 1 - wd lr) instead of L2 into g", True)
_COUPLED_BY_DEFAULT = _flag("weight_decouple", "decoupled weight decay (p *= 1 - wd lr) instead of L2 into g")
_SF_HPS = (
    Hyperparameter("warmup_steps", 0, "int", low=0, help="linear learning-rate warm-up steps"),
    Hyperparameter("r", 0.0, help="polynomial weighting t^r of the average"),
    _nonneg("weight_lr_power", 2.0, "the average weights lr_max^weight_lr_power"),
)
_ENTRIES += [
    CatalogueEntry(
        "sgd-schedule-free",
        "Schedule-Free SGD: gradient at y = (1-beta) z + beta x, output the running average x (eval())",
        (
            _lr(1.0),
            Hyperparameter(
                "momentum", 0.9, low=0.0, high=1.0, low_open=True, high_open=True, help="beta: y = (1-beta) z + beta x"
            ),
            WEIGHT_DECAY,
            *_SF_HPS,
        ),
        _build_sgd_schedule_free,
        aliases=("schedule-free-sgd", "sgdschedulefree"),
        source="Defazio et al. 2024 (schedulefree 1.4.1 SGDScheduleFree: its in-place y/z form and eval()/train())",
        examples=({"lr": 0.1, "momentum": 0.5}, {"lr": 0.2, "warmup_steps": 20, "r": 1.0, "weight_decay": 0.01}),
        bad_inputs=(({"momentum": 1.0}, r"momentum must be in \(0, 1\)"), ({"warmup_steps": 1.5}, r"integer")),
        reference="schedulefree.SGDScheduleFree",
    ),
    CatalogueEntry(
        "adamw-schedule-free",
        "Schedule-Free AdamW: Adam's normaliser, then the Schedule-Free update (gradient at y, output x)",
        (
            _lr(0.0025),
            Hyperparameter(
                "beta1", 0.9, low=0.0, high=1.0, low_open=True, high_open=True, help="beta: y = (1-beta) z + beta x"
            ),
            BETA2,
            EPS_8,
            WEIGHT_DECAY,
            *_SF_HPS,
        ),
        _build_adamw_schedule_free,
        aliases=("schedule-free-adamw", "adamwschedulefree"),
        source="Defazio et al. 2024 (schedulefree 1.4.1 AdamWScheduleFree; decay added to the normalised g at y)",
        examples=({"lr": 0.01, "beta1": 0.8}, {"lr": 0.01, "warmup_steps": 30, "weight_decay": 0.05, "r": 0.5}),
        bad_inputs=(({"beta1": 0.0}, r"beta1 must be in \(0, 1\)"), ({"r": "x"}, r"r must be a number")),
        reference="schedulefree.AdamWScheduleFree",
    ),
    CatalogueEntry(
        "adan",
        "Adan: EMA of g plus beta2 x EMA of g - g_prev (ARMA(2,2) lead), normaliser fed g + beta2 (g - g_prev)",
        (
            _lr(1e-3),
            _beta("beta1", 0.98, "EMA coefficient of the gradient"),
            _beta("beta2", 0.92, "EMA coefficient of the gradient difference"),
            _beta("beta3", 0.99, "EMA coefficient of the squared corrected gradient"),
            _nonneg("weight_decay", 0.0, "weight decay (proximal theta /= 1 + lr wd unless weight_decouple)"),
            _COUPLED_BY_DEFAULT,
            EPS_8,
            MAXIMIZE,
        ),
        _build_adan,
        source="Xie et al. 2022 (pytorch-optimizer 4.1.0 Adan; g_prev starts at the first g; no max_grad_norm)",
        examples=({"beta1": 0.9, "beta2": 0.8, "beta3": 0.999}, {"weight_decay": 0.02, "weight_decouple": True}),
        bad_inputs=(({"beta3": 1.0}, r"beta3 must be in \[0, 1\)"),),
        reference="pytorch_optimizer.Adan",
    ),
    CatalogueEntry(
        "adabelief",
        "AdaBelief: Adam's numerator, normaliser on the EMA of the squared residual (g - m)^2 (+ eps per step)",
        (
            _lr(1e-3),
            BETA1,
            BETA2,
            WEIGHT_DECAY,
            _WEIGHT_DECOUPLE,
            _nonneg("eps", 1e-16, "added inside and outside the root"),
            MAXIMIZE,
        ),
        _build_adabelief,
        source="Zhuang et al. 2020 (pytorch-optimizer 4.1.0 AdaBelief; no rectify/ams_bound/fixed_decay)",
        examples=({"beta1": 0.8, "beta2": 0.99, "eps": 1e-12}, {"weight_decay": 0.01, "weight_decouple": False}),
        bad_inputs=(({"eps": -1.0}, r"eps must be >= 0"),),
        reference="pytorch_optimizer.AdaBelief",
    ),
    CatalogueEntry(
        "adopt",
        "ADOPT: g / max(sqrt(v_{t-1}), eps) (delayed normaliser), clip at t^(1/4), then EMA; no update at step 1",
        (
            _lr(1e-3),
            BETA1,
            _beta("beta2", 0.9999, "second-moment EMA coefficient"),
            WEIGHT_DECAY,
            _COUPLED_BY_DEFAULT,
            _nonneg("eps", 1e-6, "floor of the root"),
            MAXIMIZE,
        ),
        _build_adopt,
        source="Taniguchi et al. 2024 (pytorch-optimizer 4.1.0 ADOPT; clip_lambda t^0.25 fixed)",
        examples=({"beta1": 0.8, "beta2": 0.999}, {"weight_decay": 0.01, "weight_decouple": True, "eps": 1e-4}),
        bad_inputs=(({"beta2": -0.5}, r"beta2 must be in \[0, 1\)"),),
        reference="pytorch_optimizer.ADOPT",
    ),
    CatalogueEntry(
        "laprop",
        "LaProp: normalise first, then a bias-corrected EMA with the learning rate inside (post-filter)",
        (_lr(4e-4), BETA1, BETA2, WEIGHT_DECAY, _WEIGHT_DECOUPLE, _nonneg("eps", 1e-15, "added to the root"), MAXIMIZE),
        _build_laprop,
        source="Ziyin et al. 2020 (pytorch-optimizer 4.1.0 LaProp, per-parameter path; decay after the update)",
        examples=({"beta1": 0.8, "beta2": 0.99}, {"weight_decay": 0.05, "lr": 1e-3}),
        bad_inputs=(({"beta1": 1.5}, r"beta1 must be in \[0, 1\)"),),
        reference="pytorch_optimizer.LaProp",
        reference_fixed={"foreach": False},
    ),
    CatalogueEntry(
        "yogi",
        "Yogi: Adam's numerator (started at initial_accumulator), additive sign-driven second moment",
        (
            _lr(1e-2),
            BETA1,
            BETA2,
            _nonneg("initial_accumulator", 1e-6, "initial value of both moments"),
            WEIGHT_DECAY,
            _WEIGHT_DECOUPLE,
            _nonneg("eps", 1e-3, "added to the root"),
            MAXIMIZE,
        ),
        _build_yogi,
        source="Zaheer et al. 2018 (pytorch-optimizer 4.1.0 Yogi)",
        examples=(
            {"beta2": 0.99, "initial_accumulator": 0.01},
            {"weight_decay": 0.01, "eps": 1e-6, "lr": 1e-3},
            {"beta1": 0.0, "initial_accumulator": 0.5},
        ),
        bad_inputs=(({"initial_accumulator": -1.0}, r"initial_accumulator must be >= 0"),),
        reference="pytorch_optimizer.Yogi",
    ),
    CatalogueEntry(
        "signum",
        "Signum: sign of the unit-DC EMA of g (signSGD with momentum = 0); Tiger is the same stages",
        (
            _lr(1e-3),
            _beta("momentum", 0.9, "EMA coefficient (0: signSGD)"),
            WEIGHT_DECAY,
            _WEIGHT_DECOUPLE,
            MAXIMIZE,
        ),
        _build_signum,
        aliases=("signsgd",),
        source="Bernstein et al. 2018 (pytorch-optimizer 4.1.0 SignSGD; its Tiger is sign(EMA_beta) too)",
        examples=({"momentum": 0.965, "weight_decay": 0.01}, {"momentum": 0.0}),
        bad_inputs=(({"momentum": 1.0}, r"momentum must be in \[0, 1\)"),),
        reference="pytorch_optimizer.SignSGD",
    ),
    CatalogueEntry(
        "lion-cautious",
        "Cautious Lion: Lion's sign, masked where it disagrees with g (rescaled per tensor)",
        (
            _lr(1e-4),
            _beta("beta1", 0.9, "interpolation coefficient"),
            _beta("beta2", 0.99, "momentum EMA coefficient"),
            WEIGHT_DECAY,
            _WEIGHT_DECOUPLE,
            MAXIMIZE,
        ),
        _build_lion_cautious,
        aliases=("c-lion", "cautious-lion"),
        source="Liang et al. 2024 (pytorch-optimizer 4.1.0 Lion(cautious=True))",
        examples=({"beta1": 0.95, "beta2": 0.98, "lr": 1e-3}, {"weight_decay": 0.1}),
        bad_inputs=(({"beta2": 1.0}, r"beta2 must be in \[0, 1\)"),),
        reference="pytorch_optimizer.Lion",
        reference_fixed={"cautious": True},
    ),
    CatalogueEntry(
        "adam-cautious",
        "Cautious Adam: Adam with its numerator masked where it disagrees with g (rescaled per tensor)",
        (_lr(1e-3), BETA1, BETA2, WEIGHT_DECAY, _COUPLED_BY_DEFAULT, EPS_8, MAXIMIZE),
        _build_adam_cautious,
        aliases=("c-adam", "cautious-adam", "c-adamw"),
        source="Liang et al. 2024 (pytorch-optimizer 4.1.0 AdEMAMix(alpha=0, cautious=True): C-Optim's mask on Adam)",
        examples=({"beta1": 0.8, "beta2": 0.99}, {"weight_decay": 0.01, "weight_decouple": True}),
        bad_inputs=(({"eps": "x"}, r"eps must be a number"),),
        reference="pytorch_optimizer.AdEMAMix",
        reference_fixed={"alpha": 0.0, "cautious": True},
        reference_adapt=_cautious_adam_reference,
    ),
    CatalogueEntry(
        "ademamix-scheduled",
        "AdEMAMix with the authors' alpha and beta3 warm-up (time-varying gain and pole of the slow EMA)",
        (
            _lr(1e-3),
            BETA1,
            BETA2,
            _beta("beta3", 0.9999, "slow EMA coefficient (after the warm-up)"),
            WEIGHT_DECAY,
            _COUPLED_BY_DEFAULT,
            _nonneg("alpha", 5.0, "weight of the slow EMA (after the warm-up)"),
            _nonneg("t_alpha_beta3", 0.0, "warm-up steps of alpha and beta3 (0: none, the package's None)"),
            EPS_8,
            MAXIMIZE,
        ),
        _build_ademamix_scheduled,
        aliases=("ademamix-warmup",),
        source="Pagliardini, Ablin & Grangier 2024 (pytorch-optimizer 4.1.0 AdEMAMix with t_alpha_beta3)",
        examples=({"t_alpha_beta3": 100.0}, {"t_alpha_beta3": 250.0, "alpha": 8.0, "beta3": 0.999}),
        bad_inputs=(({"t_alpha_beta3": -1.0}, r"t_alpha_beta3 must be >= 0"),),
        reference="pytorch_optimizer.AdEMAMix",
        reference_adapt=_ademamix_reference,
    ),
]

# --- 2025-26: torch.optim and weight averaging (issue 14a)
# torch.optim.Muon, Adafactor, ASGD and Rprop (torch 2.13's names and defaults), AveragedModel's EMA and SWA
# averages and pytorch_optimizer's Lookahead, wrapping any entry; stage kinds in optfilters.parameter_stages and
# optfilters.matrix_stages.

_WRAPPERS = ("lookahead", "ema", "swa")


def _build_muon(p: Params) -> OptimizerModel:
    mu = p["momentum"]
    if p["nesterov"]:  # torch: buf.lerp_(g, 1 - mu); update = g.lerp(buf, mu) = mu buf + (1 - mu) g
        # the buffer's term first: its state is gradient.0 with and without nesterov (torch's momentum_buffer)
        gradient = LinearStage(
            (
                FilterTerm(ArmaFilter.ema(mu), gain=Constant(mu)),
                FilterTerm(ArmaFilter.identity(), gain=Constant(1.0 - mu)),
            ),
            "gradient",
        )
    else:
        gradient = LinearStage.of(ArmaFilter.ema(mu), "gradient")
    orthogonalise = Orthogonalise(p["ns_coefficients"], p["ns_steps"], p["eps"], p["adjust_lr_fn"])
    return _model(
        "muon", p, gradient=gradient, nonlinearity=orthogonalise, weight_decay=_weight_decay(p, decoupled=True)
    )


def _build_adafactor(p: Params) -> OptimizerModel:
    stages = [
        FactoredNormaliser(p["beta2_decay"], p["eps1"]),
        RelativeStep(p["eps2"], p["weight_decay"], p["lr"], p["d"]),
    ]
    return _model("adafactor", p, pipeline=stages)


def _build_asgd(p: Params) -> OptimizerModel:
    stages: list[Stage] = [AsgdUpdate(p["lambd"], p["alpha"], p["lr"]), PolyakAverage(p["t0"])]
    decay = _weight_decay(p)
    return _model("asgd", p, pipeline=[decay, *stages] if decay is not None else stages)


def _build_rprop(p: Params) -> OptimizerModel:
    (etaminus, etaplus), (low, high) = p["etas"], p["step_sizes"]
    return _model("rprop", p, pipeline=[RpropUpdate(etaminus, etaplus, low, high)])


def _check_rprop(p: Params) -> None:
    etaminus, etaplus = p["etas"]
    if not 0.0 < etaminus < 1.0 < etaplus:
        raise InvalidHyperparameterError(f"etas must satisfy 0 < etaminus < 1 < etaplus, got {p['etas']}")
    low, high = p["step_sizes"]
    if not 0.0 <= low <= high:
        raise InvalidHyperparameterError(f"step_sizes must satisfy 0 <= min <= max, got {p['step_sizes']}")


def _check_wrapped(p: Params) -> None:
    try:
        name = resolve_name(p["base"])
    except UnknownNameError as exc:
        raise InvalidHyperparameterError(f"base: {exc}") from None
    if name in _WRAPPERS:
        raise InvalidHyperparameterError(
            f"base must be an optimizer of the catalogue other than a wrapper, got {name!r}"
        )


def _wrapped(p: Params) -> OptimizerModel:
    return get(p["base"], lr=p["lr"])


def _build_lookahead(p: Params) -> OptimizerModel:
    return _wrap(_wrapped(p), Lookahead(p["k"], p["alpha"]), "lookahead", p)


def _build_ema(p: Params) -> OptimizerModel:
    return _wrap(_wrapped(p), EmaAverage(p["decay"], p["start"]), "ema", p)


def _build_swa(p: Params) -> OptimizerModel:
    return _wrap(_wrapped(p), SwaAverage(p["start"], p["every"]), "swa", p)


def _wrapper_hps(*own: Hyperparameter) -> tuple[Hyperparameter, ...]:
    base = Hyperparameter("base", "sgd", "str", help="the wrapped catalogue optimizer (its other defaults)")
    return (base, _lr(1e-3), *own)


_START = Hyperparameter(
    "start", 1, "int", low=1, help="the first averaged step (the average follows the parameter before)"
)

_ENTRIES += [
    CatalogueEntry(
        "muon",
        "Muon: unit-DC Nesterov momentum, Newton-Schulz orthogonalisation of the 2-D update, shape gain, decoupled wd",
        (
            _lr(1e-3),
            _nonneg("weight_decay", 0.1, "decoupled weight decay"),
            _beta("momentum", 0.95, "momentum EMA coefficient (buf.lerp_(g, 1 - momentum))"),
            _flag("nesterov", "Nesterov form (1 - mu) g + mu buf", default=True),
            Hyperparameter(
                "ns_coefficients",
                MUON_COEFFICIENTS,
                "floats",
                min_length=3,
                max_length=3,
                help="(a, b, c) of the quintic",
            ),
            _nonneg("eps", 1e-7, "floor of the norm before the iteration"),
            Hyperparameter("ns_steps", 5, "int", low=0, high=99, help="Newton-Schulz iterations"),
            Hyperparameter(
                "adjust_lr_fn",
                None,
                "str",
                choices=(None, "original", "match_rms_adamw"),
                help="shape gain: none/original sqrt(max(1, A/B)), match_rms_adamw 0.2 sqrt(max(A, B))",
            ),
        ),
        _build_muon,
        torch_class="torch.optim.Muon",
        torch_state={"momentum_buffer": "gradient.0"},
        source="torch.optim.Muon (torch 2.13; Keller Jordan's Muon); the code's momentum lerp, not its docstring's sum",
        examples=(
            {"nesterov": False, "momentum": 0.9},
            {"adjust_lr_fn": "match_rms_adamw", "weight_decay": 0.0},
            {"ns_steps": 3, "lr": 0.02},
        ),
        bad_inputs=(
            ({"ns_coefficients": (1.0, 2.0)}, r"ns_coefficients must have at least 3 value"),
            ({"adjust_lr_fn": "adamw"}, r"adjust_lr_fn must be one of none, original, match_rms_adamw"),
            ({"ns_steps": 100}, r"ns_steps must be in \[0, 99\]"),
        ),
        parameter_ndim=2,
    ),
    CatalogueEntry(
        "adafactor",
        "Adafactor: EMA of g^2 with weight t^-0.8 (factored rows x columns), RMS clip, relative step",
        (
            _lr(1e-2),
            Hyperparameter("beta2_decay", -0.8, high=0.0, help="1 - beta2_t = t^beta2_decay"),
            Hyperparameter(
                "eps1", None, low=0.0, nullable=True, help="floor of sqrt(v); none: the dtype's machine epsilon"
            ),
            _nonneg("eps2", 1e-3, "floor of the parameter scale RMS(theta)"),
            Hyperparameter("d", 1.0, low=1.0, help="clipping threshold of the update's RMS"),
            _nonneg("weight_decay", 0.0, "decoupled weight decay"),
            MAXIMIZE,
        ),
        _build_adafactor,
        torch_class="torch.optim.Adafactor",
        torch_state={"row_var": "row_var", "col_var": "col_var", "variance": "variance"},
        source="torch.optim.Adafactor (torch 2.13; Shazeer & Stern 2018 without momentum); eps=(eps1, eps2)",
        examples=({"d": 1.5, "eps2": 1e-2}, {"beta2_decay": -0.5, "weight_decay": 0.01}, {"lr": 0.05, "eps1": 1e-20}),
        bad_inputs=(
            ({"beta2_decay": 0.5}, r"beta2_decay must be <= 0"),
            ({"d": 0.5}, r"d must be >= 1"),
            ({"eps": (1e-30,)}, r"eps must be a tuple \(eps1, eps2\)"),
        ),
        packed={"eps": ("eps1", "eps2")},
    ),
    CatalogueEntry(
        "asgd",
        "ASGD: SGD with a decaying step eta_t and leak 1 - lambd eta_t, Polyak average of the parameters (an output)",
        (
            _lr(1e-2),
            _nonneg("lambd", 1e-4, "decay term of eta_t and the leak"),
            _nonneg("alpha", 0.75, "power of eta_t's decay"),
            _nonneg("t0", 1e6, "averaging starts after step t0"),
            WEIGHT_DECAY,
            MAXIMIZE,
        ),
        _build_asgd,
        torch_class="torch.optim.ASGD",
        torch_state={"ax": "averaged", "eta": "eta", "mu": "mu"},
        source="torch.optim.ASGD (torch 2.13; Polyak & Juditsky 1992), eta and mu kept as torch's state",
        examples=({"t0": 100.0}, {"lambd": 0.01, "alpha": 1.0, "t0": 20.0}, {"lr": 0.05, "lambd": 0.0}),
        bad_inputs=(({"lambd": -1.0}, r"lambd must be >= 0"), ({"t0": float("nan")}, r"t0 must be a finite number")),
    ),
    CatalogueEntry(
        "rprop",
        "Rprop: sign of g with per-element step sizes multiplied on sign agreement (from lr), clamped",
        (
            _lr(1e-2),
            Hyperparameter(
                "etas", (0.5, 1.2), "floats", low=0.0, min_length=2, max_length=2, help="(etaminus, etaplus)"
            ),
            Hyperparameter(
                "step_sizes", (1e-6, 50.0), "floats", low=0.0, min_length=2, max_length=2, help="(min, max) step size"
            ),
            MAXIMIZE,
        ),
        _build_rprop,
        torch_class="torch.optim.Rprop",
        torch_state={"prev": "rprop.prev", "step_size": "rprop.step_size"},
        source="torch.optim.Rprop (torch 2.13; Riedmiller & Braun 1993, without backtracking)",
        examples=({"etas": (0.3, 1.5)}, {"step_sizes": (1e-4, 0.05), "lr": 0.05}),
        bad_inputs=(
            ({"etas": (1.2, 0.5)}, r"etas must satisfy 0 < etaminus < 1 < etaplus"),
            ({"step_sizes": (1.0, 0.1)}, r"step_sizes must satisfy 0 <= min <= max"),
        ),
        check=_check_rprop,
    ),
    CatalogueEntry(
        "ema",
        "any optimizer with an EMA of its weights kept as an output (torch.optim.swa_utils.AveragedModel, EMA)",
        _wrapper_hps(_beta("decay", 0.999, "EMA decay (get_ema_multi_avg_fn)"), _START),
        _build_ema,
        aliases=("ema-weights", "averaged-ema"),
        source="torch.optim.swa_utils.AveragedModel(multi_avg_fn=get_ema_multi_avg_fn(decay)), updated every step",
        examples=({"base": "momentum", "decay": 0.9}, {"base": "adam", "start": 20}),
        bad_inputs=(
            ({"decay": 1.5}, r"decay must be in \[0, 1\)"),
            ({"base": "adma"}, r"unknown optimizer 'adma'"),
            ({"base": "lookahead"}, r"base must be an optimizer of the catalogue other than a wrapper"),
        ),
        check=_check_wrapped,
    ),
    CatalogueEntry(
        "swa",
        "any optimizer with the equal-weight average of its weights kept as an output (AveragedModel, SWA)",
        _wrapper_hps(_START, Hyperparameter("every", 1, "int", low=1, help="average every this many steps")),
        _build_swa,
        aliases=("averaged-swa",),
        source="torch.optim.swa_utils.AveragedModel() (get_swa_avg_fn), updated at steps start, start + every, ...",
        examples=({"base": "momentum", "start": 10}, {"base": "adam", "every": 3}),
        bad_inputs=(({"every": 0}, r"every must be in \[1, 10000000\]"), ({"base": "ema"}, r"other than a wrapper")),
        check=_check_wrapped,
    ),
    CatalogueEntry(
        "lookahead",
        "Lookahead wrapping any optimizer: every k steps pull the weights back to slow + alpha (fast - slow)",
        _wrapper_hps(
            Hyperparameter(
                "k",
                5,
                "int",
                low=1,
                high=MAX_PERIOD,
                help="inner steps per synchronisation (the period; at most optfilters.validation.MAX_PERIOD)",
            ),
            Hyperparameter("alpha", 0.5, low=0.0, high=1.0, help="interpolation towards the fast weights"),
        ),
        _build_lookahead,
        source="pytorch_optimizer.Lookahead (Zhang, Lucas, Hinton & Ba 2019), pullback_momentum='none'",
        examples=({"base": "momentum", "k": 3, "alpha": 0.8}, {"base": "adam", "k": 6}),
        bad_inputs=(({"k": 0}, r"k must be in \[1, 1000\]"), ({"alpha": 1.5}, r"alpha must be in \[0, 1\]")),
        check=_check_wrapped,
    ),
]


CATALOGUE: dict[str, CatalogueEntry] = {entry.name: entry for entry in _ENTRIES}

_ALIASES: dict[str, str] = {}
for _entry in _ENTRIES:
    _ALIASES[_entry.name] = _entry.name
    for _alias in _entry.aliases:
        _ALIASES[_alias] = _entry.name


def register(entry: CatalogueEntry) -> CatalogueEntry:
    """Add an entry to the catalogue: every table, CLI command, docs list and tuner that reads it sees it.

    Parameters
    ----------
    entry : CatalogueEntry
        The entry; its name and aliases must be new.

    Returns
    -------
    CatalogueEntry
        ``entry`` (so that ``register`` reads as a decorator-like call).

    Raises
    ------
    ValueError
        When the name or an alias is already taken.

    Examples
    --------
    >>> import optfilters
    >>> from optfilters.catalogue import CatalogueEntry, register, unregister
    >>> slow = CatalogueEntry("slow", "momentum 0.99", (), lambda p: optfilters.get("momentum", momentum=0.99))
    >>> _ = register(slow)
    >>> "slow" in optfilters.names()
    True
    >>> unregister("slow")
    """
    if not isinstance(entry, CatalogueEntry):
        raise TypeError(f"register() takes a CatalogueEntry, got {type(entry).__name__}")
    taken = [key for key in (entry.name, *entry.aliases) if _normalise(key) in _ALIASES]
    if taken:
        raise ValueError(f"catalogue name or alias already taken: {', '.join(taken)}")
    CATALOGUE[entry.name] = entry
    for key in (entry.name, *entry.aliases):
        _ALIASES[_normalise(key)] = entry.name
    return entry


def unregister(name: str) -> None:
    """Remove an entry added with :func:`register` (by canonical name).

    Parameters
    ----------
    name : str
        The entry's canonical name.

    Raises
    ------
    UnknownNameError
        When there is no such entry.

    Examples
    --------
    >>> import optfilters
    >>> from optfilters.catalogue import CatalogueEntry, register, unregister
    >>> _ = register(CatalogueEntry("tmp", "a test entry", (), lambda p: optfilters.get("sgd")))
    >>> unregister("tmp")
    >>> "tmp" in optfilters.names()
    False
    """
    entry = CATALOGUE.pop(resolve_name(name))
    for key in (entry.name, *entry.aliases):
        _ALIASES.pop(_normalise(key), None)


def catalogue_docs(entries: Any = None) -> str:
    """The catalogue as a reStructuredText bullet list, one :meth:`CatalogueEntry.docs_line` each.

    Parameters
    ----------
    entries : iterable of str, optional
        Catalogue names (default: every entry, in catalogue order).

    Returns
    -------
    str

    Examples
    --------
    >>> from optfilters.catalogue import catalogue_docs
    >>> catalogue_docs(["sgd"]).startswith("* ``sgd``")
    True
    """
    chosen = list(CATALOGUE) if entries is None else [resolve_name(e) for e in entries]
    return "\n".join(f"* {CATALOGUE[name].docs_line()}" for name in chosen) + "\n"


class CatalogueFacts(Mapping[str, tuple[str, ...]]):
    """A read-only view of one per-optimizer fact of every catalogue entry (registered ones included).

    Parameters
    ----------
    fact : str
        The :class:`CatalogueEntry` field (``"tuned"``, ``"poles"``).

    Examples
    --------
    >>> from optfilters.catalogue import CatalogueFacts
    >>> CatalogueFacts("tuned")["adam"]
    ('beta1',)
    """

    def __init__(self, fact: str) -> None:
        self._field = fact

    def __getitem__(self, name: str) -> tuple[str, ...]:
        return tuple(getattr(CATALOGUE[name], self._field))

    def __iter__(self) -> Iterator[str]:
        return iter(list(CATALOGUE))

    def __len__(self) -> int:
        return len(CATALOGUE)


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(" ", "-")


def names() -> list[str]:
    """Canonical catalogue names in catalogue order.

    Returns
    -------
    list of str
        Entries registered with :func:`register` included, last.

    Examples
    --------
    >>> import optfilters
    >>> optfilters.names()[:3]
    ['sgd', 'momentum', 'nesterov']
    """
    return list(CATALOGUE)


def resolve_name(name: str) -> str:
    """The canonical name for a name or alias (case-insensitive); suggests close matches.

    Parameters
    ----------
    name : str
        A catalogue name or alias, any case, ``_`` or spaces for ``-``.

    Returns
    -------
    str
        The canonical name (a key of :data:`CATALOGUE`).

    Raises
    ------
    UnknownNameError
        For an unknown name, with up to three close matches.

    Examples
    --------
    >>> import optfilters
    >>> optfilters.resolve_name("NAG")
    'nesterov'
    >>> optfilters.resolve_name("adma")
    Traceback (most recent call last):
    ...
    optfilters.errors.UnknownNameError: unknown optimizer 'adma'; did you mean 'adam' or 'adamax' or 'adan'?
    """
    key = _normalise(str(name))
    if key in _ALIASES:
        return _ALIASES[key]
    close = close_matches(key, list(_ALIASES), n=3)
    suggestions = list(dict.fromkeys(_ALIASES[c] for c in close))
    if suggestions:
        hint = " or ".join(repr(s) for s in suggestions)
        raise UnknownNameError(f"unknown optimizer {name!r}; did you mean {hint}?")
    raise UnknownNameError(f"unknown optimizer {name!r}; known: {', '.join(CATALOGUE)}")


def get(name: str, **hyperparameters: Any) -> OptimizerModel:
    """The catalogue model of an optimizer, with hyperparameters by torch.optim's names.

    Parameters
    ----------
    name : str
        Catalogue name or alias, case-insensitive (``optfilters.names()``).
    **hyperparameters
        Overrides of the defaults; unknown names are refused with suggestions.

    Returns
    -------
    OptimizerModel

    Raises
    ------
    UnknownNameError
        For an unknown optimizer name.
    InvalidHyperparameterError
        For an unknown, mistyped or out-of-range hyperparameter.

    Examples
    --------
    >>> import optfilters
    >>> m = optfilters.get("nesterov", momentum=0.9)
    >>> f = m.filters()["gradient"]
    >>> f.poles.real.round(9).tolist(), f.zeros.real.round(9).tolist()
    ([0.9], [0.473684211])
    """
    entry = CATALOGUE[resolve_name(name)]
    params = entry.validate(hyperparameters)
    return entry.build(params)


def as_model(model: ModelLike, **hyperparameters: Any) -> OptimizerModel:
    """An :class:`OptimizerModel` from a catalogue name, a model, a stage or a filter: the one input resolution.

    Every analysis function, plot and command that takes an optimizer resolves
    it here, so they all accept the same things.

    Parameters
    ----------
    model : str, OptimizerModel, Stage or ArmaFilter
        A catalogue name or alias (built with ``hyperparameters``); a model
        (catalogue models may take hyperparameter overrides; compositions from
        :func:`optfilters.chain` too); a stage (a
        :class:`~optfilters.stages.LinearStage` is a gradient filter, any other
        stage runs alone before the update); or a gradient filter ``H(z)``,
        meaning filtered gradient descent ``theta -= lr * H(z) g``.
    **hyperparameters
        Catalogue hyperparameters (``lr`` only for a filter or a stage).

    Returns
    -------
    OptimizerModel

    Raises
    ------
    UnknownNameError
        For an unknown catalogue name.
    InvalidHyperparameterError
        For hyperparameters the input cannot take.
    TypeError
        For anything else.

    Examples
    --------
    >>> from optfilters import ArmaFilter, as_model
    >>> as_model("heavy-ball", momentum=0.5).hyperparameters["momentum"]
    0.5
    >>> as_model(ArmaFilter([0.1], [1.0, -0.9], name="ema")).name
    'ema'
    """
    if isinstance(model, str):
        return get(model, **hyperparameters)
    if isinstance(model, OptimizerModel):
        if not hyperparameters:
            return model
        if model.name in CATALOGUE:
            base = dict(model.hyperparameters)
            if "betas" in hyperparameters and "betas" not in base:  # torch's spelling replaces beta1, beta2
                for key in ("beta1", "beta2", "beta3"):
                    base.pop(key, None)
            return get(model.name, **{**base, **hyperparameters})
        if set(hyperparameters) == {"lr"}:
            return OptimizerModel(
                model.name,
                {**dict(model.hyperparameters), "lr": hyperparameters["lr"]},
                maximize=model.maximize,
                description=model.description,
                pipeline=model.pipeline,
            )
        raise InvalidHyperparameterError(
            f"hyperparameters can only be overridden for catalogue models; {model.name!r} is not one (it takes lr only)"
        )
    if isinstance(model, (ArmaFilter, Stage)):
        extra = sorted(set(hyperparameters) - {"lr"})
        if extra:
            raise InvalidHyperparameterError(f"a filter takes only lr, got {', '.join(extra)}")
        lr = check_number(hyperparameters.get("lr", 1.0), "lr")  # float() would read b"0.1" and "1_0"
        if isinstance(model, ArmaFilter):
            return OptimizerModel(
                name=model.name or "filter", hyperparameters={"lr": lr}, gradient=LinearStage.of(model, "gradient")
            )
        return chain(model, lr=lr, name=model.key)
    raise TypeError(
        f"expected a catalogue name, an OptimizerModel, a stage or an ArmaFilter, got {type(model).__name__}"
    )


def _catalogue_entry(name: str) -> CatalogueEntry:
    """The registered catalogue entry ``name`` (unpickling)."""
    return CATALOGUE[name]
