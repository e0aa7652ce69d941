"""The seccomp filter itself: what each profile denies and allows, in a fresh process that
loads it; a filter that was sent but does not load stops the child; where libseccomp is
missing, confined code runs without one, is told once, and records so."""
from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import pytest

from glia_nb.evaluation import seccomp_filter
from glia_nb.evaluation.confine import IsolationWarning, policy_landlock, seccomp_profile

pytestmark = pytest.mark.skipif(seccomp_profile("policy") is None,
                                reason="libseccomp is not usable here: no seccomp filter")

# Each probe returns 0 (allowed) or the errno name of its failure.
# A policy process at level "process" runs under Landlock where the kernel has it.
LANDLOCK = "+landlock" if policy_landlock("process") else ""
PROBE = textwrap.dedent("""
    import ctypes, errno, json, os, subprocess, sys, threading
    from glia_nb.evaluation import seccomp_filter as sf
    sf.load(sf.compile_filter(sys.argv[1]))
    libc = ctypes.CDLL(None, use_errno=True)
    def c(rc):
        if rc >= 0:
            return 0
        return errno.errorcode[ctypes.get_errno()]
    def py(fn):
        try:
            fn()
            return 0
        except OSError as exc:
            return errno.errorcode[exc.errno]
    def fork():
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
    def thread():
        t = threading.Thread(target=lambda: None)
        t.start()
        t.join()
    out = {
        "mode": open("/proc/self/status").read().split("Seccomp:")[1].split()[0],
        "socket_inet": c(libc.socket(2, 1, 0)),
        "socket_inet6": c(libc.socket(10, 2, 0)),
        "socket_netlink": c(libc.socket(16, 3, 0)),
        "socket_unix": c(libc.socket(1, 1, 0)),
        "ptrace_traceme": c(libc.ptrace(0, 0, 0, 0)),
        "ptrace_attach_parent": c(libc.ptrace(16, os.getppid(), 0, 0)),
        "unshare_user": c(libc.unshare(0x10000000)),
        "clone3": c(libc.syscall(435, 0, 0)),
        "personality": c(libc.personality(0x0040000)),
        "thread": py(thread),
        "fork": py(fork),
        "exec": py(lambda: subprocess.run(["/bin/true"], check=True)),
    }
    print(json.dumps(out))
""")


def _probe(profile: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE, profile], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_policy_profile_denies_network_tracing_namespaces_and_new_processes():
    got = _probe("policy")
    assert got["mode"] == "2"  # SECCOMP_MODE_FILTER
    for name in ("socket_inet", "socket_inet6", "socket_netlink", "ptrace_traceme",
                 "ptrace_attach_parent", "unshare_user", "personality", "fork", "exec",
                 "socket_unix"):  # a policy's channel is inherited: no new socket at all
        assert got[name] == "EPERM", (name, got)
    assert got["clone3"] == "ENOSYS"  # glibc then falls back to clone, whose flags are checked
    assert got["thread"] == 0, got


