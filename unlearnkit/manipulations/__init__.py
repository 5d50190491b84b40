"""Manipulations of the training data (attacks) and the forget sets drawn from them."""

from . import badnet, gaussian, gradient_canceling, interclass, label_flip, witches_brew  # noqa: F401  (registers the manipulations)
from .badnet import BadNet, stamp_trigger
from .base import MANIPULATIONS, Manipulated, build_manipulation
from .crafted import CraftContext, Crafted, is_crafted
from .forget_sets import forget_sets, forget_size
from .gaussian import GaussianPoisoning, gaussian_noise
from .gradient_canceling import GradientCanceling
from .interclass import InterclassConfusion
from .label_flip import LabelFlip
from .witches_brew import WitchesBrew
