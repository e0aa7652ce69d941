"""Red team, seccomp: hostile candidates go past Python (``ctypes``, raw system calls) for
the network, for tracing and for new processes, at BOTH isolation levels; the plain-process
fallback has no network namespace, so there the filter alone keeps the network out.

Each attack is a router that routes like LLQ and raises ``LEAK`` the moment an attack
succeeds, or ``UNFILTERED`` when the call failed for another reason than the filter's
``EPERM`` (so these tests fail if the filter is not what stopped it).  The honest candidate
evaluated right after scores exactly its honest value.
"""
from __future__ import annotations


import pytest
from net_probe import accepted, listener
from test_redteam import (LEVEL, SECCOMP, _eval, _no_leak, _router, _then_honest,  # noqa: F401
                          honest_score, recorded, task)

from glia_nb.evaluation.harness import Limits

pytestmark = pytest.mark.skipif(SECCOMP is None, reason="libseccomp is not usable here")
LEVELS = ["process"] + (["bwrap"] if LEVEL == "bwrap" else [])

CHECK = """
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
def denied(what, rc, want=errno.EPERM):
    if rc >= 0:
        raise RuntimeError("LEAK: " + what + " succeeded")
    got = ctypes.get_errno()
    if got != want:
        raise RuntimeError("UNFILTERED: " + what + " failed with " + errno.errorcode.get(got, str(got)))
"""


@pytest.mark.parametrize("level", LEVELS)
def test_no_inet_socket_through_python_ctypes_or_raw_syscall(tmp_path, task, honest_score, level):
    srv, port = listener()
    attack = CHECK + f"""
import socket, struct
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=1)
    raise RuntimeError("LEAK: python socket connected")
except PermissionError:
    pass  # the audit hook, before the filter is even asked
addr = struct.pack("<HH4s8x", 2, socket.htons({port}), bytes([127, 0, 0, 1]))
fd = libc.socket(2, 1, 0)
if fd >= 0 and libc.connect(fd, addr, len(addr)) == 0:
    raise RuntimeError("LEAK: ctypes socket connected")
denied("socket(AF_INET) via ctypes", fd)
denied("socket(AF_INET6) via ctypes", libc.socket(10, 1, 0))
nr = {{"x86_64": 41, "aarch64": 198}}.get(os.uname().machine)
if nr is not None:
    fd = libc.syscall(nr, 2, 1, 0)
    if fd >= 0 and libc.connect(fd, addr, len(addr)) == 0:
        raise RuntimeError("LEAK: raw socket syscall connected")
    denied("syscall(SYS_socket, AF_INET)", fd)
denied("io_uring_setup", libc.syscall(425, 4, ctypes.create_string_buffer(120)))
"""
    lim = Limits(isolation=level)
    res = _eval(tmp_path, _router(attack), task, "Attack", limits=lim)
    assert not accepted(srv)
    _no_leak(res)
    assert res.ok and res.score == honest_score and res.isolation == recorded(level), res.one_line()
    _then_honest(tmp_path, task, honest_score, limits=lim)


@pytest.mark.parametrize("level", LEVELS)
def test_no_tracing_of_the_parent_or_itself(tmp_path, task, honest_score, level):
    attack = CHECK + """
denied("ptrace(PTRACE_ATTACH, parent)", libc.ptrace(16, os.getppid(), 0, 0))
denied("ptrace(PTRACE_TRACEME)", libc.ptrace(0, 0, 0, 0))
buf = ctypes.create_string_buffer(64)
iov = (ctypes.c_void_p * 2)(ctypes.addressof(buf), 64)
denied("process_vm_readv(parent)", libc.process_vm_readv(os.getppid(), iov, 1, iov, 1, 0))
denied("unshare(CLONE_NEWUSER)", libc.unshare(0x10000000))
denied("personality(ADDR_NO_RANDOMIZE)", libc.personality(0x0040000))
"""
    lim = Limits(isolation=level)
    res = _eval(tmp_path, _router(attack, at="reset"), task, "Attack", limits=lim)
    _no_leak(res)
    assert res.ok and res.score == honest_score, res.one_line()
    _then_honest(tmp_path, task, honest_score, limits=lim)


@pytest.mark.parametrize("level", LEVELS)
def test_no_new_process_through_raw_fork_clone_or_exec(tmp_path, task, honest_score, level):
    """The hard limit on processes already stops a fork (EAGAIN) for an unprivileged uid;
    the filter stops it first, for root too, and stops ``execve`` (which the limit does not)."""
    attack = CHECK + """
def child(rc):
    if rc == 0:
        os._exit(0)  # we are a child: the harness must never see this
    return rc
machine = os.uname().machine
if machine == "x86_64":
    denied("syscall(SYS_fork)", child(libc.syscall(57)))
    denied("syscall(SYS_vfork)", child(libc.syscall(58)))
clone = {"x86_64": 56, "aarch64": 220}.get(machine)
if clone is not None:
    denied("syscall(SYS_clone, SIGCHLD)", child(libc.syscall(clone, 17, 0, 0, 0, 0)))
denied("syscall(SYS_clone3)", child(libc.syscall(435, 0, 0)), errno.ENOSYS)
denied("fork()", child(libc.fork()))
argv = (ctypes.c_char_p * 3)(b"/bin/sleep", b"986", None)
denied("execv(/bin/sleep)", libc.execv(b"/bin/sleep", argv))
"""
    lim = Limits(isolation=level)
    res = _eval(tmp_path, _router(attack), task, "Attack", limits=lim)
    _no_leak(res)
    assert res.ok and res.score == honest_score, res.one_line()
    _then_honest(tmp_path, task, honest_score, limits=lim)