def test_shell_profile_keeps_processes_and_denies_the_rest():
    got = _probe("shell")
    assert got["mode"] == "2"
    assert got["fork"] == 0 and got["exec"] == 0 and got["thread"] == 0 and got["socket_unix"] == 0
    for name in ("socket_inet", "socket_inet6", "socket_netlink", "ptrace_traceme",
                 "unshare_user", "personality"):
        assert got[name] == "EPERM", (name, got)
    assert got["clone3"] == "ENOSYS"


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the x32 ABI is x86-64's")
def test_a_system_call_of_another_abi_kills_the_process():
    """``socket`` through the x32 numbering (nr | 0x40000000) is not let through as another
    architecture: the process dies of SIGSYS."""
    code = ("import ctypes, sys; from glia_nb.evaluation import seccomp_filter as sf; "
            "sf.load(sf.compile_filter('policy')); "
            "fd = ctypes.CDLL(None).syscall(0x40000000 | 41, 2, 1, 0); print('survived', fd)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert proc.returncode == -signal.SIGSYS and "survived" not in proc.stdout


def test_load_refuses_what_is_not_a_program_and_the_env_is_consumed():
    with pytest.raises(ValueError):
        seccomp_filter.load(b"\x00" * 7)
    env = {"KEEP": "1"}
    assert seccomp_filter.load_from_env(env) is None and env == {"KEEP": "1"}
    with pytest.raises(ValueError, match="profile"):
        seccomp_filter.compile_filter("browser")


def _policy(level: str = "process"):
    from glia_nb.evaluation.confine import HardLimits
    from glia_nb.evaluation.proxy import PolicyProcess

    return PolicyProcess(level=level, limits=HardLimits(), deadline=time.monotonic() + 60,
                         log_path=os.devnull)


MODE_ROUTER = """
class Mode:
    mode = open("/proc/self/status").read().split("Seccomp:")[1].split()[0]
    if mode != {want!r}:
        raise RuntimeError("seccomp mode " + mode)

    def route(self, view):
        return ()
"""


def test_a_filter_that_does_not_load_stops_the_policy_process(monkeypatch):
    """Sent but refused by the kernel (here: one BPF instruction that is not valid), the
    filter's failure ends the child before any candidate code: a crash, never a run without."""
    from glia_nb.evaluation.proxy import PolicyError

    bad = base64.b64encode(b"\xff\xff" + b"\x00" * 6).decode()
    monkeypatch.setattr(seccomp_filter, "child_env",
                        lambda profile: {seccomp_filter.ENV: f"{profile}:{bad}"})
    p = _policy()
    try:
        assert p.isolation == "process+seccomp" + LANDLOCK
        with pytest.raises(PolicyError) as err:
            p.load(MODE_ROUTER.format(want="0"), "mode.py", "Mode", "router")
        assert err.value.kind == "crash"
    finally:
        p.close()


def test_without_libseccomp_the_filter_is_skipped_said_once_and_recorded(monkeypatch):
    def missing(profile):
        raise seccomp_filter.SeccompUnavailable("libseccomp is not installed (test)")

    monkeypatch.setattr(seccomp_filter, "compile_filter", missing)
    procs = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")  # Python's own: each warning once per place
            for _ in range(2):
                procs.append(_policy())
        said = [str(w.message) for w in caught if issubclass(w.category, IsolationWarning)]
        assert len(said) == 1 and "without a seccomp filter" in said[0], said
        for p in procs:
            assert p.isolation == "process" + LANDLOCK
            p.load(MODE_ROUTER.format(want="0"), "mode.py", "Mode", "router")  # runs unfiltered
    finally:
        for p in procs:
            p.close()
    assert seccomp_profile("policy") is None


def test_the_policy_process_runs_its_candidate_under_the_filter():
    p = _policy()
    try:
        assert p.isolation == "process+seccomp" + LANDLOCK
        p.load(MODE_ROUTER.format(want="2"), "mode.py", "Mode", "router")
    finally:
        p.close()


def test_an_older_libseccomp_still_filters_the_newer_system_calls(monkeypatch):
    """A libseccomp that does not know ``clone3`` or ``mount_setattr`` gets the same program
    through their shared numbers; a name with no known number refuses to compile (never a
    filter with a hole)."""
    import pyseccomp

    if os.uname().machine not in seccomp_filter._UNIFIED_ARCHES:
        pytest.skip("no shared system call numbers on this architecture")
    want = seccomp_filter.compile_filter("policy")
    real = pyseccomp.resolve_syscall

    def older(arch, name):
        return -1 if name in ("clone3", "mount_setattr", "io_uring_setup") else real(arch, name)

    monkeypatch.setattr(pyseccomp, "resolve_syscall", older)
    assert seccomp_filter.compile_filter("policy") == want
    monkeypatch.setattr(pyseccomp, "resolve_syscall",
                        lambda arch, name: -1 if name == "ptrace" else real(arch, name))
    with pytest.raises(seccomp_filter.SeccompUnavailable, match="ptrace"):
        seccomp_filter.compile_filter("policy")
