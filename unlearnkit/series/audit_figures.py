"""Figures of the audits: histograms of the Gaussian Unlearning Score (Pawelczyk et al., ICLR 2025,
Figure 6) and membership inference beside GUS."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..audits import GaussianUnlearningScore
from .figures import COLOURS, _method_colours

NULL_COLOUR = "#c7c7c7"
POISON_COLOUR = "#222222"  # M_o's poisons: outside the methods' palette


def _bins(scores: list[np.ndarray]) -> tuple[float, float, float]:
    """Shared bin edges covering every score and at least [-4, 4]; at most 60 bins."""
    values = np.concatenate([s for s in scores if len(s)]) if any(len(s) for s in scores) else np.zeros(1)
    low, high = min(-4.0, math.floor(values.min())), max(4.0, math.ceil(values.max()))
    size = max(0.25, (high - low) / 60)
    return low, high + size, size


def _describe(score: GaussianUnlearningScore) -> str:
    p = score.p_value
    shown = "p < 1e-300" if p == 0 else f"p = {p:.1e}"
    return f"mean {score.mean:+.2f}, {shown}, TPR@1%FPR {score.tpr_at_fpr(0.01):.2f}"


def gus_histograms(original: GaussianUnlearningScore, after: dict[str, GaussianUnlearningScore],
                   title: str | None = None, columns: int = 3) -> go.Figure:
    """Histograms of ``I_z`` against the N(0, 1) density, one panel per model.

    The first panel is the original model M_o: fresh noise never trained on (light grey, the null) and
    the poisons (dark). Every other panel is the poisons after one unlearning method (``after``: label ->
    score), with M_o's poisons as a dark outline for reference. A model that no longer carries the
    poisons has its histogram on the N(0, 1) curve.
    """
    panels = 1 + len(after)
    columns = min(columns, panels)
    rows = math.ceil(panels / columns)
    titles = [f"M_o: poisons {_describe(original)}"] + [f"{label}: {_describe(s)}" for label, s in after.items()]
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=titles, shared_xaxes=True,
                           vertical_spacing=0.22 / max(rows - 1, 1) if rows > 1 else 0.1)
    start, end, size = _bins([original.scores.numpy(), original.control_scores.numpy(),
                              *[s.scores.numpy() for s in after.values()]])
    grid = np.linspace(start, end, 400)
    density = np.exp(-grid ** 2 / 2) / math.sqrt(2 * math.pi)
    bins = dict(start=start, end=end, size=size)
    colours = _method_colours([label.split(" ")[0] for label in after])

    def place(panel: int) -> dict[str, int]:
        return {"row": panel // columns + 1, "col": panel % columns + 1}

    figure.add_trace(go.Histogram(x=original.control_scores.numpy(), xbins=bins, histnorm="probability density",
                                  name="fresh noise on M_o (never trained on)", marker_color=NULL_COLOUR,
                                  opacity=0.55), **place(0))
    figure.add_trace(go.Histogram(x=original.scores.numpy(), xbins=bins, histnorm="probability density",
                                  name="poisons on M_o", marker_color=POISON_COLOUR, opacity=0.55), **place(0))
    for panel, (label, score) in enumerate(after.items(), start=1):
        colour = colours.get(label.split(" ")[0], COLOURS[panel % len(COLOURS)])
        figure.add_trace(go.Histogram(x=original.scores.numpy(), xbins=bins, histnorm="probability density",
                                      marker=dict(color="rgba(0,0,0,0)", line=dict(color=POISON_COLOUR, width=1)),
                                      name="poisons on M_o", legendgroup="poisons on M_o", showlegend=False),
                         **place(panel))
        figure.add_trace(go.Histogram(x=score.scores.numpy(), xbins=bins, histnorm="probability density",
                                      name=f"poisons after {label}", marker_color=colour, opacity=0.7),
                         **place(panel))
    for panel in range(panels):
        figure.add_trace(go.Scatter(x=grid, y=density, mode="lines", line=dict(color="black", width=1.5),
                                    name="N(0, 1): no trace of the poison", legendgroup="null",
                                    showlegend=panel == 0), **place(panel))
    figure.update_xaxes(showticklabels=True)
    figure.update_xaxes(title_text="I_z", row=rows)
    figure.update_annotations(font_size=11)
    figure.update_layout(barmode="overlay", height=300 * rows + 120, bargap=0,
                         title=title or "Gaussian Unlearning Score I_z of the poisons: before and after unlearning",
                         legend=dict(orientation="h", yanchor="top", y=-0.12 if rows == 1 else -0.06, x=0))
    return figure


def audit_comparison(overview: pd.DataFrame, significance: float = 0.05) -> go.Figure:
    """Membership inference and GUS side by side: TPR at 1% FPR of each model (the original M_o and the
    selected run of every method and budget), one panel per audit.

    The dashed line is chance (1%). Hatched bars are models the audit cannot tell from unlearned (no
    detection at ``significance``); a star marks models where the MIA says "unlearned" and GUS does not.
    """
    table = overview.copy()
    table["label"] = [m if pd.isna(b) else (f"{m} (no training)" if b == 0 else f"{m} @ {b:.0%}")
                      for m, b in zip(table["method"], table["budget_share"])]
    manipulations = list(table["manipulation"].unique())
    figure = make_subplots(rows=len(manipulations), cols=2, shared_yaxes=True,
                           subplot_titles=[title for m in manipulations for title in
                                           (f"{m}: loss-threshold MIA on S_f", f"{m}: Gaussian Unlearning Score")])
    colours = _method_colours([m for m in table["method"].unique() if m != "original M_o"])
    colours["original M_o"] = "black"
    for row, manipulation in enumerate(manipulations, start=1):
        mine = table[table["manipulation"] == manipulation]
        bar_colours = [colours[m] for m in mine["method"]]
        for column, (metric, detects, name) in enumerate(
                [("mia_tpr_at_1pct_fpr", "mia_detects", "MIA"), ("gus_tpr_at_1pct_fpr", "gus_detects", "GUS")],
                start=1):
            if metric not in mine:
                continue
            hatch = ["" if d else "/" for d in mine[detects]]
            text = ["★" if (column == 2 and flag) else "" for flag in mine["mia_misses_gus_detects"]]
            figure.add_trace(go.Bar(
                x=mine["label"], y=mine[metric], marker=dict(color=bar_colours, pattern_shape=hatch), text=text,
                textposition="outside", name=name, showlegend=False,
                hovertemplate="%{x}: TPR %{y:.3f} at 1% FPR<extra>" + name + "</extra>"), row=row, col=column)
            figure.add_hline(y=0.01, line_dash="dash", line_color="grey", row=row, col=column,
                             annotation_text="chance (1%)", annotation_position="top right")
    figure.update_yaxes(title_text="TPR at 1% FPR", rangemode="tozero", col=1)
    figure.update_xaxes(tickangle=-40)
    figure.update_layout(
        height=460 * len(manipulations),
        title=("Does the model still carry the poisons? TPR at 1% FPR of each audit<br><sup>hatched: looks unlearned "
               f"to that audit (no detection at level {significance:g}); ★: the MIA says unlearned, GUS still "
               "detects the poisons</sup>"))
    return figure
