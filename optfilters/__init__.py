"""optfilters: deep-learning optimizers as filters on the gradient sequence.

Every coefficient array is in powers of ``z^-1`` (``scipy.signal.lfilter``
order); frequencies are in cycles per step (0 to 0.5); a filter ``H`` maps the
gradient to the update direction per unit learning rate.

Importing this package loads numpy only; SciPy loads on first analysis, and
torch and matplotlib only in :mod:`optfilters.torch` and :mod:`optfilters.plot`.
"""

from ._analysis import (
    FilterSummary,
    FrequencyResponse,
    ImpulseResponse,
    PoleZeroMap,
    QuasiHyperbolicForm,
    StepResponse,
    compensate,
    cutoff_frequency,
    frequency_response,
    impulse_response,
    mean_delay,
    noise_gain,
    pole_zero,
    quasi_hyperbolic_form,
    step_response,
    summarise,
)
from ._catalogue import CATALOGUE, CatalogueEntry, as_model, get, names, resolve_name
from ._errors import (
    InvalidFilterError,
    InvalidHyperparameterError,
    StabilityWarning,
    StateResetWarning,
    UnknownNameError,
)
from ._filter import ArmaFilter, cascade, parallel
from ._hyperparameters import Hyperparameter
from ._model import NumpyOptimizer, OptimizerModel, Trajectory, chain
from ._table import SummaryTable, summary_table
from .parameter_stages import averaged, lookahead

__version__ = "0.1.0"

__all__ = [
    "CATALOGUE",
    "ArmaFilter",
    "CatalogueEntry",
    "FilterSummary",
    "FrequencyResponse",
    "Hyperparameter",
    "ImpulseResponse",
    "InvalidFilterError",
    "InvalidHyperparameterError",
    "NumpyOptimizer",
    "OptimizerModel",
    "PoleZeroMap",
    "QuasiHyperbolicForm",
    "StabilityWarning",
    "StateResetWarning",
    "StepResponse",
    "SummaryTable",
    "Trajectory",
    "UnknownNameError",
    "as_model",
    "averaged",
    "cascade",
    "chain",
    "compensate",
    "cutoff_frequency",
    "frequency_response",
    "get",
    "impulse_response",
    "lookahead",
    "mean_delay",
    "names",
    "noise_gain",
    "parallel",
    "pole_zero",
    "quasi_hyperbolic_form",
    "resolve_name",
    "step_response",
    "summarise",
    "summary_table",
]
