"""OS confinement for untrusted code: candidate policies and the Researcher's shell.

Two levels, strongest first (:data:`ISOLATION_LEVELS`; built-in policies run trusted,
``"in-process"``):

* ``"bwrap"`` — Debian's bubblewrap: new PID, network (loopback only, no interfaces),
  mount, IPC, UTS and user namespaces; the root file system read-only; one writable scratch
  directory; a fresh ``/tmp``; outside the system directories only the way to the interpreter
  and the project visible (other checkouts, the home directory's dot-files hidden); the
  ``workloads`` package (the trace generator and its length table), its copies and the
  project's git history hidden; uid 65534; ``--die-with-parent
  --new-session --clearenv``; no_new_privs.
* ``"process"`` — where bwrap is missing or cannot create namespaces (macOS, containers
  without user namespaces, Binder): a separate process in its own session with an empty
  environment, uid 65534 when started as root, and the same hard limits.  A warning says so.

Either way the confined process applies HARD resource limits (soft = hard) to itself as its
first statement, before any candidate code exists (:func:`harden`): address space, processes
(none may be started), CPU time, file size, open files, no core dumps.  An unprivileged
process can lower a hard limit but never raise it again.  Then, after its own imports and
before any candidate code, it loads a seccomp filter (:mod:`.seccomp_filter`: no socket but
``AF_UNIX``, no ptrace, mount, namespaces, kernel keys, bpf...; for a policy no new process)
where libseccomp is installed; the recorded isolation then reads ``"bwrap+seccomp"`` or
``"process+seccomp"`` (:func:`isolation_label`).
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from glia_nb.evaluation import landlock, seccomp_filter
from glia_nb.evaluation.landlock import ENV as LANDLOCK_ENV
from glia_nb.evaluation.numba_cache import CACHE_DIRNAME

ISOLATION_LEVELS = ("bwrap", "process", "in-process")
NOBODY = 65534
HARNESS_RECORDS = ("journal.jsonl", "ledger.csv")  # read-only inside the Researcher's shell
# One thread per BLAS/numba pool keeps a confined process's address space small.
THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "NUMBA_NUM_THREADS": "1"}


class IsolationWarning(UserWarning):
    """Untrusted code runs with weaker isolation than bubblewrap gives."""


@dataclass(frozen=True)
class HardLimits:
    """Hard rlimits of a confined process (None: leave as is).  ``processes=0`` forbids
    starting any process or thread."""

    memory_mb: int | None = 2048
    cpu_s: int | None = 330
    file_mb: int | None = 512
    open_files: int | None = 64
    processes: int | None = 0

    def to_dict(self) -> dict:
        """JSON-native form (the confined process reads it from its command line)."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def harden(limits: dict) -> None:
    """Apply ``limits`` (a :meth:`HardLimits.to_dict`) to this process as HARD limits, forbid
    core dumps and privilege gain, and make this process undumpable (other processes of the
    same uid cannot read its memory or file descriptors through ``/proc``).  Standard
    library only: called before anything else is imported."""
    import resource

    def hard(which, value):
        if value is None:
            return
        value = int(value)
        _soft, cur = resource.getrlimit(which)
        if cur != resource.RLIM_INFINITY:
            value = min(value, cur)
        resource.setrlimit(which, (value, value))

    mb = 2**20
    hard(resource.RLIMIT_CORE, 0)
    hard(resource.RLIMIT_AS, limits.get("memory_mb") and limits["memory_mb"] * mb)
    hard(resource.RLIMIT_CPU, limits.get("cpu_s"))
    hard(resource.RLIMIT_FSIZE, limits.get("file_mb") and limits["file_mb"] * mb)
    hard(resource.RLIMIT_NOFILE, limits.get("open_files"))
    if limits.get("processes") is not None and hasattr(resource, "RLIMIT_NPROC"):
        hard(resource.RLIMIT_NPROC, limits["processes"])
    _prctl(38, 1)  # PR_SET_NO_NEW_PRIVS
    _prctl(4, 0)   # PR_SET_DUMPABLE = 0
    _prctl(1, 9)   # PR_SET_PDEATHSIG = SIGKILL: die with the process that started us


def _prctl(option: int, arg: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(option, arg, 0, 0, 0)
    except (OSError, AttributeError):
        pass


# ---------------------------------------------------------------------- detection
def bwrap_path() -> str | None:
    """The bubblewrap executable, or None."""
    return shutil.which("bwrap") or (os.path.exists("/usr/bin/bwrap") and "/usr/bin/bwrap") or None


def probe_bwrap() -> tuple[bool, str]:
    """Whether bwrap can create every namespace here: ``(usable, why not / version)``."""
    exe = bwrap_path()
    if exe is None:
        return False, "bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    try:
        proc = subprocess.run([*bwrap_argv(exe, scratch=None), "/bin/true"], capture_output=True,
                              timeout=20, env={})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"bwrap did not run: {exc}"
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        return False, f"bwrap cannot create namespaces here: {err[-1] if err else proc.returncode}"
    ver = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10)
    return True, (ver.stdout.strip() or "bwrap")


