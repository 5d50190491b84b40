"""The artifact store: every stage writes under ``outputs/<run>/<stage>-<config hash>/``.

A stage directory is built under a temporary name and renamed into place only when complete, so an
interrupted run leaves no half-written artifact and the next run simply recomputes that stage;
identical configs find the finished directory and reuse it. Weights are stored as safetensors, so
loading them never unpickles code.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from .config import config_hash

MANIFEST = "manifest.json"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual mode
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_json(path: Path, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Save tensors as safetensors, atomically (channels_last or GPU tensors are fine)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        save_file({name: t.detach().cpu().contiguous() for name, t in tensors.items()}, str(temporary))
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def load_tensors(path: Path, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    return load_file(str(path), device=str(device))


def save_model(path: Path, model: torch.nn.Module) -> None:
    save_tensors(path, model.state_dict())


def load_model_weights(path: Path, model: torch.nn.Module) -> torch.nn.Module:
    """Load safetensors weights into ``model`` (strict: every key must match)."""
    device = next(model.parameters()).device
    model.load_state_dict(load_tensors(path, device))
    return model


def save_table(path: Path, table: pd.DataFrame) -> None:
    atomic_write_text(Path(path), table.to_csv(index=False))


@dataclass
class ArtifactStore:
    """Artifacts of one run under ``root/run``."""

    root: Path = Path("outputs")
    run: str = "default"

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    @property
    def run_dir(self) -> Path:
        return self.root / self.run

    def stage_dir(self, stage: str, config: Any) -> Path:
        return self.run_dir / f"{stage}-{config_hash(config)}"

    def is_complete(self, stage: str, config: Any) -> bool:
        return (self.stage_dir(stage, config) / MANIFEST).is_file()

    def build(self, stage: str, config: Any, build: Callable[[Path], dict[str, Any] | None],
              force: bool = False) -> tuple[Path, bool]:
        """Return ``(directory, cache_hit)`` for the stage, running ``build(tmp_dir)`` on a miss.

        ``build`` writes its files into the temporary directory it is given and may return extra
        manifest entries. ``force`` rebuilds even when a finished directory exists.
        """
        final = self.stage_dir(stage, config)
        if not force and (final / MANIFEST).is_file():
            return final, True
        final.parent.mkdir(parents=True, exist_ok=True)
        scratch = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
        scratch.mkdir()
        try:
            started = time.time()
            extra = build(scratch) or {}
            write_json(scratch / "config.json", config)
            write_json(scratch / MANIFEST, {"stage": stage, "key": final.name.rsplit("-", 1)[-1],
                                            "created": started, "build_seconds": time.time() - started, **extra})
            if force and final.exists():
                shutil.rmtree(final)
            try:
                os.replace(scratch, final)
            except OSError:
                # Another worker finished the same stage first; its result is equivalent.
                shutil.rmtree(scratch)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        return final, False
