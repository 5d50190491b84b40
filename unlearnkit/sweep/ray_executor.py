"""The ``ray`` executor: cells run on Ray actors, here or on a cluster, several sharing a GPU.

Ray (``pip install unlearnkit[ray]``) schedules one actor per slot of ``gpus_per_run`` GPUs (or
``cpus_per_run`` CPUs without GPUs): 0.25 runs four workers on each GPU. Each actor builds one
worker, which keeps what it loaded (the data on the device, the original model) for the next cells,
and gets whole groups of cells, so work shared inside a group (SSD's importances over its grid)
is done once. Results return to this process, which appends them to the sweep's ledger as each
group finishes. Without ``ray_address`` a local Ray instance starts (``ray.init()``); a notebook or
script may also call ``ray.init(...)`` itself first, which is then used as it is.

On a cluster every node must see the run folder (``output_root`` on a shared file system): workers
load the original models from it and write their stage directories there.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

from ..config import ConfigError
from .executors import EXECUTORS, Cell, CellResult, ExecutionOptions, Executor, WorkerSpec, torch_threads

INSTALL_HINT = "pip install unlearnkit[ray]"


def ray_available() -> bool:
    try:
        return importlib.util.find_spec("ray") is not None
    except ValueError:  # a stub module without a spec
        return False


class RemoteWorker:
    """The body of each Ray actor: builds the worker once, runs every group it is sent."""

    def __init__(self, factory: Any, kwargs: dict[str, Any], threads: int):
        import torch

        torch.set_num_threads(threads)
        self.threads = threads
        self.worker = factory(**kwargs)

    def run(self, cells: Sequence[Cell], force: bool) -> list[CellResult]:
        with torch_threads(self.threads):
            return self.worker.run(cells, force)


@EXECUTORS.register("ray")
class RayExecutor(Executor):
    name: ClassVar[str] = "ray"

    @classmethod
    def check(cls, options: ExecutionOptions) -> None:
        if not ray_available():
            raise ConfigError(f"executor 'ray' needs Ray, which is not installed: {INSTALL_HINT}")

    def _connect(self):
        import ray

        if not ray.is_initialized():
            ray.init(address=self.options.ray_address, include_dashboard=False, log_to_driver=False)
        return ray

    def _slots(self, ray, groups: int) -> tuple[int, float, int]:
        """``(actors, gpus each, cpus each)`` from the cluster's resources."""
        resources = ray.cluster_resources()
        total_gpus, total_cpus = resources.get("GPU", 0.0), resources.get("CPU", 0.0)
        gpus = self.options.gpus_per_run
        if gpus is None:
            gpus = 1.0 if total_gpus > 0 else 0.0
        cpus = self.options.cpus_per_run or 1
        if gpus > total_gpus:
            raise ConfigError(f"gpus_per_run={gpus:g} but the Ray cluster has {total_gpus:g} GPUs")
        if cpus > total_cpus:
            raise ConfigError(f"cpus_per_run={cpus} but the Ray cluster has {total_cpus:g} CPUs")
        fits = math.floor(total_gpus / gpus + 1e-9) if gpus > 0 else math.floor(total_cpus / cpus + 1e-9)
        if gpus > 0:
            fits = min(fits, math.floor(total_cpus / cpus + 1e-9))
        return max(1, min(fits, groups)), gpus, cpus

    def run(self, groups: Sequence[Sequence[Cell]], worker: WorkerSpec, force: bool) -> Iterator[CellResult]:
        if not groups:
            return
        ray = self._connect()
        from ray.util import ActorPool

        count, gpus, cpus = self._slots(ray, len(groups))
        actor = ray.remote(num_cpus=cpus, num_gpus=gpus)(RemoteWorker)
        actors = [actor.remote(worker.factory, worker.kwargs, cpus) for _ in range(count)]
        try:
            pool = ActorPool(actors)
            for results in pool.map_unordered(lambda remote, group: remote.run.remote(list(group), force), groups):
                yield from results
        finally:
            for remote in actors:
                ray.kill(remote)
