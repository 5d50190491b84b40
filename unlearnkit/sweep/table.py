"""The ledger of a sweep: one tidy row per finished cell, appended atomically, safe with concurrent workers.

The ledger is a JSON Lines file, one line ``{"cell": <key>, "row": {...}}`` per finished cell (JSON
keeps the types a CSV would lose: ``None`` vs NaN, nested hyper-parameters). Every write happens
under a file lock (:mod:`filelock`), so two processes or threads that finish at the same moment
never interleave or lose a line. A new cell is appended as one line and flushed to disk; a cell that
is finished again (``force``) replaces its line through a temporary file and a rename. Readers need
no lock: a line without its newline is an append that a crash interrupted, and is ignored (and cut
off by the next writer). Reading keeps the last line of a cell, so the table has one row per cell.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from filelock import FileLock

from ..store import atomic_write_text

TAIL_BYTES = 64


class LedgerError(RuntimeError):
    """A complete line of the ledger is not a cell record (the file was edited or is not a ledger)."""


def _normalise(row: Mapping[str, Any]) -> dict[str, Any]:
    """The row as it reads back from JSON, so an unchanged row compares equal to its stored copy."""
    return json.loads(json.dumps(dict(row), sort_keys=True, default=str))


def _line(cell: str, row: dict[str, Any]) -> str:
    return json.dumps({"cell": cell, "row": row}, sort_keys=True, default=str) + "\n"


class CellTable:
    """The finished cells of a sweep at ``path`` (JSON Lines), keyed by each cell's config hash."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        # Thread-local (filelock's default): each thread and each process locks through its own
        # descriptor, so threads sharing this object exclude each other like separate processes.
        self._lock = FileLock(f"{self.path}.lock")
        self._seen: tuple[int, int, dict[str, dict[str, Any]], int, bytes] | None = None
        """``(inode, bytes, rows, lines, last bytes)`` of the last read: a grown file is parsed from there."""

    def __repr__(self) -> str:
        return f"CellTable({str(self.path)!r})"

    # Reading -------------------------------------------------------------------------------------

    def rows(self) -> dict[str, dict[str, Any]]:
        """``{cell: row}`` of every finished cell, in the order the cells first finished."""
        return dict(self._read()[0])

    def keys(self) -> set[str]:
        return set(self.rows())

    def __len__(self) -> int:
        return len(self.rows())

    def __contains__(self, cell: object) -> bool:
        return cell in self.rows()

    def _read(self) -> tuple[dict[str, dict[str, Any]], int, int]:
        """``(rows, complete_bytes, stored_lines)``; ``complete_bytes`` ends at the last newline.

        Appends only add lines, and a replacement writes a new file (a new inode) whose last line
        is a changed row. So when the inode and the bytes just before the end of the last read are
        unchanged, only what follows them is parsed: a long sweep does not re-read its whole ledger
        for every cell.
        """
        try:
            with open(self.path, "rb") as stream:
                start = self._unchanged_prefix(stream)
                stream.seek(start)
                data = stream.read()
                inode = os.fstat(stream.fileno()).st_ino
        except FileNotFoundError:
            self._seen = None
            return {}, 0, 0
        rows, lines = (dict(self._seen[2]), self._seen[3]) if start else ({}, 0)
        complete = data.rfind(b"\n") + 1
        for raw in data[:complete].splitlines():
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
                cell, row = record["cell"], record["row"]
            except (ValueError, KeyError, TypeError) as err:
                raise LedgerError(f"{self.path}: not a cell record: {raw[:80]!r} ({err})") from err
            rows[cell] = row
            lines += 1
        end = start + complete
        tail = (self._seen[4] if start and not complete else data[max(0, complete - TAIL_BYTES):complete])
        self._seen = (inode, end, rows, lines, tail)
        return rows, end, lines

    def _unchanged_prefix(self, stream) -> int:
        """Bytes already parsed whose content is known to be unchanged (0: parse everything)."""
        if self._seen is None:
            return 0
        inode, end, _, _, tail = self._seen
        if os.fstat(stream.fileno()).st_ino != inode or os.fstat(stream.fileno()).st_size < end:
            return 0
        stream.seek(end - len(tail))
        return end if stream.read(len(tail)) == tail else 0

    # Writing -------------------------------------------------------------------------------------

    def append(self, cell: str, row: Mapping[str, Any]) -> bool:
        """Record ``row`` as the result of ``cell``; False when the table already holds exactly it."""
        return self.append_many([(cell, row)]) == 1

    def append_many(self, records: Iterable[tuple[str, Mapping[str, Any]]]) -> int:
        """Record several cells under one lock; return how many rows were added or replaced."""
        records = [(str(cell), _normalise(row)) for cell, row in records]
        if not records:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            rows, complete, lines = self._read()
            changed = {cell: row for cell, row in records if rows.get(cell) != row}
            if not changed:
                return 0
            if any(cell in rows for cell in changed) or lines != len(rows):
                # A cell finished again (force) or an older copy is left: rewrite, one line per cell,
                # the changed rows last.
                merged = {**{cell: row for cell, row in rows.items() if cell not in changed}, **changed}
                atomic_write_text(self.path, "".join(_line(cell, row) for cell, row in merged.items()))
                return len(changed)
            with open(self.path, "r+b" if self.path.is_file() else "wb") as stream:
                stream.truncate(complete)  # drop the tail of an append a crash cut short
                stream.seek(complete)
                stream.write("".join(_line(cell, row) for cell, row in changed.items()).encode())
                stream.flush()
                os.fsync(stream.fileno())
            return len(changed)
