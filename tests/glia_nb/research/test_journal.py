"""The append-only JSONL journal."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from glia_nb.research.journal import Journal, JournalCorruptError, environment_info, read_journal, to_jsonable
from glia_nb.llm import Message, Usage


def test_round_trip(tmp_path):
    path = tmp_path / "run" / "journal.jsonl"
    with Journal.create(path, {"task": "routing-a10", "config": {"budget": 20}, "seed": 7}) as j:
        r1 = j.append("llm_call", model="claude-haiku-4-5", usage=Usage(10, 5), cost_usd=0.001)
        r2 = j.append("message", message=Message.user("hi"))
        j.append("metrics", latency=np.float64(1.5), counts=np.arange(3), path=Path("/x/y"))
    header, records = read_journal(path)

    assert header["type"] == "header" and header["seq"] == 0
    assert header["task"] == "routing-a10" and header["config"] == {"budget": 20} and header["seed"] == 7
    for key in ("version", "created", "python", "numpy", "numba"):
        assert header[key], key
    assert header["numpy"] == np.__version__
    dt.datetime.fromisoformat(header["created"])

    assert [r["seq"] for r in records] == [1, 2, 3]
    assert [r["type"] for r in records] == ["llm_call", "message", "metrics"]
    assert records[0] == r1 and records[1] == r2
    assert records[0]["usage"] == Usage(10, 5).to_dict()
    assert Message.from_dict(records[1]["message"]) == Message.user("hi")
    assert records[2]["latency"] == 1.5 and records[2]["counts"] == [0, 1, 2] and records[2]["path"] == "/x/y"
    assert dt.datetime.fromisoformat(records[2]["ts"]) >= dt.datetime.fromisoformat(records[0]["ts"])
    # One JSON object per line, nothing else.
    lines = path.read_text().splitlines()
    assert len(lines) == 4 and all(isinstance(json.loads(ln), dict) for ln in lines)


def test_fsync_per_record(tmp_path, monkeypatch):
    calls: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real_fsync(fd))[1])
    j = Journal.create(tmp_path / "j.jsonl", {})
    after_create = len(calls)
    assert after_create >= 1  # the header is durable too
    for i in range(5):
        j.append("step", i=i)
        assert len(calls) == after_create + i + 1
    j.close()


def test_create_refuses_to_clobber(tmp_path):
    path = tmp_path / "j.jsonl"
    Journal.create(path, {}).close()
    with pytest.raises(FileExistsError):
        Journal.create(path, {})
    Journal.create(path, {"seed": 1}, overwrite=True).close()
    assert read_journal(path)[0]["seed"] == 1


def test_reserved_fields_and_bad_values(tmp_path):
    j = Journal.create(tmp_path / "j.jsonl", {})
    with pytest.raises(ValueError):
        j.append("x", seq=3)
    with pytest.raises(ValueError):
        j.append("header")
    with pytest.raises(TypeError):
        j.append("x", obj=object())
    j.append("ok")
    j.close()
    with pytest.raises(ValueError):
        j.append("after-close")
    # Failed appends leave no trace and do not consume a seq.
    assert [r["seq"] for r in read_journal(j.path)[1]] == [1]
    with pytest.raises(ValueError):
        Journal.create(tmp_path / "k.jsonl", {"type": "nope"})


def test_torn_last_line_is_tolerated(tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal.create(path, {}) as j:
        for i in range(3):
            j.append("step", i=i)
    with open(path, "ab") as fh:
        fh.write(b'{"seq": 4, "ts": "2025-01-01T00:00:00+00:00", "type": "st')  # crash mid-write
    header, records = read_journal(path)
    assert [r["i"] for r in records] == [0, 1, 2]


def test_corrupt_middle_line_raises(tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal.create(path, {}) as j:
        for i in range(3):
            j.append("step", i=i)
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2][:10]  # damage record seq 2 of 3
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(JournalCorruptError, match="line 3"):
        read_journal(path)
    with pytest.raises(JournalCorruptError):
        Journal.open(path)


def test_missing_header_raises(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_text('{"seq": 1, "type": "step"}\n')
    with pytest.raises(JournalCorruptError, match="header"):
        read_journal(path)
    path.write_text("")
    with pytest.raises(JournalCorruptError):
        read_journal(path)


def test_reopen_continues_seq(tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal.create(path, {"seed": 3}) as j:
        j.append("a")
        j.append("b")
    with Journal.open(path) as j:
        assert j.header["seed"] == 3 and j.next_seq == 3 and j.dropped_bytes == 0
        assert j.append("c")["seq"] == 3
    _, records = read_journal(path)
    assert [(r["seq"], r["type"]) for r in records] == [(1, "a"), (2, "b"), (3, "c")]


def test_reopen_after_torn_write_drops_the_fragment(tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal.create(path, {}) as j:
        j.append("a")
    fragment = b'{"seq": 2, "type": "b", "pay'
    with open(path, "ab") as fh:
        fh.write(fragment)
    with Journal.open(path) as j:
        assert j.dropped_bytes == len(fragment)
        assert j.append("b2")["seq"] == 2
    _, records = read_journal(path)  # would raise if the fragment were still mid-file
    assert [r["type"] for r in records] == ["a", "b2"]


def test_reopen_restores_a_lost_final_newline(tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal.create(path, {}) as j:
        j.append("a")
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    with Journal.open(path) as j:
        j.append("b")
    assert [r["type"] for r in read_journal(path)[1]] == ["a", "b"]


def test_concurrent_appends_keep_records_intact(tmp_path):
    path = tmp_path / "j.jsonl"
    j = Journal.create(path, {})
    n_threads, per_thread = 8, 50
    payload = "x" * 2000  # long lines make interleaving visible if the lock failed

    def worker(t: int) -> None:
        for i in range(per_thread):
            j.append("step", thread=t, i=i, payload=payload)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    j.close()
    _, records = read_journal(path)
    assert len(records) == n_threads * per_thread
    assert [r["seq"] for r in records] == list(range(1, n_threads * per_thread + 1))
    assert {(r["thread"], r["i"]) for r in records} == {(t, i) for t in range(n_threads) for i in range(per_thread)}
    assert all(r["payload"] == payload for r in records)


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass(frozen=True)
class Point:
    x: float
    tags: tuple[str, ...] = ()


def test_to_jsonable():
    value = {
        "np_int": np.int64(3),
        "np_float": np.float32(0.5),
        "np_bool": np.bool_(True),
        "array": np.array([[1.0, np.nan], [np.inf, 2.0]]),
        "nan": float("nan"),
        "point": Point(1.0, ("a",)),
        "path": Path("a/b"),
        "when": dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        "dur": dt.timedelta(seconds=90),
        "enum": Color.RED,
        "set": {3, 1, 2},
        "tuple": (1, "two"),
        1: "int key",
        np.int64(2): "numpy key",
    }
    out = to_jsonable(value)
    assert json.loads(json.dumps(out, allow_nan=False)) == out
    assert out["np_int"] == 3 and type(out["np_int"]) is int
    assert out["np_bool"] is True
    assert out["array"] == [[1.0, None], [None, 2.0]]
    assert out["nan"] is None
    assert out["point"] == {"x": 1.0, "tags": ["a"]}
    assert out["path"] == str(Path("a/b")) and out["when"].startswith("2025-01-02T03:04:05")
    assert out["dur"] == 90.0 and out["enum"] == "red" and out["set"] == [1, 2, 3] and out["tuple"] == [1, "two"]
    assert out["1"] == "int key" and out["2"] == "numpy key"
    with pytest.raises(TypeError):
        to_jsonable({(1, 2): "tuple key"})
    with pytest.raises(TypeError):
        to_jsonable(object())


def test_environment_info_is_cheap_and_json_native():
    info = environment_info()
    assert json.loads(json.dumps(info)) == info
    assert info["python"].count(".") == 2
