"""Manipulations of the training data (attacks) and the forget sets drawn from them."""

from . import (  # noqa: F401  (registers the manipulations)
    badnet,
    gaussian,
    gradient_canceling,
    interclass,
    label_flip,
    near_duplicates,
    witches_brew,
)
from .badnet import BadNet, stamp_trigger
from .base import MANIPULATIONS, Manipulated, build_manipulation
from .crafted import CraftContext, Crafted, is_crafted
from .forget_sets import forget_sets, forget_size
from .gaussian import GaussianPoisoning, gaussian_noise
from .gradient_canceling import GradientCanceling
from .interclass import InterclassConfusion
from .label_flip import LabelFlip
from .near_duplicates import NearDuplicated, NearDuplicates, duplicate_similarity, related_positions
from .witches_brew import WitchesBrew
