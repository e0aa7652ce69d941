"""What every search baseline shares: one evaluator, one budget ledger, candidate extraction.

* :class:`SharedEvaluator` runs a candidate router over the task's evaluation seeds through
  :func:`glia_nb.evaluation.harness.evaluate` (a separate process with limits, or a job per seed on a
  shared process pool). It is the only way a method reaches the simulator.
* :class:`RunLedger` is the budget of one method run: *simulations* (one simulation = one
  evaluation of a candidate over the task's eval seeds, the unit of ``glia study
  --budget-sims``), model calls and dollars (a :class:`~glia_nb.llm.UsageLedger`). A
  simulation is claimed before the simulator runs, so no method can exceed the budget,
  whatever its control flow or concurrency.
* Identical code is simulated once per run (the simulator is deterministic): a repeat gets
  the earlier result for free. The starting LLQ program's score is given to every method
  for free, as a Glia session gets its baseline for free.
* :func:`extract_candidate` pulls the router class out of a model's reply;
  :func:`check_candidate` rejects code that cannot be a router (a syntax error, no class,
  no ``route``) before it costs a simulation.
"""
from __future__ import annotations

import ast
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from glia_nb.baselines.results import EvalRecord, MethodRun, best_so_far
from glia_nb.evaluation.harness import Limits, evaluate
from glia_nb.llm import Message, UsageLedger
from glia_nb.llm.retry import LLMError
from glia_nb.progress import fmt
from glia_nb.tasks.budget import Budget, BudgetTracker
from glia_nb.tasks.objective import Objective

__all__ = ["EvalRecord", "RunLedger", "SharedEvaluator", "MethodContext", "MethodRun",
           "extract_candidate", "extract_thought", "check_candidate", "best_so_far",
           "code_hash", "MAX_CONSECUTIVE_LLM_ERRORS"]

MAX_CONSECUTIVE_LLM_ERRORS = 5
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", re.S)


# ---------------------------------------------------------------------- candidates
def code_hash(code: str) -> str:
    """Hash of the code with trailing whitespace removed (the cache key)."""
    norm = "\n".join(line.rstrip() for line in code.strip().splitlines())
    return hashlib.sha256(norm.encode()).hexdigest()[:16]


def _router_classes(tree: ast.Module) -> list[str]:
    return [n.name for n in tree.body if isinstance(n, ast.ClassDef)
            and any(isinstance(m, ast.FunctionDef) and m.name == "route" for m in n.body)]


def check_candidate(code: str | None, class_name: str) -> str | None:
    """Why ``code`` cannot be evaluated as router ``class_name`` (None when it can)."""
    if not code or not code.strip():
        return "the reply contains no code"
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        return f"syntax error at line {exc.lineno}: {exc.msg}"
    names = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
    if class_name not in names and not any(
            isinstance(n, ast.Assign) and any(getattr(t, "id", None) == class_name for t in n.targets)
            for n in tree.body):
        return f"no class {class_name!r} at module level (classes: {', '.join(names) or 'none'})"
    if class_name in names and class_name not in _router_classes(tree):
        return f"class {class_name!r} has no route(view) method"
    return None


def extract_candidate(text: str | None, class_name: str) -> str | None:
    """The Python code defining router ``class_name`` in a model reply, or None.

    Prefers the last fenced block that defines the class; a block defining one other class
    with a ``route`` method is accepted with an alias line; an unfenced reply that parses
    as Python is taken whole."""
    if not text:
        return None
    blocks = [body for lang, body in _FENCE.findall(text) if lang.lower() in ("", "python", "py", "python3")]
    if not blocks and re.search(r"^\s*(import|from|class)\s", text, re.M):
        blocks = [text]
    for body in reversed(blocks):
        if check_candidate(body, class_name) is None:
            return body.strip() + "\n"
    for body in reversed(blocks):
        try:
            tree = ast.parse(body)
        except SyntaxError:
            continue
        others = _router_classes(tree)
        if len(others) == 1:
            return f"{body.strip()}\n\n\n{class_name} = {others[0]}\n"
    return blocks[-1].strip() + "\n" if blocks else None


def extract_thought(text: str | None) -> str:
    """The idea in a reply: the first ``{...}`` outside code, else the prose before the code."""
    if not text:
        return ""
    prose = _FENCE.sub("\n", text)
    m = re.search(r"\{([^{}]{3,2000})\}", prose, re.S)
    if m:
        return " ".join(m.group(1).split())
    head = text.split("```", 1)[0]
    return " ".join(head.split())[:600]


