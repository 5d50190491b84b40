"""Training: the learning-rate schedule and the steps-based trainer."""

from .schedule import lr_at, warmup_steps
from .trainer import TrainConfig, make_optimizer, train
