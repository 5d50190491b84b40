"""The plotly figures of the language-model notebook."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .figures import COLOURS, _method_colours, training_curves
from .language import LanguageOriginal

METRIC_TITLES = {"acc_clean": "clean test accuracy", "asr": "attack success rate",
                 "gus_mean": "GUS mean (0 = no trace)", "mia_auc": "loss-MIA AUC (0.5 = no trace)"}


def fine_tuning_curves(originals: list[LanguageOriginal]) -> go.Figure:
    """Training loss and accuracy of M_o over the fine-tuning steps, one line per manipulation and seed."""
    return training_curves(originals, title="Fine-tuning the original model M_o on the manipulated texts")


def _title(table: pd.DataFrame, manipulation: str, metric: str) -> str:
    applies = table.loc[table["manipulation"] == manipulation, metric].notna().any()
    return f"{manipulation}<br>{METRIC_TITLES[metric]}" + ("" if applies else "<br>(does not apply)")


def before_after(table: pd.DataFrame) -> go.Figure:
    """Each selected method's metrics after unlearning (bars, one per alpha) against M_o's (black ticks).

    One row per manipulation; metrics that do not apply to it (ASR without a trigger, GUS without
    Gaussian poisons) are left out of its row.
    """
    manipulations = list(dict.fromkeys(table["manipulation"]))
    metrics = [m for m in METRIC_TITLES if m in table]
    colours = _method_colours(table["method"].unique())
    figure = make_subplots(rows=len(manipulations), cols=len(metrics), vertical_spacing=0.16, horizontal_spacing=0.06,
                           subplot_titles=[_title(table, m, k) for m in manipulations for k in metrics])
    alphas = sorted(table["alpha"].unique())
    for row, manipulation in enumerate(manipulations, start=1):
        mine = table[table["manipulation"] == manipulation]
        for col, metric in enumerate(metrics, start=1):
            if mine[metric].isna().all():
                figure.update_xaxes(visible=False, row=row, col=col)
                figure.update_yaxes(visible=False, row=row, col=col)
                continue
            for alpha in alphas:
                at = mine[mine["alpha"] == alpha]
                figure.add_trace(go.Bar(x=at["method"], y=at[metric], name=f"alpha={alpha:g}",
                                        marker_color=[colours[m] for m in at["method"]],
                                        marker_opacity=0.45 + 0.55 * (alpha / max(alphas)),
                                        showlegend=False, hovertemplate=f"%{{x}} alpha={alpha:g}: %{{y:.3f}}"),
                                 row=row, col=col)
            before = mine.groupby("method", sort=False)[f"before_{metric}"].mean()
            figure.add_trace(go.Scatter(x=before.index, y=before.values, mode="markers", name="M_o (before)",
                                        marker={"symbol": "line-ew-open", "size": 28, "color": "black",
                                                "line": {"width": 3}},
                                        showlegend=row == 1 and col == 1), row=row, col=col)
    figure.update_annotations(font_size=12)
    figure.update_layout(title="Before (M_o, black) and after unlearning (bars; darker = larger alpha), selected runs",
                         barmode="group", height=350 * len(manipulations) + 100, margin={"t": 110})
    return figure


def gus_histograms(scores: pd.DataFrame) -> go.Figure:
    """Histograms of the per-poison scores I_z: M_o, each unlearned model, and control noise, against N(0, 1)."""
    manipulations = list(dict.fromkeys(scores["manipulation"]))
    figure = make_subplots(rows=1, cols=max(len(manipulations), 1), subplot_titles=manipulations)
    models = list(dict.fromkeys(scores["model"]))
    colours = {model: COLOURS[i % len(COLOURS)] for i, model in enumerate(models)}
    grid = np.linspace(-4, 4, 161)
    for col, manipulation in enumerate(manipulations, start=1):
        mine = scores[scores["manipulation"] == manipulation]
        for model in models:
            values = mine.loc[mine["model"] == model, "score"]
            if len(values):
                figure.add_trace(go.Histogram(x=values, name=model, histnorm="probability density", opacity=0.5,
                                              marker_color=colours[model], legendgroup=model, showlegend=col == 1,
                                              xbins={"start": -6, "end": 6, "size": 0.4}), row=1, col=col)
        figure.add_trace(go.Scatter(x=grid, y=np.exp(-grid ** 2 / 2) / np.sqrt(2 * np.pi), name="N(0, 1)",
                                    line={"color": "black", "dash": "dash"}, showlegend=col == 1), row=1, col=col)
    figure.update_xaxes(title_text="I_z = <xi, grad> / (eps ||grad||)")
    figure.update_layout(barmode="overlay", height=420,
                         title="Gaussian Unlearning Score per poison: a model that never saw the noise gives N(0, 1)")
    return figure
