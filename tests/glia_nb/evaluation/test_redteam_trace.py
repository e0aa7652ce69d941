"""Red team, trace regeneration: evaluation seeds are public, so a candidate that can run the
``workloads`` package (or read its length table) can redraw the trace and learn every decode
length.  Each test is an attack on one route to it; the attack must fail, and an honest
candidate evaluated right after it scores exactly the built-in LLQ's in-process score.

Routes: the package under another name or path (an editable install's finder, a second copy
on ``sys.path``, ``spec_from_file_location``, a pruned ``sys.meta_path``), the harness's own
modules, the length table opened directly, other checkouts of the project and its git
history, and the harness's processes in ``/proc``.
"""
from __future__ import annotations

import glob
import os
from pathlib import Path

import pytest
from test_redteam import (LEVEL, NEEDS_NAMESPACES, _eval, _no_leak, _router,  # noqa: F401
                          _then_honest, honest_score, recorded, task)

import glia_nb
import workloads
from glia_nb.evaluation.confine import policy_landlock
from glia_nb.evaluation.harness import Limits, evaluate

PROJECT = Path(glia_nb.__file__).resolve().parent.parent
TABLE = Path(workloads.__file__).resolve().parent / "data" / "sharegpt_llama3_lengths.csv"
LEVELS = ["process"] + (["bwrap"] if LEVEL == "bwrap" else [])


def _copies_on_disk() -> list[str]:
    """Readable files that would let a candidate regenerate a trace, found the way an
    attacker would look (not through the code under test): length tables and generator
    sources of this and sibling checkouts, and git objects of the checkout's history."""
    found = {str(TABLE), str(TABLE.parent.parent / "sharegpt.py")}
    for base in (PROJECT.parent, PROJECT.parent.parent):
        for pattern in ("*/workloads/data/*.csv", "*/*/workloads/data/*.csv"):
            found.update(glob.glob(str(base / pattern)))
    for d in (PROJECT, *PROJECT.parents):
        dot = d / ".git"
        if dot.is_file():  # a worktree: "gitdir: <main>/.git/worktrees/<name>"
            own = Path(dot.read_text().split(":", 1)[1].strip())
            dot = (own / (own / "commondir").read_text().strip()).resolve()
        if dot.is_dir():
            found.update(glob.glob(str(dot / "objects" / "pack" / "*.pack"))[:3])
            found.update(glob.glob(str(dot / "objects" / "??" / "*"))[:3])
            break
    return sorted(p for p in found if os.path.isfile(p))


@pytest.mark.parametrize("level", LEVELS)
def test_the_trace_package_cannot_be_imported_by_any_route(tmp_path, task, honest_score, level):
    attack = f"""
import importlib, importlib.util, sys
from importlib.machinery import PathFinder
got = []
def attempt(what, fn):
    try:
        fn()
        got.append(what)
    except Exception:
        pass
def plain():
    from workloads import get_scenario
    get_scenario("routing-a10").trace(0)
def every_finder():  # an editable install's finder knows the source tree
    for finder in list(sys.meta_path):
        spec = finder.find_spec("workloads", None)
        if spec is not None and spec.loader is not None:
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            mod.get_scenario("routing-a10").trace(0)
            return
    raise ImportError("no finder")
def by_path():
    spec = importlib.util.spec_from_file_location(
        "wl_copy", {str(TABLE.parent.parent / "__init__.py")!r},
        submodule_search_locations=[{str(TABLE.parent.parent)!r}])
    mod = importlib.util.module_from_spec(spec)
    sys.modules["wl_copy"] = mod
    spec.loader.exec_module(mod)
    mod.get_scenario("routing-a10").trace(0)
def pruned_meta_path():
    sys.modules.pop("workloads", None)
    saved = list(sys.meta_path)
    sys.meta_path[:] = [PathFinder]
    try:
        importlib.import_module("workloads").get_scenario("routing-a10").trace(0)
    finally:
        sys.meta_path[:] = saved
def harness_modules():
    importlib.import_module("glia_nb.tasks").get_task("routing-a10").load_scenario().trace(0)
def table():
    open({str(TABLE)!r}).read()
for what, fn in [("plain", plain), ("finder", every_finder), ("path", by_path),
                 ("meta_path", pruned_meta_path), ("harness", harness_modules), ("table", table)]:
    attempt(what, fn)
if got:
    raise RuntimeError("LEAK: the trace generator ran through " + ", ".join(got))
"""
    lim = Limits(isolation=level)
    res = _eval(tmp_path, _router(attack, at="reset"), task, "Attack", limits=lim)
    _no_leak(res)
    assert res.ok and res.score == honest_score and res.isolation == recorded(level), res.one_line()
    _then_honest(tmp_path, task, honest_score, limits=lim)


