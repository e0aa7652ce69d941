"""``glia study`` and ``glia report``: run a research session, summarise one from its journal."""
from __future__ import annotations

import json
import threading

from glia_nb.cli.options import add_executor_args
from glia_nb.cli.compare import add_task_size_args, register_compare, sized_task


def register(sub) -> None:
    """Add the research subcommands to the ``glia`` parser."""
    s = sub.add_parser("study", help="run a research session on a task and print the best "
                       "design's score against the baseline")
    s.add_argument("task", nargs="?", default="routing-a10")
    s.add_argument("--researcher", default="offline",
                   help="offline (rule-based, no key), anthropic:MODEL, openai:MODEL or "
                        "openai-compatible:URL:MODEL")
    s.add_argument("--budget-sims", type=int, default=None,
                   help="simulations allowed in the whole study (one simulation = one "
                        "experiment over the task's seeds; --parallel splits them)")
    s.add_argument("--budget-usd", type=float, default=None,
                   help="dollar budget for LLM calls in the whole study")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--parallel", type=int, metavar="N", help="MCG-ParN: N sessions at once")
    g.add_argument("--sequential", type=int, metavar="N", help="MCG-Seq: up to N sessions in turn")
    s.add_argument("--target", type=float, help="with --sequential: stop at this score")
    s.add_argument("--seed", type=int, default=0)
    add_executor_args(s, workers=2)
    s.add_argument("--out", help="where session folders go (default $GLIA_RUNS or glia_runs/ at the "
                   "repository root, then <task>-<time>)")
    add_task_size_args(s)
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument("--resume", metavar="DIR", help="go on with the session in DIR (its journal "
                   "keeps the Researcher, the Supervisor and every budget counter)")
    s.set_defaults(func=cmd_study)

    r = sub.add_parser("report", help="summarise a session from its journal")
    r.add_argument("dir", help="a session folder (holding journal.jsonl) or a study's folder "
                   "(every session below it is reported)")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_report)

    register_compare(sub)  # glia compare (search baselines)


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
            "improvement": task.objective.ratio(best.get("score"), base)
            if hasattr(task, "objective") else None,
            "best_experiment": best.get("name"),
            "num_experiments": len([e for e in s.experiments if e.get("id", 1) != 0]),
            "session_dir": str(s.path), "cost_usd": float(s.budget_used.get("usd", 0.0) or 0.0)}


def cmd_study(args) -> int:
    """``glia study``: run a study and print its result (one JSON object with ``--json``)."""
    # Imported here for start-up time: `glia --help` must not load the research team.
    from glia_nb.progress import fmt, note, progress as bar
    from glia_nb.research.study import run_study, study_text

    if args.resume:
        doc = _resume_study(args)
        print(json.dumps(doc) if args.json else
              f"resumed {doc['session_dir']}: baseline {fmt(doc['baseline_score'])}, best "
              f"{fmt(doc['best_score'])} ({doc['best_experiment']}) after "
              f"{doc['num_experiments']} experiments")
        return 0
    if args.duration is not None and args.duration <= 0:
        raise ValueError("--duration must be > 0 seconds")
    task = sized_task(args)
    # --budget-sims is the whole study's: the contexts share it.
    expected = args.budget_sims if args.budget_sims else None
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
        doc = run_study(args.task, args.researcher, task=task, budget_sims=args.budget_sims,
                        budget_usd=args.budget_usd, parallel=args.parallel,
                        sequential=args.sequential, target=args.target, seed=args.seed,
                        workers=args.workers, out=args.out, progress=progress, dask=args.dask)
    finally:
        experiments.close()
    if args.json:
        print(json.dumps(doc))
        return 0
    print(study_text(doc))
    return 0


def cmd_report(args) -> int:
    """``glia report``: the summary of one session, read from its journal."""
    from glia_nb.research.report import summarize_session  # start-up time, as above

    doc = summarize_session(args.dir)
    if args.json:
        print(json.dumps(doc))
        return 0
    print(doc["text"])
    return 0
