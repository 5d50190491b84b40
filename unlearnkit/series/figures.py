"""The series' plotly figures. Each takes tables or stage results and returns a ``go.Figure``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .stages import Importance, Original, Poisoned
from .tables import mean_over_seeds

COLOURS = px.colors.qualitative.D3
METHOD_ORDER = ["rewod", "cf", "eu", "ngd", "ga", "neggrad+", "scrub", "badt", "ssd"]


def _method_colours(methods) -> dict[str, str]:
    ordered = sorted(methods, key=lambda m: (METHOD_ORDER.index(m) if m in METHOD_ORDER else len(METHOD_ORDER), m))
    return {method: COLOURS[i % len(COLOURS)] for i, method in enumerate(ordered)}


def _rgb(pixels: np.ndarray) -> np.ndarray:
    """``[C, H, W]`` uint8 -> ``[H, W, 3]`` for ``go.Image``."""
    image = np.transpose(pixels, (1, 2, 0))
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image


def manipulated_samples(poisoned: Poisoned, per_row: int = 8) -> go.Figure:
    """Clean training images of S_m (top) and the same images as trained on (bottom), with labels."""
    names = poisoned.splits.info.class_names
    positions = poisoned.manipulated.manipulated[:per_row]
    clean = poisoned.manipulated.clean_pixels(poisoned.splits, positions).cpu().numpy()
    clean_labels = poisoned.manipulated.clean_train_labels[positions].cpu().numpy()
    trained, trained_labels = poisoned.manipulated.as_trained(positions)
    trained, trained_labels = trained.cpu().numpy(), trained_labels.cpu().numpy()
    columns = len(positions)
    titles = [f"clean: {names[y]}" for y in clean_labels] + [f"trained as: {names[y]}" for y in trained_labels]
    figure = make_subplots(rows=2, cols=columns, subplot_titles=titles, horizontal_spacing=0.01, vertical_spacing=0.08)
    for column in range(columns):
        figure.add_trace(go.Image(z=_rgb(clean[column])), row=1, col=column + 1)
        figure.add_trace(go.Image(z=_rgb(trained[column])), row=2, col=column + 1)
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    figure.update_annotations(font_size=11)
    figure.update_layout(title=f"{poisoned.label}: clean vs manipulated training samples "
                               f"({poisoned.manipulated.n_manipulated} manipulated)",
                         height=330, margin=dict(l=10, r=10, t=80, b=10))
    return figure


def manipulation_counts(poisoned: list[Poisoned]) -> go.Figure:
    """|S_m| by clean class and trained label, and |S_f| at every alpha (the nested forget-set grid)."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=["S_m: manipulated samples by clean class",
                                                           "S_f: identified samples at each alpha"])
    for i, item in enumerate(p for p in poisoned if p.seed == poisoned[0].seed):
        colour = COLOURS[i % len(COLOURS)]
        positions = item.manipulated.manipulated
        clean = item.manipulated.clean_train_labels[positions].cpu().numpy()
        trained = item.manipulated.train.labels[positions].cpu().numpy()
        names = item.splits.info.class_names
        counts = pd.DataFrame({"clean": clean, "trained": trained}).value_counts().reset_index(name="count")
        figure.add_trace(go.Bar(
            x=[names[c] for c in counts["clean"]], y=counts["count"], name=item.label, marker_color=colour,
            hovertext=[f"{names[c]} trained as {names[t]}" for c, t in zip(counts["clean"], counts["trained"])],
            legendgroup=item.label), row=1, col=1)
        alphas = sorted(item.forget)
        figure.add_trace(go.Scatter(x=alphas, y=[len(item.forget[a]) for a in alphas], mode="lines+markers",
                                    name=item.label, marker_color=colour, legendgroup=item.label, showlegend=False),
                         row=1, col=2)
    names = poisoned[0].splits.info.class_names
    figure.update_xaxes(title_text="clean class", categoryorder="array", categoryarray=list(names), row=1, col=1)
    figure.update_yaxes(title_text="samples", row=1, col=1)
    figure.update_xaxes(title_text="identified fraction alpha", row=1, col=2)
    figure.update_yaxes(title_text="|S_f|", row=1, col=2)
    figure.update_layout(barmode="group", height=420, title="Manipulated set S_m and forget sets S_f")
    return figure