@NEEDS_NAMESPACES
def test_no_copy_or_history_of_the_generator_is_readable(tmp_path, task, honest_score):
    targets = _copies_on_disk()
    assert str(TABLE) in targets
    attack = f"""
import os
readable = []
for p in {targets!r}:
    try:
        with open(p, "rb") as fh:
            fh.read(16)
        readable.append(p)
    except OSError:
        pass
if readable:
    raise RuntimeError("LEAK: readable: " + ", ".join(readable[:5]))
"""
    res = _eval(tmp_path, _router(attack, at="reset"), task, "Attack")
    _no_leak(res)
    assert res.ok and res.score == honest_score, res.one_line()
    _then_honest(tmp_path, task, honest_score)


def test_at_the_fallback_level_the_guard_refuses_the_importable_copies(tmp_path, task,
                                                                       honest_score):
    """Level ``process`` has no mount namespace: the guard (a Python audit hook) refuses to
    open what the interpreter could import the generator from; native code would get past
    it, which docs/security.md says."""
    from glia_nb.evaluation.trace_guard import trace_sources

    sources = trace_sources()
    assert str(TABLE.parent.parent) in sources
    files = [str(p) for s in sources for p in sorted(Path(s).rglob("*"))[:20] if p.is_file()]
    attack = f"""
import io, os, pathlib
readable = []
for p in {files!r}:
    for how in (lambda: open(p, "rb").read(1), lambda: pathlib.Path(p).read_bytes(),
                lambda: os.read(os.open(p, os.O_RDONLY), 1), lambda: io.open_code(p).read(1)):
        try:
            how()
            readable.append(p)
        except OSError:
            pass
if readable:
    raise RuntimeError("LEAK: readable: " + ", ".join(readable[:5]))
"""
    lim = Limits(isolation="process")
    res = _eval(tmp_path, _router(attack, at="reset"), task, "Attack", limits=lim)
    _no_leak(res)
    assert res.ok and res.score == honest_score, res.one_line()
    _then_honest(tmp_path, task, honest_score, limits=lim)


@pytest.mark.skipif(not policy_landlock("process"), reason="this kernel has no Landlock")
def test_at_the_fallback_level_native_code_meets_the_kernels_allow_list(tmp_path, task,
                                                                        honest_score):
    """Native code gets past the Python guard, not past Landlock: ``libc`` opens of the
    trace generator's files, of the harness's ``/proc/<pid>/environ``, of an earlier
    experiment's table and a write to ``/tmp`` (a note for the next candidate) are all
    refused by the kernel at level ``process``; the process's own files still work."""
    from glia_nb.evaluation.trace_guard import trace_sources

    files = [str(p) for s in trace_sources() for p in sorted(Path(s).rglob("*.py"))[:5]]
    earlier = tmp_path / "ws" / "experiments" / "001_earlier"
    earlier.mkdir(parents=True)
    (earlier / "request_metrics.csv").write_text("request_id,request_num_decode_tokens\n0,123\n")
    attack = f"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
got = []
for p in [*{files!r}, "/proc/%d/environ" % os.getppid(), {str(earlier / "request_metrics.csv")!r}]:
    fd = libc.open(p.encode(), os.O_RDONLY)
    if fd >= 0:
        got.append(p)
        libc.close(fd)
fd = libc.open(b"/tmp/glia-note-for-the-next-candidate", os.O_WRONLY | os.O_CREAT, 0o644)
if fd >= 0:
    got.append("/tmp (written)")
if libc.open(b"/proc/self/status", os.O_RDONLY) < 0 or libc.open(b"own.txt", os.O_WRONLY | os.O_CREAT, 0o644) < 0:
    raise RuntimeError("its own files were refused")
if got:
    raise RuntimeError("LEAK: " + ", ".join(got[:5]))