def choose_isolation(prefer: str | None = None, *, warn: bool = True) -> str:
    """The isolation level untrusted code will get: ``"bwrap"`` when usable, else
    ``"process"`` (with an :class:`IsolationWarning`).  ``prefer="process"`` skips bwrap."""
    if prefer not in (None, "bwrap", "process"):
        raise ValueError(f"isolation must be 'bwrap' or 'process', not {prefer!r}")
    if prefer != "process":
        ok, why = probe_bwrap()
        if ok:
            return "bwrap"
        if warn:
            warnings.warn(f"untrusted code runs in a plain process with hard limits, without "
                          f"namespaces: {why}", IsolationWarning, stacklevel=2)
    return "process"


# ---------------------------------------------------------------------- seccomp
def isolation_label(level: str, seccomp: str | None, landlock: bool = False) -> str:
    """What a result records: the level, with ``"+seccomp"`` when a filter (of profile
    ``seccomp``) is loaded in the confined process and ``"+landlock"`` when the kernel's
    file allow-list holds it (:mod:`.landlock`, level ``process``)."""
    return level + ("+seccomp" if seccomp else "") + ("+landlock" if landlock else "")


def policy_landlock(level: str) -> bool:
    """Whether a policy process confined at ``level`` runs under Landlock: at level
    ``process`` (bwrap's mount namespace already hides the rest) where the kernel has it."""
    return level == "process" and landlock.abi() > 0


def seccomp_profile(profile: str) -> str | None:
    """``profile`` where this machine can compile its seccomp filter, else None (where
    libseccomp is missing, as on macOS: confined code then runs without one)."""
    try:
        seccomp_filter.compile_filter(profile)
    except seccomp_filter.SeccompUnavailable:
        return None
    return profile


def expected_isolation(prefer: str | None = None, *, profile: str = "policy") -> str:
    """The isolation string results will record on this machine (for journal headers):
    :func:`choose_isolation`'s level and whether a seccomp filter loads."""
    level = choose_isolation(prefer, warn=False)
    return isolation_label(level, seccomp_profile(profile),
                           profile == "policy" and policy_landlock(level))


class ConfinedProcess(subprocess.Popen):
    """A confined process: ``level`` and ``seccomp`` (the filter profile handed to it, which
    it loads or dies; None: none) say what it runs under."""

    level: str = ""
    seccomp: str | None = None
    landlock: bool = False

    @property
    def isolation(self) -> str:
        """The isolation string to record (:func:`isolation_label`)."""
        return isolation_label(self.level, self.seccomp, self.landlock)


def _seccomp_env(profile: str | None) -> dict:
    """The environment entry that hands ``profile``'s filter to a confined child; {} (and
    an :class:`IsolationWarning`, shown once) where none can be compiled."""
    if profile is None:
        return {}
    try:
        return seccomp_filter.child_env(profile)
    except seccomp_filter.SeccompUnavailable as exc:
        warnings.warn(f"untrusted code runs without a seccomp filter: {exc}", IsolationWarning,
                      stacklevel=3)
        return {}


# ---------------------------------------------------------------------- commands
def package_roots(*names: str) -> list[str]:
    """The folders to put on a child's PYTHONPATH so that it imports the packages ``names``
    (each package's parent folder), sorted; found without importing them."""
    return sorted({str(Path(importlib.util.find_spec(n).origin).resolve().parent.parent)
                   for n in names})


def _needed_roots() -> list[Path]:
    """Directories the confined interpreter must still see under a hidden home."""
    import glia_nb

    roots = {Path(sys.prefix).resolve(), Path(sys.executable).resolve().parent,
             Path(glia_nb.__file__).resolve().parent.parent}
    roots.update(Path(p).resolve() for p in sys.path if p and os.path.isdir(p))
    return sorted(roots)


# Top-level directories kept whole: the system the interpreter and the shell run on (and the
# mount points bwrap replaces itself).  Every other directory shows only the way to the
# interpreter and the project.
_SYSTEM_DIRS = frozenset({"bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "etc", "dev",
                          "proc", "sys", "run", "tmp", "var", "nix", "snap"})