def training_curves(originals: list[Original],
                    title: str = "Training the original model M_o on the manipulated data") -> go.Figure:
    """Loss and accuracy over the training steps, one line per manipulation and seed (anything with
    ``label``, ``seed`` and ``trained.history``)."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=["training loss", "training accuracy (as trained)"])
    for i, original in enumerate(originals):
        history = original.trained.history
        name = f"{original.label} (seed {original.seed})"
        colour = COLOURS[i % len(COLOURS)]
        figure.add_trace(go.Scatter(x=history["step"], y=history["loss"], name=name, line_color=colour,
                                    legendgroup=name), row=1, col=1)
        figure.add_trace(go.Scatter(x=history["step"], y=history["train_acc"], name=name, line_color=colour,
                                    legendgroup=name, showlegend=False), row=1, col=2)
    figure.update_xaxes(title_text="step")
    figure.update_layout(title=title, height=420)
    return figure


def original_metrics(originals: pd.DataFrame) -> go.Figure:
    """Clean accuracy, Acc_corr and attack success of each poisoned original model."""
    long = originals.melt(id_vars=["manipulation", "seed"], value_vars=["acc_clean", "acc_corr", "acc_retain", "asr"],
                          var_name="metric", value_name="value").dropna(subset=["value"])
    summary = long.groupby(["manipulation", "metric"], as_index=False)["value"].mean()
    figure = px.bar(summary, x="metric", y="value", color="manipulation", barmode="group", text_auto=".3f",
                    title="The original model M_o: clean accuracy, corrected accuracy Acc_corr and attack success")
    figure.update_yaxes(range=[0, 1.05], title="")
    figure.update_layout(height=420)
    return figure


def acc_corr_vs_alpha(results: pd.DataFrame, originals: pd.DataFrame, metric: str = "acc_corr",
                      title: str | None = None, bands: bool = False) -> go.Figure:
    """``metric`` of the selected model per method against alpha, one panel per manipulation.

    Reference lines: the original model M_o (dashed) and RewoD at alpha = 1 (dotted), as in
    Goel et al. (2024), Figure 2. With several seeds the lines are means and the bars (or, with
    ``bands``, shaded bands) standard deviations over seeds.
    """
    selected = results[results["selected"]].dropna(subset=[metric])
    manipulations = [m for m in originals["manipulation"].unique() if m in set(selected["manipulation"])]
    colours = _method_colours(selected["method"].unique())
    figure = make_subplots(rows=1, cols=max(len(manipulations), 1), subplot_titles=manipulations, shared_yaxes=True)
    for column, manipulation in enumerate(manipulations, start=1):
        curves = mean_over_seeds(selected[selected["manipulation"] == manipulation], ["method", "alpha"], metric)
        for method, curve in curves.groupby("method", sort=False):
            curve = curve.sort_values("alpha")
            spread = bool(curve["n"].max() > 1)
            if bands and spread:
                _add_band(figure, curve, colours[method], method, row=1, col=column)
            figure.add_trace(go.Scatter(
                x=curve["alpha"], y=curve["mean"], error_y=dict(array=curve["std"], visible=spread and not bands),
                mode="lines+markers", name=method, line_color=colours[method], legendgroup=method,
                showlegend=column == 1), row=1, col=column)
        reference = originals.loc[originals["manipulation"] == manipulation, metric].mean()
        figure.add_hline(y=reference, line_dash="dash", line_color="black", row=1, col=column,
                         annotation_text="original M_o", annotation_position="bottom left")
        rewod = curves[(curves["method"] == "rewod") & np.isclose(curves["alpha"], 1.0)]
        if len(rewod):
            figure.add_hline(y=float(rewod["mean"].iloc[0]), line_dash="dot", line_color=colours["rewod"],
                             row=1, col=column, annotation_text="RewoD at alpha=1", annotation_position="top left")
        figure.update_xaxes(title_text="identified fraction alpha", row=1, col=column)
    figure.update_yaxes(title_text=metric, row=1, col=1)
    figure.update_layout(title=title or f"{metric} after unlearning against the identified fraction alpha",
                         height=460)
    return figure


def _add_band(figure: go.Figure, curve: pd.DataFrame, colour: str, method: str, row: int, col: int) -> None:
    """A shaded mean ± std band under a curve: the upper edge, then the lower edge filled up to it."""
    red, green, blue = (int(colour.lstrip("#")[i:i + 2], 16) for i in (0, 2, 4))
    common = dict(x=curve["alpha"], mode="lines", line=dict(width=0), legendgroup=method, showlegend=False,
                  hoverinfo="skip")
    figure.add_trace(go.Scatter(y=curve["mean"] + curve["std"], **common), row=row, col=col)
    figure.add_trace(go.Scatter(y=curve["mean"] - curve["std"], fill="tonexty",
                                fillcolor=f"rgba({red},{green},{blue},0.18)", **common), row=row, col=col)


def retain_change(table: pd.DataFrame) -> go.Figure:
    """Change in Acc_retain (percentage points, mean over alpha) per method (Goel et al. 2024, Table 1);
    error bars from a ``delta_acc_retain_pp_std`` column when the table has one (std over alphas)."""
    std = "delta_acc_retain_pp_std" if "delta_acc_retain_pp_std" in table.columns else None
    figure = px.bar(table, x="method", y="delta_acc_retain_pp", color="manipulation", barmode="group", error_y=std,
                    text_auto=".2f", title="Change in Acc_retain after unlearning (percentage points, mean over alpha)")
    figure.update_yaxes(title="Δ Acc_retain (pp)")
    figure.update_layout(height=420)
    return figure


def cost_per_method(table: pd.DataFrame) -> go.Figure:
    """Seconds per unlearning run and the share of RewoD's time (Goel et al. 2024, Table 3)."""
    labels = [f"{s:.1f}s" + (f" ({r:.2f}× RewoD)" if pd.notna(r) else "")
              for s, r in zip(table["seconds_mean"], table["relative_to_rewod"])]
    figure = go.Figure(go.Bar(x=table["method"], y=table["seconds_mean"], text=labels, textposition="outside",
                              customdata=table[["steps_mean"]].to_numpy(),
                              hovertemplate="%{x}: %{y:.2f}s per run, %{customdata[0]:.0f} steps<extra></extra>"))
    figure.update_yaxes(title="seconds per run (mean)")
    figure.update_layout(title="Cost per method: wall seconds per unlearning run", height=420)
    return figure


