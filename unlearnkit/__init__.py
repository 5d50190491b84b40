"""unlearnkit: does machine unlearning really remove the effect of poisoned training data?"""

from .config import ConfigError
from .data import DataConfig, load_data
from .device import pick_device
from .experiment import ExperimentConfig, train_original
from .manipulations import build_manipulation, forget_sets
from .metrics import evaluate
from .store import ArtifactStore
from .training import TrainConfig, train

__version__ = "0.1.0"
