"""The trigger designer: shape a BadNet trigger and see what it does to a small model.

Patch size, position, intensity, target class and poisoned share define a
:class:`~unlearnkit.manipulations.BadNet` manipulation (Gu et al. 2019). :class:`TriggerLab` shows the
poisoned training samples and the triggered test images of a design at once, and, on request, trains
a small model on the poisoned data with the library's own pipeline (``train_original``), cached in the
artifact store per design, to measure the attack success rate and clean accuracy it yields.
:class:`TriggerDesigner` wires sliders to the lab; training waits for its button.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..config import to_dict
from ..data import DataConfig, DataSplits, load_data
from ..data.pipeline import predict_logits
from ..experiment import ExperimentConfig, TrainedOriginal, train_original
from ..manipulations import BadNet, Manipulated
from ..series.paths import output_root
from ..store import ArtifactStore
from ..training import TrainConfig
from .base import Explorer, css_class

QUICK_RECIPE = TrainConfig(steps=120, batch_size=128, lr=0.05, warmup_fraction=0.05, log_every=20)
"""A small model in seconds on a CPU: enough steps for MNIST to learn a 3% BadNet poison."""

OUTCOME_METRICS = {"asr": "attack success", "acc_clean": "clean accuracy", "acc_corr": "Acc_corr"}
FIGURE_WIDTH = 980


def design_label(design: BadNet, height: int, width: int) -> str:
    """A short name of a design: ``3px (25,25) v=1.00 -> 0, 3.0%``."""
    row = height - design.patch_size if design.row is None else design.row
    col = width - design.patch_size if design.col is None else design.col
    share = f"{design.fraction:.1%}" if design.fraction is not None else f"n={design.count}"
    return f"{design.patch_size}px ({row},{col}) v={design.value:.2f} → {design.target_class}, {share}"


@dataclass
class AttackOutcome:
    """What a design did to a model trained on it."""

    design: BadNet
    metrics: dict[str, float]
    seconds: float
    cache_hit: bool
    trained: TrainedOriginal


@dataclass
class TriggerLab:
    """The computations of the trigger designer, on one dataset and training recipe."""

    data: DataConfig = field(default_factory=lambda: DataConfig(name="mnist", train_subset=4000, test_subset=1000,
                                                                val_size=500))
    model: str = "small-cnn"
    train: TrainConfig = QUICK_RECIPE
    store: ArtifactStore | None = None
    device: str | None = None
    progress: bool = False
    outcomes: dict[str, AttackOutcome] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.store = self.store or ArtifactStore(output_root(), "explore-trigger")

    @functools.cached_property
    def splits(self) -> DataSplits:
        return load_data(self.data, "cpu")

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.splits.train.images.shape[-2:])

    def design(self, patch_size: int = 3, row: int | None = None, col: int | None = None, value: float = 1.0,
               target_class: int = 0, fraction: float = 0.03, seed: int = 0) -> BadNet:
        """A validated BadNet design; a patch flush with the bottom-right corner is spelled as the default
        (``row = col = None``) so it shares its cache with the series' BadNet."""
        height, width = self.image_size
        row = None if row is not None and row == height - patch_size else row
        col = None if col is not None and col == width - patch_size else col
        design = BadNet(target_class=target_class, patch_size=patch_size, fraction=fraction, seed=seed, row=row,
                        col=col, value=value)
        design.apply(self.splits)  # range checks that need the image size and the number of classes
        return design

    def label(self, design: BadNet) -> str:
        return design_label(design, *self.image_size)

    def manipulated(self, design: BadNet) -> Manipulated:
        return design.apply(self.splits)

    def samples(self, design: BadNet, count: int = 6) -> dict[str, Any]:
        """The first ``count`` poisoned training samples as trained on, and ``count`` triggered test images
        with their clean labels (and a trained model's predictions, when this design was trained)."""
        manipulated = self.manipulated(design)
        positions = manipulated.manipulated[:count]
        trained, trained_labels = manipulated.as_trained(positions)
        test = manipulated.affected_test
        non_target = (test.labels != design.target_class).nonzero().flatten()[:count]
        outcome = self.outcomes.get(self.label(design))
        predictions = None
        if outcome is not None:
            model = outcome.trained.model
            logits = predict_logits(model, test.subset(non_target), self.splits.info)
            predictions = logits.argmax(1).cpu().numpy()
        return {"train_images": trained.numpy(), "train_labels": trained_labels.numpy(),
                "test_images": test.images[non_target].numpy(), "test_labels": test.labels[non_target].numpy(),
                "predictions": predictions}

    def experiment(self, design: BadNet) -> ExperimentConfig:
        return ExperimentConfig(data=self.data, manipulation={"name": "badnet", **to_dict(design)}, model=self.model,
                                train=self.train)

    def is_trained(self, design: BadNet) -> bool:
        return self.store.is_complete("original", to_dict(self.experiment(design)))

    def attack(self, design: BadNet) -> AttackOutcome:
        """Train (or load) a model on the poisoned data and measure the attack (cached per design)."""
        started = time.perf_counter()
        trained = train_original(self.experiment(design), self.store, self.device, progress=self.progress)
        outcome = AttackOutcome(design, dict(trained.metrics), time.perf_counter() - started, trained.cache_hit,
                                trained)
        self.outcomes[self.label(design)] = outcome
        return outcome

    def outcome_table(self) -> pd.DataFrame:
        """One row per design measured so far, in the order they were tried."""
        rows = [{"design": label, **{key: outcome.metrics.get(key, float("nan")) for key in OUTCOME_METRICS},
                 "seconds": outcome.seconds, "cached": outcome.cache_hit}
                for label, outcome in self.outcomes.items()]
        return pd.DataFrame(rows, columns=["design", *OUTCOME_METRICS, "seconds", "cached"])


