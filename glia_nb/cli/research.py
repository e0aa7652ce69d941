"""``glia study`` and ``glia report``: run a research session, summarise one from its journal."""
from __future__ import annotations

import json
import os
import sys
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
    s.add_argument("--max-turns", type=int, default=None, help="Researcher turns allowed")
    s.add_argument("--wall-time", type=float, default=None, metavar="SECONDS",
                   help="active wall time allowed (seconds)")
    s.add_argument("--max-tokens", type=int, default=None,
                   help="cap on one model reply (always cut further to what the context window leaves)")
    s.add_argument("--context-tokens", type=int, default=None,
                   help="the model's context window, when the server cannot say (default: asked of the "
                        "server; else 8192 for a local server)")
    add_task_size_args(s)
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument("--unseen-seeds", type=int, default=None, metavar="N",
                   help="when the study finishes, score its best design and the baseline on N "
                        "seeds drawn then, which no experiment saw (default: as many as the "
                        "task evaluates on; 0: skip)")
    s.add_argument("--resume", metavar="DIR", help="go on with the session in DIR (its journal "
                   "keeps the Researcher, the Supervisor and every budget counter)")
    s.set_defaults(func=cmd_study)

    r = sub.add_parser("report", help="summarise a session from its journal")
    r.add_argument("dir", help="a session folder (holding journal.jsonl) or a study's folder "
                   "(every session below it is reported)")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_report)

    register_compare(sub)  # glia compare (search baselines)


def _progress_line(i: int, ev: dict) -> str | None:
    """One stderr line for a model-related session event (calls, digests, tool mode, end)."""
    t, who = ev.get("type"), f"[context {i}]"
    if t == "llm_call_started":
        return f"  {who} {ev.get('agent')} model call {ev.get('call')} started"
    if t == "llm_call":
        u = ev.get("usage") or {}
        return (f"  {who} {ev.get('agent')} replied: {u.get('input_tokens', 0)} tokens in, "
                f"{u.get('output_tokens', 0)} out, {float(ev.get('latency_s') or 0):.1f} s")
    if t == "context_limit" and ev.get("digest"):
        return f"  {who} conversation compacted into research digest {ev.get('number')} ({ev.get('why')})"
    if t == "tool_mode":
        return f"  {who} {ev.get('agent')} uses plain-text tool calls: {ev.get('reason')}"
    if t == "supervisor_review" and not ev.get("parsed", True):
        raw = " ".join(str(ev.get("raw") or "").split())[:160]
        return f"  {who} supervisor reply unreadable (taken as proceed): {raw!r}"
    if t == "finished":
        return f"  {who} session {ev.get('status')}: {ev.get('reason')}"
    if t == "unseen_seeds":
        return (f"  scoring the best design ({ev.get('name')}) and the baseline on "
                f"{ev.get('n')} seeds drawn now, which no experiment saw")
    return None


def _resume_study(args) -> dict:
    """``glia study --resume DIR``: one session, resumed from its journal and run on."""
    from glia_nb.research.session.session import Session
    from glia_nb.progress import note
    from glia_nb.research.unseen import confirm_best, unseen_fields

    s = Session.resume(args.resume)
    try:
        s.run()
    finally:
        s.journal.close()
    unseen = confirm_best(s.task, s, s.best, n=args.unseen_seeds,
                          progress=lambda i, ev: note(_progress_line(i, ev) or "")) \
        if s.status == "finished" else None
    best = s.best or {}
    base = s.baseline_score
    task = s.task
    return {"task": getattr(task, "name", str(task)), "researcher": "journal",
            "mode": "SCG (resumed)", "baseline_score": base, "best_score": best.get("score"),
            "improvement": task.objective.ratio(best.get("score"), base)
            if hasattr(task, "objective") else None,
            "best_experiment": best.get("name"),
            "num_experiments": len([e for e in s.experiments if e.get("id", 1) != 0]),
            "session_dir": str(s.path), "status": s.status, "reason": s.end_reason,
            "cost_usd": None if s.state.unpriced_calls else float(s.budget_used.get("usd", 0.0) or 0.0),
            "cost_known": not s.state.unpriced_calls, "llm_calls": s.state.llm_calls,
            "input_tokens": s.state.input_tokens, "output_tokens": s.state.output_tokens,
            **unseen_fields(unseen)}


def cmd_study(args) -> int:
    """``glia study``: run a study and print its result (one JSON object with ``--json``)."""
    # Imported here for start-up time: `glia --help` must not load the research team.
    from glia_nb.progress import fmt, note, progress as bar
    from glia_nb.research.study import run_study, study_text
    from glia_nb.research.unseen import unseen_text

    if args.unseen_seeds is not None and args.unseen_seeds < 0:
        raise ValueError("--unseen-seeds must be >= 0")
    if args.resume:
        doc = _resume_study(args)
        print(json.dumps(doc) if args.json else
              f"resumed {doc['session_dir']}: baseline {fmt(doc['baseline_score'])}, best "
              f"{fmt(doc['best_score'])} ({doc['best_experiment']}) after "
              f"{doc['num_experiments']} experiments"
              + (f"\n{unseen_text(doc)}" if doc.get("unseen_seeds") else ""))
        code = {"finished": 0, "stopped": 130}.get(doc["status"], 1)
        if code:
            print(f"glia: study {doc['status']}: {doc['reason']}", file=sys.stderr)
        return code
    if args.duration is not None and args.duration <= 0:
        raise ValueError("--duration must be > 0 seconds")
    task = sized_task(args)
    # --budget-sims is the whole study's: the contexts share it.  The bar counts against the
    # budget (a study may finish before spending it).
    expected = args.budget_sims or task.budget.max_simulations
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
        else:
            line = _progress_line(i, ev)
            if line:
                note(line)

    main_pid = os.getpid()

    def on_term(signum, frame):  # SIGTERM ends the study like Ctrl-C: journals get their end record
        if os.getpid() != main_pid:  # a forked simulation worker: just die
            os._exit(143)
        raise KeyboardInterrupt

    import signal

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        doc = run_study(args.task, args.researcher, task=task, budget_sims=args.budget_sims,
                        budget_usd=args.budget_usd, parallel=args.parallel,
                        sequential=args.sequential, target=args.target, seed=args.seed,
                        workers=args.workers, out=args.out, progress=progress, dask=args.dask,
                        max_turns=args.max_turns, wall_time=args.wall_time, max_tokens=args.max_tokens,
                        context_tokens=args.context_tokens, unseen_seeds=args.unseen_seeds)
    finally:
        signal.signal(signal.SIGTERM, previous)
        experiments.close()
    code = {"finished": 0, "stopped": 130}.get(doc["status"], 1)
    if doc["status"] != "finished":
        print(f"glia: study {doc['status']}: {doc['reason']}", file=sys.stderr)
    print(json.dumps(doc) if args.json else study_text(doc))
    return code


def cmd_report(args) -> int:
    """``glia report``: the summary of one session, read from its journal."""
    from glia_nb.research.report import summarize_session  # start-up time, as above

    doc = summarize_session(args.dir)
    if args.json:
        print(json.dumps(doc))
        return 0
    print(doc["text"])
    return 0
