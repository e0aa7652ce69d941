"""Append-only JSONL journal of a study: one JSON object per line, durable per record.

The first line is a header (``type == "header"``, ``seq == 0``) with the schema version
(:data:`glia_nb.research.records.SCHEMA_VERSION`), the glia-nb,
Python, NumPy and Numba versions and whatever the caller adds (task, config, seed).
Every later line is ``{"seq": n, "ts": ISO-8601 UTC, "type": ..., **fields}`` with ``seq``
increasing by one. Each record is flushed and ``fsync``-ed before ``append`` returns,
so a crash loses at most the record being written; :func:`read_journal` skips such a
torn last line, and :meth:`Journal.open` cuts it off before appending again.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import tempfile
import threading
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping, Sequence

from glia_nb.jsonable import finite_or_none, to_jsonable
from glia_nb.research.records import SCHEMA_VERSION, Record, record_type

__all__ = ["Journal", "JournalCorruptError", "JournalLockedError", "read_journal", "to_jsonable", "environment_info",
           "finite_or_none"]

_RESERVED = frozenset({"seq", "ts", "type"})


class JournalCorruptError(ValueError):
    """A journal line other than the last is not a JSON object, or the header is missing."""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _glia_version() -> str:
    try:
        from glia_nb import __version__  # type: ignore[attr-defined]

        return str(__version__)
    except ImportError:
        return _version("glia-nb") or "0+unknown"


def environment_info() -> dict[str, Any]:
    """Versions that make a run reproducible (read from package metadata, no heavy imports)."""
    return {
        "version": _glia_version(),
        "python": platform.python_version(),
        "numpy": _version("numpy"),
        "numba": _version("numba"),
        "platform": platform.platform(),
    }


def _dumps(record: Mapping[str, Any], secrets: Sequence[str] = ()) -> bytes:
    # allow_nan=False: to_jsonable already mapped non-finite floats; this guards the rule.
    from glia_nb.evaluation.secrets import known_secrets, redact  # keys never reach the journal

    clean = redact(dict(record), known_secrets(extra=secrets))
    return json.dumps(to_jsonable(clean), ensure_ascii=False, allow_nan=False).encode("utf-8") + b"\n"


def _fsync_dir(path: Path) -> None:
    # Make the new file's directory entry durable too (POSIX; a no-op where unsupported).
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class JournalLockedError(RuntimeError):
    """Another process is writing this session's journal."""


