"""Landlock: the kernel's own file allow-list for a policy process at level ``process``.

Without namespaces (level ``process``) the Python audit hook was the only barrier between a
candidate and the files its uid can read or write, and native code (``ctypes``) goes around
a Python hook: it could read the trace generator's length table, another process's
``/proc/<pid>/environ`` (the harness's keys, when both run as the same user) or leave files
in ``/tmp`` for the next candidate.  Landlock (Linux 5.13+, no privilege needed) makes the
kernel refuse every path outside an allow-list, for native code too: read and execute the
system, the interpreter and the packages the policy side runs on (never the trace sources,
the runs folder or earlier experiments), this process's own ``/proc`` entries, and write
only the scratch directory.  Standard library only (``ctypes`` system calls; the policy
process applies it after its imports, before any candidate code).
"""
from __future__ import annotations

import ctypes
import os
import platform
from pathlib import Path

# System call numbers (shared by the architectures in _ARCHES).
_CREATE, _ADD_RULE, _RESTRICT = 444, 445, 446
_VERSION = 1            # LANDLOCK_CREATE_RULESET_VERSION
_PATH_BENEATH = 1       # LANDLOCK_RULE_PATH_BENEATH
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
MAKE_CHAR, MAKE_BLOCK, TRUNCATE, IOCTL_DEV = 1 << 6, 1 << 11, 1 << 14, 1 << 15
_FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV  # what a file rule may hold
READ = EXECUTE | READ_FILE | READ_DIR
# Rights the scratch directory never gets: device nodes (a disk's would reach every file).
NEVER = MAKE_CHAR | MAKE_BLOCK | IOCTL_DEV
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1, 2   # ABI 6: only this sandbox's sockets and signals
ENV = "GLIA_LANDLOCK"   # "1": the harness asks the policy process to restrict itself
_ARCHES = ("x86_64", "AMD64", "aarch64", "arm64", "riscv64", "ppc64le", "ppc64", "s390x")


def handled_rights(version: int) -> int:
    """The file-system rights ABI ``version`` knows (an unknown bit is refused): 1 has
    execute .. make_sym, 2 adds refer, 3 truncate, 5 ioctl_dev (4, 6 and 7 add none)."""
    rights = (1 << 13) - 1
    for since, bit in ((2, 1 << 13), (3, TRUNCATE), (5, IOCTL_DEV)):
        if version >= since:
            rights |= bit
    return rights


class LandlockUnavailable(OSError):
    """This kernel (or platform) has no Landlock."""


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _syscall():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc.syscall


def abi() -> int:
    """The Landlock ABI version this kernel offers, 0 where there is none."""
    if not (platform.system() == "Linux" and platform.machine() in _ARCHES):
        return 0
    v = _syscall()(_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(_VERSION))
    return max(int(v), 0)


def restrict(read, write) -> None:
    """Allow this process (and what it starts) only to read and execute under ``read`` and
    to do anything under ``write``; every other path is refused by the kernel from now on.
    Paths that do not exist are skipped.  Raises :class:`LandlockUnavailable` or OSError."""
    version = abi()
    if not version:
        raise LandlockUnavailable("this kernel has no Landlock")
    handled = handled_rights(version)
    sys_ = _syscall()
    # struct landlock_ruleset_attr {handled_access_fs, handled_access_net, scoped}: from ABI 6
    # signals and abstract Unix sockets are scoped to the sandbox; older kernels take the
    # first field only (they refuse non-zero bytes they do not know).
    scoped = _SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL if version >= 6 else 0
    attr = (ctypes.c_uint64 * 3)(handled, 0, scoped)
    size = 24 if scoped else 8
    ruleset = sys_(_CREATE, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        for paths, rights in ((read, READ), (write, handled & ~NEVER)):
            for p in paths:
                _allow(sys_, ruleset, str(p), rights & handled)
        if sys_(_RESTRICT, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed (no_new_privs?)")
    finally:
        os.close(ruleset)


def _allow(sys_, ruleset: int, path: str, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        if not os.path.isdir(path):
            rights &= _FILE_RIGHTS
        rule = _PathBeneath(rights, fd)
        if sys_(_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_PATH_BENEATH),
                ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
    finally:
        os.close(fd)


def allow_except(root: str | os.PathLike, hidden) -> list[str]:
    """Paths that together cover ``root`` except everything under ``hidden`` (Landlock
    grants whole trees, so a tree holding something hidden is split into its entries)."""
    root = Path(root)
    hidden = [Path(h) for h in hidden]
    if any(root == h or h in root.parents for h in hidden):
        return []
    if not any(root in h.parents for h in hidden):
        return [str(root)]
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return []
    return [p for e in entries if not e.is_symlink() for p in allow_except(e, hidden)]


SYSTEM = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/sys", "/dev/urandom",
          "/dev/random", "/dev/zero", "/proc/cpuinfo", "/proc/meminfo", "/proc/stat")


def policy_paths(scratch: str, hidden, roots) -> dict[str, list[str]]:
    """The allow-list of a policy process: read the system (:data:`SYSTEM`), its own
    ``/proc`` entries and ``roots`` (the interpreter's folders and the packages' own
    folders), each with everything under ``hidden`` cut out; write ``scratch`` and
    ``/dev/null``.  Paths are resolved (symbolic links followed), as the kernel checks them."""
    hidden = [os.path.realpath(h) for h in hidden]
    read = [f"/proc/{os.getpid()}"]
    for r in dict.fromkeys(os.path.realpath(r) for r in (*SYSTEM, *roots)):
        read += allow_except(r, hidden)
    return {"read": read, "write": [os.path.realpath(scratch), "/dev/null"]}


def policy_roots(packages=("glia_nb", "sim_core")) -> list[str]:
    """The folders a policy process reads beyond the system: its interpreter's, the
    standard library and site-packages, and the folders of ``packages`` themselves -- never
    a checkout's root, where a build folder, a wheel or a virtual environment may hold
    another copy of the trace generator (and a ``.env`` file keys)."""
    import importlib.util
    import sys
    import sysconfig

    paths = sysconfig.get_paths()
    roots = [os.path.dirname(sys.executable),
             *(paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths)]
    for name in packages:
        spec = importlib.util.find_spec(name)
        roots += list(spec.submodule_search_locations or []) if spec else []
    return roots


def restrict_policy_process(hidden) -> bool:
    """In the policy process: apply :func:`policy_paths` (scratch: the working directory)
    if the harness asked for it (:data:`ENV`); True if it did.  A request that cannot be
    honoured raises: the process must die rather than run the candidate without it."""
    if os.environ.get(ENV) != "1":
        return False
    paths = policy_paths(os.getcwd(), hidden, policy_roots())
    restrict(paths["read"], paths["write"])
    return True


__all__ = ["abi", "restrict", "allow_except", "policy_paths", "policy_roots",
           "restrict_policy_process", "handled_rights", "LandlockUnavailable", "ENV", "READ",
           "NEVER", "SYSTEM"]