def importance_histogram(importances: list[Importance], threshold: float) -> go.Figure:
    """Histogram of SSD's per-parameter importance ratios I_f / I_X (log-spaced bins, log counts).

    The vertical line is SSD's selection threshold ``a``; parameters right of it get dampened
    (Goel et al. 2024, Figure 3, on log axes so the tail and the threshold stay readable).
    """
    figure = go.Figure()
    for i, item in enumerate(importances):
        histogram = item.distribution.histogram
        shown = histogram[histogram["count"] > 0]
        share = item.distribution.share_above[float(threshold)]
        name = (f"{item.label}: largest finite ratio {item.distribution.max_finite:.3g}, "
                f"{item.distribution.n_infinite} infinite, {share:.2%} of parameters above a; "
                f"M_o fits S_f's manipulated labels: {item.fit_sf_manipulated:.2f}")
        figure.add_trace(go.Bar(
            x=np.sqrt(shown["left"] * shown["right"]), y=shown["count"], width=shown["right"] - shown["left"],
            name=name, marker_color=COLOURS[i % len(COLOURS)], opacity=0.6,
            hovertemplate="ratio in [%{customdata[0]:.3g}, %{customdata[1]:.3g}): %{y} parameters<extra></extra>",
            customdata=shown[["left", "right"]].to_numpy()))
    figure.add_vline(x=threshold, line_dash="dash", line_color="black",
                     annotation_text=f"SSD threshold a = {threshold:g}", annotation_position="top right")
    figure.update_xaxes(type="log", title="importance ratio I_f / I_X")
    figure.update_yaxes(type="log", title="number of parameters")
    figure.update_layout(barmode="overlay", height=480, legend=dict(yanchor="top", y=-0.18, x=0),
                         title="SSD importance ratios of the original model: which parameters would be dampened")
    return figure


