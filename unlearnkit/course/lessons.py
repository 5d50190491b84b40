"""What the course notebooks share: one small dataset, one training recipe, one cached store.

Every lesson trains its models through the library (``train_original``) on the embedded MNIST, in
the store ``<outputs>/course/``, so a model trained in one lesson is loaded, not retrained, in the
next, and each lesson still runs alone. The sizes keep a lesson to a minute or two on a laptop CPU.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ..config import to_dict
from ..data import DataConfig
from ..experiment import ExperimentConfig, TrainedOriginal, train_original
from ..manipulations import build_manipulation
from ..series.paths import output_root
from ..store import ArtifactStore
from ..training import TrainConfig

RUN = "course"
DATA = DataConfig(name="mnist", train_subset=4000, test_subset=1000, val_size=500)
RECIPE = TrainConfig(steps=150, batch_size=128, lr=0.05, warmup_fraction=0.05, log_every=10)
BADNET = {"name": "badnet", "target_class": 0, "patch_size": 3, "fraction": 0.03, "seed": 0}
INTERCLASS = {"name": "interclass", "class_a": 3, "class_b": 5, "fraction": 0.1, "seed": 0}
GAUSSIAN = {"name": "gaussian", "eps": 0.5, "count": 200, "seed": 0}


def store(root: str | None = None) -> ArtifactStore:
    return ArtifactStore(output_root(root), RUN)


def experiment(manipulation: dict[str, Any]) -> ExperimentConfig:
    """The lesson's experiment; the manipulation is spelled out with every default, so the trigger
    designer's default design finds the lesson's model in the store."""
    canonical = {"name": manipulation["name"], **to_dict(build_manipulation(manipulation))}
    return ExperimentConfig(data=DATA, manipulation=canonical, model="small-cnn", train=RECIPE)


def trained(manipulation: dict[str, Any], device: str | None = None, progress: bool = True) -> TrainedOriginal:
    """The lesson's original model on ``manipulation`` (trained once, then loaded from the store)."""
    return train_original(experiment(manipulation), store(), device, progress=progress)


def image_grid(images: torch.Tensor, titles: list[str], title: str, columns: int = 8) -> go.Figure:
    """uint8 images ``[N, C, H, W]`` in a grid with a title each."""
    count = len(images)
    rows = (count + columns - 1) // columns
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=titles, horizontal_spacing=0.01,
                           vertical_spacing=0.08)
    for index, image in enumerate(images.cpu().numpy()):
        pixels = np.transpose(image, (1, 2, 0))
        pixels = np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels
        figure.add_trace(go.Image(z=pixels), row=index // columns + 1, col=index % columns + 1)
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    figure.update_annotations(font_size=11)
    figure.update_layout(title=title, height=60 + 150 * rows, margin=dict(l=10, r=10, t=70, b=10))
    return figure
