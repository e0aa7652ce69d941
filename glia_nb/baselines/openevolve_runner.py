"""OpenEvolve (the real ``openevolve`` package from PyPI) on the shared evaluator and budget.

The paper's settings (Table 1): the initial program is the LLQ router (the task's starting
policy, wrapped in OpenEvolve's ``EVOLVE-BLOCK`` markers), exploration ratio 0.6 and
exploitation ratio 0.4; everything else is OpenEvolve's default (5 islands, diff-based
evolution, its own prompt templates), with our problem statement as the system message.

How it is driven: OpenEvolve calls ``asyncio.run`` and ``signal.signal`` (main thread only)
and configures the root logger, so it runs in a child process
(:mod:`glia_nb.baselines.openevolve_worker`), never in the caller's thread or event loop. The
child's model calls and evaluations come back to this process over an authenticated
AF_UNIX connection and are served by the run's :class:`~glia_nb.baselines.common.
MethodContext`: the same model client, evaluator and ledger as every other method, so
simulations and dollars are counted identically, repeats and the starting program cost
nothing, and the budget is enforced here (an evaluation beyond it is refused, and the child
is told to shut down gracefully). When ``openevolve`` is not installed the method raises
:class:`MethodUnavailable` with the reason instead of running.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from glia_nb.baselines.common import MethodContext
from glia_nb.baselines.prompts import problem_statement
from glia_nb.evaluation.harness import scrubbed_env
from glia_nb.tasks.objective import Objective

NAME = "openevolve"
MIN_VERSION = (0, 2, 13)  # the first release with the init_client model hook; tested on 0.4.0


class MethodUnavailable(RuntimeError):
    """The method cannot run here (a missing package, no model); the message says why."""


def openevolve_status() -> tuple[bool, str]:
    """``(True, version)`` when ``openevolve`` can be used, else ``(False, reason)``."""
    if importlib.util.find_spec("openevolve") is None:
        return False, ("the openevolve package is not installed "
                       "(pip install 'glia-nb[openevolve]')")
    try:
        from importlib.metadata import version

        v = version("openevolve")
    except Exception:  # noqa: BLE001 - a broken install reads as unavailable
        v = "?"
    nums = tuple(int(x) for x in re.findall(r"\d+", v)[:3]) or MIN_VERSION
    if nums < MIN_VERSION:
        return False, f"openevolve {v} is too old; need >= {'.'.join(map(str, MIN_VERSION))}"
    return True, v


def initial_program(code: str) -> str:
    """``code`` with the router class inside OpenEvolve's EVOLVE-BLOCK markers."""
    lines = code.rstrip("\n").splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("class ")), 0)
    return "\n".join(lines[:start] + ["# EVOLVE-BLOCK-START"] + lines[start:]
                     + ["# EVOLVE-BLOCK-END"]) + "\n"


def fitness(score: float | None, start: float | None, objective: Objective) -> float:
    """OpenEvolve's ``combined_score`` (higher is better): how many times better than the
    starting program ``score`` is (:meth:`Objective.ratio`; 0 when it has no ratio)."""
    ref = start if start and start == start and 0 < start < float("inf") else 1.0
    return objective.ratio(score, ref) or 0.0


class _Server:
    """Answers the child's requests (model calls, evaluations, status) on a local socket."""

    def __init__(self, ctx: MethodContext, address: str, authkey: bytes):
        from multiprocessing.connection import Listener

        self.ctx = ctx
        self.listener = Listener(address, family="AF_UNIX", authkey=authkey)
        self._authkey = authkey
        self.closed = threading.Event()
        self.threads: list[threading.Thread] = []
        self.evals = 0
        self.llm = 0
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept, name="openevolve-rpc", daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                conn = self.listener.accept()
            except (OSError, EOFError):
                if self.closed.is_set():
                    return
                continue
            except Exception:  # noqa: BLE001 - a bad handshake must not stop the server
                continue
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self.threads = [x for x in self.threads if x.is_alive()] + [t]

    def _serve(self, conn) -> None:
        with conn:
            try:
                req = conn.recv()
                conn.send(self.handle(req))
            except (OSError, EOFError):
                pass

    def handle(self, req: dict) -> dict:
        """One request: ``llm``, ``eval`` or ``status``."""
        ctx, op = self.ctx, req.get("op")
        if op == "status":
            reason = ctx.ledger.exhausted()
            return {"stop": reason is not None, "reason": reason}
        if op == "llm":
            with self._lock:
                self.llm += 1
            text = ctx.ask(req.get("system") or "", req.get("user") or "")
            if text is None:
                return {"error": f"no model call made ({ctx.ledger.exhausted() or 'call failed'})"}
            return {"text": text}
        if op == "eval":
            with self._lock:
                self.evals += 1
                n = self.evals
            rec = ctx.evaluate(req.get("code"), f"oe-{n}", meta={"openevolve_eval": n})
            if rec is None:
                return {"fitness": 0.0, "error": "simulation budget spent; not evaluated"}
            task = ctx.task
            return {"fitness": fitness(rec.score if rec.ok else None, ctx.baseline.score,
                                       task.objective),
                    "score": rec.score if rec.ok else None, "metric": task.objective.name,
                    "error": None if rec.ok else f"{rec.error_kind}: {rec.error}"}
        return {"error": f"unknown request {op!r}"}

    def close(self) -> None:
        """Stop accepting (a last local connection wakes the blocked ``accept``)."""
        from multiprocessing.connection import Client

        self.closed.set()
        try:
            Client(self.listener.address, family="AF_UNIX", authkey=self._authkey).close()
        except (OSError, EOFError):
            pass
        try:
            self.listener.close()
        except OSError:
            pass
        self.thread.join(timeout=5)


