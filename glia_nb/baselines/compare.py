"""``glia compare``: every design method on the same evaluator and the same budget.

For each budget (e.g. 15 and 100 simulations) and each method, ``runs`` independent runs
(run ``r`` uses seed ``seed * 1000 + r``) search for a better router on the task. One
:class:`~glia_nb.baselines.common.SharedEvaluator` over one process pool evaluates every
candidate; each run has its own :class:`~glia_nb.baselines.common.RunLedger` counting
simulations, model calls and dollars. The fixed routers (RR, LLQ, LOR, HRA) are evaluated
once, outside any budget. Written to ``out``, per budget ``N``:

* ``table_bN.csv`` / ``table_bN.md`` and ``results_bN.json`` (every run and record, the
  best-so-far bands and what the figures need).

This module writes data only. The figures (``best_so_far_bN.png``, the paper's Fig. 7;
``best_score_bN.png``, Fig. 3; ``as_is_distribution_bN.png``, Fig. 2) are drawn from the
returned document by :func:`glia_nb.plots.baselines.draw_comparison`, which ``glia compare``
(:mod:`glia_nb.cli.compare`) calls.

Methods that need a model (``as-is``, ``funsearch``, ``eoh``, ``openevolve``) are reported
as ``unavailable`` when no model spec is given (``--model`` or ``$GLIA_MODEL``) or its key
is missing; Glia then runs with the offline researcher unless ``glia_researcher`` says
otherwise.
"""
from __future__ import annotations

import json
import os
import random
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from glia_nb.baselines import as_is, eoh, funsearch, openevolve_runner
from glia_nb.baselines.common import MethodContext, MethodRun, RunLedger, SharedEvaluator
from glia_nb.baselines.glia_methods import FIXED_ROUTERS, GLIA_MODES, run_fixed, run_glia
from glia_nb.baselines.methods import LLM_METHODS, METHODS, parse_budgets, parse_methods
from glia_nb.baselines.openevolve_runner import MethodUnavailable
from glia_nb.baselines.prompts import starting_program
from glia_nb.evaluation.executors import dask_address, open_executor
from glia_nb.baselines.results import (curve_band, fixed_row, summary_row, usable,
                                       write_table)
from glia_nb.llm import make_client
from glia_nb.progress import fmt
from glia_nb.runs import runs_dir
from glia_nb.tasks import get_task

def _method_fn(method: str):
    return {"as-is": as_is.run, "funsearch": funsearch.run, "eoh": eoh.run,
            "openevolve": openevolve_runner.run}[method]


def _model_problem(model: str | None) -> str | None:
    """Why ``model`` cannot be used (None when a client can be built)."""
    if not model:
        return "no model: pass --model SPEC or set GLIA_MODEL (these methods need an LLM)"

    try:
        client = make_client(model)
    except (ValueError, ImportError) as exc:
        return f"model {model!r} cannot be used: {exc}"
    close = getattr(client, "close", None)
    if callable(close):
        close()
    return None


def _run_llm_method(method, task, evaluator, baseline, baseline_code, budget, run, seed, *,
                    model, budget_usd, run_dir, params, progress, max_tokens=None):
    run_dir.mkdir(parents=True, exist_ok=True)
    ledger = RunLedger(budget, max_usd=budget_usd, objective=task.objective,
                       log_path=run_dir / "records.jsonl")
    ledger.seed_cache(baseline)
    mr = MethodRun(method=method, run=run, seed=seed, budget_sims=budget,
                   baseline_score=baseline.score)
    t0 = time.monotonic()
    client = make_client(model, ledger=ledger.usage)
    client.max_output_tokens = max_tokens  # a cap on every reply (None: the model's own)
    ctx = MethodContext(task=task, evaluator=evaluator, ledger=ledger, client=client,
                        rng=random.Random(seed), seed=seed, baseline=baseline,
                        baseline_code=baseline_code, out_dir=run_dir, model_spec=model,
                        progress=progress, params=dict(params))
    try:
        mr.extra = _method_fn(method)(ctx, **params) or {}
        mr.reason = ledger.exhausted() or "method finished"
    except MethodUnavailable as exc:
        mr.status, mr.reason = "unavailable", str(exc)
    except Exception as exc:  # a broken method must not sink the comparison
        mr.status, mr.reason = "error", f"{type(exc).__name__}: {exc}"
        mr.extra = {"traceback": traceback.format_exc()[-3000:]}
    finally:
        close = getattr(client, "close", None)
        if callable(close):
            close()
    best = ledger.best()
    mr.sims_used, mr.llm_calls, mr.usd = ledger.sims_used, ledger.llm_calls, ledger.usd
    mr.wall_s = round(time.monotonic() - t0, 3)
    mr.records = [r.to_dict() for r in ledger.records]
    mr.best_score = best.score if best else None
    mr.best_code_path = best.code_path if best else None
    if mr.sims_used > budget:  # impossible by construction (claims); fail loudly if not
        raise AssertionError(f"{method} used {mr.sims_used} simulations of {budget}")
    return mr


