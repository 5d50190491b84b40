"""Block-structured models for unlearning experiments, registered by name in ``MODELS``."""

from . import mlp, resnet9, resnet18, small_cnn, wideresnet  # noqa: F401  (registers the models)
from .base import MODELS, BlockNet, build_model, reinitialise_
from .wideresnet import wide_resnet

__all__ = ["MODELS", "BlockNet", "build_model", "reinitialise_", "wide_resnet"]
