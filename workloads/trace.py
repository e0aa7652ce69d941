"""A request trace: arrival times and token lengths, open or closed loop.

The CSV format is Vidur's trace format (``arrived_at,num_prefill_tokens,num_decode_tokens``),
so traces can move between this toolkit and Vidur unchanged.
"""
from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover - typing only; pandas is imported lazily
    import pandas as pd

CSV_COLUMNS = ("arrived_at", "num_prefill_tokens", "num_decode_tokens")
# Closed-loop metadata travels in one leading comment line (Vidur has no such notion).
_META_PREFIX = "# glia-trace:"


class TraceError(ValueError):
    """A trace file could not be read; the message names the file, the line and the problem."""


def _int_column(name: str, values) -> np.ndarray:
    """``values`` as a read-only int64 array, every entry an integer >= 1."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind == "f":
        if arr.size and not (np.isfinite(arr).all() and (arr == np.round(arr)).all()):
            raise ValueError(f"{name} must hold whole numbers")
    elif arr.dtype.kind not in "iub" and arr.size:
        raise ValueError(f"{name} must be integers, got dtype {arr.dtype}")
    out = np.array(arr, dtype=np.int64)
    if out.size and out.min() < 1:
        k = int(np.argmin(out))
        raise ValueError(f"{name} must be >= 1; request {k} has {out[k]}")
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class Trace:
    """Requests to replay: one entry per request in the three parallel arrays.

    * ``arrived_at`` — arrival times in seconds (float64, non-decreasing, >= 0).
    * ``prompt_tokens``, ``decode_tokens`` — int64, each >= 1.
    * ``closed_loop_users`` — 0 for an open loop (every arrival time is given).  ``U > 0``
      makes a closed loop of ``U`` users: requests ``0..U-1`` arrive at ``t = 0``; every
      later request ``j`` arrives ``think_time_s`` after some earlier request completes, so
      the simulator fills in those times and ``arrived_at[j]`` is NaN here for ``j >= U``.
      The length arrays are then a pool consumed in order.
    * ``duration_s`` — no arrival is generated after this time (closed loop); for an open
      loop it is the window the arrivals were drawn over (arrivals must not exceed it).

    The arrays are copied and made read-only.  Use :meth:`closed_loop` to build a closed
    loop trace without spelling out the NaNs.
    """

    arrived_at: np.ndarray
    prompt_tokens: np.ndarray
    decode_tokens: np.ndarray
    closed_loop_users: int = 0
    think_time_s: float = 0.0
    duration_s: float | None = None

    def __post_init__(self) -> None:
        arrived = np.array(self.arrived_at, dtype=np.float64)
        if arrived.ndim != 1:
            raise ValueError(f"arrived_at must be one-dimensional, got shape {arrived.shape}")
        prompt = _int_column("prompt_tokens", self.prompt_tokens)
        decode = _int_column("decode_tokens", self.decode_tokens)
        if not len(arrived) == len(prompt) == len(decode):
            raise ValueError(f"arrived_at, prompt_tokens and decode_tokens must have equal lengths; "
                             f"got {len(arrived)}, {len(prompt)} and {len(decode)}")
        users = self.closed_loop_users
        if isinstance(users, bool) or not isinstance(users, (int, np.integer)) or users < 0:
            raise ValueError(f"closed_loop_users must be an integer >= 0, got {users!r}")
        if not (math.isfinite(self.think_time_s) and self.think_time_s >= 0):
            raise ValueError(f"think_time_s must be finite and >= 0, got {self.think_time_s}")
        if self.duration_s is not None and not (math.isfinite(self.duration_s) and self.duration_s > 0):
            raise ValueError(f"duration_s must be None or finite and > 0, got {self.duration_s}")
        if users:
            if users > len(arrived):
                raise ValueError(f"a closed loop of {users} users needs at least {users} requests "
                                 f"in its pool, got {len(arrived)}")
            if np.any(arrived[:users] != 0.0):
                raise ValueError(f"in a closed loop the first {users} requests (one per user) "
                                 f"must arrive at t=0")
            if not np.isnan(arrived[users:]).all():
                raise ValueError("in a closed loop the arrival times of requests beyond the "
                                 "first one per user must be NaN (the simulator sets them)")
        else:
            _check_open_arrivals(arrived, self.duration_s)
        arrived.setflags(write=False)
        object.__setattr__(self, "arrived_at", arrived)
        object.__setattr__(self, "prompt_tokens", prompt)
        object.__setattr__(self, "decode_tokens", decode)
        object.__setattr__(self, "closed_loop_users", int(users))
        object.__setattr__(self, "think_time_s", float(self.think_time_s))
        if self.duration_s is not None:
            object.__setattr__(self, "duration_s", float(self.duration_s))

    @classmethod
    def closed_loop(cls, prompt_tokens, decode_tokens, users: int, *, think_time_s: float = 0.0,
                    duration_s: float | None = None) -> "Trace":
        """A closed-loop trace over a pool of lengths: ``users`` start at t=0, the rest are NaN."""
        n = len(prompt_tokens)
        arrived = np.full(n, np.nan)
        arrived[: min(users, n)] = 0.0
        return cls(arrived, prompt_tokens, decode_tokens, closed_loop_users=users,
                   think_time_s=think_time_s, duration_s=duration_s)

    @property
    def is_closed_loop(self) -> bool:
        """True when arrivals after the first one per user come from completions."""
        return self.closed_loop_users > 0

    def __len__(self) -> int:
        return len(self.arrived_at)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Trace):
            return NotImplemented
        return (self.closed_loop_users == other.closed_loop_users
                and self.think_time_s == other.think_time_s
                and self.duration_s == other.duration_s
                and np.array_equal(self.arrived_at, other.arrived_at, equal_nan=True)
                and np.array_equal(self.prompt_tokens, other.prompt_tokens)
                and np.array_equal(self.decode_tokens, other.decode_tokens))

    __hash__ = None  # mutable-looking array fields: equality by value, not hashable

    def __repr__(self) -> str:
        kind = (f"closed loop, {self.closed_loop_users} users, think {self.think_time_s:g} s"
                if self.is_closed_loop else "open loop")
        dur = "" if self.duration_s is None else f", {self.duration_s:g} s"
        return f"Trace({len(self)} requests, {kind}{dur})"

    def to_frame(self) -> "pd.DataFrame":
        """The trace as a pandas DataFrame (columns ``arrived_at, prompt_tokens, decode_tokens``)."""
        import pandas as pd

        return pd.DataFrame({"arrived_at": self.arrived_at, "prompt_tokens": self.prompt_tokens,
                             "decode_tokens": self.decode_tokens})

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Write Vidur's trace CSV; returns the path.

        An open-loop trace is a plain Vidur file.  A closed-loop trace (or one with a
        ``duration_s``) adds one leading ``# glia-trace:`` comment line with its loop
        settings, which :meth:`from_csv` reads back; its unknown arrival times are ``nan``.
        """
        path = Path(path)
        with open(path, "w", newline="", encoding="utf-8") as fh:
            if self.is_closed_loop or self.duration_s is not None:
                fh.write(f"{_META_PREFIX} closed_loop_users={self.closed_loop_users} "
                         f"think_time_s={self.think_time_s!r} duration_s={self.duration_s!r}\n")
            fh.write(",".join(CSV_COLUMNS) + "\n")
            # repr() of a float round-trips exactly.
            fh.writelines(f"{a!r},{p},{d}\n" for a, p, d in zip(
                self.arrived_at.tolist(), self.prompt_tokens.tolist(), self.decode_tokens.tolist()))
        return path

    @classmethod
    def from_csv(cls, path: str | os.PathLike) -> "Trace":
        """Read a trace in Vidur's format; extra columns are ignored.

        Raises :class:`TraceError` (one line naming the file, the line number and the
        problem) for a missing file or column, a non-numeric or non-integral value,
        token counts below 1, unsorted or negative arrival times.
        """
        return _read_csv(cls, Path(path))