def _write_budget(out: Path, budget: int, task, rows, runs_by_method, fixed, baseline) -> dict:
    """Write one budget's tables and ``results_bN.json``; the figures are drawn from the
    returned document by :func:`glia_nb.plots.baselines.draw_comparison`."""
    obj = task.objective
    bands = {}
    for m, runs in runs_by_method.items():
        live = [r for r in runs if usable(r)]
        if live:
            bands[m] = curve_band([r.curve(obj) for r in live],
                                  length=max(r.sims_used for r in live))
    csv_p, md_p = write_table(rows, out / f"table_b{budget}.csv", out / f"table_b{budget}.md")
    files = {"table_csv": str(csv_p), "table_md": str(md_p)}
    as_is_runs = [r for r in runs_by_method.get("as-is", []) if usable(r)]
    as_is_scores = [s for r in as_is_runs
                    for s in (r.extra.get("distribution") or {}).get("scores", [])] if as_is_runs else None
    figure = {"task": task.name, "metric": obj.name, "unit": obj.unit,
              "direction": obj.direction, "baseline_score": baseline.score,
              "fixed_scores": {f["method"]: f["score"] for f in fixed} or
              {"start (LLQ)": baseline.score}, "as_is_scores": as_is_scores}
    doc = {"budget_sims": budget, "rows": rows, "bands": bands, "files": files, "figure": figure,
           "runs": {m: [r.to_dict() for r in runs] for m, runs in runs_by_method.items()}}
    path = out / f"results_b{budget}.json"
    path.write_text(json.dumps(doc, indent=1, default=str))
    files["results"] = str(path)
    return doc


