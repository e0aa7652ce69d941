"""A seccomp filter for untrusted code: the policy process and the Researcher's shell.

The trusted parent compiles the filter with libseccomp (through ``pyseccomp``, imported only
here and only on the parent's side) and hands the confined child the BPF program in its
environment (:data:`ENV`); the child loads it with one ``prctl`` call (standard library
only, :func:`load_from_env`) after its own imports and :func:`~.confine.harden`, before any
candidate code or shell command runs.  A filter survives ``execve`` and is inherited by
every child, and no process can remove it.

Default allow; these system calls fail with ``EPERM`` (profiles in :data:`PROFILES`):

* sockets of any family but ``AF_UNIX`` (no network even at the ``"process"`` level, which
  has no network namespace), ``io_uring`` (it can open sockets past the filter);
* ``ptrace``, ``process_vm_readv/writev``, ``pidfd_getfd``; ``mount``, ``umount2``,
  ``pivot_root``, ``chroot`` and the new mount API; ``unshare``, ``setns`` and ``clone`` with
  a ``CLONE_NEW*`` flag; ``keyctl``, ``add_key``, ``request_key``; ``bpf``,
  ``perf_event_open``, ``userfaultfd``, ``open_by_handle_at``; ``kexec_*``, module loading;
  ``personality`` (the kernel reads only 32 bits of its argument, a filter all 64);
* ``setsid``, ``setpgid``: a process stays in the process group the harness kills when a
  call ends (at level ``"process"`` there is no PID namespace to take stragglers with it);
* ``clone3`` fails with ``ENOSYS`` (its flags live in memory a filter cannot read; glibc then
  falls back to ``clone``, whose flags it can);
* profile ``"policy"`` only: every way of starting a process (``clone`` without
  ``CLONE_THREAD``, ``fork``, ``vfork``, ``execve``, ``execveat``).  The shell needs those.

A system call of another architecture (32-bit ``int 0x80`` on x86-64) kills the process.
"""
from __future__ import annotations

import base64
import errno
import os
import sys

PROFILES = ("policy", "shell")
LEAVES_GROUP = ("setsid", "setpgid")
ENV = "GLIA_SECCOMP"  # "<profile>:<base64 BPF>" in a confined child's environment
AF_UNIX = 1
CLONE_THREAD = 0x00010000
# CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET
CLONE_NEW_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000,
                   0x40000000)
DENIED = ("ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd",
          "mount", "umount2", "pivot_root", "chroot", "fsopen", "fsconfig", "fsmount", "fspick",
          "open_tree", "move_mount", "mount_setattr", "unshare", "setns",
          "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
          "open_by_handle_at", "kexec_load", "kexec_file_load",
          "init_module", "finit_module", "delete_module", "personality",
          "io_uring_setup", "io_uring_enter", "io_uring_register")
STARTS_PROCESSES = ("fork", "vfork", "execve", "execveat")  # denied to the policy profile
# Also denied to the policy profile: device nodes, and changing the metadata of files it may
# reach but not write (Landlock, at level "process", has no right for chmod/chown/utime/xattrs).
POLICY_DENIED = ("mknod", "mknodat", "chmod", "fchmod", "fchmodat", "fchmodat2", "chown",
                 "fchown", "lchown", "fchownat", "utime", "utimes", "utimensat", "futimesat",
                 "setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr",
                 "fremovexattr", "setxattrat", "removexattrat")
_PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 38, 22, 2
# System calls added since Linux 5.1 share one number on these architectures; an older
# libseccomp that does not know a name still gets the rule through its number.
_UNIFIED_ARCHES = ("x86_64", "aarch64", "riscv64", "ppc64le", "ppc64", "s390x")
_UNIFIED = {"io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
            "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
            "fspick": 433, "clone3": 435, "pidfd_getfd": 438, "mount_setattr": 442,
            "fchmodat2": 452, "setxattrat": 463, "removexattrat": 466}


class SeccompUnavailable(RuntimeError):
    """This machine cannot compile or load a seccomp filter (not Linux, no libseccomp)."""


def _flags_arg() -> int:
    """Which argument of ``clone`` holds its flags (the second on s390)."""
    return 1 if os.uname().machine.startswith("s390") else 0