def _check_open_arrivals(arrived: np.ndarray, duration_s: float | None) -> None:
    """Open-loop arrival checks with the index of the first offending request."""
    if not len(arrived):
        return
    bad = np.flatnonzero(~np.isfinite(arrived))
    if bad.size:
        raise ValueError(f"open-loop arrival times must be finite; request {bad[0]} has "
                         f"{arrived[bad[0]]} (NaN arrivals are only for closed loops)")
    if arrived[0] < 0:
        raise ValueError(f"arrival times must be >= 0; request 0 arrives at {arrived[0]}")
    dec = np.flatnonzero(np.diff(arrived) < 0)
    if dec.size:
        k = int(dec[0]) + 1
        raise ValueError(f"arrival times must be non-decreasing; request {k} arrives at "
                         f"{arrived[k]} after request {k - 1} at {arrived[k - 1]}")
    if duration_s is not None and arrived[-1] > duration_s:
        raise ValueError(f"arrival at {arrived[-1]} s is after duration_s={duration_s}")


def _parse_meta(line: str, where: str) -> dict:
    """Fields of a ``# glia-trace:`` comment line."""
    meta = {}
    try:
        for item in line[len(_META_PREFIX):].split():
            key, value = item.split("=", 1)
            if key == "closed_loop_users":
                meta[key] = int(value)
            elif key in ("think_time_s", "duration_s"):
                meta[key] = None if value == "None" else float(value)
    except ValueError:
        raise TraceError(f"{where}: malformed trace settings line {line.strip()!r}") from None
    return meta


