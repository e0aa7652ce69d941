"""The trusted simulation process of :mod:`glia_nb.evaluation.harness`: simulate, report JSON.

The candidate belongs to the task's layer (a router, a batch policy or an autoscaler); the
rest of the stack is the task's fixed part (:meth:`glia_nb.tasks.task.Task.stack_for`).
This process holds the trace, the simulator state and the per-seed summaries; a candidate
file never runs here but in a confined policy process (:mod:`glia_nb.evaluation.proxy`),
which sees only the policy's view and answers calls.  Built-in policies (trusted) run here.

Run as ``python -m glia_nb.evaluation.worker REQUEST.json``.  The request names the policy
(a file + class, or a built-in spec), the task, the seeds, the limits and where to write the
result (a private temporary directory the candidate cannot see).

:func:`run_seed_job` is the picklable entry point for executors (process pools, Dask): it
evaluates one seed inside an already-running worker process, which stays trusted.
"""
from __future__ import annotations

import contextlib
import gc
import json
import os
import sys
import tempfile
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

    from glia_nb.evaluation.proxy import PolicyError

    chain = _chain(exc)
    remote = next((e for e in chain if isinstance(e, PolicyError)), None)
    if remote is not None:  # the sandboxed candidate's failure, classified on its side
        return remote.kind
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
    from glia_nb.evaluation.proxy import PolicyError

    kind = classify(exc)
    remote = next((e for e in _chain(exc) if isinstance(e, PolicyError)), None)
    if remote is not None:
        what = {"batch_policy": "the batch policy", "autoscaler": "the autoscaler"}.get(
            getattr(remote, "layer", ""), "the router")
        msg = remote.message if kind in ("invalid_decision", "import", "missing_class",
                                         "timeout", "crash") else f"{what} raised {remote.message}"
        wrapped = next((e for e in _chain(exc) if type(e).__name__ == "BatchPolicyError"), None)
        if wrapped is not None and kind == "exception":  # names the key call, as in-process
            msg = str(wrapped).replace("raised PolicyError: ", "raised ")
        return {"kind": kind, "message": msg[:2000], "traceback": remote.traceback or None}
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


def _start_policy(req: dict, task, deadline: float):
    """A confined policy process with the candidate loaded (see :mod:`.proxy`)."""
    from glia_nb.evaluation.confine import HardLimits, choose_isolation
    from glia_nb.evaluation.proxy import PolicyProcess
    from sim_core.routers import RouterLoadError

    filename = req.get("policy_path") or req.get("policy_name") or "policy.py"
    source = req.get("policy_source")
    if source is None:
        try:
            raw = Path(req["policy_path"]).read_bytes()
        except OSError as exc:
            raise RouterLoadError(f"policy file {filename} cannot be read: {exc}") from exc
        try:
            source = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RouterLoadError(f"policy file {filename} is not UTF-8 text: {exc}") from exc
    limits = req.get("limits") or {}
    wall = float(limits.get("wall_s") or 300.0)
    hard = HardLimits(memory_mb=limits.get("memory_mb"), cpu_s=int(wall) + 30,
                      file_mb=limits.get("file_mb"))
    level = limits.get("isolation") or choose_isolation()
    log = Path(req["out_dir"]) / "policy_log.txt" if req.get("out_dir") else Path(os.devnull)
    # The folder beside this run's (a session's experiments/) holds earlier runs' telemetry.
    near = [str(Path(req["out_dir"]).resolve().parent)] if req.get("out_dir") else []
    proc = PolicyProcess(level=level, limits=hard, deadline=deadline, log_path=str(log), hidden=near)
    try:
        proc.load(source, filename, req.get("class_name") or "Router", task.layer)
    except BaseException:
        proc.close()
        raise
    return proc