# ---------------------------------------------------------------------- ledger
class RunLedger:
    """Budget and records of one method run (thread-safe).

    ``max_sims`` counted simulations, claimed through a
    :class:`~glia_nb.tasks.budget.BudgetTracker` (the one simulation counter);
    ``max_usd`` model dollars (None: no limit);
    ``max_llm_calls`` model calls (default ``3 * max_sims + 10``, so a model that never
    produces a usable program cannot loop forever)."""

    def __init__(self, max_sims: int, *, max_usd: float | None = None,
                 max_llm_calls: int | None = None, usage=None,
                 objective: Objective | None = None,
                 log_path: Path | None = None) -> None:
        if max_sims < 0:
            raise ValueError("max_sims must be >= 0")
        self.max_sims = int(max_sims)
        self.max_usd = max_usd
        self.max_llm_calls = int(max_llm_calls if max_llm_calls is not None else 3 * max_sims + 10)
        self.usage = usage if usage is not None else UsageLedger()
        self.objective = objective or Objective()
        self.records: list[EvalRecord] = []
        self.llm_calls = 0
        self.llm_errors = 0
        self.llm_errors_in_a_row = 0
        self.tracker = BudgetTracker(Budget(max_simulations=int(max_sims), max_usd=max_usd))
        self._cache: dict[str, EvalRecord] = {}
        self._lock = threading.Lock()
        self._t0 = time.monotonic()
        self._log_path = log_path
        self.stop_reason: str | None = None

    # -- simulations ------------------------------------------------------------------
    @property
    def sims_used(self) -> int:
        return self.tracker.simulations

    @property
    def sims_left(self) -> int:
        return self.tracker.simulations_left()

    def claim(self) -> int | None:
        """Reserve the next simulation; its 1-based index, or None when the budget is spent."""
        return self.tracker.claim_simulation()

    # -- model calls ------------------------------------------------------------------
    @property
    def usd(self) -> float:
        return float(self.usage.cost_usd)

    def note_llm_call(self, ok: bool) -> None:
        """Count one model call (and whether it failed)."""
        with self._lock:
            self.llm_calls += 1
            if ok:
                self.llm_errors_in_a_row = 0
            else:
                self.llm_errors += 1
                self.llm_errors_in_a_row += 1

    def exhausted(self) -> str | None:
        """Why the run must stop (``simulations``, ``dollars``, ``llm_calls``,
        ``llm_errors``, or a reason set with :meth:`stop`), or None."""
        with self._lock:
            if self.stop_reason:
                return self.stop_reason
            if self.tracker.simulations_left() == 0:
                return "simulations"
            if self.llm_errors_in_a_row >= MAX_CONSECUTIVE_LLM_ERRORS:
                return "llm_errors"
            if self.llm_calls >= self.max_llm_calls:
                return "llm_calls"
        if self.max_usd is not None and self.usd >= self.max_usd:
            return "dollars"
        return None

    def stop(self, reason: str) -> None:
        """End the run early (e.g. a method that has nothing left to try)."""
        with self._lock:
            self.stop_reason = self.stop_reason or reason

    # -- records ----------------------------------------------------------------------
    def cached(self, h: str) -> EvalRecord | None:
        with self._lock:
            return self._cache.get(h)

    def add(self, rec: EvalRecord) -> EvalRecord:
        """Append a record (stamped with time and dollars so far) and log it."""
        rec.t_s = round(time.monotonic() - self._t0, 3)
        rec.usd = self.usd
        with self._lock:
            self.records.append(rec)
            if rec.counted and rec.code_hash:
                self._cache.setdefault(rec.code_hash, rec)
            if self._log_path is not None:
                with open(self._log_path, "a") as fh:
                    fh.write(json.dumps(rec.to_dict(), default=str) + "\n")
        return rec

    def seed_cache(self, rec: EvalRecord) -> None:
        """Make ``rec`` (e.g. the free baseline) known without counting or listing it."""
        with self._lock:
            self._cache[rec.code_hash] = rec

    def best(self) -> EvalRecord | None:
        """The best valid counted record."""
        with self._lock:
            ok = [r for r in self.records if r.counted and r.ok and r.score is not None]
        if not ok:
            return None
        return self.objective.best_of(ok, lambda r: r.score)


