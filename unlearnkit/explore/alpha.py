"""The alpha explorer: slide the identified fraction alpha and the method over stored sweep results.

Reads a series' ``results.csv`` (one row per unlearning run, the selected model of each group
marked; see :meth:`unlearnkit.series.Series.results`). For a manipulation it draws Acc_corr,
Acc_retain and the attack success rate of every method's selected model against alpha (Goel et al.
2024, Figure 2), the chosen method highlighted and the chosen alpha marked, and lists every
hyper-parameter setting tried at that point: its metrics, its validation selection score and whether
it was selected, with the number of identified samples |S_f| out of |S_m|. Nothing is recomputed.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..series.figures import _method_colours
from ..series.tables import mean_over_seeds
from .base import Explorer, css_class

METRICS = {"acc_corr": "Acc_corr", "acc_retain": "Acc_retain", "asr": "attack success"}
REQUIRED = ["manipulation", "seed", "method", "params", "alpha", "n_manipulated", "n_forget", "selected", *METRICS]
CANDIDATE_COLUMNS = ["seed", "params", "budget_fraction", "budget_steps", "n_forget", "n_manipulated", *METRICS,
                     "val_acc", "score", "selected"]


@dataclass
class SweepResults:
    """The tidy results of one run and the views the alpha explorer draws."""

    table: pd.DataFrame

    def __post_init__(self) -> None:
        missing = [column for column in REQUIRED if column not in self.table.columns]
        if missing:
            raise ValueError(f"results lack the columns {missing}; expected a series' results.csv")
        if self.table.empty:
            raise ValueError("results hold no unlearning run")
        self.table = self.table.assign(selected=self.table["selected"].astype(bool))

    @classmethod
    def read(cls, path: str | Path) -> SweepResults:
        """From ``<run>/results.csv`` or the run folder itself."""
        path = Path(path)
        return cls(pd.read_csv(path / "results.csv" if path.is_dir() else path))

    def manipulations(self) -> list[str]:
        return list(dict.fromkeys(self.table["manipulation"]))

    def methods(self, manipulation: str) -> list[str]:
        return list(_method_colours(self._of(manipulation)["method"].unique()))

    def alphas(self, manipulation: str) -> list[float]:
        return sorted(float(a) for a in self._of(manipulation)["alpha"].unique())

    def metrics(self, manipulation: str) -> list[str]:
        """The metrics defined for the manipulation (no attack success without a target class)."""
        rows = self._of(manipulation)
        return [metric for metric in METRICS if rows[metric].notna().any()]

    def _of(self, manipulation: str) -> pd.DataFrame:
        rows = self.table[self.table["manipulation"] == manipulation]
        if rows.empty:
            raise KeyError(f"no runs of manipulation {manipulation!r}; have {self.manipulations()}")
        return rows

    def curves(self, manipulation: str, metric: str) -> pd.DataFrame:
        """Mean (and std over seeds) of ``metric`` of the selected model per method and alpha."""
        selected = self._of(manipulation)
        selected = selected[selected["selected"]].dropna(subset=[metric])
        return mean_over_seeds(selected, ["method", "alpha"], metric).sort_values(["method", "alpha"])

    def candidates(self, manipulation: str, method: str, alpha: float) -> pd.DataFrame:
        """Every run of ``method`` at ``alpha``: one row per seed, budget and hyper-parameter setting."""
        rows = self._of(manipulation)
        rows = rows[(rows["method"] == method) & np.isclose(rows["alpha"], alpha)]
        columns = [c for c in CANDIDATE_COLUMNS if c in rows.columns]
        order = ["seed", "score"] if "score" in rows else ["seed"]
        return rows[columns].sort_values(order, ascending=[True, False][:len(order)]).reset_index(drop=True)

    def identified(self, manipulation: str, alpha: float) -> tuple[int, int]:
        """``(|S_f|, |S_m|)`` at ``alpha`` (of the first seed)."""
        rows = self._of(manipulation)
        row = rows[np.isclose(rows["alpha"], alpha)].iloc[0]
        return int(row["n_forget"]), int(row["n_manipulated"])

    def selected_at(self, manipulation: str, alpha: float) -> pd.DataFrame:
        """The selected model's metrics of every method at ``alpha`` (mean over seeds)."""
        rows = self._of(manipulation)
        rows = rows[rows["selected"] & np.isclose(rows["alpha"], alpha)]
        return rows.groupby("method", sort=False)[list(METRICS)].mean().reset_index()


# Figures and tables -----------------------------------------------------------------------------------

def curves_figure(results: SweepResults, manipulation: str, method: str, alpha: float) -> go.Figure:
    """One panel per metric against alpha; ``method`` drawn bold, the others faded; ``alpha`` marked."""
    metrics = results.metrics(manipulation)
    colours = _method_colours(results.methods(manipulation))
    figure = make_subplots(rows=1, cols=len(metrics), subplot_titles=[METRICS[m] for m in metrics],
                           horizontal_spacing=0.06)
    for column, metric in enumerate(metrics, start=1):
        curves = results.curves(manipulation, metric)
        for name in results.methods(manipulation):
            curve = curves[curves["method"] == name]
            figure.add_trace(go.Scatter(
                x=curve["alpha"], y=curve["mean"], mode="lines+markers", name=name, legendgroup=name,
                showlegend=column == 1, line_color=colours[name],
                error_y=dict(array=curve["std"], visible=bool(len(curve) and curve["n"].max() > 1)),
                **emphasis(name == method)), row=1, col=column)
        figure.add_vline(x=alpha, line_dash="dash", line_color="black", row=1, col=column)
        figure.update_yaxes(range=[-0.02, 1.02], row=1, col=column)
        figure.update_xaxes(title_text="identified fraction alpha", row=1, col=column)
    figure.update_layout(title=curves_title(results, manipulation, method, alpha), height=420, width=1100,
                         margin=dict(l=10, r=10, t=80, b=10))
    return figure


