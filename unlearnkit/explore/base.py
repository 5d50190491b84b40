"""What every explorer shares: interactive in JupyterLab, a static picture in headless runs.

An explorer is two parts. Its *lab* does the computations (plain Python, pandas and plotly, unit
tested without a browser); the explorer itself only wires ipywidgets and a plotly ``FigureWidget`` to
the lab. Sliders update on release (``continuous_update=False``) and anything that trains waits for a
button, so a notebook stays responsive.

Headless runs (papermill, nbval, ``unlearnkit run``) have no frontend to draw widgets. There an
explorer shows static plotly figures of its default state instead: ``UNLEARNKIT_EXPLORERS=static``
asks for that (``unlearnkit run`` sets it), ``interactive`` forces widgets, and the default ``auto``
draws widgets whenever ipywidgets and anywidget (which plotly's ``FigureWidget`` needs) are installed.
Widgets in a kernel without a frontend are harmless: their messages simply go unanswered.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from typing import Any

from ..frontend import MODE_ENV

MODES = ("auto", "interactive", "static")


def widgets_available() -> bool:
    try:
        import anywidget  # noqa: F401
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def explorer_mode() -> str:
    """``interactive`` or ``static``, from ``$UNLEARNKIT_EXPLORERS`` (default ``auto``)."""
    mode = os.environ.get(MODE_ENV, "auto").strip().lower() or "auto"
    if mode not in MODES:
        raise ValueError(f"{MODE_ENV} must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "auto":
        return "interactive" if widgets_available() else "static"
    return mode


@contextlib.contextmanager
def static_explorers() -> Iterator[None]:
    """Within the block, kernels started from this process draw explorers as static figures."""
    previous = os.environ.get(MODE_ENV)
    os.environ[MODE_ENV] = "static"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(MODE_ENV, None)
        else:
            os.environ[MODE_ENV] = previous


class Explorer:
    """Base of the explorers: ``show()`` (or leaving one as a cell's last value) draws it."""

    title = "explorer"

    def static_figures(self) -> list[Any]:
        """Plotly figures of the explorer's current state, for runs without a frontend."""
        raise NotImplementedError

    def build(self) -> Any:
        """The ipywidgets layout, wired to the lab."""
        raise NotImplementedError

    @functools.cached_property
    def widget(self) -> Any:
        return self.build()

    def show(self, mode: str | None = None) -> None:
        from IPython.display import display

        if (mode or explorer_mode()) == "interactive":
            display(self.widget)
        else:
            for figure in self.static_figures():
                figure.show()

    def _ipython_display_(self) -> None:
        self.show()


def css_class(widget: Any, name: str) -> Any:
    """Tag a widget with a CSS class (how the browser test finds the explorers on the page)."""
    widget.add_class(name)
    return widget