def _read_csv(cls, path: Path) -> Trace:
    try:
        fh = open(path, newline="", encoding="utf-8")
    except OSError as exc:
        raise TraceError(f"{path}: cannot open trace file: {exc.strerror or exc}") from None
    meta: dict = {}
    arrived: list[float] = []
    prompt: list[int] = []
    decode: list[int] = []
    with fh:
        lines = enumerate(fh, start=1)
        header = None
        for lineno, line in lines:
            if line.startswith(_META_PREFIX):
                meta = _parse_meta(line, f"{path}:{lineno}")
            elif line.strip() and not line.startswith("#"):
                header = next(csv.reader([line]))
                break
        if header is None:
            raise TraceError(f"{path}: empty trace file (expected a header "
                             f"{','.join(CSV_COLUMNS)})")
        names = [h.strip() for h in header]
        missing = [c for c in CSV_COLUMNS if c not in names]
        if missing:
            raise TraceError(f"{path}:{lineno}: missing column(s) {', '.join(missing)}; "
                             f"header is {','.join(names)}")
        cols = [names.index(c) for c in CSV_COLUMNS]
        closed = meta.get("closed_loop_users", 0) > 0
        for lineno, line in lines:
            if not line.strip() or line.startswith("#"):
                continue
            row = next(csv.reader([line]))
            where = f"{path}:{lineno}"
            if len(row) != len(names):
                raise TraceError(f"{where}: expected {len(names)} fields, got {len(row)}")
            a = _parse_float(row[cols[0]], "arrived_at", where)
            if not closed or len(arrived) < meta["closed_loop_users"]:
                if not math.isfinite(a) or a < 0:
                    raise TraceError(f"{where}: arrived_at must be a finite number >= 0, "
                                     f"got {row[cols[0]].strip()!r}")
                if arrived and a < arrived[-1]:
                    raise TraceError(f"{where}: arrived_at {a!r} is earlier than the previous "
                                     f"row's {arrived[-1]!r} (arrivals must be sorted)")
            arrived.append(a)
            prompt.append(_parse_tokens(row[cols[1]], "num_prefill_tokens", where))
            decode.append(_parse_tokens(row[cols[2]], "num_decode_tokens", where))
    try:
        return cls(np.array(arrived, dtype=np.float64), np.array(prompt, dtype=np.int64),
                   np.array(decode, dtype=np.int64), **meta)
    except ValueError as exc:
        raise TraceError(f"{path}: {exc}") from None


def _parse_float(text: str, column: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise TraceError(f"{where}: {column} is not a number: {text.strip()!r}") from None


def _parse_tokens(text: str, column: str, where: str) -> int:
    value = _parse_float(text, column, where)
    # Traces written by pandas may hold "128.0"; accept whole numbers only.
    if not math.isfinite(value) or value != int(value):
        raise TraceError(f"{where}: {column} must be a whole number, got {text.strip()!r}")
    if value < 1:
        raise TraceError(f"{where}: {column} must be >= 1, got {text.strip()!r}")
    return int(value)