def _hidden_paths(extra=()) -> list[tuple[str, str]]:
    """``(kind, path)`` to mask: outside the system directories, every entry that holds none
    of the interpreter's or the project's files (other checkouts and copies of the project,
    keys in dot-files, caches, shell history), and every place the trace generator can be
    read from (:func:`glia_nb.evaluation.trace_guard.trace_sources`: the ``workloads``
    package, its copies, the project's git history), and the ``extra`` directories (where
    earlier runs' telemetry lies) that hold none of the interpreter's or the project's files."""
    from glia_nb.evaluation.trace_guard import trace_sources

    out: list[tuple[str, str]] = []
    needed = _needed_roots()
    root = Path("/")
    ancestors = sorted({a for r in needed for a in r.parents}, key=lambda p: len(p.parts))
    for a in ancestors:
        if (a != root and a.parts[1] in _SYSTEM_DIRS) or any(r == a or r in a.parents for r in needed):
            continue  # a system tree, or inside the interpreter or the project: kept whole
        try:
            entries = sorted(a.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.is_symlink() or (a == root and entry.name in _SYSTEM_DIRS) or \
                    any(entry == r or entry in r.parents for r in needed):
                continue
            if not os.access(entry, os.R_OK):  # unreadable here, so in there too (and a FUSE
                continue                       # mount we cannot enter could not be covered)
            out.append(("dir" if entry.is_dir() else "file", str(entry)))
    hidden = [Path(p) for _kind, p in out]
    for src in [*map(Path, trace_sources()), *(Path(e).resolve() for e in extra)]:
        if not src.is_dir() or any(r == src or src in r.parents for r in needed):
            continue  # gone, or it would take the interpreter or the project with it
        if not any(h == src or h in src.parents for h in hidden):
            out.append(("dir", str(src)))
            hidden.append(src)
    return out


def bwrap_argv(exe: str, *, scratch: str | None, cwd: str | None = None,
               hide: bool = True, readonly=(), hidden=()) -> list[str]:
    """The bubblewrap prefix: every namespace, read-only root, ``scratch`` writable except
    the ``readonly`` paths inside it (harness-owned records)."""
    argv = [exe, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
            "--unshare-all", "--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY),
            "--die-with-parent", "--new-session", "--clearenv"]
    # The fresh /tmp hides whatever lived there; the interpreter and the project may (a clone
    # or a virtual environment under /tmp), so those come back, read-only.
    tmp = Path("/tmp")
    for root in _needed_roots():
        if tmp in root.parents:
            argv += ["--ro-bind", str(root), str(root)]
    if hide:
        for kind, path in _hidden_paths(hidden):
            argv += (["--tmpfs", path] if kind == "dir" else ["--ro-bind", "/dev/null", path])
    if scratch is not None:
        argv += ["--bind", scratch, scratch]
    for path in readonly:
        argv += ["--ro-bind", str(path), str(path)]
    argv += ["--chdir", cwd or scratch or "/"]
    return argv


def confined_env(extra: dict | None = None) -> dict:
    """The whole environment of a confined process: nothing inherited but the locale."""
    env = {"PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin",
                                    "/usr/bin", "/bin"]),
           "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": "/tmp", "PYTHONNOUSERSITE": "1",
           "PYTHONDONTWRITEBYTECODE": "1", "MPLCONFIGDIR": "/tmp", **THREAD_ENV}
    env.update(extra or {})
    return env


def drops_to_nobody(level: str) -> bool:
    """Whether a process confined at ``level`` is started as uid :data:`NOBODY` outside any
    user namespace (level ``process``, started by root), so files made for it must be its."""
    return level == "process" and hasattr(os, "geteuid") and os.geteuid() == 0


def popen_confined(argv: list[str], *, level: str, scratch: str, env: dict | None = None,
                   pass_fds=(), readonly=(), seccomp: str | None = "policy", hidden=(),
                   numba_cache: str | None = None, landlock: bool = False,
                   **popen_kw) -> ConfinedProcess:
    """Start ``argv`` confined at ``level`` (``"bwrap"`` or ``"process"``) with ``scratch``
    as its working and only writable directory.  The caller kills the process group.

    ``seccomp`` names the filter profile (:data:`.seccomp_filter.PROFILES`) handed to the
    child in its environment; ``argv`` must load it
    (:func:`.seccomp_filter.load_from_env`) after its imports, before running untrusted code.
    ``hidden``: more directories to mount empty at level ``bwrap`` (earlier runs' telemetry).
    ``numba_cache``: the process's own numba cache directory (:mod:`.numba_cache`), inside
    ``scratch``.  ``landlock``: ask the process (which must call
    :func:`.landlock.restrict_policy_process`) to put itself under Landlock."""
    sec = _seccomp_env(seccomp)
    cache = {"NUMBA_CACHE_DIR": numba_cache} if numba_cache else {}
    ll = {LANDLOCK_ENV: "1"} if landlock else {}
    env = confined_env({**(env or {}), **sec, **cache, **ll})
    proc = _popen(argv, level=level, scratch=scratch, env=env, pass_fds=pass_fds,
                  readonly=readonly, hidden=hidden, **popen_kw)
    proc.level, proc.seccomp, proc.landlock = level, seccomp if sec else None, landlock
    return proc


