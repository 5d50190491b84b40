"""Figures of the poisoning family (notebook 07): poisons against their clean images, the crafting
objectives, and the accuracy drop and poison success after unlearning."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .figures import COLOURS, _rgb, acc_corr_vs_alpha
from .stages import Poisoned


def _difference_image(clean: np.ndarray, poisoned: np.ndarray) -> np.ndarray:
    """``poisoned - clean`` stretched to the full grey range around mid-grey (0 change = 128)."""
    difference = poisoned.astype(np.int16) - clean.astype(np.int16)
    scale = max(int(np.abs(difference).max()), 1)
    return np.clip(128 + difference * (127 / scale), 0, 255).astype(np.uint8)


def poison_gallery(poisoned: Poisoned, per_row: int = 6) -> go.Figure:
    """Clean images behind the first poisons, the poisons as trained, and their difference (stretched);
    for a targeted attack also the target test images with their true and adversarial labels."""
    manipulated, splits = poisoned.manipulated, poisoned.splits
    names = splits.info.class_names
    positions = manipulated.manipulated[:per_row]
    clean = manipulated.clean_pixels(splits, positions).cpu().numpy()
    trained, labels = manipulated.as_trained(positions)
    trained, labels = trained.cpu().numpy(), labels.cpu().numpy()
    clean_labels = manipulated.clean_train_labels[positions].cpu().numpy()
    rows = [("clean", clean, [f"clean: {names[y]}" for y in clean_labels]),
            ("as trained", trained, [f"trained as: {names[y]}" for y in labels]),
            ("difference", [_difference_image(c, t) for c, t in zip(clean, trained)],
             [f"max change {int(np.abs(t.astype(int) - c.astype(int)).max())}/255" for c, t in zip(clean, trained)])]
    if manipulated.adversarial_labels is not None:
        targets = manipulated.affected_test
        count = min(per_row, len(targets))
        rows.append(("targets", targets.images[:count].cpu().numpy(),
                     [f"target: {names[y]} → {names[a]}" for y, a in
                      zip(targets.labels[:count].tolist(), manipulated.adversarial_labels[:count].tolist())]))
    columns = len(positions)
    titles = []
    for _, images, row_titles in rows:
        titles += list(row_titles) + [""] * (columns - len(images))
    figure = make_subplots(rows=len(rows), cols=columns, subplot_titles=titles, horizontal_spacing=0.01,
                           vertical_spacing=0.06)
    for row, (_, images, _) in enumerate(rows, start=1):
        for column, image in enumerate(images, start=1):
            figure.add_trace(go.Image(z=_rgb(image)), row=row, col=column)
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    figure.update_annotations(font_size=10)
    figure.update_layout(title=f"{poisoned.label}: {manipulated.n_manipulated} poisons — clean, as trained, "
                               "difference (stretched, grey = unchanged)",
                         height=150 + 160 * len(rows), margin=dict(l=10, r=10, t=80, b=10))
    return figure


def crafting_objectives(crafting: pd.DataFrame) -> go.Figure:
    """Gradient Canceling's ``||r||_2`` over its steps, and Witches' Brew's alignment per restart
    against the unperturbed poisons' alignment."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=[
        "Gradient Canceling: residual ‖r‖₂ (lower is better)",
        "Witches' Brew: cosine alignment (higher is better)"])
    for i, row in enumerate(crafting.to_dict("records")):
        colour = COLOURS[i % len(COLOURS)]
        history = row.get("gradient_norm_history")
        if isinstance(history, list):
            figure.add_trace(go.Scatter(y=history, mode="lines", name=f"{row['manipulation']}: float poisons",
                                        line_color=colour), row=1, col=1)
            figure.add_hline(y=row["gradient_norm_stored"], line_dash="dot", line_color=colour, row=1, col=1,
                             annotation_text="stored (uint8)", annotation_position="top right")
            figure.add_hline(y=row["clean_gradient_norm"], line_dash="dash", line_color="black", row=1, col=1,
                             annotation_text="no poisons", annotation_position="bottom right")
        restarts = row.get("alignment_restarts")
        if isinstance(restarts, list):
            figure.add_trace(go.Bar(x=[f"restart {k + 1}" for k in range(len(restarts))], y=restarts,
                                    name=f"{row['manipulation']}: after brewing", marker_color=colour), row=1, col=2)
            figure.add_hline(y=row["alignment_before"], line_dash="dash", line_color="black", row=1, col=2,
                             annotation_text="unperturbed poisons", annotation_position="bottom right")
    figure.update_xaxes(title_text="crafting step", row=1, col=1)
    figure.update_yaxes(range=[-1, 1], row=1, col=2)
    figure.update_layout(title="What the crafting optimised", height=420)
    return figure


def reference_metrics(originals: pd.DataFrame) -> go.Figure:
    """Clean accuracy of each poisoned M_o beside the same model trained clean, and the poison success."""
    summary = originals.groupby("manipulation", sort=False)[
        ["acc_clean", "acc_clean_reference", "poison_success", "poison_success_reference"]].mean().reset_index()
    figure = make_subplots(rows=1, cols=2, subplot_titles=["clean test accuracy", "poison success (targeted)"])
    for column, (metric, reference) in enumerate([("acc_clean", "acc_clean_reference"),
                                                  ("poison_success", "poison_success_reference")], start=1):
        shown = summary.dropna(subset=[metric])
        for field, name, colour in [(reference, "same model trained clean", "#7f7f7f"),
                                    (metric, "poisoned M_o", COLOURS[3])]:
            figure.add_trace(go.Bar(x=shown["manipulation"], y=shown[field], name=name, marker_color=colour,
                                    text=[f"{v:.3f}" for v in shown[field]], textposition="outside",
                                    legendgroup=name, showlegend=column == 1), row=1, col=column)
    figure.update_yaxes(range=[0, 1.1])
    figure.update_layout(barmode="group", height=420, title="What the attacks did to the original model M_o")
    return figure


def drop_vs_alpha(results: pd.DataFrame, originals: pd.DataFrame) -> go.Figure:
    """Clean-accuracy drop (vs the same model trained clean) after each method, indiscriminate attacks only."""
    indiscriminate = originals.loc[originals["poison_success"].isna(), "manipulation"].unique()
    figure = acc_corr_vs_alpha(results[results["manipulation"].isin(indiscriminate)],
                               originals[originals["manipulation"].isin(indiscriminate)], "acc_drop",
                               "Clean-accuracy drop after unlearning (0 = the model trained clean)")
    for column in range(1, len(indiscriminate) + 1):
        figure.add_hline(y=0.0, line_color="#7f7f7f", row=1, col=column)
    return figure


def success_vs_alpha(results: pd.DataFrame, originals: pd.DataFrame) -> go.Figure:
    """Poison success rate after each method, targeted attacks only, with the clean model's rate."""
    targeted = originals.dropna(subset=["poison_success"])
    figure = acc_corr_vs_alpha(results[results["manipulation"].isin(targeted["manipulation"])], targeted,
                               "poison_success", "Poison success after unlearning (targets predicted as the "
                                                 "adversarial label)")
    for column, (_, group) in enumerate(targeted.groupby("manipulation", sort=False), start=1):
        figure.add_hline(y=float(group["poison_success_reference"].mean()), line_color="#7f7f7f", row=1, col=column,
                         annotation_text="trained clean", annotation_position="top right")
    figure.update_yaxes(range=[-0.05, 1.05])
    return figure
