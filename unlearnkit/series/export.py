"""Writing plotly figures: HTML always (offline, one shared plotly.js), PNG when a static exporter works.

PNG export goes through kaleido, which drives a Chrome or Chromium it finds on the machine
(``BROWSER_PATH`` points it to one). Without either, figures are written as HTML only and one
warning says why. The browser is looked for *before* kaleido's export server starts: kaleido 1.x
without a browser lets its server thread die and a later export wait for it forever.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import functools
import os
import warnings
from pathlib import Path

import plotly.graph_objects as go
import plotly.offline

from ..store import atomic_write_bytes, atomic_write_text

PLOTLY_JS = "plotly.min.js"


PROBE_SECONDS = 90
"""How long the first export may take to start the browser before PNG export is given up."""


def browser_path() -> str | None:
    """The Chrome / Chromium kaleido would drive: ``$BROWSER_PATH`` if set, else one on the machine."""
    explicit = os.environ.get("BROWSER_PATH")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    try:
        from choreographer.browsers.chromium import Chromium
    except ImportError:
        return None
    return Chromium.find_browser(skip_local=False)


def _probe_export() -> None:
    import kaleido

    kaleido.start_sync_server(silence_warnings=True)
    atexit.register(kaleido.stop_sync_server, silence_warnings=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        go.Figure().to_image(format="png", width=10, height=10)


@functools.cache
def _static_exporter_error() -> str | None:
    """None when PNG export works here, else the reason (checked once per process)."""
    try:
        import kaleido  # noqa: F401
    except ImportError as err:
        return f"kaleido is not installed ({err})"
    if browser_path() is None:
        return "no Chrome or Chromium found (set BROWSER_PATH or install one)"
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        pool.submit(_probe_export).result(timeout=PROBE_SECONDS)
    except concurrent.futures.TimeoutError:
        return f"the browser did not answer within {PROBE_SECONDS} s"
    except Exception as err:  # the browser fails to start
        return f"{type(err).__name__}: {err}".splitlines()[0]
    finally:
        pool.shutdown(wait=False)
    return None


def png_available() -> bool:
    return _static_exporter_error() is None


def save_figure(figure: go.Figure, directory: str | Path, name: str, png: bool = True,
                width: int = 1000, height: int | None = None) -> list[Path]:
    """Write ``directory/name.html`` (and ``name.png`` when possible); return the written paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / PLOTLY_JS
    if not script.exists():
        atomic_write_text(script, plotly.offline.get_plotlyjs())
    html = directory / f"{name}.html"
    atomic_write_text(html, figure.to_html(include_plotlyjs="directory", full_html=True))
    written = [html]
    if png:
        reason = _static_exporter_error()
        if reason is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # kaleido's note that a running server ignores options
                image = figure.to_image(format="png", width=width, height=height or figure.layout.height or 500,
                                        scale=2)
            atomic_write_bytes(directory / f"{name}.png", image)
            written.append(directory / f"{name}.png")
        else:
            _warn_once(reason)
    return written


@functools.cache
def _warn_once(reason: str) -> None:
    warnings.warn(f"figures are written as HTML only: PNG export is unavailable ({reason}). "
                  "Install kaleido and Chrome/Chromium (e.g. apt install chromium) for PNGs.", stacklevel=3)
