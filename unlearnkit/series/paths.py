"""Where the series reads notebooks from and writes its outputs."""

from __future__ import annotations

import os
from pathlib import Path

OUTPUTS_ENV = "UNLEARNKIT_OUTPUTS"


def project_root(start: Path | None = None) -> Path | None:
    """The nearest folder at or above ``start`` (default: the working directory) holding the series."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / "notebooks").is_dir() and (folder / "parameters").is_dir():
            return folder
    return None


def output_root(requested: str | Path | None = None) -> Path:
    """``requested``, else ``$UNLEARNKIT_OUTPUTS``, else the project's ``outputs/``, else ``./outputs``.

    A notebook opened in JupyterLab runs in ``notebooks/`` and a papermill call from the repository
    root runs there; both find the same ``outputs/`` folder this way.
    """
    if requested:
        return Path(requested).expanduser().resolve()
    if os.environ.get(OUTPUTS_ENV):
        return Path(os.environ[OUTPUTS_ENV]).expanduser().resolve()
    root = project_root()
    return (root / "outputs") if root else Path.cwd().resolve() / "outputs"


def notebooks_dir() -> Path:
    """The series' notebooks: next to the package in a source checkout, else under the working directory."""
    beside_package = Path(__file__).resolve().parents[2] / "notebooks"
    if beside_package.is_dir():
        return beside_package
    root = project_root()
    if root is None:
        raise FileNotFoundError("cannot find the notebooks/ folder of unlearnkit; pass --notebooks DIR")
    return root / "notebooks"