def _popen(argv, *, level, scratch, env, pass_fds, readonly, hidden=(), **popen_kw) -> ConfinedProcess:
    if level == "bwrap":
        full = [*bwrap_argv(bwrap_path(), scratch=scratch, readonly=readonly, hidden=hidden)]
        for k, v in env.items():
            full += ["--setenv", k, v]
        return ConfinedProcess([*full, *argv], env={}, pass_fds=pass_fds,
                               start_new_session=True, **popen_kw)
    if level != "process":
        raise ValueError(f"unknown isolation level {level!r}")
    if drops_to_nobody(level):
        # Sticky: nobody may add files here but not rename or remove the harness's.
        os.chmod(scratch, 0o1777)
        try:
            return ConfinedProcess(argv, env=env, cwd=scratch, pass_fds=pass_fds,
                                   start_new_session=True, user=NOBODY, group=NOBODY,
                                   extra_groups=[], **popen_kw)
        except PermissionError:
            pass  # the interpreter is not readable by nobody (say, under /root): stay root
    return ConfinedProcess(argv, env=env, cwd=scratch, pass_fds=pass_fds,
                           start_new_session=True, **popen_kw)


def popen_shell(command: str, workspace, level: str, **popen_kw) -> ConfinedProcess:
    """``bash -c command`` confined like a candidate: ``workspace`` is its only writable
    place, no keys, no network, no view of other processes; ``python`` is this session's
    interpreter with the project importable.  Not a login shell: a profile could reset PATH
    to another python.  Processes are allowed (pipes need them), under the same other limits
    and the ``"shell"`` seccomp profile (no sockets but ``AF_UNIX`` even at level
    ``"process"``)."""
    import json

    ws = str(Path(workspace).resolve())
    import glia_nb

    env = {"GLIA_WORKSPACE": ws, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": str(Path(glia_nb.__file__).resolve().parent.parent),
           "GLIA_SHELL_LIMITS": json.dumps(HardLimits(memory_mb=4096, processes=None,
                                                      open_files=256).to_dict())}
    harden_then_bash = ("import json, os, sys; from glia_nb.evaluation.confine import harden; "
                        "harden(json.loads(os.environ.pop('GLIA_SHELL_LIMITS'))); "
                        "from glia_nb.evaluation.seccomp_filter import load_from_env; "
                        "load_from_env(); os.execv('/bin/bash', ['bash', '-c', sys.argv[1]])")
    # The journal and the ledger are the harness's records: read-only in here.
    records = [p for p in (Path(ws) / n for n in HARNESS_RECORDS) if p.exists()]
    # Its numba cache is its own, in the workspace; the harness never writes there.
    return popen_confined([sys.executable, "-c", harden_then_bash, command], level=level,
                          scratch=ws, env=env, readonly=records, seccomp="shell",
                          numba_cache=str(Path(ws) / CACHE_DIRNAME), **popen_kw)


def doctor() -> dict:
    """What this machine supports, for ``glia doctor``."""
    ok, why = probe_bwrap()
    sec_ok, sec_why = seccomp_filter.available()
    userns = Path("/proc/sys/kernel/unprivileged_userns_clone")
    return {"platform": sys.platform, "python": sys.executable,
            "bwrap": bwrap_path(), "bwrap_usable": ok, "bwrap_detail": why,
            "user_namespaces": (userns.read_text().strip() == "1") if userns.exists() else None,
            "memfd_seals": hasattr(os, "memfd_create"),
            "running_as_root": hasattr(os, "geteuid") and os.geteuid() == 0,
            "seccomp": sec_ok, "seccomp_detail": sec_why,
            "isolation": "bwrap" if ok else "process",
            "landlock_abi": landlock.abi(),
            "recorded_isolation": isolation_label("bwrap" if ok else "process",
                                                  "policy" if sec_ok else None,
                                                  policy_landlock("bwrap" if ok else "process"))}


__all__ = ["ISOLATION_LEVELS", "HardLimits", "harden", "choose_isolation", "probe_bwrap",
           "bwrap_argv", "popen_confined", "drops_to_nobody", "policy_landlock", "popen_shell", "confined_env", "doctor", "IsolationWarning",
           "THREAD_ENV", "ConfinedProcess", "isolation_label", "seccomp_profile",
           "expected_isolation"]
