"""The catalogue: every optimizer as an :class:`OptimizerModel`, with one registry.

``CATALOGUE`` maps each name to a :class:`CatalogueEntry` holding the
factory, its hyperparameters (torch.optim's names and defaults where torch has
the optimizer), aliases, the torch counterpart, example settings and bad
inputs with the errors they must raise.  Tests, the CLI and the figure
scripts all read it.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._errors import InvalidFilterError, InvalidHyperparameterError, UnknownNameError
from ._filter import ArmaFilter
from ._gains import Constant, InverseTimeDecay, NadamCurrentGain, NadamMomentumGain, RAdamRectification
from ._hyperparameters import Hyperparameter
from ._model import OptimizerModel, chain
from ._stages import (
    AdadeltaNormaliser,
    FilterTerm,
    LinearStage,
    PeakNormaliser,
    RmsNormaliser,
    SignNonlinearity,
    Stage,
    WeightDecay,
)

__all__ = ["CATALOGUE", "CatalogueEntry", "ModelLike", "as_model", "get", "names", "resolve_name"]

#: What every analysis function accepts as an optimizer: a catalogue name, a model, a stage or a filter.
ModelLike = OptimizerModel | ArmaFilter | Stage | str

Params = dict[str, Any]


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
    source : str
        Where the update rule comes from.
    examples : tuple of dict
        Non-default settings that tests exercise.
    bad_inputs : tuple of (dict, str)
        Settings that must fail, with a regular expression for the message.
    check : callable or None
        Cross-parameter validation, raising InvalidHyperparameterError.

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
    source: str = ""
    examples: tuple[Params, ...] = ()
    bad_inputs: tuple[tuple[Params, str], ...] = ()
    check: Callable[[Params], None] | None = None

    def __reduce__(self) -> Any:
        """Pickle a catalogue entry by name (its ``build`` is a local function); others field by field."""
        if CATALOGUE.get(self.name) is self:
            return (_catalogue_entry, (self.name,))
        return object.__reduce__(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> CatalogueEntry:
        return self  # immutable: a copy is the same entry

    def defaults(self) -> Params:
        """Default value of every hyperparameter (None for required ones)."""
        return {hp.name: hp.default for hp in self.hyperparameters}

    def hyperparameter(self, name: str) -> Hyperparameter:
        """The specification of one hyperparameter."""
        for hp in self.hyperparameters:
            if hp.name == name:
                return hp
        raise InvalidHyperparameterError(_unknown_hyperparameter_message(self, name))

    def validate(self, overrides: Mapping[str, Any]) -> Params:
        """Defaults updated with ``overrides``, each checked; unknown names are refused.

        torch.optim's ``betas=(beta1, beta2[, beta3])`` is accepted where the
        entry has those betas (not together with ``beta1=`` etc.).

        Examples
        --------
        >>> from optfilters import CATALOGUE
        >>> CATALOGUE["adam"].validate({"betas": (0.8, 0.99)})["beta2"]
        0.99
        """
        known = {hp.name for hp in self.hyperparameters}
        if "betas" in overrides and "betas" not in known:
            overrides = self._split_betas(overrides, known)
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
        betas = overrides["betas"]
        if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != len(names):
            raise InvalidHyperparameterError(
                f"betas must be a tuple ({', '.join(names)}) of {len(names)} numbers, got {betas!r}"
            )
        given = [name for name in names if name in overrides]
        if given:
            raise InvalidHyperparameterError(f"give betas or {', '.join(given)}, not both")
        split = {key: value for key, value in overrides.items() if key != "betas"}
        split.update(zip(names, betas, strict=True))
        return split

    def torch_kwargs(self, params: Mapping[str, Any]) -> Params:
        """Keyword arguments for :attr:`torch_class` (``beta1``/``beta2`` become ``betas``).

        Examples
        --------
        >>> from optfilters import CATALOGUE
        >>> CATALOGUE["nesterov"].torch_kwargs({"lr": 0.1, "momentum": 0.9})
        {'lr': 0.1, 'momentum': 0.9, 'nesterov': True}
        """
        kwargs = dict(params)
        if "beta1" in kwargs and "beta2" in kwargs:
            kwargs["betas"] = (kwargs.pop("beta1"), kwargs.pop("beta2"))
        kwargs.update(self.torch_fixed)
        return kwargs


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
    >>> from optfilters._catalogue import close_matches
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
    return LinearStage.of(ArmaFilter.ema(beta), name, compensated=True)


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
    if nesterov:
        # buf = mu buf + g; d = g + mu buf  =>  H = ((1 + mu) - mu z^-1) / (1 - mu z^-1)
        return LinearStage.of(ArmaFilter([1.0 + momentum, -momentum], [1.0, -momentum]), "gradient")
    # torch: buf_1 = g_1 (no (1 - dampening) factor), then buf = mu buf + (1 - dampening) g
    return LinearStage.of(
        ArmaFilter([1.0 - dampening], [1.0, -momentum]), "gradient", first_output_is_input=dampening != 0.0
    )


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


def _quasi_hyperbolic(nu: float, beta: float, name: str, compensated: bool = False) -> LinearStage:
    return LinearStage(
        (
            FilterTerm(ArmaFilter.identity(), gain=Constant(1.0 - nu)),
            FilterTerm(ArmaFilter.ema(beta), gain=Constant(nu), compensated=compensated),
        ),
        name,
    )


def _build_qhm(p: Params) -> OptimizerModel:
    return _model("qhm", p, gradient=_quasi_hyperbolic(p["nu"], p["beta"], "gradient"), weight_decay=_weight_decay(p))


def _build_qhadam(p: Params) -> OptimizerModel:
    second = _quasi_hyperbolic(p["nu2"], p["beta2"], "second_moment", compensated=True)
    return _model(
        "qhadam",
        p,
        gradient=_quasi_hyperbolic(p["nu1"], p["beta1"], "gradient", compensated=True),
        normaliser=RmsNormaliser(second, eps=p["eps"]),
        weight_decay=_weight_decay(p),
    )


def _build_aggmo(p: Params) -> OptimizerModel:
    betas = p["betas"]
    terms = tuple(FilterTerm(ArmaFilter.leaky_integrator(beta), gain=Constant(1.0 / len(betas))) for beta in betas)
    return _model("aggmo", p, gradient=LinearStage(terms, "gradient"), weight_decay=_weight_decay(p))


def _build_lion(p: Params) -> OptimizerModel:
    beta1, beta2 = p["beta1"], p["beta2"]
    # c = beta1 m + (1 - beta1) g, m = beta2 m + (1 - beta2) g  =>  ((1-b1) + (b1-b2) z^-1) / (1 - b2 z^-1)
    interpolation = ArmaFilter([1.0 - beta1, beta1 - beta2], [1.0, -beta2], name="lion")
    return _model(
        "lion",
        p,
        gradient=LinearStage.of(interpolation, "gradient"),
        nonlinearity=SignNonlinearity(),
        weight_decay=_weight_decay(p, decoupled=True),
    )


def _build_ademamix(p: Params) -> OptimizerModel:
    gradient = LinearStage(
        (
            FilterTerm(ArmaFilter.ema(p["beta1"]), compensated=True),
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


# ----------------------------------------------------------------------------- the registry

_SGD_HPS = (
    _lr(1e-3),
    _nonneg("momentum", 0.0, "momentum factor (pole of the gradient filter)"),
    Hyperparameter("dampening", 0.0, low=0.0, high=1.0, help="dampening for momentum: input gain 1 - dampening"),
    WEIGHT_DECAY,
    _flag("nesterov", "Nesterov momentum (adds a zero)"),
    MAXIMIZE,
)

_ENTRIES: list[CatalogueEntry] = [
    CatalogueEntry(
        "sgd",
        "stochastic gradient descent: the identity filter (torch.optim.SGD, every option)",
        _SGD_HPS,
        _build_sgd("sgd"),
        aliases=("gd",),
        torch_class="torch.optim.SGD",
        source="torch.optim.SGD",
        examples=({"lr": 0.1}, {"momentum": 0.9, "dampening": 0.5}, {"momentum": 0.8, "nesterov": True}),
        bad_inputs=(
            ({"lr": -1.0}, r"lr must be >= 0, got -1"),
            ({"nesterov": True}, r"nesterov needs momentum > 0"),
            ({"momentum": float("nan")}, r"momentum must be a finite number"),
        ),
        check=_check_sgd,
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
        source="torch.optim.SGD(momentum=...)",
        examples=({"momentum": 0.5}, {"momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01}),
        bad_inputs=(({"momentum": -0.1}, r"momentum must be >= 0"), ({"dampening": 2.0}, r"dampening must be in")),
    ),
    CatalogueEntry(
        "nesterov",
        "Nesterov momentum (torch form): ARMA(1,1), pole mu, zero mu/(1+mu)",
        (_lr(1e-3), _nonneg("momentum", 0.9, "momentum factor (the pole)"), WEIGHT_DECAY, MAXIMIZE),
        _build_sgd("nesterov", nesterov=True),
        aliases=("nag", "sgd-nesterov"),
        torch_class="torch.optim.SGD",
        torch_fixed={"nesterov": True},
        source="torch.optim.SGD(nesterov=True)",
        examples=({"momentum": 0.5}, {"momentum": 0.99, "weight_decay": 0.001}),
        bad_inputs=(({"momentum": 0.0}, r"nesterov needs momentum > 0"),),
        check=_check_nesterov_entry,
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
        source="torch.optim.Adagrad",
        examples=({"lr_decay": 0.01, "initial_accumulator_value": 0.1}, {"weight_decay": 0.01}),
        bad_inputs=(({"eps": -1.0}, r"eps must be >= 0"), ({"lr_decay": -0.1}, r"lr_decay must be >= 0")),
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
        source="torch.optim.Adadelta",
        examples=({"rho": 0.95, "eps": 1e-5}, {"weight_decay": 0.01}),
        bad_inputs=(({"rho": 1.5}, r"rho must be in \[0, 1\]"),),
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
        source="torch.optim.RMSprop",
        examples=({"centered": True}, {"momentum": 0.9}, {"centered": True, "momentum": 0.5, "alpha": 0.9}),
        bad_inputs=(({"alpha": 1.0}, r"alpha must be in \[0, 1\)"),),
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
        source="torch.optim.Adam",
        examples=({"beta1": 0.8, "beta2": 0.99}, {"weight_decay": 0.01}, {"amsgrad": True}),
        bad_inputs=(
            ({"beta1": 1.5}, r"beta1 must be in \[0, 1\), got 1.5"),
            ({"beta2": 1.0}, r"beta2 must be in \[0, 1\)"),
            ({"eps": -1.0}, r"eps must be >= 0, got -1"),
            ({"lr": float("nan")}, r"lr must be a finite number"),
            ({"momentum": 0.9}, r"adam has no hyperparameter 'momentum'"),
        ),
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
        source="torch.optim.AdamW",
        examples=({"weight_decay": 0.1}, {"amsgrad": True}),
        bad_inputs=(({"weight_decay": -0.1}, r"weight_decay must be >= 0"),),
    ),
    CatalogueEntry(
        "amsgrad",
        "AMSGrad: Adam normalised by the running max of the second moment",
        (_lr(1e-3), BETA1, BETA2, EPS_8, WEIGHT_DECAY, MAXIMIZE, DECOUPLED),
        _build_adam("amsgrad", amsgrad=True),
        torch_class="torch.optim.Adam",
        torch_fixed={"amsgrad": True},
        source="torch.optim.Adam(amsgrad=True)",
        examples=({"beta2": 0.99},),
        bad_inputs=(({"beta1": -0.1}, r"beta1 must be in \[0, 1\)"),),
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
        source="torch.optim.NAdam",
        examples=({"momentum_decay": 0.01}, {"weight_decay": 0.01, "decoupled_weight_decay": True}),
        bad_inputs=(({"momentum_decay": -1.0}, r"momentum_decay must be >= 0"),),
    ),
    CatalogueEntry(
        "radam",
        "RAdam: Adam with variance rectification (unnormalised for the first steps)",
        (_lr(1e-3), BETA1, BETA2, EPS_8, WEIGHT_DECAY, DECOUPLED, MAXIMIZE),
        _build_radam,
        torch_class="torch.optim.RAdam",
        source="torch.optim.RAdam",
        examples=({"beta2": 0.99}, {"weight_decay": 0.01, "decoupled_weight_decay": True}),
        bad_inputs=(({"beta2": 1.2}, r"beta2 must be in \[0, 1\)"),),
    ),
    CatalogueEntry(
        "adamax",
        "Adamax: bias-corrected EMA of g over a peak envelope of |g|",
        (_lr(2e-3), BETA1, BETA2, EPS_8, WEIGHT_DECAY, MAXIMIZE),
        _build_adamax,
        torch_class="torch.optim.Adamax",
        source="torch.optim.Adamax",
        examples=({"beta2": 0.99},),
        bad_inputs=(({"beta1": 1.0}, r"beta1 must be in \[0, 1\)"),),
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
    ),
    CatalogueEntry(
        "butterworth",
        "designed Butterworth low-pass gradient filter, scaled to a DC gain (momentum stand-in)",
        (
            _lr(1e-3),
            Hyperparameter("order", 2, "int", low=1, high=16, help="filter order"),
            Hyperparameter(
                "cutoff", 0.05, low=0.0, high=0.5, low_open=True, high_open=True, help="-3 dB cutoff in cycles/step"
            ),
            Hyperparameter("dc_gain", 10.0, low=0.0, low_open=True, help="DC gain (10 matches momentum 0.9)"),
            WEIGHT_DECAY,
        ),
        _designed("butterworth"),
        aliases=("butter",),
        source="scipy.signal.butter",
        examples=({"order": 4, "cutoff": 0.02}, {"order": 8, "cutoff": 0.005, "dc_gain": 1.0}),
        bad_inputs=(({"cutoff": 0.6}, r"cutoff must be in \(0, 0.5\)"), ({"order": 2.5}, r"order must be an integer")),
    ),
    CatalogueEntry(
        "chebyshev1",
        "designed Chebyshev type-I low-pass gradient filter, scaled to a DC gain",
        (
            _lr(1e-3),
            Hyperparameter("order", 2, "int", low=1, high=16, help="filter order"),
            Hyperparameter(
                "cutoff", 0.05, low=0.0, high=0.5, low_open=True, high_open=True, help="passband edge in cycles/step"
            ),
            Hyperparameter("ripple", 1.0, low=0.0, low_open=True, help="passband ripple in dB"),
            Hyperparameter("dc_gain", 10.0, low=0.0, low_open=True, help="DC gain"),
            WEIGHT_DECAY,
        ),
        _designed("chebyshev1"),
        aliases=("cheby1", "chebyshev"),
        source="scipy.signal.cheby1",
        examples=({"order": 3, "ripple": 0.5},),
        bad_inputs=(({"ripple": 0.0}, r"ripple must be > 0"),),
    ),
    CatalogueEntry(
        "bessel",
        "designed Bessel (maximally flat delay) low-pass gradient filter, scaled to a DC gain",
        (
            _lr(1e-3),
            Hyperparameter("order", 2, "int", low=1, high=16, help="filter order"),
            Hyperparameter(
                "cutoff", 0.05, low=0.0, high=0.5, low_open=True, high_open=True, help="-3 dB cutoff in cycles/step"
            ),
            Hyperparameter("dc_gain", 10.0, low=0.0, low_open=True, help="DC gain"),
            WEIGHT_DECAY,
        ),
        _designed("bessel"),
        source="scipy.signal.bessel(norm='mag')",
        examples=({"order": 4, "cutoff": 0.1},),
        bad_inputs=(({"dc_gain": -1.0}, r"dc_gain must be > 0"),),
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
    ),
]

CATALOGUE: dict[str, CatalogueEntry] = {entry.name: entry for entry in _ENTRIES}

_ALIASES: dict[str, str] = {}
for _entry in _ENTRIES:
    _ALIASES[_entry.name] = _entry.name
    for _alias in _entry.aliases:
        _ALIASES[_alias] = _entry.name


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(" ", "-")


def names() -> list[str]:
    """Canonical catalogue names in catalogue order.

    Examples
    --------
    >>> import optfilters
    >>> optfilters.names()[:3]
    ['sgd', 'momentum', 'nesterov']
    """
    return list(CATALOGUE)


def resolve_name(name: str) -> str:
    """The canonical name for a name or alias (case-insensitive); suggests close matches.

    Examples
    --------
    >>> import optfilters
    >>> optfilters.resolve_name("NAG")
    'nesterov'
    >>> optfilters.resolve_name("adma")
    Traceback (most recent call last):
    ...
    optfilters._errors.UnknownNameError: unknown optimizer 'adma'; did you mean 'adam' or 'adamax' or 'adamw'?
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
            return get(model.name, **{**dict(model.hyperparameters), **hyperparameters})
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
        lr = float(hyperparameters.get("lr", 1.0))
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
