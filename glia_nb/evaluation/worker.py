"""The child side of :mod:`glia_nb.evaluation.harness`: run a candidate policy over seeds, report JSON.

The candidate belongs to the task's layer (a router, a batch policy or an autoscaler); the
rest of the stack is the task's fixed part (:meth:`glia_nb.tasks.task.Task.stack_for`).

Run as ``python -m glia_nb.evaluation.worker REQUEST.json``.  The request names the policy
(a file + class, or a built-in spec), the task, the seeds, the limits and where to write the
result.  Order matters: the resource limits are applied first, then the heavy libraries are
imported, then the network guard goes up, and only then is candidate code imported.

:func:`run_seed_job` is the picklable entry point for executors (process pools, Dask): it
evaluates one seed inside an already-running worker process, applying what limits it can
there and undoing them afterwards.

The network guard is a *guard against accidents*, not a security boundary: code that goes
through ``ctypes`` or reads ``/proc`` can get around it.  This module only imports the
standard library at import time, so the limits are in force before numpy or numba load.
"""
from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

NETWORK_MESSAGE = "network access is disabled in the sandbox"
PROCESS_MESSAGE = "starting processes is disabled in the sandbox (it would bypass the network guard)"
TRACEBACK_LINES = 30
ARTIFACT_FILES = ("requests.csv", "request_metrics.csv", "gs_log.csv", "reqs_log.csv", "config.json")


class NetworkDisabledError(PermissionError):
    """Raised by the sandbox's socket (and process) guard."""


class WallTimeout(Exception):
    """The in-worker wall-time alarm of :func:`run_seed_job` fired."""


# ---------------------------------------------------------------------- limits
def apply_limits(memory_mb: float | None, cpu_s: float | None = None,
                 file_mb: float | None = None, *, relative: bool = False):
    """Set RLIMIT_AS / RLIMIT_CPU / RLIMIT_FSIZE soft limits on this process.

    ``relative=True`` (pool workers) grants ``memory_mb`` on top of the address space the
    process already uses.  Returns a function that restores the previous limits."""
    import resource

    saved = []

    def _set(which, value):
        soft, hard = resource.getrlimit(which)
        value = int(value)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, hard))
        saved.append((which, (soft, hard)))

    if memory_mb:
        extra = _vm_size_bytes() if relative else 0
        _set(resource.RLIMIT_AS, extra + memory_mb * 2**20)
    if cpu_s:
        _set(resource.RLIMIT_CPU, cpu_s)
    if file_mb:
        _set(resource.RLIMIT_FSIZE, file_mb * 2**20)

    def restore():
        for which, lim in reversed(saved):
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(which, lim)
    return restore


