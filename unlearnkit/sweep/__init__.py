"""Sweeps: cells keyed by the hash of their config, a ledger that survives interruptions and
concurrent workers, and executors that run the cells here (``local``) or on Ray (``ray``).

The notebook series plans its cells (original models, unlearning runs) in
:mod:`unlearnkit.series.cells`; this package knows nothing about what a cell computes.
"""

from . import ray_executor  # noqa: F401  (registers the ray executor; Ray itself is imported only when used)
from .engine import SweepOutcome, group_cells, run_cells
from .executors import EXECUTORS, CellResult, ExecutionOptions, Executor, LocalExecutor, WorkerSpec, torch_threads
from .table import CellTable, LedgerError
