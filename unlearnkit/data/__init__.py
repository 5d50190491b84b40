"""Datasets: embedded MNIST, torchvision loaders, splits and the on-device batch pipeline."""

from . import mnist_embedded, torchvision_sets  # noqa: F401  (registers the datasets)
from .core import DatasetInfo, DataSplits, ImageSet, carve_validation, take_subset
from .pipeline import TrainingSet, augment, batch_stream, normalise, predict_logits
from .registry import DATASETS, DataConfig, DatasetNotFoundError, load_data
