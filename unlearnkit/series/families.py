"""Families of notebooks that ``unlearnkit run`` executes, and the parameter files that choose one.

A family is a list of notebooks that share one parameters dataclass: the corrective-unlearning
series ``core`` (01 poison ... 05 SSD importance) is the default; other analyses register their own.
Adding one is a module with its parameters, its notebooks and one :func:`register_family` call.

A parameter file (``parameters/*.yaml``) holds flat keys of the family's parameters, plus
``series: <family>`` when it is not ``core``. It is validated before any compute.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..config import ConfigError
from ..registry import Registry
from .schema import CommonParameters

SERIES_KEY = "series"
DEFAULT_FAMILY = "core"


@dataclass(frozen=True)
class Family:
    """Notebooks run in order by ``unlearnkit run``, each declaring the fields of its stages."""

    name: str
    parameters: type[CommonParameters]
    notebooks: dict[str, tuple[str, ...]]
    """Notebook file stem -> the stages whose fields its ``parameters`` cell declares, in run order."""
    summary: Callable[[Path], str]
    """The lines ``unlearnkit run`` prints at the end, from the run folder."""
    description: str = ""

    def notebook_parameter_names(self, notebook: str) -> list[str]:
        return self.parameters.names_of_stages(self.notebooks[notebook])

    def accepted(self) -> list[str]:
        """The keys a parameter file of this family may set: those some notebook declares.

        A family may reuse a parameters class whose other stages it never runs (e.g. a subclass of
        the core series' parameters without the SSD-importance stage); those fields keep their defaults.
        """
        stages = {stage for notebook_stages in self.notebooks.values() for stage in notebook_stages}
        return self.parameters.names_of_stages(tuple(stages))

    def notebooks_accepting(self, name: str) -> list[str]:
        return [notebook for notebook in self.notebooks if name in self.notebook_parameter_names(notebook)]


FAMILIES: Registry[Family] = Registry("series")


def register_family(family: Family) -> Family:
    return FAMILIES.register(family.name)(family)


def family_of_notebook(notebook: str) -> Family:
    for name in FAMILIES:
        if notebook in FAMILIES.get(name).notebooks:
            return FAMILIES.get(name)
    raise KeyError(f"no series has a notebook {notebook!r}")


def notebook_parameter_names(notebook: str) -> list[str]:
    """The fields the ``parameters`` cell of ``notebook`` (a file stem such as ``02_train``) declares."""
    return family_of_notebook(notebook).notebook_parameter_names(notebook)


def unknown_key_message(key: str, source: str, families: list[Family]) -> str:
    """Names the notebooks that accept the closest valid key, or the series the key belongs to."""
    label = " or ".join(repr(f.name) for f in families)
    message = f"{source}: unknown parameter {key!r}: no notebook of the series {label} accepts it."
    accepted = [name for family in families for name in family.accepted()]
    close = difflib.get_close_matches(key, accepted, n=1, cutoff=0.6)
    if close:
        accepting = [nb for family in families for nb in family.notebooks_accepting(close[0])]
        return f"{message} Did you mean {close[0]!r} (accepted by {', '.join(accepting)})?"
    elsewhere = [FAMILIES.get(name) for name in FAMILIES
                 if FAMILIES.get(name) not in families and key in FAMILIES.get(name).accepted()]
    if elsewhere:
        other = elsewhere[0]
        return (f"{message} It belongs to the series {other.name!r} ({', '.join(other.notebooks_accepting(key))}): "
                f"add `{SERIES_KEY}: {other.name}` to run that series.")
    return message


def family_named(values: dict[str, Any], source: str) -> Family:
    name = values.get(SERIES_KEY, DEFAULT_FAMILY)
    if not isinstance(name, str) or name.lower() not in FAMILIES:
        known = ", ".join(FAMILIES.names())
        raise ConfigError(f"{source}: {SERIES_KEY} must be one of {known}, got {name!r}")
    return FAMILIES.get(name)


def parse_parameters(values: dict[str, Any], source: str) -> tuple[Family, CommonParameters]:
    """The family a mapping of parameters chooses, and its validated parameters."""
    family = family_named(values, source)
    given = {key: value for key, value in values.items() if key != SERIES_KEY}
    unknown = [key for key in given if key not in family.accepted()]
    if unknown:
        raise ConfigError(unknown_key_message(unknown[0], source, [family]))
    try:
        return family, family.parameters.from_mapping(given, source=source)
    except ConfigError as err:
        message = str(err)
        raise ConfigError(message if message.startswith(source) else f"{source}: {message}") from err


def load_parameter_file(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """Read and validate a YAML parameter file; return its family's parameters and the keys the file sets."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"parameter file {str(path)!r} does not exist")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: must be a mapping of parameter names to values, got {type(values).__name__}")
    _, params = parse_parameters(values, str(path))
    return params, values
