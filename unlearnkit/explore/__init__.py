"""Interactive explorers for JupyterLab: the trigger designer, the alpha explorer, the SSD explorer.

Each explorer is one module: a *lab* with the computations (tested without a browser) and a widget
class that only wires ipywidgets and plotly ``FigureWidget``s to it. In headless runs an explorer
draws static figures instead (see :mod:`unlearnkit.explore.base`).
"""

from .alpha import AlphaExplorer, SweepResults
from .base import Explorer, explorer_mode, static_explorers
from .ssd import SSDExplorer, SSDLab
from .trigger import TriggerDesigner, TriggerLab, quick_lab_for

__all__ = ["AlphaExplorer", "Explorer", "SSDExplorer", "SSDLab", "SweepResults", "TriggerDesigner", "TriggerLab",
           "explorer_mode", "quick_lab_for", "static_explorers"]
