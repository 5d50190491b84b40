"""The sweep ledger: atomic appends, one row per cell, concurrent writers, torn writes."""

from __future__ import annotations

import json
import multiprocessing
import threading

import pytest

from unlearnkit.sweep import CellTable, LedgerError


def append_rows(path: str, writer: str, count: int, shared: int, start=None) -> None:
    """Append ``count`` rows of this writer's own cells and ``shared`` cells every writer also appends."""
    table = CellTable(path)
    if start is not None:
        start.wait()  # every writer begins at the same moment
    for index in range(count):
        table.append(f"{writer}-{index}", {"writer": writer, "index": index, "value": index / 7})
        if index < shared:
            table.append(f"shared-{index}", {"index": index})


def stored_lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def check_complete(path, writers: list[str], count: int, shared: int) -> None:
    lines = stored_lines(path)
    cells = [line["cell"] for line in lines]
    expected = {f"{w}-{i}" for w in writers for i in range(count)} | {f"shared-{i}" for i in range(shared)}
    assert len(cells) == len(set(cells)), "a cell is stored twice"
    assert set(cells) == expected, f"lost: {sorted(expected - set(cells))[:5]}"
    assert CellTable(path).rows() == {line["cell"]: line["row"] for line in lines}


def test_threads_appending_at_once_lose_and_duplicate_nothing(tmp_path):
    path = tmp_path / "cells.jsonl"
    writers = [f"t{i}" for i in range(4)]
    threads = [threading.Thread(target=append_rows, args=(str(path), w, 60, 30)) for w in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    check_complete(path, writers, 60, 30)


def test_processes_appending_at_once_lose_and_duplicate_nothing(tmp_path):
    path = tmp_path / "cells.jsonl"
    writers = ["p0", "p1", "p2"]
    # fork: no re-import of torch per writer; the writers only touch files
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    start = context.Event()
    processes = [context.Process(target=append_rows, args=(str(path), w, 150, 50, start)) for w in writers]
    for process in processes:
        process.start()
    start.set()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    check_complete(path, writers, 150, 50)


def test_one_table_object_shared_by_threads_is_safe(tmp_path):
    table = CellTable(tmp_path / "cells.jsonl")
    threads = [threading.Thread(target=lambda w=w: [table.append(f"{w}-{i}", {"i": i}) for i in range(50)])
               for w in ("a", "b", "c")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    check_complete(table.path, ["a", "b", "c"], 50, 0)


def test_a_row_finished_again_replaces_the_old_one(tmp_path):
    table = CellTable(tmp_path / "cells.jsonl")
    assert table.append("a", {"x": 1}) and table.append("b", {"x": 2})
    assert not table.append("a", {"x": 1}), "an identical row is not stored again"
    assert table.append("a", {"x": 3})
    assert table.rows() == {"b": {"x": 2}, "a": {"x": 3}}
    assert [line["cell"] for line in stored_lines(table.path)] == ["b", "a"]


def test_a_torn_last_line_is_ignored_and_cut_off_by_the_next_append(tmp_path):
    table = CellTable(tmp_path / "cells.jsonl")
    table.append("a", {"x": 1})
    with open(table.path, "a") as stream:  # a crash in the middle of an append
        stream.write('{"cell": "b", "row": {"x"')
    assert CellTable(table.path).rows() == {"a": {"x": 1}}
    table.append("c", {"x": 3})
    assert [line["cell"] for line in stored_lines(table.path)] == ["a", "c"]


def test_readers_follow_appends_and_replacements_by_other_writers(tmp_path):
    writer, reader = CellTable(tmp_path / "cells.jsonl"), CellTable(tmp_path / "cells.jsonl")
    assert reader.rows() == {}
    writer.append("a", {"x": 1})
    assert reader.rows() == {"a": {"x": 1}}
    writer.append("b", {"x": 2})
    assert reader.rows() == {"a": {"x": 1}, "b": {"x": 2}}
    writer.append("a", {"x": 5})  # a replacement rewrites the file
    assert reader.rows() == {"b": {"x": 2}, "a": {"x": 5}}
    writer.path.unlink()
    assert reader.rows() == {}


def test_types_survive_and_a_foreign_line_is_an_error(tmp_path):
    table = CellTable(tmp_path / "cells.jsonl")
    row = {"asr": None, "params": {"alpha": 0.5, "k": None}, "n": 3, "score": float("nan")}
    table.append("a", row)
    stored = table.rows()["a"]
    assert stored["asr"] is None and stored["params"] == {"alpha": 0.5, "k": None} and stored["n"] == 3
    assert stored["score"] != stored["score"], "NaN stays NaN"
    table.path.write_text(table.path.read_text() + "not json\n")
    with pytest.raises(LedgerError, match="not a cell record"):
        CellTable(table.path).rows()
