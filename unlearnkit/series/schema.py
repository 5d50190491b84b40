"""The typed parameters a notebook's ``parameters`` cell declares, and the fields every notebook shares.

A family of notebooks (see :mod:`unlearnkit.series.families`) has one frozen dataclass of
parameters, derived from :class:`CommonParameters`. Each field carries the *stage* that first uses
it (``stage_field("train", ...)``); a notebook's ``parameters`` cell declares exactly the fields of
the stages it builds or reads, with the dataclass defaults, so a notebook opened as is runs its
smoke-sized default and papermill can replace any of them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import ConfigError, from_dict, to_dict
from .paths import project_root


def stage_field(stage: str, default: Any = dataclasses.MISSING, factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field that belongs to ``stage``: the first stage whose artifacts depend on it."""
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata={"stage": stage})
    return field(default=default, metadata={"stage": stage})


@dataclass(frozen=True)
class CommonParameters:
    """Where artifacts go and how to compute: fields of every notebook, with no effect on results."""

    run_name: str = stage_field("common", "smoke")
    output_root: str | None = stage_field("common", None)
    device: str | None = stage_field("common", None)
    progress: bool = stage_field("common", True)
    force: bool = stage_field("common", False)
    export_png: bool = stage_field("common", True)

    def __post_init__(self) -> None:
        if not self.run_name or "/" in self.run_name or self.run_name.startswith("."):
            raise ConfigError(f"run_name must be a plain folder name, got {self.run_name!r}")

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def stage_of(cls, name: str) -> str:
        return next(f.metadata["stage"] for f in dataclasses.fields(cls) if f.name == name)

    @classmethod
    def names_of_stages(cls, stages: tuple[str, ...]) -> list[str]:
        """The fields of ``stages``, in declaration order."""
        return [f.name for f in dataclasses.fields(cls) if f.metadata["stage"] in stages]

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], source: str = "parameters"):
        """Validated parameters from ``values``; an unknown key names the notebooks that accept the closest one."""
        unknown = [key for key in values if key not in cls.field_names()]
        if unknown:
            from .families import FAMILIES, unknown_key_message

            families = [FAMILIES.get(name) for name in FAMILIES if FAMILIES.get(name).parameters is cls]
            raise ConfigError(unknown_key_message(unknown[0], source, families))
        return from_dict(cls, values)

    @classmethod
    def collect(cls, namespace: Mapping[str, Any]):
        """The parameters defined in a notebook's namespace (its ``parameters`` cell and papermill's)."""
        return from_dict(cls, {name: namespace[name] for name in cls.field_names() if name in namespace})


def data_values(params: Any) -> dict[str, Any]:
    """The data fields of a family's parameters as a data config's keys. A relative ``data_root`` is
    taken from the project folder, so a notebook running in ``notebooks/`` and ``unlearnkit run`` from
    the repository root read the same files."""
    root = params.data_root
    if root is not None and not Path(root).expanduser().is_absolute():
        root = str((project_root() or Path.cwd()) / root)
    return {"name": params.dataset, "root": root, "download": params.download, "val_size": params.val_size,
            "train_subset": params.train_subset, "test_subset": params.test_subset, "seed": params.data_seed}


def canonical_manipulation(manipulations: list[dict[str, Any]], index: int,
                           build: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    """Manipulation ``index`` with every default spelled out by its builder, so equivalent spellings
    share a cache; an invalid one is reported with its position in the list."""
    values = manipulations[index]
    try:
        config = build(values)
    except ConfigError as err:
        raise ConfigError(f"manipulations[{index}]: {err}") from err
    return {"name": values["name"], **to_dict(config)}
