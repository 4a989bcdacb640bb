"""optfilters: deep-learning optimizers as filters on the gradient sequence.

Every coefficient array is in powers of ``z^-1`` (``scipy.signal.lfilter``
order); frequencies are in cycles per step (0 to 0.5); a filter ``H`` maps the
gradient to the update direction per unit learning rate.

Importing this package loads numpy only; SciPy loads on first analysis, and
torch and matplotlib only in :mod:`optfilters.torch` and :mod:`optfilters.plot`.
"""

from .analysis import (
    FilterSummary,
    FrequencyResponse,
    ImpulseResponse,
    PoleZeroMap,
    QuasiHyperbolicForm,
    StepResponse,
    bias_correct,
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
from .catalogue import CATALOGUE, CatalogueEntry, as_model, get, names, resolve_name
from .errors import (
    InvalidFilterError,
    InvalidHyperparameterError,
    StabilityWarning,
    StateResetWarning,
    UnknownNameError,
)
from .filters import ArmaFilter, cascade, parallel
from .hyperparameters import Hyperparameter
from .model import NumpyOptimizer, OptimizerModel, Trajectory, chain
from .parameter_stages import averaged, lookahead
from .table import SummaryTable, summary_table

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
    "bias_correct",
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
