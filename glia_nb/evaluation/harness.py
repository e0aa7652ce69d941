"""Evaluate candidate policies: a trusted simulator, the candidate confined in its own process.

The default path starts one trusted child (``python -m glia_nb.evaluation.worker``) for the
whole evaluation; it holds the trace, the simulator state and the results, and starts one
fresh, OS-confined policy process for the candidate (:mod:`glia_nb.evaluation.proxy`,
:mod:`glia_nb.evaluation.confine`: bubblewrap namespaces where usable, else a plain process;
hard rlimits and, where libseccomp is installed, a seccomp filter either way).  The candidate sees only the policy's view, through a read-only
shared mapping, and answers calls; it writes no result.  The parent kills the child's group at
the wall-time limit.  Whatever the candidate does, :func:`evaluate` returns an
:class:`EvalResult`, which records the ``isolation`` achieved (``"bwrap+seccomp"``, ``"process"``...).

With ``executor=`` (a ``concurrent.futures`` process pool, or a Dask client's
``get_executor()``), one job per seed is submitted instead (:func:`glia_nb.evaluation.worker.
run_seed_job`); pool workers only simulate, each job starts and kills its own policy process.

Measured on routing-a10 (1,000 s traces, 3 or 10 seeds, one BLAS/numba thread): the trusted
child's peak address space (VmPeak) is about 0.45 GiB with a warm numba cache and 0.5 GiB when
the engine compiles; the default 2 GiB limit applies to the policy process as a hard limit.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from glia_nb.evaluation.confine import package_roots
from glia_nb.evaluation.secrets import known_secrets, redact, scrubbed_env
from glia_nb.evaluation.simulate import WORST_SEED_METRICS, aggregate  # noqa: F401 (re-exported)
from glia_nb.tasks import Task

from glia_nb.evaluation.proxy import ERROR_KINDS  # noqa: E402  (one list of error kinds)
# One thread per BLAS/numba pool keeps the child's address space small and predictable.
_THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "NUMBA_NUM_THREADS": "1"}


@dataclass(frozen=True)
class Limits:
    """Sandbox limits.  ``wall_s`` bounds a whole evaluation (start-up included: about 2 s,
    or 10-15 s when numba recompiles the engine); ``memory_mb`` is the child's address-space
    limit (None: unlimited); ``file_mb`` caps any file the child writes (runaway prints);
    ``network`` is kept for compatibility and ignored: candidates never get a network.
    ``isolation`` forces a level (``"process"``: no namespaces) instead of the best one."""

    wall_s: float = 300.0
    memory_mb: int | None = 2048
    file_mb: int | None = 512
    network: bool = False
    isolation: str | None = None

    def __post_init__(self) -> None:
        if self.isolation not in (None, "bwrap", "process"):
            raise ValueError("isolation must be None (the best available), 'bwrap' or 'process'")
        if not self.wall_s > 0:
            raise ValueError("wall_s must be > 0")
        if self.memory_mb is not None and self.memory_mb < 256:
            raise ValueError("memory_mb below 256 cannot even start Python with numpy")


@dataclass(frozen=True)
class EvalResult:
    """The outcome of one evaluation.  ``ok`` is False whenever ``error_kind`` is set."""

    ok: bool
    score: float | None
    summary: dict = field(default_factory=dict)
    per_seed: list = field(default_factory=list)
    error_kind: str | None = None
    error: str | None = None
    traceback: str | None = None
    wall_s: float = 0.0
    policy: str = ""
    seeds: tuple = ()
    simulations: int = 0
    out_dir: str | None = None
    peak_address_space_mb: float | None = None
    isolation: str = ""

    def to_dict(self) -> dict:
        """A JSON-native dict."""
        d = asdict(self)
        d["seeds"] = list(self.seeds)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "EvalResult":
        """Rebuild from :meth:`to_dict` output."""
        d = dict(d)
        d["seeds"] = tuple(d.get("seeds") or ())
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def one_line(self) -> str:
        """``ok: score 23.41`` or ``error (timeout): ...`` for logs."""
        if self.ok:
            return f"ok: score {self.score:.4g}"
        return f"error ({self.error_kind}): {(self.error or '').splitlines()[0][:200]}"


# ---------------------------------------------------------------------- helpers
def _policy_request(policy, task: Task) -> tuple[dict, str]:
    """Turn a policy argument into request fields and a display name."""
    if isinstance(policy, Path) or (isinstance(policy, str) and (
            policy.endswith(".py") or (":" not in policy and os.path.sep in policy))):
        path = Path(policy).resolve()
        return {"policy_path": str(path), "class_name": task.class_name,
                "policy_name": path.name}, f"{path.name}:{task.class_name}"
    head, sep, tail = str(policy).rpartition(":")
    if sep and head.endswith(".py"):
        path = Path(head).resolve()
        return {"policy_path": str(path), "class_name": tail, "policy_name": path.name}, \
            f"{path.name}:{tail}"
    return {"spec": str(policy)}, str(policy)


def _tail(path: Path, n_chars: int = 4000) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - n_chars))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


# ---------------------------------------------------------------------- evaluate
def evaluate(policy, task: Task, out_dir=None, *, executor: Executor | None = None,
             limits: Limits | None = None, write_artifacts: bool = True,
             secrets: Sequence[str] = ()) -> EvalResult:
    """Evaluate ``policy`` on ``task``'s scenario over its evaluation seeds.

    ``policy`` is a policy file (``Path`` or ``"x.py"``: class ``task.class_name``), a
    ``"file.py:Class"`` spec, or a built-in router spec such as ``"llq"`` or
    ``"hra:decode_growth=0.5"``.  With ``out_dir``, telemetry of the first seed (when
    ``write_artifacts``), ``metrics.json``, ``seeds.csv`` and ``sandbox_log.txt`` (the
    child's output) land there.  The environment's keys and ``secrets`` (the caller's model
    clients' keys) are redacted from the result and from every file written.  Never raises
    because of the candidate."""
    limits = limits or Limits()
    fields, name = _policy_request(policy, task)
    seeds = list(task.seeds)
    out = Path(out_dir).resolve() if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    req = {**fields, "task": task.to_dict(), "seeds": seeds,
           "artifacts_seed": seeds[0] if (write_artifacts and out is not None) else None,
           "out_dir": str(out) if out else None, "limits": asdict(limits)}
    t0 = time.perf_counter()
    if executor is None:
        raw = _run_subprocess(req, limits, out)
    else:
        raw = _run_pool(req, executor, limits, out)
    wall = time.perf_counter() - t0
    per_seed = raw.get("per_seed") or []
    err = raw.get("error")
    summary = aggregate(per_seed) if per_seed else {}
    score = None
    if err is not None and err.get("kind") == "memory" and limits.memory_mb:
        err = dict(err, message=f"out of memory: the sandbox allows {limits.memory_mb} MB of "
                                f"address space (a normal evaluation needs about 500 MB). "
                                f"{err.get('message', '')}")
    if err is None:
        try:
            score = task.score(summary)
        except KeyError as exc:
            err = {"kind": "exception", "message": str(exc), "traceback": None}
    known = known_secrets(extra=secrets)
    if err is not None:  # a key in an exception message must not reach any record
        err = redact(err, known)
    result = EvalResult(
        ok=err is None, score=score, summary=summary, per_seed=per_seed,
        error_kind=err["kind"] if err else None, error=err["message"] if err else None,
        traceback=err.get("traceback") if err else None, wall_s=wall, policy=name,
        seeds=tuple(seeds), simulations=int(raw.get("simulations", 0)),
        out_dir=str(out) if out else None,
        peak_address_space_mb=raw.get("peak_address_space_mb"),
        isolation=str(raw.get("isolation") or ""))
    if out is not None:
        for log in LOG_FILES:  # what the candidate printed
            _redact_file(out / log, known)
        write_result_files(result, out, secrets=secrets)
    return result


LOG_FILES = ("sandbox_log.txt", "policy_log.txt")


def _redact_file(path: Path, secrets: list[str]) -> None:
    if not secrets:
        return
    try:
        text = path.read_bytes().decode("utf-8", "replace")
    except OSError:
        return
    clean = redact(text, secrets)
    if clean != text:
        path.write_text(clean)


def write_result_files(result: EvalResult, out_dir, extra: dict | None = None,
                       secrets: Sequence[str] = ()) -> None:
    """Write ``metrics.json`` (``extra`` merged in first) and ``seeds.csv`` into ``out_dir``,
    with the environment's keys and ``secrets`` redacted."""
    out = Path(out_dir)
    doc = redact({**(extra or {}), **result.to_dict()}, known_secrets(extra=secrets))
    (out / "metrics.json").write_text(json.dumps(doc, indent=2, default=str))
    if result.per_seed:
        keys = list(dict.fromkeys(k for s in result.per_seed for k in s))
        with open(out / "seeds.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=keys)
            w.writeheader()
            w.writerows(result.per_seed)


def _run_subprocess(req: dict, limits: Limits, out: Path | None) -> dict:
    """One child for all seeds; the parent enforces the wall time by killing its group."""
    with tempfile.TemporaryDirectory(prefix="glia-sandbox-") as tmp:
        tmp = Path(tmp)
        req = dict(req, result_path=str(tmp / "result.json"),
                   progress_path=str(tmp / "progress.jsonl"))
        (tmp / "request.json").write_text(json.dumps(req))
        log_path = (out or tmp) / "sandbox_log.txt"
        env = scrubbed_env({**_THREAD_ENV, "PYTHONPATH": os.pathsep.join(
            package_roots("sim_core", "workloads", "glia_nb") + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
            "PYTHONUNBUFFERED": "1"})
        with open(log_path, "wb") as log:
            try:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "glia_nb.evaluation.worker", str(tmp / "request.json")],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    cwd=str(out or tmp), env=env, start_new_session=True)
            except OSError as exc:
                return {"error": {"kind": "crash", "message": f"could not start the sandbox: {exc}"}}
            try:
                rc = proc.wait(timeout=limits.wall_s)
                timed_out = False
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                rc, timed_out = proc.returncode, True
        done = _progress(tmp / "progress.jsonl")
        result_file = tmp / "result.json"
        if not timed_out and result_file.exists():
            return json.loads(result_file.read_text())
        log_tail = _tail(log_path)
        n = len(req["seeds"])
        if timed_out:
            where = (f" while simulating seed {req['seeds'][len(done)]}" if len(done) < n else "")
            return {"simulations": min(n, len(done) + 1), "error": {
                "kind": "timeout", "traceback": log_tail[-2000:] or None,
                "message": f"the evaluation exceeded the wall-time limit of {limits.wall_s:g} s"
                           f"{where} ({len(done)} of {n} seeds finished) and was killed"}}
        return {"simulations": min(n, len(done) + 1), "error": _crash_error(rc, log_tail, limits)}


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def _progress(path: Path) -> list:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return []


def _crash_error(rc: int, log_tail: str, limits: Limits) -> dict:
    """The child ended without a result: classify from its exit status and last output."""
    lines = log_tail.strip().splitlines()[-30:]
    text = "\n".join(lines)
    sig = -rc if rc is not None and rc < 0 else None
    signame = signal.Signals(sig).name if sig and sig in signal.Signals._value2member_map_ else None
    if any(h in log_tail for h in ("MemoryError", "bad_alloc", "Cannot allocate memory",
                                   "out of memory")):
        kind, msg = "memory", (f"the candidate ran out of memory (limit {limits.memory_mb} MB "
                               "of address space)")
    elif sig == signal.SIGXCPU:
        kind, msg = "timeout", "the sandbox exceeded its CPU-time backstop"
    elif sig == getattr(signal, "SIGXFSZ", None):
        kind, msg = "crash", f"the sandbox wrote a file larger than {limits.file_mb} MB (runaway output?)"
    else:
        how = f"signal {signame or sig}" if sig else f"exit status {rc}"
        kind, msg = "crash", f"the sandbox process died ({how}) without a result"
    return {"kind": kind, "message": msg, "traceback": text or None}


def _run_pool(req: dict, executor: Executor, limits: Limits, out: Path | None) -> dict:
    """One job per seed on ``executor``; the wall-time limit covers all of them."""
    from glia_nb.evaluation.worker import run_seed_job

    if isinstance(executor, ThreadPoolExecutor):
        raise TypeError("a thread pool cannot contain a bad candidate (an endless loop or a "
                        "memory hog would take the session with it); use a process pool")
    req = dict(req)
    if req.get("policy_path"):
        path = req.pop("policy_path")
        req["policy_name"] = path  # error messages name the file
        try:
            req["policy_source"] = Path(path).read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            return {"error": {"kind": "import", "message": f"policy file {path} cannot be read "
                                                          f"as UTF-8 text: {exc}"}}
    deadline = time.monotonic() + limits.wall_s
    # Wall-clock deadline for the workers' own alarms (a job may start late in a busy pool).
    job_limits = dict(req["limits"], deadline_unix=time.time() + limits.wall_s)
    try:
        jobs = [(seed, executor.submit(run_seed_job, dict(req, seeds=[seed], out_dir=None,
                                                          limits=job_limits)))
                for seed in req["seeds"]]
    except Exception as exc:  # a pool broken earlier (a plain ProcessPoolExecutor stays so)
        return {"simulations": 0, "error": {"kind": "crash", "message": f"the executor refused "
                                            f"the job: {type(exc).__name__}: {exc}"}}
    per_seed, error, sims, isolation = [], None, 0, None
    for i, (seed, fut) in enumerate(jobs):
        try:
            # A little grace so the worker's own alarm can report first.
            res = fut.result(timeout=max(0.0, deadline - time.monotonic()) + 5.0)
        except FutureTimeout:
            res = {"simulations": 1, "error": {
                "kind": "timeout", "seed": seed,
                "message": f"seed {seed} exceeded the wall-time limit of {limits.wall_s:g} s"}}
        except Exception as exc:  # a dead worker process, a lost Dask worker, ...
            if type(exc).__name__ == "BrokenProcessPool" and hasattr(executor, "rebuild"):
                executor.rebuild()  # later experiments get a fresh pool
            res = {"simulations": 1, "error": {
                "kind": "crash", "seed": seed,
                "message": f"the worker running seed {seed} failed: {type(exc).__name__}: {exc}"}}
        sims += int(res.get("simulations", 0))
        isolation = res.get("isolation") or isolation
        per_seed.extend(res.get("per_seed") or [])
        if res.get("artifacts") and out is not None:
            for name, text in res["artifacts"].items():
                (out / name).write_text(text)
        if res.get("error"):
            error = res["error"]
            # Do not wait for the rest: the evaluation has failed.  Jobs already running
            # stop at their own alarm (process pools) or finish in the background.
            sims += sum(1 for _, f in jobs[i + 1:] if not f.cancel())
            break
    per_seed.sort(key=lambda s: req["seeds"].index(s.get("seed")) if s.get("seed") in req["seeds"] else 0)
    return {"per_seed": per_seed, "error": error, "simulations": sims, "isolation": isolation}


__all__ = ["evaluate", "EvalResult", "Limits", "aggregate", "ERROR_KINDS", "scrubbed_env",
           "write_result_files"]