class Journal:
    """An open journal to append to. Build with :meth:`create` or :meth:`open`.

    ``append`` is thread-safe; one process should write a journal at a time.  Every record
    is written with the keys of the environment and ``secrets`` (values the session's model
    clients hold, say an ``api_key=`` given in a notebook) replaced by ``[REDACTED]``.
    """

    def __init__(self, path: Path, fh: Any, header: dict[str, Any], next_seq: int, dropped_bytes: int = 0,
                 written: bytes = b"", secrets: Sequence[str] = ()):
        self.path = path
        self.secrets = tuple(secrets)
        self.header = header
        self.dropped_bytes = dropped_bytes  # torn tail removed by open()
        self._fh = fh
        self._next_seq = next_seq
        self._lock = threading.Lock()
        self._written = bytearray(written)  # the file as this harness knows it (restore_if_altered)

    @staticmethod
    def _exclusive(fh: Any, path: Path) -> Any:
        """Hold an exclusive lock on the journal for as long as ``fh`` is open: one writing
        process per session directory (a second gets :class:`JournalLockedError`)."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no advisory locks
            return fh
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise JournalLockedError(f"session {path.parent} is in use by another process "
                                     f"(its journal is locked); stop that one first") from None
        return fh

    @classmethod
    def create(cls, path: str | os.PathLike, header: Mapping[str, Any] | None = None, *, overwrite: bool = False,
               secrets: Sequence[str] = ()) -> "Journal":
        """Start a new journal at ``path`` and write its header record.

        The header holds ``type``, ``seq`` (0), ``version`` (glia-nb), ``created``, the
        Python / NumPy / Numba versions and the platform, then the caller's ``header``
        fields (task, config, seed, ...), which may override all but ``type`` and ``seq``.
        Raises ``FileExistsError`` if the file exists, unless ``overwrite``.
        """
        p = Path(path)
        extra = dict(header or {})
        bad = {"type", "seq"} & extra.keys()
        if bad:
            raise ValueError(f"header fields {sorted(bad)} are reserved")
        p.parent.mkdir(parents=True, exist_ok=True)
        record = {"type": "header", "seq": 0, "schema": SCHEMA_VERSION, **environment_info(), "created": _now(),
                  **extra}
        data = _dumps(record, secrets)  # serialize before touching the file, so a bad header leaves none
        fh = open(p, "wb" if overwrite else "xb")
        try:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        except BaseException:
            fh.close()
            raise
        _fsync_dir(p.parent)
        fh.close()
        # Reopen in append mode so every later write lands at the end (O_APPEND).
        return cls(p, cls._exclusive(open(p, "ab"), p), json.loads(data), 1, written=data, secrets=secrets)

    @classmethod
    def open(cls, path: str | os.PathLike, *, secrets: Sequence[str] = ()) -> "Journal":
        """Open an existing journal to append to (resume), continuing its ``seq``.

        A torn last line (a crash mid-write) is truncated away first; ``dropped_bytes``
        says how many bytes went. Raises ``FileNotFoundError`` or
        :class:`JournalCorruptError`.
        """
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"no journal at {p}")
        out = cls._exclusive(open(p, "ab"), p)  # before repairing: another writer may be live
        try:
            header, records, valid_len = _scan(p)
        except BaseException:
            out.close()
            raise
        size = p.stat().st_size
        with open(p, "r+b") as fh:
            if valid_len < size:
                fh.truncate(valid_len)
            fh.seek(valid_len - 1)
            if fh.read(1) != b"\n":  # last record complete but its newline was lost
                fh.seek(valid_len)
                fh.write(b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        last = max([int(header.get("seq", 0))] + [int(r.get("seq", 0)) for r in records])
        return cls(p, out, header, last + 1, dropped_bytes=size - valid_len, written=p.read_bytes(),
                   secrets=secrets)

    @property
    def next_seq(self) -> int:
        """The ``seq`` the next record will get."""
        with self._lock:
            return self._next_seq

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._fh.closed

    def append(self, type: str, **fields: Any) -> dict[str, Any]:
        """Write one record and make it durable; return it as written (with seq and ts).

        ``fields`` must be convertible by :func:`to_jsonable`; ``seq``, ``ts`` and
        ``type`` are reserved.
        """
        if not isinstance(type, str) or not type or type == "header":
            raise ValueError(f"invalid record type {type!r}")
        bad = _RESERVED & fields.keys()
        if bad:
            raise ValueError(f"record fields {sorted(bad)} are reserved")
        body = to_jsonable(fields)  # convert outside the lock; errors leave no trace
        with self._lock:
            if self._fh.closed:
                raise ValueError(f"journal {self.path} is closed")
            record = {"seq": self._next_seq, "ts": _now(), "type": type, **body}
            data = _dumps(record, self.secrets)
            self._fh.write(data)
            self._written += data
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._next_seq += 1
        return record

    def write(self, record: Record) -> dict[str, Any]:
        """Append a typed record (see :mod:`glia_nb.research.records`); return it as written."""
        return self.append(record_type(record), **record.to_dict())

    def restore_if_altered(self) -> bool:
        """Put the journal back as this process wrote it if anything else changed, removed or
        replaced the file (untrusted code at the plain-process isolation level can); True if
        it had to.  Cheap when nothing changed: one ``stat`` and one read."""
        with self._lock:
            if self._fh.closed:
                return False
            try:
                same_file = os.path.samestat(os.stat(self.path, follow_symlinks=False),
                                             os.fstat(self._fh.fileno()))
            except FileNotFoundError:
                same_file = False
            if same_file:
                with open(self.path, "rb") as fh:
                    if fh.read(len(self._written) + 1) == self._written:
                        return False
                os.ftruncate(self._fh.fileno(), 0)  # O_APPEND: the rewrite lands at 0
                self._fh.write(bytes(self._written))
            else:  # renamed away, removed or replaced: a fresh file at the path, locked again
                fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
                with os.fdopen(fd, "wb") as fh:  # created exclusively: no planted link followed
                    fh.write(bytes(self._written))
                os.replace(tmp, self.path)
                self._fh.close()
                self._fh = self._exclusive(open(self.path, "ab"), self.path)
            self._fh.flush()
            os.fsync(self._fh.fileno())
            return True

    def close(self) -> None:
        """Close the file; later appends raise."""
        with self._lock:
            if not self._fh.closed:
                self._fh.close()

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r}, next_seq={self._next_seq})"


def _scan(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]], int]:
    """Parse a journal; return ``(header, records, valid_len)`` where ``valid_len`` is the
    byte length of the intact prefix (everything except a torn last line)."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    # The last non-blank line is the only one a crash can tear.
    last_nonblank = max((i for i, ln in enumerate(lines) if ln.strip()), default=-1)
    parsed: list[dict[str, Any]] = []
    offset = valid_len = 0
    for i, raw in enumerate(lines):
        end = offset + len(raw) + (1 if i < len(lines) - 1 else 0)
        if raw.strip():
            try:
                rec = json.loads(raw)
                if not isinstance(rec, dict):
                    raise ValueError("not a JSON object")
            except (ValueError, UnicodeDecodeError) as exc:
                if i == last_nonblank:
                    break  # torn by a crash mid-write: drop it
                raise JournalCorruptError(f"{path}: line {i + 1} is corrupt ({exc})") from None
            parsed.append(rec)
            valid_len = end
        offset = end
    if not parsed or parsed[0].get("type") != "header":
        raise JournalCorruptError(f"{path}: no complete header record")
    return parsed[0], parsed[1:], valid_len


def read_journal(path: str | os.PathLike) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Read a journal: ``(header, records)``.

    Skips a final line that does not parse (a torn write) and raises
    :class:`JournalCorruptError` for a bad line anywhere else or a missing header.
    """
    header, records, _ = _scan(Path(path))
    return header, records