# ---------------------------------------------------------------------- evaluator
class SharedEvaluator:
    """Evaluates candidate code for every method of a comparison.

    ``executor``: a process pool shared by all methods (one job per seed), or None for one
    sandbox process per evaluation. Candidates are written to ``out_dir/<subdir>/`` (an
    absolute ``subdir`` is used as is)."""

    def __init__(self, task, out_dir, *, executor=None, limits=None) -> None:
        self.task = task
        self.out_dir = Path(out_dir)
        self.executor = executor
        self.limits = limits or Limits()

    def _run(self, policy) -> Any:
        return evaluate(policy, self.task, None, executor=self.executor, limits=self.limits,
                        write_artifacts=False)

    def _record(self, result, label: str, **kw) -> EvalRecord:
        from sim_core.results import bootstrap_ci

        name = self.task.objective.name
        per_seed = [float(s[name]) for s in (result.per_seed or []) if name in s]
        ci = list(bootstrap_ci(per_seed)) if result.ok and per_seed else None
        return EvalRecord(label=label, ok=bool(result.ok), score=result.score,
                          error_kind=result.error_kind,
                          error=(result.error or "").strip()[:2000] or None,
                          ci=ci, per_seed=per_seed,
                          wall_s=round(result.wall_s, 3), **kw)

    def evaluate_spec(self, spec: str, label: str | None = None) -> EvalRecord:
        """A built-in router spec (``"llq"``, ``"hra"``), free of any budget."""
        return self._record(self._run(spec), label or spec)

    def evaluate_free(self, code: str, label: str, subdir: str = "free") -> EvalRecord:
        """Evaluate ``code`` outside any budget (the starting program)."""
        path = self._write(code, subdir, f"{label}.py")
        rec = self._record(self._run(path), label, code_hash=code_hash(code), code_path=str(path))
        rec.counted = False
        return rec

    def evaluate(self, code: str | None, ledger: RunLedger, label: str, *,
                 subdir: str = "candidates", meta: dict | None = None) -> EvalRecord | None:
        """Evaluate ``code`` against ``ledger``'s budget.

        Returns the record (invalid code and repeats are recorded without counting), or
        None when the budget is spent (nothing is recorded then)."""
        meta = dict(meta or {})
        why = check_candidate(code, self.task.class_name)
        if why is not None:
            return ledger.add(EvalRecord(label=label, ok=False, score=None, error_kind="invalid",
                                         error=why, meta=meta))
        h = code_hash(code)
        prev = ledger.cached(h)
        if prev is not None:
            return ledger.add(EvalRecord(label=label, ok=prev.ok, score=prev.score, cached=True,
                                         error_kind=prev.error_kind, error=prev.error,
                                         code_hash=h, code_path=prev.code_path, ci=prev.ci,
                                         per_seed=list(prev.per_seed), meta=meta))
        sim = ledger.claim()
        if sim is None:
            return None
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", label)[:40] or "candidate"
        path = self._write(code, subdir, f"{sim:03d}_{safe}.py")
        rec = self._record(self._run(path), label, sim=sim, counted=True, code_hash=h,
                           code_path=str(path), meta=meta)
        return ledger.add(rec)

    def _write(self, code: str, subdir: str, name: str) -> Path:
        d = self.out_dir / subdir
        d.mkdir(parents=True, exist_ok=True)
        path = d / name
        path.write_text(code)
        return path


# ---------------------------------------------------------------------- method runs
@dataclass
class MethodContext:
    """What a method's ``run(ctx)`` receives: the task, the shared evaluator, its own
    ledger and model client, a seeded RNG, the free baseline record and its folder."""

    task: Any
    evaluator: SharedEvaluator
    ledger: RunLedger
    client: Any
    rng: Any
    seed: int
    baseline: EvalRecord
    baseline_code: str
    out_dir: Path
    model_spec: str | None = None
    progress: Callable[[str], None] | None = None
    params: dict = field(default_factory=dict)

    def say(self, text: str) -> None:
        """Report progress (one line) if anyone listens."""
        if self.progress:
            self.progress(text)

    def ask(self, system: str, user: str, *, max_tokens: int = 8192,
            temperature: float | None = None) -> str | None:
        """One model call counted in the ledger; None when it failed or no call is left."""
        if self.ledger.exhausted():
            return None
        try:
            completion = self.client.complete([Message.system(system), Message.user(user)],
                                              max_tokens=max_tokens, temperature=temperature)
        except (LLMError, ValueError, OSError) as exc:
            self.ledger.note_llm_call(False)
            self.say(f"model call failed: {type(exc).__name__}: {str(exc)[:200]}")
            return None
        if getattr(self.client, "ledger", None) is not self.ledger.usage:
            self.ledger.usage.record(completion)
        self.ledger.note_llm_call(True)
        return completion.message.content or ""

    def evaluate(self, code: str | None, label: str, meta: dict | None = None) -> EvalRecord | None:
        """Evaluate against this run's budget (see :meth:`SharedEvaluator.evaluate`)."""
        rec = self.evaluator.evaluate(code, self.ledger, label, meta=meta,
                                      subdir=str(Path(self.out_dir).resolve() / "candidates"))
        if rec is not None:
            what = f"score {fmt(rec.score)}" if rec.ok and rec.score is not None else \
                f"{rec.error_kind}: {(rec.error or '').splitlines()[0][:120] if rec.error else ''}"
            tag = f"sim {rec.sim}" if rec.counted else ("repeat" if rec.cached else "not run")
            self.say(f"{label}: {tag}, {what}")
        return rec