def run_compare(task="routing-a10", methods=METHODS, budgets=(15,), runs: int = 3,
                model: str | None = None, out=None, *, glia_researcher: str | None = None,
                budget_usd: float | None = None, workers: int = 2, seed: int = 0,
                executor=None, limits=None, method_params: dict | None = None, dask: str | None = None,
                progress=None, max_tokens: int | None = None) -> dict:
    """Run the comparison and write its tables; returns a JSON-native summary (draw its
    figures with :func:`glia_nb.plots.baselines.draw_comparison`). ``max_tokens`` caps every
    reply of the search baselines' model (small local models ramble).

    ``task``: a Task or a registered name. ``model``: the LLM spec for the search baselines
    (default ``$GLIA_MODEL``). ``glia_researcher``: the Glia researcher (default: ``model``
    when it can be used, else ``"offline"``). ``budget_usd``: dollar cap per run (default:
    the task budget's; MCG-Par4 splits it between its contexts, MCG-Seq's contexts share
    it). ``executor``: a process pool to share (default: a Dask cluster when ``dask`` or
    ``$GLIA_DASK`` names a scheduler, else ``workers`` local processes).
    ``method_params``: keyword arguments per method, e.g. ``{"funsearch": {"k": 3}}``."""
    task = get_task(task) if isinstance(task, str) else task
    if getattr(task, "layer", "router") != "router":
        raise ValueError(f"glia compare designs routers; task {task.name!r} is a "
                         f"{task.layer} task")
    methods, budgets = parse_methods(methods), parse_budgets(budgets)
    if runs < 1:
        raise ValueError("runs must be >= 1")
    model = model or os.environ.get("GLIA_MODEL") or None
    problem = _model_problem(model) if any(m in LLM_METHODS for m in methods) or \
        (model and not glia_researcher) else None
    researcher = glia_researcher or (model if model and not problem else "offline")
    if budget_usd is None:  # one dollar cap for every method: the task's default
        budget_usd = task.budget.max_usd
    out = Path(out or runs_dir() / f"compare-{task.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda text: None)
    owned = ExitStack()  # what this run opened, closed at the end
    if executor is None:
        address = dask_address(dask)
        if address:
            executor = owned.enter_context(open_executor(dask=address))
        else:
            executor = ProcessPoolExecutor(workers)
            owned.callback(executor.shutdown, wait=True, cancel_futures=True)
    t0 = time.monotonic()
    try:
        evaluator = SharedEvaluator(task, out, executor=executor, limits=limits)
        code = starting_program(task)
        baseline = evaluator.evaluate_free(code, "start-llq")
        say(f"starting program (LLQ): {fmt(baseline.score)}")
        fixed = []
        if "baselines" in methods:
            for name, spec in FIXED_ROUTERS.items():
                fixed.append(run_fixed(evaluator, name, spec))
                say(f"fixed router {name}: {fmt(fixed[-1]['score'])}")
        per_budget, partial = {}, None
        budget, runs_by_method = None, {}
        try:
            for budget in budgets:
                runs_by_method = {}
                for method in [m for m in methods if m != "baselines"]:
                    runs_by_method[method] = []
                    for r in range(runs):
                        rseed = seed * 1000 + r
                        run_dir = out / f"b{budget}" / method / f"run{r}"
                        tell = (lambda text, m=method, r=r: say(f"[b{budget} {m} run {r}] {text}"))
                        if method in GLIA_MODES:
                            try:
                                mr = run_glia(method, task, run_dir, researcher, budget,
                                              executor=executor, seed=rseed, run=r,
                                              baseline_score=baseline.score, budget_usd=budget_usd,
                                              progress=tell)
                            except Exception as exc:  # a broken run must not sink the comparison
                                mr = MethodRun(method=method, run=r, seed=rseed, budget_sims=budget,
                                               status="error", reason=f"{type(exc).__name__}: {exc}",
                                               baseline_score=baseline.score,
                                               extra={"traceback": traceback.format_exc()[-3000:]})
                        elif problem:
                            mr = MethodRun(method=method, run=r, seed=rseed, budget_sims=budget,
                                           status="unavailable", reason=problem,
                                           baseline_score=baseline.score)
                        else:
                            mr = _run_llm_method(method, task, evaluator, baseline, code, budget, r,
                                                 rseed, model=model, budget_usd=budget_usd,
                                                 run_dir=run_dir,
                                                 params=(method_params or {}).get(method, {}),
                                                 progress=tell, max_tokens=max_tokens)
                        runs_by_method[method].append(mr)  # kept before it is announced
                        say(f"[b{budget} {method} run {r}] {mr.status}: {mr.sims_used} simulations, "
                            f"best {fmt(mr.curve(task.objective)[-1])}")
                rows = [summary_row(m, rs, budget, baseline, task.objective)
                        for m, rs in runs_by_method.items()] + \
                    [fixed_row(f, baseline, task.objective) for f in fixed]
                per_budget[str(budget)] = _write_budget(out, budget, task, rows, runs_by_method,
                                                        fixed, baseline)
        except KeyboardInterrupt:
            # Stopped (Ctrl-C, or SIGTERM through the command): what finished is kept, as a
            # partial table of the budget that was running.
            done = {m: rs for m, rs in runs_by_method.items() if rs}
            if budget is not None and str(budget) not in per_budget and (done or fixed):
                rows = [summary_row(m, rs, budget, baseline, task.objective) for m, rs in done.items()] + \
                    [fixed_row(f, baseline, task.objective) for f in fixed]
                per_budget[str(budget)] = _write_budget(out, budget, task, rows, done, fixed, baseline)
                partial = str(budget)
            say(f"stopped: {'a partial table of budget ' + partial if partial else 'no table'} "
                f"in {out}")
            stopped = True
        else:
            stopped = False
    finally:
        owned.close()
    return {"task": task.name, "methods": methods, "budgets": budgets, "runs": runs,
            "model": model, "glia_researcher": str(researcher), "out": str(out),
            "budget_usd_per_run": budget_usd,
            "eval_seeds": list(task.seeds), "duration_s": task.duration_s,
            "baseline": baseline.to_dict(), "fixed": fixed, "unavailable_reason": problem,
            "wall_s": round(time.monotonic() - t0, 1), "stopped": stopped, "partial_budget": partial,
            "results": {b: {"rows": d["rows"], "files": d["files"], "bands": d["bands"],
                             "figure": d["figure"]} for b, d in per_budget.items()}}


__all__ = ["run_compare", "parse_methods", "parse_budgets", "METHODS", "LLM_METHODS"]
