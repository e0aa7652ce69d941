"""``glia study`` and ``glia report``: run a research session, summarise one from its journal."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path


def register(sub) -> None:
    """Add the research subcommands to the ``glia`` parser."""
    s = sub.add_parser("study", help="run a research session on a task and print the best "
                       "design's score against the baseline")
    s.add_argument("task", nargs="?", default="routing-a10")
    s.add_argument("--researcher", default="offline",
                   help="offline (rule-based, no key), anthropic:MODEL, openai:MODEL or "
                        "openai-compatible:URL:MODEL")
    s.add_argument("--budget-sims", type=int, default=None,
                   help="experiments allowed (each one benchmark run over the task's seeds)")
    s.add_argument("--budget-usd", type=float, default=None, help="dollar budget for LLM calls")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--parallel", type=int, metavar="N", help="MCG-ParN: N sessions at once")
    g.add_argument("--sequential", type=int, metavar="N", help="MCG-Seq: up to N sessions in turn")
    s.add_argument("--target", type=float, help="with --sequential: stop at this score")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--workers", type=int, default=2, help="processes for simulations")
    s.add_argument("--duration", type=float, help="override the task's traffic duration (s): quicker, noisier")
    s.add_argument("--out", help="where session folders go (default $GLIA_RUNS or glia_runs/ at the "
                   "repository root, then <task>-<time>)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument("--resume", metavar="DIR", help="go on with the session in DIR (its journal "
                   "keeps the Researcher, the Supervisor and every budget counter)")
    s.set_defaults(func=cmd_study)

    r = sub.add_parser("report", help="summarise a session from its journal")
    r.add_argument("dir", help="a session folder (holding journal.jsonl) or a study's folder "
                   "(every session below it is reported)")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_report)

    from glia_nb.baselines.compare import register_compare  # glia compare (search baselines)
    register_compare(sub)


def _budget(task, budget_sims, budget_usd):
    from glia_nb.tasks.budget import Budget

    b = Budget.coerce(task.budget)
    changes = {}
    if budget_sims is not None:
        if budget_sims < 1:
            raise ValueError("--budget-sims must be >= 1")
        changes["max_simulations"] = budget_sims * len(task.seeds)
    if budget_usd is not None:
        changes["max_usd"] = budget_usd
    from dataclasses import replace

    return replace(b, **changes) if changes else b


def run_study(task_name: str = "routing-a10", researcher: str = "offline", *, budget_sims=None,
              budget_usd=None, parallel=None, sequential=None, target=None, seed: int = 0,
              workers: int = 2, out=None, progress=None, task=None) -> dict:
    """Run a study (SCG, MCG-ParN or MCG-Seq) and return the ``glia study --json`` document."""
    from glia_nb.research.multi import ParallelGlia, SequentialGlia
    from glia_nb.tasks import get_task

    task = task or get_task(task_name)
    budget = _budget(task, budget_sims, budget_usd)
    from glia_nb.runs import runs_dir

    root = Path(out or runs_dir() / f"{task.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    kw = dict(budget=budget, max_workers=workers, seed=seed)
    if parallel:
        runner = ParallelGlia(parallel, task, root, researcher, **kw)
    else:
        runner = SequentialGlia(sequential or 1, task, root, researcher, target=target, **kw)
    result = runner.run(progress=progress)
    sessions = result.sessions
    best_s = result.best_session or sessions[0]
    base = best_s.baseline_score
    best = result.best_score
    cost = sum(float(s.budget_used.get("usd", 0.0) or 0.0) for s in sessions)
    n_exp = sum(len([e for e in s.experiments if e.get("id", 1) != 0]) for s in sessions)
    return {
        "task": task.name,
        "researcher": researcher,
        "mode": f"MCG-Par{parallel}" if parallel else (f"MCG-Seq{sequential}" if sequential else "SCG"),
        "baseline_score": base,
        "best_score": best,
        "improvement": _ratio(task, base, best),
        "best_experiment": (result.best or {}).get("name"),
        "num_experiments": n_exp,
        "session_dir": str(best_s.path),
        "cost_usd": cost,
    }


def _ratio(task, base, best):
    """How many times better the best score is than the baseline's (direction-aware; None
    when either is missing or not finite, e.g. a violated constraint)."""
    import math

    if not base or not best or not (math.isfinite(base) and math.isfinite(best)):
        return None
    return base / best if task.objective.direction == "min" else best / base


def _resume_study(args) -> dict:
    """``glia study --resume DIR``: one session, resumed from its journal and run on."""
    from glia_nb.research.session.session import Session

    s = Session.resume(args.resume)
    try:
        s.run()
    finally:
        s.journal.close()
    best = s.best or {}
    base = s.baseline_score
    task = s.task
    return {"task": getattr(task, "name", str(task)), "researcher": "journal",
            "mode": "SCG (resumed)", "baseline_score": base, "best_score": best.get("score"),
            "improvement": _ratio(task, base, best.get("score")),
            "best_experiment": best.get("name"),
            "num_experiments": len([e for e in s.experiments if e.get("id", 1) != 0]),
            "session_dir": str(s.path), "cost_usd": float(s.budget_used.get("usd", 0.0) or 0.0)}


def cmd_study(args) -> int:
    from glia_nb.progress import fmt, note, progress as bar
    from glia_nb.tasks import get_task

    if args.resume:
        doc = _resume_study(args)
        print(json.dumps(doc) if args.json else
              f"resumed {doc['session_dir']}: baseline {fmt(doc['baseline_score'])}, best "
              f"{fmt(doc['best_score'])} ({doc['best_experiment']}) after "
              f"{doc['num_experiments']} experiments")
        return 0

    task = get_task(args.task)
    if args.duration:
        if args.duration <= 0:
            raise ValueError("--duration must be > 0 seconds")
        task = task.replace(duration_s=args.duration)
    contexts = args.parallel or args.sequential or 1
    expected = args.budget_sims * contexts if args.budget_sims else None
    # Progress on stderr whatever stdout is (a pipe, a file, --json): a study takes minutes.
    experiments = bar(total=expected, desc=f"study {task.name}", unit="experiment")
    lock = threading.Lock()

    def progress(i, ev):
        t = ev.get("type")
        if t == "baseline":
            note(f"  [context {i}] baseline: score {fmt(ev.get('score'))}")
        elif t == "experiment":
            with lock:
                experiments.update(1)
            status = f"score {fmt(ev.get('score'))}" if ev.get("score") is not None else \
                ("infeasible" if ev.get("ok") else "failed")
            note(f"  [context {i}] experiment {ev.get('name')}: {status}" + (" (new best)" if ev.get("improved") else ""))

    try:
        doc = run_study(args.task, args.researcher, budget_sims=args.budget_sims,
                        budget_usd=args.budget_usd, parallel=args.parallel,
                        sequential=args.sequential, target=args.target, seed=args.seed,
                        workers=args.workers, out=args.out, progress=progress, task=task)
    finally:
        experiments.close()
    if args.json:
        print(json.dumps(doc))
        return 0
    print(f"task {doc['task']}  researcher {doc['researcher']}  mode {doc['mode']}")
    ratio = f"{fmt(doc['improvement'])}x better" if doc["improvement"] else "no finite ratio"
    print(f"baseline score {fmt(doc['baseline_score'])}  best score {fmt(doc['best_score'])}  "
          f"({ratio}) after {doc['num_experiments']} experiments")
    print(f"best design: {doc['best_experiment']}  (session {doc['session_dir']}, "
          f"${doc['cost_usd']:.2f})")
    return 0


def cmd_report(args) -> int:
    from glia_nb.research.report import summarize_session

    doc = summarize_session(args.dir)
    if args.json:
        print(json.dumps(doc))
        return 0
    print(doc["text"])
    return 0