"""
    lim = Limits(isolation="process")
    src = tmp_path / "attack.py"
    src.write_text(_router(attack, at="reset"))
    res = evaluate(f"{src}:Attack", task, tmp_path / "ws" / "experiments" / "002_attack", limits=lim)
    _no_leak(res)
    assert res.ok and res.score == honest_score and res.isolation.endswith("+landlock"), res.one_line()
    assert not Path("/tmp/glia-note-for-the-next-candidate").exists()
    _then_honest(tmp_path, task, honest_score, limits=lim)


@NEEDS_NAMESPACES
def test_the_harness_processes_are_not_in_proc(tmp_path, task, honest_score):
    """Only the sandbox's own init (bwrap, pid 1 of the namespace) and the policy process."""
    attack = """
import os
others = []
for pid in os.listdir("/proc"):
    if not pid.isdigit() or int(pid) == os.getpid():
        continue
    try:
        cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\\0", b" ")
    except OSError:
        continue
    if not cmd.startswith(b"/usr/bin/bwrap") and not cmd.startswith(b"bwrap"):  # not our own init
        others.append(cmd[:80])
if others:
    raise RuntimeError(f"LEAK: harness processes visible: {others}")
"""
    res = _eval(tmp_path, _router(attack, at="reset"), task, "Attack")
    _no_leak(res)
    assert res.ok and res.score == honest_score, res.one_line()
    _then_honest(tmp_path, task, honest_score)


def test_the_harness_memory_is_not_readable_through_proc_at_either_level(tmp_path, task,
                                                                          honest_score):
    """The trace lives in the harness's memory: ``/proc/<parent>/mem`` (and any other
    process's files) must not open, in the pid namespace or, at level ``process``, past the
    guard."""
    attack = """
import os
readable = []
try:
    listed = [int(p) for p in os.listdir("/proc") if p.isdigit()][:50]
except OSError:  # Landlock (level "process") lets a policy see only its own /proc entries
    listed = []
for pid in {os.getppid(), 1, *listed}:
    if pid == os.getpid():
        continue
    for name in ("mem", "maps", "environ", "cmdline"):
        try:
            with open(f"/proc/{pid}/{name}", "rb") as fh:
                fh.read(1)
            readable.append(f"{pid}/{name}")
        except OSError:
            pass
if readable:
    raise RuntimeError("LEAK: other processes' files: " + ", ".join(readable[:6]))
"""
    for level in LEVELS:
        lim = Limits(isolation=level)
        res = _eval(tmp_path, _router(attack, at="reset"), task, "Attack", limits=lim)
        _no_leak(res)
        assert res.ok and res.score == honest_score and res.isolation == recorded(level), res.one_line()
    _then_honest(tmp_path, task, honest_score)


@pytest.mark.parametrize("level", LEVELS)
def test_earlier_runs_telemetry_is_out_of_reach(tmp_path, task, honest_score, level):
    """An earlier experiment's per-request table (decode lengths of the same seeds' traces)
    sits beside this run's folder; the candidate knows where (its own file's path) but can
    neither read it (an empty mount under bwrap, the guard at every level) nor reach around
    the guard with a directory's descriptor or list it."""
    experiments = tmp_path / "ws" / "experiments"
    earlier = experiments / "001_earlier"
    earlier.mkdir(parents=True)
    table = earlier / "request_metrics.csv"
    table.write_text("request_id,request_num_decode_tokens\n0,123\n")
    attack = f"""
import os
got = []
for how in (lambda: open({str(table)!r}).read(),
            lambda: os.listdir({str(earlier)!r}),
            lambda: os.read(os.open("request_metrics.csv", os.O_RDONLY,
                                    dir_fd=os.open({str(earlier)!r}, os.O_RDONLY)), 64),
            lambda: os.read(os.open("001_earlier/request_metrics.csv", os.O_RDONLY,
                                    dir_fd=os.open({str(experiments)!r}, os.O_RDONLY)), 64),
            # a descriptor of a directory above the hidden ones, however it is asked for
            *(lambda flags=flags: os.read(os.open(
                "experiments/001_earlier/request_metrics.csv", os.O_RDONLY,
                dir_fd=os.open({str(experiments.parent)!r}, flags)), 64)
              for flags in (os.O_RDONLY, os.O_PATH, os.O_PATH | os.O_TMPFILE,
                            os.O_RDONLY | os.O_DIRECTORY)),
            lambda: os.read(os.open("experiments/001_earlier/request_metrics.csv", os.O_RDONLY,
                                    dir_fd=open({str(experiments.parent)!r}, "rb",
                                                opener=os.open).fileno()), 64)):
    try:
        got.append(how())
    except (OSError, ValueError):
        pass
if any("decode" in str(g) or "request_metrics" in str(g) for g in got):
    raise RuntimeError("LEAK: " + repr(got)[:200])
"""
    lim = Limits(isolation=level)
    src = tmp_path / "attack.py"
    src.write_text(_router(attack, at="reset"))
    res = evaluate(f"{src}:Attack", task, experiments / "002_attack", limits=lim)
    _no_leak(res)
    assert res.ok and res.score == honest_score, res.one_line()
    _then_honest(tmp_path, task, honest_score, limits=lim)
