"""Small name -> factory registries for datasets, models, manipulations and methods.

Adding an entry is one file plus one ``@REGISTRY.register("name")`` line; nothing dispatches on
names anywhere else.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from .config import ConfigError

T = TypeVar("T")


class UnknownNameError(ConfigError, KeyError):
    """A registry lookup for a name that was never registered (a configuration error)."""

    def __str__(self) -> str:  # KeyError would print the repr with quotes
        return str(self.args[0])


class Registry(Generic[T]):
    """A mapping from a lower-case name to a registered object (class or factory)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        key = name.lower()

        def decorator(obj: T) -> T:
            if key in self._entries:
                raise ValueError(f"{self.kind} {key!r} is registered twice")
            self._entries[key] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        key = str(name).lower()
        if key not in self._entries:
            close = difflib.get_close_matches(key, self._entries, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._entries))}.{hint}"
            )
        return self._entries[key]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return str(name).lower() in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
