"""Manipulations of the training data (attacks) and the forget sets drawn from them."""

from . import badnet, gaussian, interclass, near_duplicates  # noqa: F401  (registers the manipulations)
from .badnet import BadNet, stamp_trigger
from .base import MANIPULATIONS, Manipulated, build_manipulation
from .forget_sets import forget_sets, forget_size
from .gaussian import GaussianPoisoning, gaussian_noise
from .interclass import InterclassConfusion
from .near_duplicates import NearDuplicated, NearDuplicates, duplicate_similarity, related_positions
