"""The SSD explorer: move SSD's selection weighting ``a`` and dampening ``lam`` over stored importances.

Selective Synaptic Dampening (Foster et al., AAAI 2024) selects the parameters with ``I_f > a * I_X``
and scales them by ``min(lam * I_X / I_f, 1)``. The importances ``I_f`` (forget set) and ``I_X``
(reference set) depend only on the original model and the data, so they are computed once (the
series' ``importance`` stage keeps them) and every ``(a, lam)`` costs one dampening pass and one
evaluation. :class:`SSDLab` gives, for a pair, the share of parameters selected overall and per layer
and the resulting Acc_corr / Acc_retain / attack success of the dampened copy of the cached original
model (Goel et al. 2024 sweep ``a`` over 0.1 ... 1e6 and ``lam`` over 0.1a ... 10a).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ..experiment import TrainedOriginal
from ..metrics import evaluate
from ..unlearning import SSDImportances, dampen
from .base import Explorer, css_class

OUTCOME_METRICS = {"acc_corr": "Acc_corr", "acc_retain": "Acc_retain", "asr": "attack success"}
A_RANGE = (-1.0, 6.0)
"""log10 of the selection weightings the explorer offers (Goel et al.'s grid spans 0.1 ... 1e6)."""
LAM_RANGE = (-2.0, 7.0)


def layer_of(parameter: str) -> str:
    """``blocks.0.0.weight`` -> ``blocks.0.0``: a layer's weight and bias count together."""
    return parameter.rsplit(".", 1)[0] if "." in parameter else parameter


@dataclass
class SSDLab:
    """Importances of one original model on one forget set, and what SSD does with them."""

    label: str
    original: TrainedOriginal
    importances: SSDImportances
    forget: torch.Tensor | None = None
    """Positions of S_f in the training set (adds the S_f metrics to each outcome)."""
    outcomes: dict[tuple[float, float], dict[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [name for name, _ in self.original.model.named_parameters()]
        if sorted(names) != sorted(self.importances.forget):
            raise ValueError(f"{self.label}: the importances do not belong to this model's parameters")
        with torch.no_grad():
            ratio = torch.cat([(self.importances.forget[n].double() / self.importances.reference[n].double()).flatten()
                               for n in names])
        self._names = names
        # Ratios I_f / I_X, sorted, for the share-selected curve: infinite where only S_f moves a
        # parameter (always selected), NaN for 0 / 0 (never selected, sorted first).
        self._sorted = np.sort(np.nan_to_num(ratio.numpy(), nan=-np.inf, posinf=np.inf))

    @property
    def n_parameters(self) -> int:
        return len(self._sorted)

    def share_curve(self, a: np.ndarray) -> np.ndarray:
        """Share of all parameters whose importance ratio exceeds each weighting in ``a`` (for plotting)."""
        above = len(self._sorted) - np.searchsorted(self._sorted, np.asarray(a, dtype=float), side="right")
        return above / len(self._sorted)

    @torch.no_grad()
    def selected(self, a: float) -> dict[str, torch.Tensor]:
        """SSD's selection ``I_f > a * I_X`` per parameter tensor, exactly as :func:`dampen` applies it."""
        return {n: self.importances.forget[n] > a * self.importances.reference[n] for n in self._names}

    def selected_share(self, a: float) -> float:
        return sum(int(mask.sum()) for mask in self.selected(a).values()) / self.n_parameters

    def layer_shares(self, a: float) -> pd.DataFrame:
        """Per layer (weights and biases together): parameters, how many are selected, and the share."""
        rows = {}
        for name, mask in self.selected(a).items():
            row = rows.setdefault(layer_of(name), {"layer": layer_of(name), "parameters": 0, "selected": 0})
            row["parameters"] += mask.numel()
            row["selected"] += int(mask.sum())
        table = pd.DataFrame(list(rows.values()))
        table["share"] = table["selected"] / table["parameters"]
        return table

    def outcome(self, a: float, lam: float) -> dict[str, float]:
        """Metrics of the original model dampened with ``(a, lam)`` (cached per pair)."""
        key = (float(a), float(lam))
        if key not in self.outcomes:
            trained = self.original
            model = copy.deepcopy(trained.model)
            device = next(model.parameters()).device
            on_device = SSDImportances({n: t.to(device) for n, t in self.importances.forget.items()},
                                       {n: t.to(device) for n, t in self.importances.reference.items()},
                                       self.importances.batch_size, self.importances.reference_set)
            counts = dampen(model, on_device, a, lam)
            metrics = evaluate(model, trained.splits, trained.manipulated, self.forget,
                               autocast_bf16=trained.config.train.bf16)
            self.outcomes[key] = {**metrics, "selected": sum(counts.values()),
                                  "selected_share": sum(counts.values()) / self.n_parameters}
        return self.outcomes[key]

    def original_metrics(self) -> dict[str, float]:
        return dict(self.original.metrics)


# Figures ------------------------------------------------------------------------------------------------

def explorer_figure(lab: SSDLab, a: float, lam: float) -> go.Figure:
    """Left: share selected against ``a`` (marker at ``a``). Middle: share selected per layer.
    Right: Acc_corr, Acc_retain, attack success of M_o and of SSD at ``(a, lam)``."""
    figure = make_subplots(rows=1, cols=3, column_widths=[0.3, 0.4, 0.3], horizontal_spacing=0.08,
                           subplot_titles=["share selected against a", "share selected per layer",
                                           "M_o and after SSD"])
    grid = np.logspace(*A_RANGE, 57)
    figure.add_trace(go.Scatter(x=grid, y=lab.share_curve(grid), mode="lines", name="share selected",
                                line_color="#1f77b4", showlegend=False), row=1, col=1)
    figure.add_trace(go.Scatter(x=[a], y=[lab.selected_share(a)], mode="markers", marker=dict(size=12, color="black"),
                                name="a", showlegend=False), row=1, col=1)
    layers = lab.layer_shares(a)
    figure.add_trace(go.Bar(x=layers["layer"], y=layers["share"], name="per layer", showlegend=False,
                            marker_color="#ff7f0e", text=[f"{s:.2%}" for s in layers["share"]],
                            textposition="outside",
                            customdata=layers[["selected", "parameters"]].to_numpy(),
                            hovertemplate="%{x}: %{customdata[0]} of %{customdata[1]} selected<extra></extra>"),
                     row=1, col=2)
    before, after = lab.original_metrics(), lab.outcome(a, lam)
    metrics = [m for m in OUTCOME_METRICS if not np.isnan(before.get(m, np.nan))]
    names = [OUTCOME_METRICS[m] for m in metrics]
    figure.add_trace(go.Bar(x=names, y=[before[m] for m in metrics], name="M_o", marker_color="#7f7f7f",
                            text=[f"{before[m]:.3f}" for m in metrics], textposition="outside"), row=1, col=3)
    figure.add_trace(go.Bar(x=names, y=[after[m] for m in metrics], name="SSD", marker_color="#2ca02c",
                            text=[f"{after[m]:.3f}" for m in metrics], textposition="outside"), row=1, col=3)
    figure.update_xaxes(type="log", title_text="selection weighting a", row=1, col=1)
    figure.update_yaxes(type="log", range=[-6.5, 0.1], title_text="share of parameters", row=1, col=1)
    top = max(0.01, float(layers["share"].max()) * 1.3)
    figure.update_yaxes(range=[0, top], tickformat=".1%", row=1, col=2)
    figure.update_yaxes(range=[0, 1.15], row=1, col=3)
    figure.update_traces(textfont_size=10, selector=dict(type="bar"))
    figure.update_layout(title=explorer_title(lab, a, lam), height=440, width=1100, barmode="group",
                         margin=dict(l=10, r=10, t=80, b=10), legend=dict(orientation="h", y=-0.2, x=0.7))
    return figure


def explorer_title(lab: SSDLab, a: float, lam: float) -> str:
    after = lab.outcome(a, lam)
    return (f"{lab.label}: a = {a:.3g}, λ = {lam:.3g} dampen {after['selected']:,} of {lab.n_parameters:,} "
            f"parameters ({after['selected_share']:.3%})")


# Widgets ------------------------------------------------------------------------------------------------

class SSDExplorer(Explorer):
    """A menu of labs (e.g. one per manipulation) and log sliders for ``a`` and ``lam``."""

    title = "SSD explorer"

    def __init__(self, labs: list[SSDLab] | SSDLab, a: float = 10.0, lam: float = 1.0):
        self.labs = {lab.label: lab for lab in ([labs] if isinstance(labs, SSDLab) else labs)}
        if not self.labs:
            raise ValueError("the SSD explorer needs the importances of at least one model")
        self.label = next(iter(self.labs))
        self.a, self.lam = a, lam

    @classmethod
    def from_series(cls, series: Any, importances: list[Any], originals: list[Any], **kwargs: Any) -> SSDExplorer:
        """Labs from :meth:`Series.importances` and :meth:`Series.originals` (matched by manipulation and seed)."""
        from ..manipulations import forget_sets

        labs = []
        for item in importances:
            original = next(o for o in originals if o.label == item.label and o.seed == item.seed)
            forget = forget_sets(original.trained.manipulated.manipulated, [item.alpha], item.seed)[float(item.alpha)]
            labs.append(SSDLab(item.label, original.trained, item.tensors(), forget))
        return cls(labs, **kwargs)

    @property
    def lab(self) -> SSDLab:
        return self.labs[self.label]

    def static_figures(self) -> list[go.Figure]:
        return [explorer_figure(lab, self.a, self.lam) for lab in self.labs.values()]

    def build(self) -> Any:
        import ipywidgets as w

        style = {"description_width": "140px"}
        self.menu = w.Dropdown(options=list(self.labs), value=self.label, description="model", style=style)
        self.a_slider = w.FloatLogSlider(value=self.a, base=10, min=A_RANGE[0], max=A_RANGE[1], step=0.25,
                                         description="a (selection)", continuous_update=False, readout_format=".3g",
                                         style=style)
        self.lam_slider = w.FloatLogSlider(value=self.lam, base=10, min=LAM_RANGE[0], max=LAM_RANGE[1], step=0.25,
                                           description="λ (dampening)", continuous_update=False,
                                           readout_format=".3g", style=style)
        self.figure = go.FigureWidget(explorer_figure(self.lab, self.a, self.lam))
        self.status = css_class(w.HTML(), "unlearnkit-status")
        for control in (self.menu, self.a_slider, self.lam_slider):
            control.observe(self._update, names="value")
        self._say()
        controls = w.VBox([self.menu, self.a_slider, self.lam_slider, self.status])
        return css_class(w.VBox([controls, self.figure]), "unlearnkit-ssd-explorer")

    def _update(self, change: Any = None) -> None:
        self.label, self.a, self.lam = self.menu.value, self.a_slider.value, self.lam_slider.value
        fresh = explorer_figure(self.lab, self.a, self.lam)
        with self.figure.batch_update():
            for trace, new in zip(self.figure.data, fresh.data):
                trace.x, trace.y, trace.text = new.x, new.y, getattr(new, "text", None)
                if isinstance(new, go.Bar):
                    trace.customdata = new.customdata
            self.figure.layout.yaxis2.range = fresh.layout.yaxis2.range
            self.figure.layout.title.text = fresh.layout.title.text
        self._say()

    def _say(self) -> None:
        after = self.lab.outcome(self.a, self.lam)
        values = ", ".join(f"{name} {after[m]:.3f}" for m, name in OUTCOME_METRICS.items() if not np.isnan(after[m]))
        self.status.value = (f"<b>{self.label}</b>: a = {self.a:.3g}, λ = {self.lam:.3g}: "
                             f"{after['selected_share']:.3%} of the parameters dampened; {values}")