def run_seeds(req: dict, progress=None) -> dict:
    """Evaluate ``req`` over its seeds; never raises for candidate errors.

    This process is trusted: it holds the trace and the simulator.  A built-in policy
    (``spec``) runs here; a policy file runs in a fresh confined policy process for the whole
    evaluation, which is killed (with anything it started) at the end.

    Returns ``{"per_seed": [summary, ...], "error": None | {kind, message, traceback,
    seed}, "simulations": n_started, "artifacts": {name: text} | None, "isolation": level}`` (``level`` as
    :func:`glia_nb.evaluation.confine.isolation_label` writes it: ``"bwrap+seccomp"``...)."""
    from glia_nb.tasks import Task

    reserve = bytearray(16 * 2**20)  # freed on MemoryError so the report can be written
    out = {"per_seed": [], "error": None, "simulations": 0, "artifacts": None,
           "isolation": "in-process"}
    seed = remote = None
    limits = req.get("limits") or {}
    budget = float(limits.get("wall_s") or 300.0)
    if limits.get("deadline_unix"):
        budget = max(1.0, limits["deadline_unix"] - time.time())
    deadline = time.monotonic() + budget
    try:
        from glia_nb.evaluation.simulate import simulate_config
        from sim_core.facade import cluster_info

        task = Task.from_dict(req["task"])
        scenario = task.load_scenario()
        if req.get("spec"):
            factory = _load_factory(req, task.layer)
        else:
            remote = _start_policy(req, task, deadline)
            out["isolation"] = remote.isolation
        for seed in req["seeds"]:
            out["simulations"] += 1
            policy = remote.for_seed(seed, cluster_info(scenario.cluster)) if remote else factory()
            res = simulate_config(scenario, seed, **task.stack_for(policy), record_timeline=True,
                                  share_state=remote.share_state if remote else None)
            summary = dict(res.summary)
            out["per_seed"].append(summary)
            if seed == req.get("artifacts_seed"):
                out["artifacts"] = _write_artifacts(res, req)
            del res
            if progress:
                progress(summary)
    except BaseException as exc:  # noqa: BLE001 - report, do not die
        del reserve
        if isinstance(exc, KeyboardInterrupt):  # a real Ctrl-C here (a candidate's is data)
            raise
        err = describe_error(exc)
        err["seed"] = seed
        out["error"] = err
        traceback.clear_frames(exc.__traceback__)
        del exc
        gc.collect()
    finally:
        if remote is not None:
            remote.close()
            out["policy_cpu_s"] = remote.cpu_s
            out["policy_start_cpu_s"] = getattr(remote, "start_cpu_s", None)
    return out


def _write_artifacts(res, req: dict):
    if req.get("return_artifacts"):
        with tempfile.TemporaryDirectory(prefix="glia-art-") as tmp:
            res.write_artifacts(tmp)
            return {n: (Path(tmp) / n).read_text() for n in ARTIFACT_FILES if (Path(tmp) / n).exists()}
    if req.get("out_dir"):
        res.write_artifacts(req["out_dir"])
    return None


def run_seed_job(req: dict) -> dict:
    """Evaluate one seed inside an executor's worker process (picklable entry point).

    ``req`` is what :func:`glia_nb.evaluation.harness.evaluate` builds: it carries the
    policy's source text (the worker may be on another machine), the task, one seed and the
    limits.  The worker process only simulates (trusted code); the candidate runs in a fresh
    confined policy process that this job starts and kills, so nothing a candidate does can
    patch, wedge or kill the pool worker, and nothing carries over to the next job."""
    req = dict(req, return_artifacts=True)
    t0 = time.perf_counter()
    out = run_seeds(req)
    out["wall_s"] = time.perf_counter() - t0
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
    progress_path = req.get("progress_path")

    def progress(summary):
        if progress_path:
            with open(progress_path, "a") as fh:
                fh.write(json.dumps({"seed": summary.get("seed")}) + "\n")

    t0 = time.perf_counter()
    out = run_seeds(req, progress)
    out["wall_s"] = time.perf_counter() - t0
    out["peak_address_space_mb"] = peak_address_space_mb()
    tmp = req["result_path"] + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(out, fh)
    os.replace(tmp, req["result_path"])  # atomic: the parent never reads half a file
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through subprocesses
    sys.exit(main())
