"""Where the cells of a sweep run: in this process (``local``) or on Ray workers (``ray``).

An executor takes groups of cells (cells of one group share work and run in order in one worker,
e.g. SSD's grid on one forget set) and a :class:`WorkerSpec` that says how to build a worker, and
yields a :class:`CellResult` per cell as results come in. Executors are registered in
:data:`EXECUTORS` by name; :class:`ExecutionOptions` is the validated choice a parameter file makes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import torch

from ..config import ConfigError, check_range
from ..registry import Registry


class Cell(Protocol):
    """One unit of a sweep. ``key`` names its result (the hash of its config); cells with the same
    ``group`` share work and run in order in one worker."""

    @property
    def key(self) -> str: ...

    @property
    def group(self) -> str: ...


@dataclass(frozen=True)
class CellResult:
    key: str
    row: dict[str, Any]
    cached: bool
    """True when the worker found the cell's artifacts already built (nothing computed)."""


class Worker(Protocol):
    def run(self, cells: Sequence[Cell], force: bool) -> list[CellResult]: ...


@dataclass(frozen=True)
class WorkerSpec:
    """How to build a worker: ``factory(**kwargs)``, importable by name so Ray can build it remotely.
    ``local`` is an existing instance the local executor uses instead (sharing its caches)."""

    factory: Any
    kwargs: dict[str, Any] = field(default_factory=dict)
    local: Worker | None = None

    def build(self) -> Worker:
        return self.local if self.local is not None else self.factory(**self.kwargs)


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` intra-op CPU threads (None: unchanged). CPU results depend on the thread
    count, so executors that must agree bit for bit run with the same count."""
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class ExecutionOptions:
    """The executor a sweep runs on and its resources. No field changes any result; only
    ``cpus_per_run`` can change CPU numerics (the thread count), and it applies to both executors."""

    executor: str = "local"
    ray_address: str | None = None
    """``ray`` only: the address of a running cluster (``auto``, ``ray://host:10001``); None starts Ray here."""
    gpus_per_run: float | None = None
    """``ray`` only: share of a GPU per worker (0.25: four runs share a GPU); None: 1 if the cluster has GPUs, else 0."""
    cpus_per_run: int | None = None
    """CPU threads per run (None: local keeps this process's threads, ray uses 1) and CPUs per Ray worker."""

    def __post_init__(self) -> None:
        if self.executor.lower() not in EXECUTORS:
            EXECUTORS.get(self.executor)  # raises naming the known executors
        if self.gpus_per_run is not None:
            check_range("gpus_per_run", self.gpus_per_run, 0.0)
        if self.cpus_per_run is not None:
            check_range("cpus_per_run", self.cpus_per_run, 1)
        EXECUTORS.get(self.executor).check(self)

    def build(self) -> Executor:
        return EXECUTORS.get(self.executor)(self)


class Executor:
    """Runs groups of cells with workers built from a :class:`WorkerSpec`."""

    name: ClassVar[str]

    def __init__(self, options: ExecutionOptions):
        self.options = options

    @classmethod
    def check(cls, options: ExecutionOptions) -> None:
        """Validate the options that concern this executor, before any compute."""

    def run(self, groups: Sequence[Sequence[Cell]], worker: WorkerSpec, force: bool) -> Iterator[CellResult]:
        raise NotImplementedError


EXECUTORS: Registry[type[Executor]] = Registry("executor")


@EXECUTORS.register("local")
class LocalExecutor(Executor):
    """In this process, one cell after the other, in the order given (the default)."""

    name: ClassVar[str] = "local"

    @classmethod
    def check(cls, options: ExecutionOptions) -> None:
        for key in ("ray_address", "gpus_per_run"):
            if getattr(options, key) is not None:
                raise ConfigError(f"{key} applies to executor 'ray' only (executor is 'local')")

    def run(self, groups: Sequence[Sequence[Cell]], worker: WorkerSpec, force: bool) -> Iterator[CellResult]:
        instance = worker.build()
        for group in groups:
            for cell in group:
                with torch_threads(self.options.cpus_per_run):
                    results = instance.run([cell], force)
                yield from results
