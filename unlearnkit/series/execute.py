"""``unlearnkit run PARAMS.yaml``: execute a family of notebooks headlessly with papermill."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..config import ConfigError
from ..store import read_json
from .families import SERIES_KEY, Family, load_parameter_file, parse_parameters
from .paths import notebooks_dir, output_root


@dataclass
class SeriesRun:
    family: Family
    run_dir: Path
    executed: list[Path]
    results: pd.DataFrame
    """``results.csv`` of the run (one row per unlearning run), empty if the family writes none."""
    built: int
    reused: int

    def summary(self) -> str:
        return "\n".join([
            self.family.summary(self.run_dir),
            "",
            f"{len(self.results)} unlearning runs; stages computed now: {self.built}, "
            f"reused from the cache: {self.reused}",
            f"results:   {self.run_dir / 'results.csv'}",
            f"figures:   {self.run_dir / 'figures'}",
            f"notebooks: {self.run_dir / 'notebooks'}",
        ])


def series_notebooks(family: Family, folder: Path | None = None) -> list[Path]:
    folder = Path(folder) if folder else notebooks_dir()
    paths = [folder / f"{name}.ipynb" for name in family.notebooks]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"notebooks of the series are missing: {', '.join(missing)}")
    return paths


def declared_parameters(family: Family, notebook: Path) -> list[str]:
    """The names in the notebook's cell tagged ``parameters``, checked against the family's schema."""
    import papermill

    declared = list(papermill.inspect_notebook(str(notebook)))
    expected = family.notebook_parameter_names(notebook.stem)
    if sorted(declared) != sorted(expected):
        extra = sorted(set(declared) - set(expected))
        missing = sorted(set(expected) - set(declared))
        raise ConfigError(f"{notebook.name}: its parameters cell does not match the series schema "
                          f"(unexpected: {extra or 'none'}, missing: {missing or 'none'})")
    return declared


def resolve_run(parameter_file: Path, values: dict[str, Any], out: str | Path | None) -> tuple[Path, str]:
    """``(output_root, run_name)``: ``--out DIR`` wins, else the file's keys, else outputs/<file stem>."""
    if out is not None:
        out = Path(out).expanduser().resolve()
        return out.parent, out.name
    return output_root(values.get("output_root")), values.get("run_name") or parameter_file.stem


def run_series(parameter_file: str | Path, out: str | Path | None = None, force: bool = False,
               notebooks: str | Path | None = None, progress: bool = True) -> SeriesRun:
    """Validate ``parameter_file``, then execute every notebook of its family with its parameters.

    Each notebook gets exactly the keys it declares; executed copies go to ``<run>/notebooks/``.
    Nothing is computed before every parameter and every notebook's declaration is checked.
    """
    import papermill

    from ..explore.base import static_explorers

    parameter_file = Path(parameter_file)
    _, values = load_parameter_file(parameter_file)
    root, run_name = resolve_run(parameter_file, values, out)
    values = {**values, "output_root": str(root), "run_name": run_name, "force": force or values.get("force", False)}
    family, _ = parse_parameters(values, str(parameter_file))
    values.pop(SERIES_KEY, None)
    paths = series_notebooks(family, notebooks)
    declared = {path: declared_parameters(family, path) for path in paths}

    run_dir = root / run_name
    executed_dir = run_dir / "notebooks"
    executed_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    executed = []
    for path in paths:
        if progress:
            print(f"[unlearnkit] {path.stem} ...", flush=True)
        target = executed_dir / path.name
        given = {key: value for key, value in values.items() if key in declared[path]}
        with static_explorers():  # no frontend: the explorers draw static figures into the executed copy
            papermill.execute_notebook(str(path), str(target), parameters=given, cwd=str(path.parent),
                                       progress_bar=False, log_output=False)
        executed.append(target)
    results = _read_table(run_dir / "results.csv")
    built, reused = _stage_usage(run_dir, results, _read_table(run_dir / "originals.csv"), started)
    return SeriesRun(family, run_dir, executed, results, built, reused)


def _read_table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path) if path.is_file() else pd.DataFrame()


def _stage_usage(run_dir: Path, results: pd.DataFrame, originals: pd.DataFrame, since: float) -> tuple[int, int]:
    """Stage directories the run's tables name (``run`` of results.csv, ``directory`` of originals.csv):
    how many were built during this run and how many came from the cache."""
    used = set(results.get("run", [])) | set(originals.get("directory", []))
    built = reused = 0
    for name in used:
        manifest = run_dir / name / "manifest.json"
        if manifest.is_file():
            if read_json(manifest)["created"] >= since:
                built += 1
            else:
                reused += 1
    return built, reused