# Figures ------------------------------------------------------------------------------------------------

def _rgb(pixels: np.ndarray) -> np.ndarray:
    image = np.transpose(pixels, (1, 2, 0))
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image


def sample_titles(samples: dict[str, Any], class_names: tuple[str, ...]) -> list[str]:
    train = [f"trained as {class_names[y]}" for y in samples["train_labels"]]
    if samples["predictions"] is None:
        test = [f"test: {class_names[y]}" for y in samples["test_labels"]]
    else:
        test = [f"{class_names[y]} → {class_names[p]}" for y, p in zip(samples["test_labels"], samples["predictions"])]
    return train + test


def samples_figure(lab: TriggerLab, design: BadNet, count: int = 6) -> go.Figure:
    """Top: poisoned training samples as the model sees them. Bottom: triggered test images (D_m),
    titled with their clean label, and the trained model's prediction once the design was trained."""
    samples = lab.samples(design, count)
    titles = sample_titles(samples, lab.splits.info.class_names)
    figure = make_subplots(rows=2, cols=count, subplot_titles=titles, horizontal_spacing=0.01, vertical_spacing=0.1)
    for column in range(count):
        figure.add_trace(go.Image(z=_rgb(samples["train_images"][column])), row=1, col=column + 1)
        figure.add_trace(go.Image(z=_rgb(samples["test_images"][column])), row=2, col=column + 1)
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    figure.update_annotations(font_size=11)
    # A grey page, so that a white patch on an image's edge stays visible.
    figure.update_layout(title=samples_title(lab, design), height=380, width=FIGURE_WIDTH, paper_bgcolor="#dde3ea",
                         margin=dict(l=10, r=10, t=70, b=10))
    return figure


def samples_title(lab: TriggerLab, design: BadNet) -> str:
    n = lab.manipulated(design).n_manipulated
    return f"{lab.label(design)}: {n} poisoned training images (top), triggered test images (bottom)"


def outcome_figure(table: pd.DataFrame, current: str | None = None) -> go.Figure:
    """Attack success and clean accuracy of every design measured so far; the current one outlined."""
    figure = go.Figure()
    for metric, name in OUTCOME_METRICS.items():
        widths = [3 if design == current else 0 for design in table["design"]]
        figure.add_trace(go.Bar(x=table["design"], y=table[metric], name=name, text=table[metric].round(3),
                                textposition="outside", marker_line_width=widths, marker_line_color="black"))
    figure.update_yaxes(range=[0, 1.1], title="share")
    figure.update_xaxes(visible=not table.empty)
    figure.update_layout(barmode="group", height=360, width=FIGURE_WIDTH, title=outcome_title(table, current),
                         margin=dict(l=10, r=10, t=60, b=10))
    return figure


def outcome_title(table: pd.DataFrame, current: str | None) -> str:
    if table.empty:
        return "No design measured yet: press “train and measure”"
    row = table[table["design"] == current]
    if row.empty:
        return "Designs measured so far (the current one is not trained yet)"
    row = row.iloc[0]
    return f"{current}: attack success {row['asr']:.3f}, clean accuracy {row['acc_clean']:.3f}"


# Widgets ------------------------------------------------------------------------------------------------

