"""Models as an ordered list of blocks, the model registry, and seeded (re-)initialisation.

Unlearning methods in the corrective-unlearning benchmark (Goel et al., "Corrective Machine
Unlearning", TMLR 2024) act on parts of a network: e.g. retraining or re-initialising only the last
k layers ("catastrophically forgetting the last k layers", Goel et al., 2022, "Towards Adversarial
Evaluations for Inexact Machine Unlearning"). Every model here is therefore a ``BlockNet``: a flat
sequence of blocks whose boundaries are the places such a method may cut the network.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

import torch
from torch import nn

from ..registry import Registry

ModelFactory = Callable[[int, int], "BlockNet"]

MODELS: Registry[ModelFactory] = Registry("model")


class BlockNet(nn.Module):
    """A network that is exactly its blocks applied in order (no hidden glue in ``forward``)."""

    def __init__(self, blocks: Iterable[nn.Module]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        if len(self.blocks) == 0:
            raise ValueError("a BlockNet needs at least one block")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    def _check_k(self, k: int) -> int:
        # bool is an int; last_blocks(True) is almost certainly a bug, not a request for one block.
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= self.num_blocks:
            raise ValueError(f"k must be an integer between 1 and the number of blocks "
                             f"({self.num_blocks}), got k={k!r}")
        return k

    def last_blocks(self, k: int) -> list[nn.Module]:
        """The last ``k`` blocks, in forward order (1 <= k <= num_blocks)."""
        k = self._check_k(k)
        return list(self.blocks)[self.num_blocks - k:]

    def prefix_blocks(self, k: int) -> list[nn.Module]:
        """The blocks before the last ``k`` (empty when k == num_blocks)."""
        k = self._check_k(k)
        return list(self.blocks)[:self.num_blocks - k]


def _tensor_devices(module: nn.Module) -> set[torch.device]:
    tensors = [*module.parameters(), *module.buffers()]
    return {tensor.device for tensor in tensors}


@contextlib.contextmanager
def _seeded_rng(seed: int, devices: Iterable[torch.device] = ()) -> Iterator[None]:
    """Seed the CPU generator (and those of ``devices``) inside a fork, restoring them on exit.

    ``torch.manual_seed`` would also seed every CUDA device, and ``fork_rng(devices=[])`` restores
    only the CPU state, so together they would leak a changed CUDA RNG state to the caller; hence
    each generator that is seeded here is also one that the fork restores.
    """
    indices: dict[str, set[int]] = {}
    for device in devices:
        if device.type in ("cpu", "meta"):
            continue
        index = device.index
        if index is None:
            index = torch.get_device_module(device.type).current_device()
        indices.setdefault(device.type, set()).add(index)
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.random.fork_rng(devices=[]))
        for device_type, device_indices in indices.items():
            stack.enter_context(torch.random.fork_rng(devices=sorted(device_indices), device_type=device_type))
        torch.random.default_generator.manual_seed(seed)
        for device_type, device_indices in indices.items():
            device_module = torch.get_device_module(device_type)
            for index in sorted(device_indices):
                if hasattr(device_module, "device"):
                    with device_module.device(index):
                        device_module.manual_seed(seed)
                else:  # single-device backends such as MPS
                    device_module.manual_seed(seed)
        yield


@torch.no_grad()
def reinitialise_(module: nn.Module, generator_seed: int) -> nn.Module:
    """Re-initialise every submodule of ``module`` in place from ``generator_seed``; return it.

    Each submodule with ``reset_parameters`` gets it called (for BatchNorm that also resets the
    running statistics), in ``module.modules()`` order, from a freshly seeded RNG, so the result
    depends only on the seed, the architecture and the device type, never on the weights it
    overwrites or on the caller's RNG state, which is left untouched.
    """
    with _seeded_rng(generator_seed, _tensor_devices(module)):
        for submodule in module.modules():
            reset = getattr(submodule, "reset_parameters", None)
            if callable(reset):
                reset()
            # Norm layers without affine parameters may still track statistics.
            reset_stats = getattr(submodule, "reset_running_stats", None)
            if callable(reset_stats):
                reset_stats()
    return module


def build_model(name: str, num_classes: int, in_channels: int, seed: int = 0) -> BlockNet:
    """Build the registered model ``name`` on the CPU with weights drawn from ``seed``.

    The same seed gives bitwise-identical weights, and the caller's RNG state is unchanged, so a
    model seed never interferes with the data or training seeds.
    """
    factory = MODELS.get(name)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
        raise ValueError(f"in_channels must be a positive integer, got {in_channels!r}")
    with _seeded_rng(seed):
        model = factory(num_classes, in_channels)
    if not isinstance(model, BlockNet):
        raise TypeError(f"model factory {name!r} returned {type(model).__name__}, not a BlockNet")
    return model
