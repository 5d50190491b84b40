"""Plotly figures of the ``similar`` family."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..manipulations import NearDuplicated, duplicate_similarity
from .figures import _rgb
from .stages import Poisoned

COLOURS = px.colors.qualitative.D3
DASHES = ["solid", "dash", "dot", "dashdot", "longdash"]


def _colour_map(values) -> dict[str, str]:
    ordered = list(dict.fromkeys(values))
    return {value: COLOURS[i % len(COLOURS)] for i, value in enumerate(ordered)}


def duplicate_gallery(poisoned: Poisoned, originals: int = 6) -> go.Figure:
    """The first S_m samples as trained (top row) and their near-duplicates as trained below, with PSNR."""
    manipulated = poisoned.manipulated
    if not isinstance(manipulated, NearDuplicated):
        raise ValueError(f"{poisoned.label} has no near-duplicates")
    similarity = duplicate_similarity(manipulated)
    sources = manipulated.manipulated[:originals]
    copies = len(manipulated.duplicates) // max(1, manipulated.n_manipulated)
    images, titles = {}, {}
    for column, source in enumerate(sources.tolist(), start=1):
        pixels, labels = manipulated.as_trained(sources[column - 1:column])
        images[1, column], titles[1, column] = pixels[0], f"S_m sample, label {int(labels[0])}"
        mine = similarity[similarity["duplicate_of"] == source]
        pixels, _ = manipulated.as_trained(manipulated.duplicates.new_tensor(mine["position"].tolist()))
        for row, (copy, psnr) in enumerate(zip(pixels, mine["psnr"]), start=2):
            images[row, column], titles[row, column] = copy, f"PSNR {psnr:.1f} dB"
    rows, columns = 1 + copies, len(sources)
    figure = make_subplots(rows=rows, cols=columns, horizontal_spacing=0.01, vertical_spacing=0.05,
                           subplot_titles=[titles.get((r, c), "") for r in range(1, rows + 1)
                                           for c in range(1, columns + 1)])
    for (row, column), pixels in images.items():
        figure.add_trace(go.Image(z=_rgb(pixels.cpu().numpy())), row=row, col=column)
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    figure.update_annotations(font_size=10)
    figure.update_layout(title=f"{poisoned.label}: S_m samples and their near-duplicates, as trained "
                               f"(median PSNR {similarity['psnr'].median():.1f} dB, "
                               f"pixel cosine {similarity['cosine'].median():.3f})",
                         height=130 * rows + 80, margin=dict(l=10, r=10, t=80, b=10))
    return figure


def expansion_vs_alpha(expansion: pd.DataFrame) -> go.Figure:
    """Precision (top) and recall (bottom) of each scorer's expansion against alpha, one column per manipulation."""
    manipulations = list(dict.fromkeys(expansion["manipulation"]))
    sizes = list(dict.fromkeys(expansion["size"]))
    colours = _colour_map(expansion["scorer"])
    figure = make_subplots(rows=2, cols=len(manipulations), shared_xaxes=True, shared_yaxes=True,
                           subplot_titles=manipulations, vertical_spacing=0.08)
    mean = (expansion.groupby(["manipulation", "scorer", "size", "alpha"], sort=False)[["precision", "recall"]]
            .mean().reset_index())
    for column, manipulation in enumerate(manipulations, start=1):
        for (scorer, size), group in mean[mean["manipulation"] == manipulation].groupby(["scorer", "size"], sort=False):
            for row, metric in enumerate(["precision", "recall"], start=1):
                figure.add_trace(go.Scatter(
                    x=group["alpha"], y=group[metric], mode="lines+markers", name=f"{scorer} {size}",
                    legendgroup=f"{scorer} {size}", showlegend=row == 1 and column == 1,
                    line=dict(color=colours[scorer], dash=DASHES[sizes.index(size) % len(DASHES)])),
                    row=row, col=column)
    figure.update_yaxes(title_text="precision", range=[-0.03, 1.03], row=1, col=1)
    figure.update_yaxes(title_text="recall", range=[-0.03, 1.03], row=2, col=1)
    figure.update_xaxes(title_text="identified fraction alpha", row=2)
    figure.update_layout(height=560, title="Expanding S_f: precision and recall of the added samples "
                                           "against what is still to be found (S_m \\ S_f and near-duplicates)")
    return figure