def budget_share(results: pd.DataFrame, originals: pd.DataFrame) -> pd.Series:
    """Each run's compute as a share of its original model's training: the requested ``budget_fraction``
    where one was given, else the optimiser steps it took over the original's ``train_steps``."""
    steps = results.merge(originals[["manipulation", "seed", "train_steps"]], on=["manipulation", "seed"],
                          how="left")["train_steps"].to_numpy(dtype=float)
    fraction = pd.to_numeric(results["budget_fraction"], errors="coerce").to_numpy(dtype=float)
    return pd.Series(np.where(np.isnan(fraction), results["unlearn_steps"].to_numpy(dtype=float) / steps, fraction),
                     index=results.index)


def metric_vs_budget(results: pd.DataFrame, originals: pd.DataFrame, metric: str, alpha: float | None = None,
                     ideal: float | None = None, title: str | None = None, log_y: bool = False) -> go.Figure:
    """``metric`` of the selected model per method against its compute budget (share of the original
    training), one panel per manipulation, at identified fraction ``alpha`` (default: the largest).

    Pawelczyk et al. (ICLR 2025) give every method up to ~10% of the training compute in steps of 2%.
    References: retraining (the reference method, RewoD: 100% of the compute) dotted, the original
    M_o dashed, and ``ideal`` (e.g. 0 for the GUS mean) as a thin grey line. Training-free methods
    (SSD) sit at budget 0. With several seeds the points are means and the bars standard deviations.
    """
    from ..unlearning import METHODS

    selected = results[results["selected"]].dropna(subset=[metric])
    alpha = float(selected["alpha"].max()) if alpha is None else alpha
    selected = selected[np.isclose(selected["alpha"], alpha)]
    selected = selected.assign(budget_share=budget_share(selected, originals))
    manipulations = [m for m in originals["manipulation"].unique() if m in set(selected["manipulation"])]
    colours = _method_colours(selected["method"].unique())
    figure = make_subplots(rows=1, cols=max(len(manipulations), 1), subplot_titles=manipulations, shared_yaxes=True)
    shown = [] if ideal is None else [ideal]  # hlines do not widen plotly's autorange: every value sets the range
    for column, manipulation in enumerate(manipulations, start=1):
        mine = selected[selected["manipulation"] == manipulation]
        curves = mean_over_seeds(mine, ["method", "budget_share"], metric)
        shown += [*(curves["mean"] - curves["std"]), *(curves["mean"] + curves["std"])]
        for method, curve in curves.groupby("method", sort=False):
            curve = curve.sort_values("budget_share")
            if METHODS.get(method).is_reference:
                figure.add_hline(y=float(curve["mean"].iloc[-1]), line_dash="dot", line_color=colours[method],
                                 row=1, col=column, annotation_text=f"retrain ({method}, "
                                 f"{curve['budget_share'].iloc[-1]:.0%} of the compute)",
                                 annotation_position="top left", exclude_empty_subplots=False)
                continue
            trainless = not METHODS.get(method).uses_budget
            figure.add_trace(go.Scatter(
                x=curve["budget_share"], y=curve["mean"],
                error_y=dict(array=curve["std"], visible=bool(curve["n"].max() > 1)),
                mode="markers" if trainless else "lines+markers", marker_size=11 if trainless else 7,
                name=f"{method} (no training)" if trainless else method, line_color=colours[method],
                legendgroup=method, showlegend=column == 1), row=1, col=column)
        reference = originals.loc[originals["manipulation"] == manipulation, metric].mean() \
            if metric in originals else np.nan
        if not np.isnan(reference):
            shown.append(reference)
            figure.add_hline(y=reference, line_dash="dash", line_color="black", row=1, col=column,
                             annotation_text="original M_o", annotation_position="bottom left",
                             exclude_empty_subplots=False)
        if ideal is not None:
            figure.add_hline(y=ideal, line_width=1, line_color="grey", row=1, col=column, exclude_empty_subplots=False)
        figure.update_xaxes(title_text="unlearning budget (share of the original training steps)",
                            tickformat=".0%", row=1, col=column)
    finite = np.asarray([v for v in shown if np.isfinite(v)], dtype=float)
    if len(finite) and not log_y:
        low, high = finite.min(), finite.max()
        pad = 0.08 * (high - low) if high > low else 0.05 * max(abs(high), 1.0)
        figure.update_yaxes(range=[low - pad, high + pad])
    figure.update_yaxes(type="log" if log_y else "linear")
    figure.update_yaxes(title_text=metric, row=1, col=1)
    figure.update_layout(title=title or f"{metric} against the unlearning budget (alpha = {alpha:g})", height=460)
    return figure
