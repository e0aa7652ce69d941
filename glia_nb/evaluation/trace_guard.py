"""Where a candidate could regenerate an evaluation trace from, and the guard that keeps it out.

Evaluation seeds are public, so whoever can run the ``workloads`` package (the generator and
its ShareGPT length table) can redraw a trace and read every request's decode length.
:func:`trace_sources` lists the places that hold that package or a copy of it: every
``workloads`` package this interpreter could import (each import finder's answer, an
editable install's source tree included, and every ``sys.path`` entry), its byte code under
``sys.pycache_prefix``, and the git directory of each checkout holding one (its history
holds both).  The trace itself lives in the harness's memory, so the guard also refuses
other processes' ``/proc`` files (``mem``, ``maps``, ``environ``, ...).  :mod:`glia_nb.evaluation.confine` mounts empty directories over them at level
``bwrap``; :func:`install_trace_guard` (in the policy process, before candidate code, at every
level) refuses to import ``workloads`` or the harness's own modules and to open files under
those places.  The guard is a Python audit hook: it cannot be removed, but native code
(``ctypes``) gets past it, so at level ``process`` a candidate that reads files through libc
can still reach them (see docs/security.md).

Standard library only: the policy process imports this before anything else of ours.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

TRACE_PACKAGE = "workloads"
# Directories the harness adds (a JSON list in the policy process's environment): where
# earlier runs wrote telemetry, whose per-request tables hold the same traces' decode lengths.
HIDDEN_ENV = "GLIA_HIDDEN_DIRS"
# glia_nb modules the policy process may import: its own side lives in glia_nb.evaluation
# (whose modules reach the trace only through glia_nb.tasks and workloads, both refused).
POLICY_SIDE = ("glia_nb", "glia_nb.evaluation", "glia_nb.evaluation.")
HIDDEN_MESSAGE = "the trace generator stays with the harness (evaluation seeds are public)"


class TraceHiddenError(PermissionError):
    """A file under one of :func:`trace_sources` was opened inside the policy process."""


def _package_dirs(name: str) -> set[Path]:
    found: set[Path] = set()
    for finder in list(sys.meta_path):
        find = getattr(finder, "find_spec", None)
        try:
            spec = find(name, None) if find is not None else None
        except Exception:  # noqa: BLE001 - a third-party finder may fail any way it likes
            spec = None
        if spec is None:
            continue
        if spec.submodule_search_locations:
            found.update(Path(p) for p in spec.submodule_search_locations)
        elif spec.origin and os.path.isabs(spec.origin):
            found.add(Path(spec.origin).parent)
    for entry in list(sys.path):
        candidate = Path(entry or os.getcwd()) / name
        if (candidate / "__init__.py").is_file():
            found.add(candidate)
    return {p.resolve() for p in found if p.is_dir()}


def _git_dirs(start: Path) -> set[Path]:
    """The git directory of the checkout holding ``start`` (a worktree's own and the common
    one it shares), or nothing."""
    for d in (start, *start.parents):
        dot = d / ".git"
        if dot.is_dir():
            return {dot.resolve()}
        if dot.is_file():
            try:
                text = dot.read_text(errors="replace").strip()
            except OSError:
                return set()
            if not text.startswith("gitdir:"):
                return set()
            own = (d / text.split(":", 1)[1].strip()).resolve()
            out = {own}
            try:
                common = (own / (own / "commondir").read_text().strip()).resolve()
                out.add(common)
            except OSError:
                pass
            return out
    return set()


def trace_sources() -> list[str]:
    """Absolute directories holding the trace generator or a copy of it (see the module
    docstring), outermost first, none inside another."""
    dirs = _package_dirs(TRACE_PACKAGE)
    for d in list(dirs):
        dirs |= _git_dirs(d.parent)
        if sys.pycache_prefix:
            dirs.add(Path(sys.pycache_prefix).joinpath(*d.parts[1:]))
    out: list[str] = []
    for d in sorted(dirs, key=lambda p: (len(p.parts), str(p))):
        if not any(o == d or o in d.parents for o in map(Path, out)):
            out.append(str(d))
    return out


def _inside(path: str, sources: tuple[str, ...]) -> bool:
    return any(path == s or path.startswith(s + os.sep) for s in sources)


def install_trace_guard(sources=None, *, allow=POLICY_SIDE) -> None:
    """Refuse, for the rest of this process's life, to import ``workloads`` or any glia_nb
    module outside ``allow`` (names, or prefixes ending in ``.``) and those already imported,
    and to open a file under ``sources`` (default: :func:`trace_sources`).  An import raises
    ``ModuleNotFoundError``, an open :class:`TraceHiddenError`; both name why."""
    sources = tuple(trace_sources() if sources is None else sources)
    prefixes = tuple(a for a in allow if a.endswith("."))
    allowed = frozenset(a for a in allow if not a.endswith(".")) | {
        m for m in sys.modules if m == "glia_nb" or m.startswith("glia_nb.")}
    realpath, fsdecode, getpid, isdir = os.path.realpath, os.fsdecode, os.getpid, os.path.isdir
    prefix = TRACE_PACKAGE + "."
    tmpfile, o_path = getattr(os, "O_TMPFILE", -1), getattr(os, "O_PATH", 0)

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            target = args[0] if args else None
            if isinstance(target, int) or target is None:
                return
            try:
                path = realpath(fsdecode(target))
            except (TypeError, ValueError):
                return
            if _inside(path, sources):
                raise TraceHiddenError(f"{path} cannot be opened in the policy process: {HIDDEN_MESSAGE}")
            flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
            if isdir(path) and args[1] is None and (flags & tmpfile != tmpfile or flags & o_path):
                # A directory's descriptor would reach around this check (dir_fd=).  Only
                # os.open (mode None) can hand one out: the built-in open() refuses
                # directories itself, and an O_TMPFILE open (numba's cache probe, through
                # tempfile) yields an unnamed file.
                raise TraceHiddenError(f"{path} is a directory: the policy process opens files only")
            if path.startswith("/proc/"):  # another process's files: the harness holds the trace
                pid = path.split("/", 3)[2]
                if pid.isdigit() and int(pid) != getpid():
                    raise TraceHiddenError(f"{path} cannot be opened in the policy process: "
                                           "other processes' memory and files are the harness's")
        elif event in ("os.listdir", "os.scandir"):  # names of what the guard hides
            target = args[0] if args else None
            if isinstance(target, (str, bytes)) and _inside(realpath(fsdecode(target)), sources):
                raise TraceHiddenError(f"{fsdecode(target)} cannot be listed in the policy "
                                       f"process: {HIDDEN_MESSAGE}")
        elif event == "import":
            name = args[0] if args else ""
            if not isinstance(name, str):
                return
            if name == TRACE_PACKAGE or name.startswith(prefix) or (
                    name.startswith("glia_nb.") and name not in allowed and not name.startswith(prefixes)):
                raise ModuleNotFoundError(f"No module named {name!r} in the policy process: "
                                          f"{HIDDEN_MESSAGE}", name=name)

    sys.addaudithook(hook)


def hidden_from_env() -> list[str]:
    """The harness's extra directories (:data:`HIDDEN_ENV`), absolute, or none."""
    try:
        dirs = json.loads(os.environ.get(HIDDEN_ENV) or "[]")
    except ValueError:
        return []
    return [os.path.realpath(d) for d in dirs if isinstance(d, str) and os.path.isabs(d)]


__all__ = ["trace_sources", "install_trace_guard", "hidden_from_env", "TraceHiddenError",
           "TRACE_PACKAGE", "HIDDEN_ENV"]
