"""Unlearning methods behind one interface, with model selection and the papers' grids."""

from . import ascent, badt, finetune, npo, rewod, scrub, ssd  # noqa: F401  (registers the methods)
from .base import METHODS, Budget, Method, UnlearningResult, UnlearningTask, method_params, unlearn
from .grids import GRIDS, named_grid
from .runner import run_alpha_sweep, unlearn_and_evaluate, unlearn_evaluate_and_audit
from .selection import SelectionScore, select_best, selection_score
from .ssd import SSDImportances, dampen, importance, ssd_importances
from .task import make_task