class TriggerDesigner(Explorer):
    """Sliders for the trigger, the samples redrawn on release, a button that trains and measures."""

    title = "trigger designer"

    def __init__(self, lab: TriggerLab | None = None, count: int = 6, **design: Any):
        self.lab = lab or TriggerLab()
        self.count = count
        self._syncing = False
        self.initial = self.lab.design(**design)
        if self.lab.is_trained(self.initial):
            self.lab.attack(self.initial)  # a cached design: load it so its outcome shows at once

    def static_figures(self) -> list[go.Figure]:
        figures = [samples_figure(self.lab, self.initial, self.count)]
        if len(self.lab.outcomes):
            figures.append(outcome_figure(self.lab.outcome_table(), self.lab.label(self.initial)))
        return figures

    def build(self) -> Any:
        import ipywidgets as w

        height, width = self.lab.image_size
        design = self.initial
        names = self.lab.splits.info.class_names
        slider = functools.partial(w.IntSlider, continuous_update=False, style={"description_width": "110px"})
        self.patch_size = slider(value=design.patch_size, min=1, max=min(height, width) // 2,
                                 description="patch size")
        self.row = slider(value=height - design.patch_size if design.row is None else design.row, min=0,
                          max=height - design.patch_size, description="top row")
        self.col = slider(value=width - design.patch_size if design.col is None else design.col, min=0,
                          max=width - design.patch_size, description="left column")
        self.value = w.FloatSlider(value=design.value, min=0.05, max=1.0, step=0.05, continuous_update=False,
                                   description="intensity", style={"description_width": "110px"})
        self.target = w.Dropdown(options=[(f"{i}: {name}", i) for i, name in enumerate(names)],
                                 value=design.target_class, description="target class",
                                 style={"description_width": "110px"})
        self.fraction = w.FloatSlider(value=design.fraction, min=0.005, max=0.1, step=0.005, readout_format=".1%",
                                      continuous_update=False, description="poisoned share",
                                      style={"description_width": "110px"})
        self.train_button = w.Button(description="train and measure", icon="play", button_style="primary",
                                     layout=w.Layout(width="auto"))
        self.status = css_class(w.HTML(), "unlearnkit-status")
        self.samples = go.FigureWidget(samples_figure(self.lab, design, self.count))
        self.outcomes = go.FigureWidget(outcome_figure(self.lab.outcome_table(), self.lab.label(design)))
        for control in (self.patch_size, self.row, self.col, self.value, self.target, self.fraction):
            control.observe(self._redraw, names="value")
        self.train_button.on_click(self._train)
        self._say_state(design)
        controls = w.VBox([self.patch_size, self.row, self.col, self.value, self.target, self.fraction,
                           w.HBox([self.train_button, self.status])])
        return css_class(w.VBox([controls, self.samples, self.outcomes]), "unlearnkit-trigger-designer")

    def current(self) -> BadNet:
        height, width = self.lab.image_size
        size = self.patch_size.value
        self._syncing = True  # keeping the patch inside the image may move row / col: draw once
        try:
            self.row.max, self.col.max = height - size, width - size
        finally:
            self._syncing = False
        return self.lab.design(patch_size=size, row=min(self.row.value, height - size),
                               col=min(self.col.value, width - size), value=self.value.value,
                               target_class=self.target.value, fraction=self.fraction.value)

    def _redraw(self, change: Any = None) -> None:
        if self._syncing:
            return
        design = self.current()
        if self.lab.is_trained(design) and self.lab.label(design) not in self.lab.outcomes:
            self.lab.attack(design)
        self._draw(design)

    def _draw(self, design: BadNet) -> None:
        fresh = samples_figure(self.lab, design, self.count)
        with self.samples.batch_update():
            for trace, new in zip(self.samples.data, fresh.data):
                trace.z = new.z
            for annotation, new in zip(self.samples.layout.annotations, fresh.layout.annotations):
                annotation.text = new.text
            self.samples.layout.title.text = fresh.layout.title.text
        table = self.lab.outcome_table()
        fresh = outcome_figure(table, self.lab.label(design))
        with self.outcomes.batch_update():
            for trace, new in zip(self.outcomes.data, fresh.data):
                trace.x, trace.y, trace.text = new.x, new.y, new.text
                trace.marker.line.width = new.marker.line.width
            self.outcomes.layout.title.text = fresh.layout.title.text
            self.outcomes.layout.xaxis.visible = fresh.layout.xaxis.visible
        self._say_state(design)

    def _say_state(self, design: BadNet) -> None:
        outcome = self.lab.outcomes.get(self.lab.label(design))
        if outcome is None:
            self.status.value = f"<b>{self.lab.label(design)}</b>: not trained yet"
        else:
            how = "from the cache" if outcome.cache_hit else f"trained in {outcome.seconds:.0f} s"
            self.status.value = (f"<b>{self.lab.label(design)}</b>: attack success {outcome.metrics['asr']:.3f}, "
                                 f"clean accuracy {outcome.metrics['acc_clean']:.3f} ({how})")

    def _train(self, button: Any = None) -> None:
        design = self.current()
        self.train_button.disabled = True
        self.status.value = f"<b>{self.lab.label(design)}</b>: training a {self.lab.model} for " \
                            f"{self.lab.train.steps} steps ..."
        try:
            self.lab.attack(design)
        finally:
            self.train_button.disabled = False
        self._draw(design)


def quick_lab_for(data: DataConfig, model: str = "small-cnn", store: ArtifactStore | None = None,
                  device: str | None = None, train_subset: int = 4000) -> TriggerLab:
    """A lab on the data of a series, capped at ``train_subset`` training samples so a design trains in seconds."""
    subset = train_subset if data.train_subset is None else min(data.train_subset, train_subset)
    quick = DataConfig(**{**to_dict(data), "train_subset": subset, "val_size": min(data.val_size, subset // 8)})
    return TriggerLab(data=quick, model=model, store=store, device=device)