def compile_filter(profile: str) -> bytes:
    """The BPF program of ``profile`` for this machine's architecture (raises
    :class:`SeccompUnavailable` where libseccomp is missing)."""
    if profile not in PROFILES:
        raise ValueError(f"seccomp profile must be one of {PROFILES}, not {profile!r}")
    if not sys.platform.startswith("linux"):
        raise SeccompUnavailable(f"seccomp is Linux-only (this is {sys.platform})")
    if not _kernel_has_seccomp():
        raise SeccompUnavailable("this kernel has no seccomp (/proc/self/status has no Seccomp)")
    try:
        import pyseccomp as sc
    except (ImportError, RuntimeError, OSError) as exc:  # RuntimeError: no libseccomp.so
        raise SeccompUnavailable(f"libseccomp is not usable (pip install pyseccomp; Debian: "
                                 f"apt-get install libseccomp2): {exc}") from exc
    import tempfile

    f = sc.SyscallFilter(sc.ALLOW)
    f.set_attr(sc.Attr.ACT_BADARCH, sc.KILL_PROCESS)
    eperm = sc.ERRNO(errno.EPERM)

    def deny(name: str, *args, action=eperm) -> None:
        nr = sc.resolve_syscall(sc.Arch.NATIVE, name)
        if nr == -1 and name in _UNIFIED and os.uname().machine in _UNIFIED_ARCHES:
            nr = _UNIFIED[name]
        if nr == -1:  # unknown to this libseccomp: refuse rather than leave a hole
            raise SeccompUnavailable(f"libseccomp does not know the system call {name!r}; "
                                     "a newer libseccomp is needed")
        f.add_rule(action, nr, *args)

    for name in ("socket", "socketpair"):
        # A policy needs no new socket at all (its channel is inherited): not even a Unix one
        # (another user's agent, a container runtime's socket); the shell keeps those.
        deny(name) if profile == "policy" else deny(name, sc.Arg(0, sc.NE, AF_UNIX))
    for name in DENIED:
        deny(name)
    for name in LEAVES_GROUP:
        deny(name)
    deny("clone3", action=sc.ERRNO(errno.ENOSYS))
    flags = _flags_arg()
    for bit in CLONE_NEW_FLAGS:
        deny("clone", sc.Arg(flags, sc.MASKED_EQ, bit, bit))
    if profile == "policy":
        deny("clone", sc.Arg(flags, sc.MASKED_EQ, CLONE_THREAD, 0))
        for name in (*STARTS_PROCESSES, *POLICY_DENIED):
            deny(name)
    with tempfile.TemporaryFile() as fh:
        f.export_bpf(fh)
        fh.seek(0)
        return fh.read()


def _kernel_has_seccomp() -> bool:
    try:
        with open("/proc/self/status", "rb") as fh:
            return any(line.startswith(b"Seccomp:") for line in fh)
    except OSError:
        return False


def available() -> tuple[bool, str]:
    """Whether a filter can be compiled here: ``(ok, detail)`` (for ``glia doctor``)."""
    try:
        prog = compile_filter("policy")
    except SeccompUnavailable as exc:
        return False, str(exc)
    import pyseccomp

    return True, (f"libseccomp via pyseccomp {getattr(pyseccomp, '__version__', '?')}: "
                  f"{len(prog) // 8} BPF instructions (policy profile)")


def child_env(profile: str) -> dict:
    """``{ENV: ...}`` for a confined child that must load ``profile``'s filter (raises
    :class:`SeccompUnavailable`)."""
    return {ENV: f"{profile}:" + base64.b64encode(compile_filter(profile)).decode("ascii")}


def load(program: bytes) -> None:
    """Load the BPF ``program`` into this process for good (standard library only).  Sets
    no_new_privs (the kernel requires it of an unprivileged process).  Refuses a process with
    more than one thread: a filter covers only the thread that loads it."""
    import ctypes

    if not program or len(program) % 8 or len(program) // 8 > 4096:
        raise ValueError(f"not a BPF program: {len(program)} bytes")
    try:
        threads = len(os.listdir("/proc/self/task"))
    except OSError:
        threads = 1
    if threads != 1:
        raise RuntimeError(f"seccomp filter not loaded: the process has {threads} threads")

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(program, len(program))
    prog = SockFprog(len(program) // 8, ctypes.addressof(buf))
    ulong = ctypes.c_ulong
    for option, args in ((_PR_SET_NO_NEW_PRIVS, (ulong(1), ulong(0))),
                         (_PR_SET_SECCOMP, (ulong(_SECCOMP_MODE_FILTER), ctypes.byref(prog)))):
        if libc.prctl(ctypes.c_int(option), *args, ulong(0), ulong(0)) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"seccomp filter not loaded: prctl({option}) failed: "
                               f"{os.strerror(err)}")


def load_from_env(environ=None) -> str | None:
    """In a confined child: load the filter the parent put in :data:`ENV` (and remove it
    from the environment); return its profile, or None when the parent sent none.  A filter
    that was sent but does not load raises: the child must not run unfiltered."""
    environ = os.environ if environ is None else environ
    doc = environ.pop(ENV, None)
    if not doc:
        return None
    profile, _, b64 = doc.partition(":")
    load(base64.b64decode(b64))
    return profile


__all__ = ["PROFILES", "ENV", "SeccompUnavailable", "compile_filter", "available", "child_env",
           "load", "load_from_env"]