def run(ctx: MethodContext, *, num_islands: int = 5, exploration: float = 0.6,
        exploitation: float = 0.4, diff_based: bool = True, parallel: int = 1,
        population_size: int | None = None, timeout_s: float | None = None,
        grace_s: float = 120.0) -> dict:
    """Run OpenEvolve in a child process until the run's budget is spent."""
    ok, info = openevolve_status()
    if not ok:
        raise MethodUnavailable(info)
    run_dir = Path(ctx.out_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    sock_dir = Path(tempfile.mkdtemp(prefix="glia-oe-"))  # short path: AF_UNIX limit
    address, authkey = str(sock_dir / "rpc"), secrets.token_bytes(16)
    server = _Server(ctx, address, authkey)
    limits = ctx.evaluator.limits
    req = {"address": address, "authkey": authkey.hex(), "seed": ctx.seed,
           "iterations": ctx.ledger.max_llm_calls, "initial_program": initial_program(ctx.baseline_code),
           "system_message": problem_statement(ctx.task), "num_islands": num_islands,
           "exploration": exploration, "exploitation": exploitation, "diff_based": diff_based,
           "parallel": parallel, "population_size": population_size,
           "eval_timeout_s": int(limits.wall_s + 600), "model_name": ctx.model_spec or "glia-rpc"}
    (run_dir / "openevolve_request.json").write_text(json.dumps(req, indent=1))
    env = scrubbed_env({"PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parents[2])]
        + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
        "PYTHONUNBUFFERED": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})
    t0, stopped_at, rc, killed = time.monotonic(), None, None, None
    try:
        with open(run_dir / "openevolve.log", "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "glia_nb.baselines.openevolve_worker",
                                     str(run_dir / "openevolve_request.json")],
                                    cwd=str(run_dir), stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, env=env, start_new_session=True)
            while True:
                try:
                    rc = proc.wait(timeout=0.5)
                    break
                except subprocess.TimeoutExpired:
                    pass
                now = time.monotonic()
                if ctx.ledger.exhausted() and stopped_at is None:
                    stopped_at = now
                if stopped_at is not None and now - stopped_at > grace_s:
                    killed = f"did not stop within {grace_s:g} s of the budget running out"
                elif timeout_s is not None and now - t0 > timeout_s:
                    killed = f"exceeded its time limit of {timeout_s:g} s"
                if killed:
                    _kill(proc)
                    rc = proc.returncode
                    break
    finally:
        server.close()
        shutil.rmtree(sock_dir, ignore_errors=True)
    result_file = run_dir / "openevolve_result.json"
    result = json.loads(result_file.read_text()) if result_file.exists() else {}
    extra = {"openevolve_version": info, "returncode": rc, "model_calls": server.llm,
             "evaluation_requests": server.evals, "programs_in_database": result.get("programs"),
             "best_metrics": result.get("best_metrics"), "log": str(run_dir / "openevolve.log")}
    if killed:
        extra["killed"] = killed
    if rc not in (0, None) and not killed and not ctx.ledger.records:
        tail = (run_dir / "openevolve.log").read_text(errors="replace")[-1500:]
        raise RuntimeError(f"openevolve exited with status {rc}: {tail.strip().splitlines()[-1:]}")
    return extra


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


__all__ = ["NAME", "run", "openevolve_status", "initial_program", "fitness", "MethodUnavailable"]