def ranking_curves(curves: pd.DataFrame) -> go.Figure:
    """Recall against the number added (in units of |S_f|) for every scorer, one panel per manipulation."""
    manipulations = list(dict.fromkeys(curves["manipulation"]))
    colours = _colour_map(curves["scorer"])
    figure = make_subplots(rows=1, cols=len(manipulations), shared_yaxes=True, subplot_titles=manipulations)
    for column, manipulation in enumerate(manipulations, start=1):
        mine = curves[curves["manipulation"] == manipulation]
        for scorer, group in mine.groupby("scorer", sort=False):
            figure.add_trace(go.Scatter(x=group["multiple"], y=group["recall"], mode="lines", name=scorer,
                                        legendgroup=scorer, showlegend=column == 1,
                                        line=dict(color=colours[scorer])), row=1, col=column)
        to_find = mine["n_to_find"].iloc[0] / max(1, (mine["n_added"] / mine["multiple"]).iloc[0])
        figure.add_vline(x=to_find, line=dict(color="grey", dash="dot"), row=1, col=column)
    figure.update_xaxes(title_text="samples added / |S_f|")
    figure.update_yaxes(title_text="recall", range=[-0.03, 1.03], row=1, col=1)
    alpha = curves["alpha"].iloc[0] if len(curves) else np.nan
    figure.update_layout(height=420, title=f"Ranking quality at alpha={alpha:g}: recall when adding the top of each "
                                           "scorer's ranking (dotted: as many as there are to find)")
    return figure


def acc_corr_by_expansion(results: pd.DataFrame, recovery: pd.DataFrame, metric: str = "acc_corr",
                          title: str = "Acc_corr against alpha, with and without expanding S_f") -> go.Figure:
    """``metric`` of the selected models against alpha: rows = methods, columns = manipulations,
    colour = expansion; dotted: the recovery threshold (a fraction of the reference's Acc_corr)."""
    selected = results[results["selected"] & results[metric].notna()]
    manipulations = list(dict.fromkeys(selected["manipulation"]))
    methods = list(dict.fromkeys(selected["method"]))
    colours = _colour_map(selected["expansion"])
    figure = make_subplots(rows=max(1, len(methods)), cols=max(1, len(manipulations)), shared_xaxes=True,
                           shared_yaxes=True, subplot_titles=[f"{m} · {k}" for k in methods for m in manipulations],
                           vertical_spacing=0.1)
    for row, method in enumerate(methods, start=1):
        for column, manipulation in enumerate(manipulations, start=1):
            mine = selected[(selected["method"] == method) & (selected["manipulation"] == manipulation)]
            for expansion, group in mine.groupby("expansion", sort=False):
                by_alpha = group.groupby("alpha")[metric].mean()
                figure.add_trace(go.Scatter(x=by_alpha.index, y=by_alpha.values, mode="lines+markers",
                                            name=expansion, legendgroup=expansion,
                                            showlegend=row == 1 and column == 1,
                                            line=dict(color=colours[expansion])), row=row, col=column)
            if metric == "acc_corr":
                threshold = recovery.loc[recovery["manipulation"] == manipulation, "threshold"]
                if len(threshold):
                    figure.add_hline(y=threshold.mean(), line=dict(color="grey", dash="dot"), row=row, col=column)
    figure.update_xaxes(title_text="identified fraction alpha", row=len(methods))
    figure.update_yaxes(range=[-0.03, 1.03])
    figure.update_layout(height=300 * max(1, len(methods)) + 100, title=title)
    return figure


def influence_vs_alpha(results: pd.DataFrame) -> go.Figure:
    """Influence left on S_f (1 = as M_o, 0 = as the reference) against alpha, as in :func:`acc_corr_by_expansion`.

    The axis shows [-1, 1.5]: a model far less fit to S_f than the reference (e.g. one that lost the
    affected classes) runs off the bottom; the tables have its value.
    """
    figure = acc_corr_by_expansion(results, pd.DataFrame(), "influence_remaining",
                                   "Influence of S_f left after unlearning (1 = as M_o, 0 = as the reference model)")
    figure.update_yaxes(range=[-1.05, 1.55])
    figure.add_hline(y=0.0, line=dict(color="black", width=1))
    figure.add_hline(y=1.0, line=dict(color="grey", width=1, dash="dot"))
    return figure
