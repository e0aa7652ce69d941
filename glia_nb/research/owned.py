"""Harness-owned records stay as the harness wrote them, on every isolation level.

Under bubblewrap the Researcher's shell sees the journal and the ledger read-only and a
candidate sees neither the runs folder nor earlier experiments.  The plain-process fallback (no namespaces: macOS,
Binder) cannot hide them from code running as the same user, so the harness checks them
after every piece of untrusted code it ran (a shell command, an evaluation) and puts back
what it wrote: :class:`RecordSnapshot` for the workspace's records (written only between
tool calls, so a snapshot taken before the untrusted code is exact) and
:meth:`glia_nb.research.journal.Journal.restore_if_altered` for the journal (appended by
several threads, so it compares with its own bytes instead).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterable

__all__ = ["RecordSnapshot", "restored_note"]


class RecordSnapshot:
    """The bytes of a set of record files at one moment, and a way to put them back.

    ``list_records()`` names the record files that exist now (paths under ``root``);
    :meth:`restore` re-lists them, so a record file created meanwhile (a forged experiment)
    is removed and one removed meanwhile is written back."""

    def __init__(self, root: Path, list_records: Callable[[], Iterable[Path]]):
        self.root = Path(root)
        self._list = list_records
        self._saved: dict[Path, bytes] = {}
        for p in list_records():
            try:
                self._saved[Path(p)] = Path(p).read_bytes()
            except OSError:
                pass  # vanished between listing and reading: not a record any more

    def restore(self) -> list[str]:
        """Put every altered, removed or added record back as saved; the names (relative
        to ``root``) of those that differed, sorted."""
        altered: list[str] = []
        now = {Path(p) for p in self._list()}
        for p in sorted(now - self._saved.keys()):
            try:
                if p.is_symlink() or p.is_file():
                    p.unlink()
                    altered.append(self._name(p))
            except OSError:
                pass
        for p, data in self._saved.items():
            try:
                same = not p.is_symlink() and p.is_file() and p.read_bytes() == data
            except OSError:
                same = False
            if not same:
                _write_back(p, data)
                altered.append(self._name(p))
        return sorted(altered)

    def _name(self, p: Path) -> str:
        try:
            return str(p.relative_to(self.root))
        except ValueError:
            return str(p)


def _write_back(path: Path, data: bytes) -> None:
    """Write ``data`` at ``path`` through a fresh file renamed into place (a symlink or a
    directory planted there is replaced, never followed; the fresh file is created
    exclusively under a random name, so no planted link redirects the write either)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # O_EXCL: no planted link
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def restored_note(names: Iterable[str], by: str) -> str:
    """One line for the Researcher (and the journal) naming the records put back."""
    names = list(names)
    return (f"[the harness restored {len(names)} record file(s) that {by} altered: "
            f"{', '.join(names[:8])}{' …' if len(names) > 8 else ''}; records are written by the "
            f"harness only]")