def _vm_size_bytes() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def peak_address_space_mb() -> float | None:
    """VmPeak of this process in MiB (Linux), for the report."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmPeak:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


# ---------------------------------------------------------------------- network guard
def _blocked(*_a, **_k):
    raise NetworkDisabledError(NETWORK_MESSAGE)


@contextlib.contextmanager
def network_guard():
    """Replace the socket constructors with ones raising :class:`NetworkDisabledError`.

    ``socket.socket`` becomes a subclass whose constructor raises, so ``isinstance`` checks
    and modules that subclass it at import time (``ssl``) keep working.  Restored on exit."""
    import _socket
    import socket

    class _BlockedSocket(socket.socket):
        def __init__(self, *a, **k):
            raise NetworkDisabledError(NETWORK_MESSAGE)

    patches = [(socket, "socket", _BlockedSocket), (_socket, "socket", _BlockedSocket)]
    for name in ("create_connection", "create_server", "socketpair", "fromfd",
                 "getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr"):
        for mod in (socket, _socket):
            if hasattr(mod, name):
                patches.append((mod, name, _blocked))
    saved = [(mod, name, getattr(mod, name)) for mod, name, _ in patches]
    try:
        for mod, name, new in patches:
            setattr(mod, name, new)
        yield
    finally:
        for mod, name, old in saved:
            setattr(mod, name, old)


_BLOCKED_EVENTS = {"socket.__new__": NETWORK_MESSAGE, "socket.connect": NETWORK_MESSAGE,
                   "socket.bind": NETWORK_MESSAGE, "socket.getaddrinfo": NETWORK_MESSAGE,
                   "socket.gethostbyname": NETWORK_MESSAGE, "socket.gethostbyaddr": NETWORK_MESSAGE,
                   "subprocess.Popen": PROCESS_MESSAGE, "os.system": PROCESS_MESSAGE,
                   "os.exec": PROCESS_MESSAGE, "os.posix_spawn": PROCESS_MESSAGE,
                   "os.spawn": PROCESS_MESSAGE, "os.fork": PROCESS_MESSAGE}


def install_audit_guard() -> None:
    """Permanently block socket use and process creation in this process (PEP 578 audit
    hook; it cannot be removed, so only the dedicated sandbox process installs it)."""
    def hook(event, _args):
        msg = _BLOCKED_EVENTS.get(event)
        if msg is not None:
            raise NetworkDisabledError(msg)
    sys.addaudithook(hook)


# ---------------------------------------------------------------------- classification
def _chain(exc: BaseException):
    seen = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def _deepest_file(exc: BaseException) -> str | None:
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
    return last


def classify(exc: BaseException) -> str:
    """Map an exception raised while loading or running a candidate to an error kind."""
    from sim_core.facade import RoutingError
    from sim_core.policies import MissingPolicyClassError, PolicyLoadError

    chain = _chain(exc)
    if any(isinstance(e, NetworkDisabledError) for e in chain):
        return "network"
    if any(isinstance(e, MemoryError) for e in chain):
        return "memory"
    if any(isinstance(e, WallTimeout) for e in chain):
        return "timeout"
    if isinstance(exc, MissingPolicyClassError):
        return "missing_class"
    if isinstance(exc, PolicyLoadError):
        return "import"
    if isinstance(exc, RoutingError):
        cause = exc.__cause__
        if cause is None:
            return "invalid_decision"  # the engine rejected a decision
        # The facade wraps errors raised while it unpacks decisions as well as errors raised
        # inside route(); where the innermost frame lives tells them apart.
        deepest = _deepest_file(cause) or ""
        if deepest.endswith(os.path.join("sim_core", "facade.py")):
            return "invalid_decision"
        return "exception"
    if isinstance(exc, SyntaxError):
        return "import"
    return "exception"


def _user_frame(exc: BaseException) -> str:
    """``file:line in func`` of the innermost frame outside our own packages."""
    ours = (os.sep + "sim_core" + os.sep, os.sep + "glia_nb" + os.sep, "<frozen ")
    tb, found = exc.__traceback__, ""
    while tb is not None:
        code = tb.tb_frame.f_code
        if not any(o in code.co_filename for o in ours):
            found = f"{os.path.basename(code.co_filename)}:{tb.tb_lineno} in {code.co_name}"
        tb = tb.tb_next
    return found


def describe_error(exc: BaseException) -> dict:
    """kind, message and the last lines of the traceback, as a JSON-native dict.

    For errors the facade or the loader wrapped, the traceback shown is the wrapped
    (candidate's) one, which is where the bug is."""
    kind = classify(exc)
    cause = exc.__cause__
    shown = cause if (cause is not None and kind != "invalid_decision") else exc
    if kind in ("exception", "network", "memory", "timeout") and cause is not None:
        where = _user_frame(cause)
        from sim_core.batch_policies import BatchPolicyError

        if isinstance(cause, BatchPolicyError):  # raised while routing, not by the router
            msg = str(cause) + (f" (at {where})" if where else "")
        else:
            msg = (f"the router raised {type(cause).__name__}: {cause}"
                   + (f" (at {where})" if where else ""))
    else:
        msg = str(exc) if kind in ("invalid_decision", "import", "missing_class") \
            else f"{type(exc).__name__}: {exc}"
    if kind == "network" and NETWORK_MESSAGE not in msg and PROCESS_MESSAGE not in msg:
        msg += f" ({NETWORK_MESSAGE})"
    lines = "".join(traceback.format_exception(shown)).rstrip().splitlines()
    return {"kind": kind, "message": msg[:2000], "traceback": "\n".join(lines[-TRACEBACK_LINES:])}


# ---------------------------------------------------------------------- evaluation core
def _load_factory(req: dict, layer: str = "router"):
    """A zero-argument function building a fresh policy of ``layer`` (one per seed)."""
    from glia_nb.tasks.layers import LAYERS
    from sim_core.policies import load_policy_class

    if req.get("spec"):
        spec = req["spec"]
        make = LAYERS[layer].maker()
        make(spec)  # fail early on a bad spec
        return lambda: make(spec)
    cls = load_policy_class(req["policy_path"], req["class_name"], layer)

    def build():
        try:
            return cls()
        except Exception as exc:
            raise RuntimeError(f"{req['class_name']}() failed: {type(exc).__name__}: {exc}") from exc
    return build


def run_seeds(req: dict, progress=None) -> dict:
    """Evaluate ``req`` over its seeds in this process; never raises for candidate errors.

    Returns ``{"per_seed": [summary, ...], "error": None | {kind, message, traceback,
    seed}, "simulations": n_started, "artifacts": {name: text} | None}``."""
    from glia_nb.tasks import Task

    reserve = bytearray(16 * 2**20)  # freed on MemoryError so the report can be written
    out = {"per_seed": [], "error": None, "simulations": 0, "artifacts": None}
    seed = None
    try:
        from glia_nb.evaluation.simulate import simulate_config

        task = Task.from_dict(req["task"])
        scenario = task.load_scenario()
        factory = _load_factory(req, task.layer)
        for seed in req["seeds"]:
            out["simulations"] += 1
            res = simulate_config(scenario, seed, **task.stack_for(factory()),
                                  record_timeline=True)
            summary = dict(res.summary)
            out["per_seed"].append(summary)
            if seed == req.get("artifacts_seed"):
                out["artifacts"] = _write_artifacts(res, req)
            del res
            if progress:
                progress(summary)
    except BaseException as exc:  # noqa: BLE001 - candidate code may raise anything
        del reserve
        if isinstance(exc, KeyboardInterrupt):
            raise
        err = describe_error(exc)
        err["seed"] = seed
        out["error"] = err
        traceback.clear_frames(exc.__traceback__)
        del exc
        gc.collect()
    return out


def _write_artifacts(res, req: dict):
    if req.get("return_artifacts"):
        with tempfile.TemporaryDirectory(prefix="glia-art-") as tmp:
            res.write_artifacts(tmp)
            return {n: (Path(tmp) / n).read_text() for n in ARTIFACT_FILES if (Path(tmp) / n).exists()}
    if req.get("out_dir"):
        res.write_artifacts(req["out_dir"])
    return None


@contextlib.contextmanager
def _alarm(seconds: float | None):
    """Raise :class:`WallTimeout` after ``seconds`` (main thread only; else a no-op)."""
    usable = seconds and hasattr(signal, "setitimer") \
        and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def on_alarm(_sig, _frame):
        raise WallTimeout(f"wall-time limit of {seconds:.1f} s reached")
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run_seed_job(req: dict) -> dict:
    """Evaluate one seed inside an executor's worker process (picklable entry point).

    ``req`` is what :func:`glia_nb.evaluation.harness.evaluate` builds: it carries the policy's source
    text (the worker may be on another machine), the task, one seed and the limits.  The
    memory limit (relative to what the worker already uses), the network guard and a
    SIGALRM wall-time alarm apply only when the job runs in its process's main thread
    (process pools); in threaded workers (Dask) they would hit unrelated tasks, so only
    the parent's timeout applies there."""
    limits = req.get("limits") or {}
    main = threading.current_thread() is threading.main_thread()
    with tempfile.TemporaryDirectory(prefix="glia-job-") as tmp:
        req = dict(req, return_artifacts=True)
        if req.get("policy_source") is not None:
            path = Path(tmp) / (req.get("policy_name") or "policy.py")
            path.write_text(req["policy_source"])
            req["policy_path"] = str(path)
        restore = (apply_limits(limits.get("memory_mb"), relative=True)
                   if main and limits.get("memory_mb") else (lambda: None))
        guard = network_guard() if main and not limits.get("network") else contextlib.nullcontext()
        t0 = time.perf_counter()
        try:
            budget = limits.get("wall_s")
            if limits.get("deadline_unix"):
                budget = max(1.0, limits["deadline_unix"] - time.time())
            with _alarm(budget), guard:
                out = run_seeds(req)
        finally:
            restore()
        out["wall_s"] = time.perf_counter() - t0
        out["guarded"] = main
        return out


# ---------------------------------------------------------------------- subprocess entry
def _preload() -> None:
    """Import what evaluations need before the guard goes up (and before user code)."""
    import numpy  # noqa: F401
    import pandas  # noqa: F401

    import sim_core.facade  # noqa: F401  (numba and the engine)
    import sim_core.results  # noqa: F401
    import workloads  # noqa: F401
    import glia_nb.tasks  # noqa: F401


def main(argv=None) -> int:
    """Entry point of ``python -m glia_nb.evaluation.worker REQUEST.json``."""
    argv = sys.argv[1:] if argv is None else argv
    req = json.loads(Path(argv[0]).read_text())
    limits = req.get("limits") or {}
    wall = limits.get("wall_s")
    # CPU-time backstop: the child dies on its own even if the parent is gone.
    apply_limits(limits.get("memory_mb"), cpu_s=(wall + 30) if wall else None,
                 file_mb=limits.get("file_mb"))
    _preload()
    if not limits.get("network"):
        install_audit_guard()
        guard = network_guard()
        guard.__enter__()  # never exited: this process exists only for the evaluation
    progress_path = req.get("progress_path")

    def progress(summary):
        if progress_path:
            with open(progress_path, "a") as fh:
                fh.write(json.dumps({"seed": summary.get("seed")}) + "\n")

    t0 = time.perf_counter()
    out = run_seeds(req, progress)
    out["wall_s"] = time.perf_counter() - t0
    out["peak_address_space_mb"] = peak_address_space_mb()
    out["guarded"] = True
    tmp = req["result_path"] + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(out, fh)
    os.replace(tmp, req["result_path"])  # atomic: the parent never reads half a file
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through subprocesses
    sys.exit(main())