def emphasis(chosen: bool) -> dict[str, Any]:
    return {"opacity": 1.0 if chosen else 0.25, "line_width": 4 if chosen else 1.5}


def curves_title(results: SweepResults, manipulation: str, method: str, alpha: float) -> str:
    n_forget, n_manipulated = results.identified(manipulation, alpha)
    chosen = results.selected_at(manipulation, alpha)
    chosen = chosen[chosen["method"] == method]
    values = ""
    if len(chosen):
        row = chosen.iloc[0]
        values = ": " + ", ".join(f"{METRICS[m]} {row[m]:.3f}" for m in results.metrics(manipulation))
    return (f"{manipulation}, {method} at alpha = {alpha:g} ({n_forget} of {n_manipulated} manipulated samples "
            f"identified){values}")


def candidates_html(table: pd.DataFrame) -> str:
    """The candidates as an HTML table, the selected rows in bold."""
    if table.empty:
        return "<i>no run of this method at this alpha</i>"
    header = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    rows = []
    for _, row in table.iterrows():
        cells = "".join(f"<td>{html.escape(_cell(row[c]))}</td>" for c in table.columns)
        style = ' style="font-weight:bold;background:#e8f4e8"' if row.get("selected") else ""
        rows.append(f"<tr{style}>{cells}</tr>")
    return f'<table class="unlearnkit-candidates"><tr>{header}</tr>{"".join(rows)}</table>'


def _cell(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "✓" if value else ""
    if isinstance(value, float):
        return "" if np.isnan(value) else f"{value:.3f}"
    return str(value)


# Widgets ------------------------------------------------------------------------------------------------

class AlphaExplorer(Explorer):
    """Manipulation and method menus, an alpha slider, the curves and the runs at that point."""

    title = "alpha explorer"

    def __init__(self, results: SweepResults | pd.DataFrame | str | Path, manipulation: str | None = None,
                 method: str | None = None, alpha: float | None = None):
        if isinstance(results, pd.DataFrame):
            results = SweepResults(results)
        elif not isinstance(results, SweepResults):
            results = SweepResults.read(results)
        self.results = results
        self.manipulation = manipulation or results.manipulations()[0]
        methods = results.methods(self.manipulation)
        self.method = method or ("ssd" if "ssd" in methods else methods[0])
        self.alpha = alpha if alpha is not None else results.alphas(self.manipulation)[0]
        self._syncing = False

    def static_figures(self) -> list[go.Figure]:
        return [curves_figure(self.results, self.manipulation, self.method, self.alpha)]

    def build(self) -> Any:
        import ipywidgets as w

        style = {"description_width": "90px"}
        self.manipulation_menu = w.Dropdown(options=self.results.manipulations(), value=self.manipulation,
                                            description="manipulation", style=style)
        self.method_menu = w.Dropdown(options=self.results.methods(self.manipulation), value=self.method,
                                      description="method", style=style)
        self.alpha_slider = w.SelectionSlider(options=self.results.alphas(self.manipulation), value=self.alpha,
                                              description="alpha", continuous_update=False, style=style)
        self.figure = go.FigureWidget(curves_figure(self.results, self.manipulation, self.method, self.alpha))
        self.table = css_class(w.HTML(), "unlearnkit-status")
        self.manipulation_menu.observe(self._on_manipulation, names="value")
        self.method_menu.observe(self._on_point, names="value")
        self.alpha_slider.observe(self._on_point, names="value")
        self._tabulate()
        controls = w.HBox([self.manipulation_menu, self.method_menu, self.alpha_slider])
        return css_class(w.VBox([controls, self.figure, self.table]), "unlearnkit-alpha-explorer")

    def _on_manipulation(self, change: Any) -> None:
        self.manipulation = change["new"]
        methods = self.results.methods(self.manipulation)
        alphas = self.results.alphas(self.manipulation)
        method = self.method if self.method in methods else methods[0]
        alpha = min(alphas, key=lambda a: abs(a - self.alpha))
        self._syncing = True  # new options reset the values; redraw once, at the end
        try:
            self.method_menu.options, self.method_menu.value = methods, method
            self.alpha_slider.options, self.alpha_slider.value = alphas, alpha
        finally:
            self._syncing = False
        self.method, self.alpha = method, alpha
        fresh = curves_figure(self.results, self.manipulation, self.method, self.alpha)
        with self.figure.batch_update():
            self.figure.data = ()
            self.figure.layout = fresh.layout
            self.figure.add_traces(list(fresh.data))
        self._tabulate()

    def _on_point(self, change: Any = None) -> None:
        if self._syncing:
            return
        self.method, self.alpha = self.method_menu.value, self.alpha_slider.value
        with self.figure.batch_update():
            for trace in self.figure.data:
                style = emphasis(trace.name == self.method)
                trace.opacity, trace.line.width = style["opacity"], style["line_width"]
            for shape in self.figure.layout.shapes:
                shape.x0 = shape.x1 = self.alpha
            self.figure.layout.title.text = curves_title(self.results, self.manipulation, self.method, self.alpha)
        self._tabulate()

    def _tabulate(self) -> None:
        table = self.results.candidates(self.manipulation, self.method, self.alpha)
        self.table.value = (f"<b>{self.method}</b> at alpha = {self.alpha:g}: {len(table)} runs "
                            f"(selected by 0.5 · val acc + 0.5 · S_f changed, in bold)" + candidates_html(table))
