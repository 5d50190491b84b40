"""Finding more of the manipulated set from the identified part of it, and unlearning the expanded set."""

from . import baseline, features, gradients  # noqa: F401  (registers the scorers)
from .base import (
    SCORERS,
    Expansion,
    ExpansionPolicy,
    ExpansionSize,
    Scorer,
    candidates_for,
    expand,
    expansion_quality,
    ranking_curve,
    score_candidates,
    scorer_params,
)
from .context import ExpansionContext
from .unlearn import ExpandedUnlearning, expand_then_unlearn, expand_unlearn_and_evaluate, expansion_columns
