"""``glia compare``: every design method on the same evaluator and the same budget.

For each budget (e.g. 15 and 100 simulations) and each method, ``runs`` independent runs
(run ``r`` uses seed ``seed * 1000 + r``) search for a better router on the task. One
:class:`~glia_nb.baselines.common.SharedEvaluator` over one process pool evaluates every
candidate; each run has its own :class:`~glia_nb.baselines.common.RunLedger` counting
simulations, model calls and dollars. The fixed routers (RR, LLQ, LOR, HRA) are evaluated
once, outside any budget. Written to ``out``, per budget ``N``:

* ``best_so_far_bN.png``: best score against simulations, mean over runs with a 90%
  bootstrap band (the paper's Fig. 7);
* ``best_score_bN.png``: the best score per method (mean over runs) with its 90% CI — over
  runs when there are two or more, else over the seeds of the run's best program (Fig. 3);
* ``table_bN.csv`` / ``table_bN.md``, ``results_bN.json`` (every run and record), and
  ``as_is_distribution_bN.png`` when LLM-as-is ran (Fig. 2).

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
from pathlib import Path

from glia_nb.progress import fmt

METHODS = ("as-is", "funsearch", "eoh", "openevolve", "glia-scg", "glia-par4", "glia-seq",
           "baselines")
LLM_METHODS = ("as-is", "funsearch", "eoh", "openevolve")
KINDS = {"as-is": "llm-search", "funsearch": "llm-search", "eoh": "llm-search",
         "openevolve": "llm-search", "glia-scg": "glia", "glia-par4": "glia", "glia-seq": "glia"}


def parse_methods(text) -> list[str]:
    """``"as-is,eoh"`` or a list → validated method names (``all`` = every method)."""
    items = text.split(",") if isinstance(text, str) else list(text)
    items = [m.strip().lower() for m in items if m and m.strip()]
    if not items or items == ["all"]:
        return list(METHODS)
    unknown = [m for m in items if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; known: {', '.join(METHODS)}")
    return list(dict.fromkeys(items))


def parse_budgets(text) -> list[int]:
    """``"15,100"``, ``15`` or a list → budgets (each >= 1)."""
    items = str(text).split(",") if isinstance(text, (str, int)) else list(text)
    out = [int(str(b).strip()) for b in items if str(b).strip()]
    if not out or any(b < 1 for b in out):
        raise ValueError(f"budgets must be integers >= 1, got {text!r}")
    return out


def _method_fn(method: str):
    from glia_nb.baselines import as_is, eoh, funsearch, openevolve_runner

    return {"as-is": as_is.run, "funsearch": funsearch.run, "eoh": eoh.run,
            "openevolve": openevolve_runner.run}[method]


def _model_problem(model: str | None) -> str | None:
    """Why ``model`` cannot be used (None when a client can be built)."""
    if not model:
        return "no model: pass --model SPEC or set GLIA_MODEL (these methods need an LLM)"
    from glia_nb.llm import make_client

    try:
        client = make_client(model)
    except (ValueError, ImportError) as exc:
        return f"model {model!r} cannot be used: {exc}"
    close = getattr(client, "close", None)
    if callable(close):
        close()
    return None


def _run_llm_method(method, task, evaluator, baseline, baseline_code, budget, run, seed, *,
                    model, budget_usd, run_dir, params, progress):
    from glia_nb.baselines.common import MethodContext, MethodRun, RunLedger
    from glia_nb.baselines.openevolve_runner import MethodUnavailable
    from glia_nb.llm import make_client

    run_dir.mkdir(parents=True, exist_ok=True)
    ledger = RunLedger(budget, max_usd=budget_usd, direction=task.objective.direction,
                       log_path=run_dir / "records.jsonl")
    ledger.seed_cache(baseline)
    mr = MethodRun(method=method, run=run, seed=seed, budget_sims=budget,
                   baseline_score=baseline.score)
    t0 = time.monotonic()
    client = make_client(model, ledger=ledger.usage)
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


def _usable(run) -> bool:
    """A run that searched: not unavailable, and not an error before its first simulation."""
    return run.status != "unavailable" and not (run.status == "error" and run.sims_used == 0)


def _summary_row(method: str, runs: list, budget: int, baseline, direction: str) -> dict:
    from sim_core.results import bootstrap_ci

    live = [r for r in runs if _usable(r)]
    row = {"method": method, "kind": KINDS.get(method, "?"), "runs": len(live),
           "budget_sims": budget}
    if not live:
        failed = [r for r in runs if r.status == "error"]
        row.update(status="error" if failed else "unavailable",
                   reason=(failed or runs)[0].reason if runs else "")
        return row
    finals = [r.curve(direction)[-1] for r in live]
    finals = [f for f in finals if f == f]
    errs = [r for r in live if r.status == "error"]
    row["status"] = "error" if len(errs) == len(live) else "ok"
    row["reason"] = "; ".join(sorted({r.reason for r in live if r.reason}))[:300]
    counted = [rec for r in live for rec in r.records if rec.get("counted")]
    row["sims_used_mean"] = sum(r.sims_used for r in live) / len(live)
    row["sims_used_max"] = max(r.sims_used for r in live)
    row["valid_fraction"] = (sum(1 for c in counted if c.get("ok")) / len(counted)) if counted else None
    row["llm_calls_mean"] = sum(r.llm_calls for r in live) / len(live)
    row["usd_mean"] = sum(r.usd for r in live) / len(live)
    row["wall_s_mean"] = sum(r.wall_s for r in live) / len(live)
    if finals:
        row["best_score_mean"] = sum(finals) / len(finals)
        row["best_score_min"] = min(finals) if direction == "min" else max(finals)
        if len(finals) >= 2:
            row["ci_low"], row["ci_high"] = bootstrap_ci(finals)
        else:
            ci = _best_record_ci(live[0], baseline, finals[0])
            row["ci_low"], row["ci_high"] = ci if ci else (None, None)
        if baseline.score:
            row["vs_baseline"] = (baseline.score / row["best_score_mean"] if direction == "min"
                                  else row["best_score_mean"] / baseline.score)
    return row


def _best_record_ci(run, baseline, final):
    for rec in run.records:
        if rec.get("counted") and rec.get("ok") and rec.get("score") == final:
            return rec.get("ci")
    return baseline.ci if baseline.score == final else None


def _fixed_row(f: dict, baseline) -> dict:
    ci = f.get("ci") or (None, None)
    return {"method": f["method"], "kind": "fixed", "status": "ok" if f["ok"] else "error",
            "runs": None, "best_score_mean": f["score"], "best_score_min": f["score"],
            "ci_low": ci[0], "ci_high": ci[1], "reason": f.get("error") or "",
            "vs_baseline": (baseline.score / f["score"]) if f["score"] and baseline.score else None}


def _write_budget(out: Path, budget: int, task, rows, runs_by_method, fixed, baseline) -> dict:
    from glia_nb.plots import baselines as figures

    obj = task.objective
    ylabel = f"best {obj.name} ({obj.unit}; {'lower' if obj.direction == 'min' else 'higher'} is better)"
    bands = {}
    for m, runs in runs_by_method.items():
        live = [r for r in runs if _usable(r)]
        if live:
            bands[m] = figures.curve_band([r.curve(obj.direction) for r in live],
                                          length=max(r.sims_used for r in live))
    fixed_scores = {f["method"]: f["score"] for f in fixed} or {"start (LLQ)": baseline.score}
    files = {
        "curves": str(figures.plot_curves(bands, fixed_scores, out / f"best_so_far_b{budget}.png",
                                          title=f"{task.name}: best so far, budget {budget} "
                                                f"simulations (90% bootstrap band over runs)",
                                          ylabel=ylabel)),
        "bars": str(figures.plot_bars(rows, out / f"best_score_b{budget}.png",
                                      title=f"{task.name}: best design per method, budget "
                                            f"{budget} (90% CI)", ylabel=ylabel)),
    }
    csv_p, md_p = figures.write_table(rows, out / f"table_b{budget}.csv", out / f"table_b{budget}.md")
    files.update(table_csv=str(csv_p), table_md=str(md_p))
    as_is_runs = [r for r in runs_by_method.get("as-is", []) if _usable(r)]
    if as_is_runs:
        scores = [s for r in as_is_runs for s in (r.extra.get("distribution") or {}).get("scores", [])]
        files["as_is_distribution"] = str(figures.plot_distribution(
            scores, baseline.score, out / f"as_is_distribution_b{budget}.png",
            title=f"LLM as-is: {len(scores)} scored samples", xlabel=f"{obj.name} ({obj.unit})"))
    doc = {"budget_sims": budget, "rows": rows, "bands": bands, "files": files,
           "runs": {m: [r.to_dict() for r in runs] for m, runs in runs_by_method.items()}}
    path = out / f"results_b{budget}.json"
    path.write_text(json.dumps(doc, indent=1, default=str))
    files["results"] = str(path)
    return doc


def run_compare(task="routing-a10", methods=METHODS, budgets=(15,), runs: int = 3,
                model: str | None = None, out=None, *, glia_researcher: str | None = None,
                budget_usd: float | None = None, workers: int = 2, seed: int = 0,
                executor=None, limits=None, method_params: dict | None = None,
                progress=None) -> dict:
    """Run the comparison and write its figures and tables; returns a JSON-native summary.

    ``task``: a Task or a registered name. ``model``: the LLM spec for the search baselines
    (default ``$GLIA_MODEL``). ``glia_researcher``: the Glia researcher (default: ``model``
    when it can be used, else ``"offline"``). ``budget_usd``: dollar cap per run (default:
    the task budget's; MCG-Par4 splits it between its contexts, MCG-Seq's contexts share
    it). ``executor``: a process pool to share (default: ``workers`` processes).
    ``method_params``: keyword arguments per method, e.g. ``{"funsearch": {"k": 3}}``."""
    from concurrent.futures import ProcessPoolExecutor

    from glia_nb.baselines.common import MethodRun, SharedEvaluator
    from glia_nb.baselines.glia_methods import FIXED_ROUTERS, GLIA_MODES, run_fixed, run_glia
    from glia_nb.baselines.prompts import starting_program
    from glia_nb.tasks import get_task

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
        from glia_nb.tasks.budget import Budget

        budget_usd = Budget.coerce(task.budget).max_usd
    from glia_nb.runs import runs_dir

    out = Path(out or runs_dir() / f"compare-{task.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda text: None)
    own_pool = executor is None
    executor = executor or ProcessPoolExecutor(workers)
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
        per_budget = {}
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
                                             progress=tell)
                    say(f"[b{budget} {method} run {r}] {mr.status}: {mr.sims_used} simulations, "
                        f"best {fmt(mr.curve(task.objective.direction)[-1])}")
                    runs_by_method[method].append(mr)
            rows = [_summary_row(m, rs, budget, baseline, task.objective.direction)
                    for m, rs in runs_by_method.items()] + [_fixed_row(f, baseline) for f in fixed]
            per_budget[str(budget)] = _write_budget(out, budget, task, rows, runs_by_method,
                                                    fixed, baseline)
    finally:
        if own_pool:
            executor.shutdown(wait=True, cancel_futures=True)
    return {"task": task.name, "methods": methods, "budgets": budgets, "runs": runs,
            "model": model, "glia_researcher": str(researcher), "out": str(out),
            "budget_usd_per_run": budget_usd,
            "eval_seeds": list(task.seeds), "duration_s": task.duration_s,
            "baseline": baseline.to_dict(), "fixed": fixed, "unavailable_reason": problem,
            "wall_s": round(time.monotonic() - t0, 1),
            "results": {b: {"rows": d["rows"], "files": d["files"]} for b, d in per_budget.items()}}


# ---------------------------------------------------------------------- CLI
def register_compare(sub) -> None:
    """Add ``glia compare`` to the ``glia`` parser."""
    c = sub.add_parser("compare", help="compare design methods (LLM as-is, FunSearch, EoH, "
                       "OpenEvolve, Glia, fixed routers) on the same evaluator and budget")
    c.add_argument("task", nargs="?", default="routing-a10")
    c.add_argument("--methods", default="all", help=f"comma list of {','.join(METHODS)} (default all)")
    c.add_argument("--budget-sims", default="15",
                   help="simulations per run (one = a benchmark run over the eval seeds); "
                        "several as 15,100")
    c.add_argument("--runs", type=int, default=3, help="independent runs per method (default 3)")
    c.add_argument("--model", help="LLM for the search baselines: anthropic:MODEL, openai:MODEL "
                   "or openai-compatible:URL:MODEL (default $GLIA_MODEL)")
    c.add_argument("--glia-researcher", help="Glia's researcher (default: --model, else offline)")
    c.add_argument("--budget-usd", type=float, help="dollar cap per run")
    c.add_argument("--workers", type=int, default=2, help="processes for simulations")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", help="output folder (default $GLIA_RUNS or glia_runs/ at the repository root, "
                   "then compare-<task>-<time>)")
    c.add_argument("--duration", type=float, help="shorter traces, in simulated seconds "
                   "(quick checks and tests; results are not comparable to full runs)")
    c.add_argument("--eval-seeds", type=int, help="evaluate over the scenario's first N seeds")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.set_defaults(func=cmd_compare)


def cmd_compare(args) -> int:
    """``glia compare``: run, then print the table and where the files are."""
    from glia_nb.tasks import get_task

    task = get_task(args.task)
    changes = {}
    if args.duration is not None:
        if not args.duration > 0:
            raise ValueError("--duration must be > 0 seconds")
        changes["duration_s"] = args.duration
    if args.eval_seeds is not None:
        if args.eval_seeds < 1:
            raise ValueError("--eval-seeds must be >= 1")
        changes["num_eval_seeds"] = args.eval_seeds
    task = task.replace(**changes) if changes else task
    from glia_nb.progress import note

    # Progress lines on stderr whatever stdout is: a comparison takes minutes.
    doc = run_compare(task, parse_methods(args.methods), parse_budgets(args.budget_sims),
                      args.runs, args.model, args.out, glia_researcher=args.glia_researcher,
                      budget_usd=args.budget_usd, workers=args.workers, seed=args.seed,
                      progress=lambda t: note("  " + t))
    if args.json:
        print(json.dumps(doc, default=str))
        return 0
    print(f"task {doc['task']}  seeds {doc['eval_seeds']}  runs {doc['runs']}  "
          f"model {doc['model'] or '-'}  Glia researcher {doc['glia_researcher']}")
    if doc["unavailable_reason"]:
        print(f"note: {doc['unavailable_reason']}")
    for b, res in doc["results"].items():
        print(f"\nbudget {b} simulations")
        print(Path(res["files"]["table_md"]).read_text().rstrip())
        for k, v in res["files"].items():
            print(f"  {k}: {v}")
    return 0


__all__ = ["run_compare", "register_compare", "cmd_compare", "parse_methods", "parse_budgets",
           "METHODS", "LLM_METHODS"]
