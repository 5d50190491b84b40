"""Whether a notebook frontend will draw this process's widgets, and progress bars that follow it.

``unlearnkit run`` executes notebooks headlessly with ``UNLEARNKIT_EXPLORERS=static``: the explorers
then draw static figures (:mod:`unlearnkit.explore.base`), and progress bars are tqdm's text bars. A
widget bar would be saved into the executed notebook as a reference to a widget nothing can draw.
"""

from __future__ import annotations

import os
from typing import Any

from tqdm.auto import tqdm as auto_bar
from tqdm.std import tqdm as text_bar

MODE_ENV = "UNLEARNKIT_EXPLORERS"


def headless() -> bool:
    """True when widgets were asked to draw statically (``$UNLEARNKIT_EXPLORERS=static``)."""
    return os.environ.get(MODE_ENV, "").strip().lower() == "static"


def tqdm(*args: Any, **kwargs: Any) -> text_bar:
    """A progress bar: tqdm's notebook widget in a notebook with a frontend, text otherwise."""
    return (text_bar if headless() else auto_bar)(*args, **kwargs)
