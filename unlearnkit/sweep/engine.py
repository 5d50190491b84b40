"""Running a sweep: skip the finished cells, run the rest on an executor, record each result at once.

A cell is finished when the ledger holds its row and, if the caller says how to check, its
artifacts still exist. Results are appended to the ledger the moment the executor yields them,
so an interrupted sweep (a crash, Ctrl-C, a lost Ray worker) keeps everything finished before the
interruption and the next call runs only the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..frontend import tqdm
from .executors import Cell, Executor, WorkerSpec
from .table import CellTable


@dataclass
class SweepOutcome:
    rows: dict[str, dict[str, Any]]
    """``{cell key: row}`` for every requested cell."""
    computed: int
    """Cells a worker computed now."""
    reused: int
    """Cells already in the ledger, or whose artifacts a worker found built."""


def group_cells(cells: Sequence[Cell]) -> list[list[Cell]]:
    """Cells grouped by ``group`` in order of first appearance, each key once."""
    groups: dict[str, list[Cell]] = {}
    seen: set[str] = set()
    for cell in cells:
        if cell.key in seen:
            continue
        seen.add(cell.key)
        groups.setdefault(cell.group, []).append(cell)
    return list(groups.values())


def run_cells(cells: Sequence[Cell], table: CellTable, executor: Executor, worker: WorkerSpec, force: bool = False,
              exists: Callable[[Cell], bool] | None = None, progress: bool = True,
              description: str = "cells") -> SweepOutcome:
    """Bring every cell of ``cells`` to the ledger ``table``; return their rows.

    ``force`` reruns every cell (its new row replaces the old one). ``exists(cell)`` tells whether
    a cell's artifacts are still there; a cell in the ledger whose artifacts were deleted runs again.
    """
    recorded = table.rows()
    pending = [cell for cell in cells
               if force or cell.key not in recorded or (exists is not None and not exists(cell))]
    unique = len({cell.key for cell in cells})
    todo = len({cell.key for cell in pending})
    computed = reused = 0
    with tqdm(total=unique, initial=unique - todo, desc=description, disable=not progress) as bar:
        for result in executor.run(group_cells(pending), worker, force):
            table.append(result.key, result.row)
            computed += not result.cached
            reused += result.cached
            bar.update(1)
    rows = table.rows()
    missing = [cell.key for cell in cells if cell.key not in rows]
    if missing:
        raise RuntimeError(f"{len(missing)} cells finished without a row in {table.path}, e.g. {missing[0]}")
    return SweepOutcome({cell.key: rows[cell.key] for cell in cells}, computed, reused + unique - todo)
