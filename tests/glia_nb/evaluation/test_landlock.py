"""Landlock at the fallback level: the rights each ABI knows, an allow-list that never
holds a checkout's root or a hidden tree, and what a hostile candidate's native code meets
(device nodes, metadata of files it cannot write, Unix sockets, signals); an honest
candidate that compiles with numba's cache still runs, at both levels."""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from glia_nb.evaluation import landlock
from glia_nb.evaluation.confine import choose_isolation, policy_landlock
from glia_nb.evaluation.harness import Limits, evaluate
from glia_nb.tasks import get_task

LEVELS = ["process"] + (["bwrap"] if choose_isolation(warn=False) == "bwrap" else [])
NEEDS_LANDLOCK = pytest.mark.skipif(not policy_landlock("process"), reason="no Landlock here")


@pytest.fixture(scope="module")
def task():
    return get_task("routing-a10").replace(duration_s=30, eval_seeds=(0,))


def test_each_abi_handles_only_the_rights_it_knows():
    # 13 rights in ABI 1; refer (2), truncate (3), ioctl_dev (5); none new in 4, 6, 7
    assert [landlock.handled_rights(v) for v in range(1, 8)] == [
        0x1FFF, 0x3FFF, 0x7FFF, 0x7FFF, 0xFFFF, 0xFFFF, 0xFFFF]


def test_the_allow_list_splits_trees_around_what_is_hidden(tmp_path):
    import glia_nb

    checkout = Path(glia_nb.__file__).resolve().parent.parent
    paths = landlock.policy_paths(str(tmp_path), ["/usr/share/doc"], landlock.policy_roots())
    read = paths["read"]
    assert "/usr" not in read and "/usr/bin" in read and "/usr/share/doc" not in read
    assert not any(p == str(checkout) for p in read)  # never a checkout's root ...
    assert str(checkout / "glia_nb") in read and str(checkout / "sim_core") in read  # its packages
    assert paths["write"] == [os.path.realpath(tmp_path), "/dev/null"]
    assert landlock.allow_except(tmp_path, [tmp_path / "a" / "b"]) == []  # nothing there yet
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "c").mkdir()
    assert landlock.allow_except(tmp_path, [tmp_path / "a" / "b"]) == [str(tmp_path / "c")]


def _eval(tmp_path, source: str, task, cls: str, level: str):
    path = tmp_path / f"{cls.lower()}_{time.monotonic_ns()}.py"
    path.write_text(source)
    return evaluate(f"{path}:{cls}", task, limits=Limits(isolation=level))


HOSTILE = """
import ctypes, os, stat
libc = ctypes.CDLL(None, use_errno=True)
VICTIM, SOCK = {victim!r}, {sock!r}


class Attack:
    def reset(self, info, rng):
        got = []
        if libc.mknod(b"nul", stat.S_IFCHR | 0o666, os.makedev(1, 3)) == 0:
            got.append("mknod")
        if libc.chmod(VICTIM.encode(), 0o777) == 0:
            got.append("chmod")
        if libc.utimes(VICTIM.encode(), None) == 0:
            got.append("utimes")
        fd = libc.socket(1, 1, 0)  # AF_UNIX, SOCK_STREAM
        if fd >= 0:
            got.append("unix socket")
        if libc.kill(os.getppid(), 0) == 0 and {scoped!r}:
            got.append("signal to the harness")
        if got:
            raise RuntimeError("LEAK: " + ", ".join(got))

    def route(self, view):
        return [(int(k), 0) for k in view.queue]
"""


@NEEDS_LANDLOCK
def test_native_code_at_the_fallback_level_gets_no_device_metadata_socket_or_signal(tmp_path,
                                                                                     task):
    victim = tmp_path / "victim.txt"
    victim.write_text("x")
    victim.chmod(0o644)
    before = victim.stat()
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(tmp_path / "agent.sock"))
    srv.listen(1)
    try:
        src = HOSTILE.format(victim=str(victim), sock=str(tmp_path / "agent.sock"),
                             scoped=landlock.abi() >= 6)
        res = _eval(tmp_path, src, task, "Attack", "process")
    finally:
        srv.close()
    assert "LEAK" not in (res.error or ""), res.error
    assert res.ok and res.isolation.endswith("+landlock"), res.one_line()
    after = victim.stat()
    assert (after.st_mode, after.st_mtime_ns) == (before.st_mode, before.st_mtime_ns)


NUMBA = """
import numpy as np
from numba import njit


@njit(cache=True)
def least(load):
    return int(np.argmin(load))


class Cached:
    def reset(self, info, rng):
        pass

    def route(self, view):
        load = (view.num_waiting + view.num_running).astype(np.float64)
        out = []
        for k in view.queue:
            r = least(load)
            out.append((int(k), r))
            load[r] += 1.0
        return out
"""


@pytest.mark.parametrize("level", LEVELS)
def test_an_honest_candidate_compiling_with_numbas_cache_runs(tmp_path, task, level):
    res = _eval(tmp_path, NUMBA, task, "Cached", level)
    assert res.ok and res.score == evaluate("llq", task).score, res.one_line()
