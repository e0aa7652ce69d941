"""``glia study`` and ``glia report``: run a research session, summarise one from its journal."""
from __future__ import annotations

import json
import os
import sys
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
    s.add_argument("--max-turns", type=int, default=None, help="Researcher turns allowed")
    s.add_argument("--wall-time", type=float, default=None, metavar="SECONDS",
                   help="active wall time allowed (seconds)")
    s.add_argument("--max-tokens", type=int, default=None,
                   help="cap on one model reply (always cut further to what the context window leaves)")
    s.add_argument("--context-tokens", type=int, default=None,
                   help="the model's context window, when the server cannot say (default: asked of the "
                        "server; else 8192 for a local server)")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--parallel", type=int, metavar="N", help="MCG-ParN: N sessions at once")
    g.add_argument("--sequential", type=int, metavar="N", help="MCG-Seq: up to N sessions in turn")
    s.add_argument("--target", type=float, help="with --sequential: stop at this score")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--workers", type=int, default=2, help="processes for simulations")
    s.add_argument("--duration", type=float, help="override the task's traffic duration (s): quicker, noisier")
    s.add_argument("--eval-seeds", type=int, help="evaluate over the scenario's first N seeds")
    s.add_argument("--out", help="where session folders go (default $GLIA_RUNS or glia_runs/ at the "
                   "repository root, then <task>-<time>)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=cmd_study)

    r = sub.add_parser("report", help="summarise a session from its journal")
    r.add_argument("dir", help="a session folder (holding journal.jsonl) or a study's folder "
                   "(every session below it is reported)")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_report)

    from glia_nb.baselines.compare import register_compare  # glia compare (search baselines)
    register_compare(sub)


def _budget(task, budget_sims, budget_usd, max_turns=None, wall_time=None):
    from glia_nb.tasks.budget import Budget

    b = Budget.coerce(task.budget)
    changes = {}
    for flag, key, value in (("--max-turns", "max_turns", max_turns), ("--wall-time", "max_wall_s", wall_time)):
        if value is not None:
            if value <= 0:
                raise ValueError(f"{flag} must be > 0")
            changes[key] = value
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
              workers: int = 2, out=None, progress=None, task=None, max_turns=None, wall_time=None,
              max_tokens=None, context_tokens=None) -> dict:
    """Run a study (SCG, MCG-ParN or MCG-Seq) and return the ``glia study --json`` document.

    Its ``status`` is ``finished``, ``stopped`` or ``failed`` (every session failed, or the
    model could not be reached at all); ``reason`` says why in one line."""
    from glia_nb.llm.retry import LLMError
    from glia_nb.research.multi import ParallelGlia, SequentialGlia
    from glia_nb.tasks import get_task

    task = task or get_task(task_name)
    budget = _budget(task, budget_sims, budget_usd, max_turns, wall_time)
    from glia_nb.runs import runs_dir

    root = Path(out or runs_dir() / f"{task.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    kw = dict(budget=budget, max_workers=workers, seed=seed)
    try:
        client = _client(researcher, max_tokens, context_tokens)
        if parallel:
            runner = ParallelGlia(parallel, task, root, client, **kw)
        else:
            runner = SequentialGlia(sequential or 1, task, root, client, target=target, **kw)
        result = runner.run(progress=progress)
    except LLMError as exc:  # the model cannot be used at all (a dead endpoint, a bad key)
        return {"task": task.name, "researcher": researcher, "status": "failed", "reason": _line(exc),
                "baseline_score": None, "best_score": None, "improvement": None, "best_experiment": None,
                "num_experiments": 0, "session_dir": None, "cost_usd": None, "cost_known": True,
                "input_tokens": 0, "output_tokens": 0, "llm_calls": 0}
    sessions = result.sessions
    best_s = result.best_session or sessions[0]
    base = best_s.baseline_score
    best = result.best_score
    cost = sum(float(s.budget_used.get("usd", 0.0) or 0.0) for s in sessions)
    n_exp = sum(len([e for e in s.experiments if e.get("id", 1) != 0]) for s in sessions)
    usage = _usage(sessions)
    statuses = [s.status for s in sessions]
    status = "failed" if all(x == "failed" for x in statuses) else (
        "stopped" if "stopped" in statuses else "finished")
    reason = next((s.end_reason for s in sessions if s.status == status), None) or sessions[-1].end_reason
    return {
        "status": status,
        "reason": reason,
        "task": task.name,
        "researcher": researcher,
        "mode": f"MCG-Par{parallel}" if parallel else (f"MCG-Seq{sequential}" if sequential else "SCG"),
        "baseline_score": base,
        "best_score": best,
        "improvement": _ratio(task, base, best),
        "best_experiment": (result.best or {}).get("name"),
        "num_experiments": n_exp,
        "session_dir": str(best_s.path),
        "cost_usd": cost if usage["cost_known"] else None,
        **usage,
    }


def _client(spec: str, max_tokens, context_tokens):
    """The Researcher as run_study passes it on: a model client built from ``spec`` with the
    CLI's limits, or ``spec`` itself for a rule-based researcher."""
    if ":" not in spec and spec not in ("anthropic", "openai"):
        return spec
    from glia_nb.llm import make_client

    if context_tokens is not None and context_tokens < 512:
        raise ValueError("--context-tokens must be >= 512")
    client = make_client(spec, **({"context_window": context_tokens} if context_tokens else {}))
    if max_tokens is not None:
        if max_tokens < 16:
            raise ValueError("--max-tokens must be >= 16")
        client.max_output_tokens = int(max_tokens)
    return client


def _usage(sessions) -> dict:
    """Model calls, tokens and whether every call had a price, from the sessions' journals."""
    from glia_nb.research.journal import read_journal

    calls = [r for s in sessions for r in read_journal(s.journal.path)[1] if r.get("type") == "llm_call"
             and r.get("provider") != "offline"]
    return {"llm_calls": len(calls),
            "input_tokens": sum(int((r.get("usage") or {}).get("input_tokens", 0)) for r in calls),
            "output_tokens": sum(int((r.get("usage") or {}).get("output_tokens", 0)) for r in calls),
            "cost_known": all(r.get("cost_known", True) for r in calls)}


def _line(exc) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _ratio(task, base, best):
    """How many times better the best score is than the baseline's (direction-aware; None
    when either is missing or not finite, e.g. a violated constraint)."""
    import math

    if not base or not best or not (math.isfinite(base) and math.isfinite(best)):
        return None
    return base / best if task.objective.direction == "min" else best / base


def _progress_line(i: int, ev: dict) -> str | None:
    """One stderr line for a session event worth showing while a study runs."""
    t, who = ev.get("type"), f"[context {i}]"
    if t == "llm_call_started":
        return f"  {who} {ev.get('agent')} model call {ev.get('call')} started"
    if t == "llm_call":
        u = ev.get("usage") or {}
        return (f"  {who} {ev.get('agent')} replied: {u.get('input_tokens', 0)} tokens in, "
                f"{u.get('output_tokens', 0)} out, {float(ev.get('latency_s') or 0):.1f} s")
    if t == "digest":
        return f"  {who} conversation compacted into research digest {ev.get('number')} ({ev.get('why')})"
    if t == "tool_mode":
        return f"  {who} {ev.get('agent')} uses plain-text tool calls: {ev.get('reason')}"
    if t == "supervisor_review" and not ev.get("parsed", True):
        raw = " ".join(str(ev.get("raw") or "").split())[:160]
        return f"  {who} supervisor reply unreadable (taken as proceed): {raw!r}"
    if t == "finished":
        return f"  {who} session {ev.get('status')}: {ev.get('reason')}"
    return None


def cmd_study(args) -> int:
    import signal

    from glia_nb.progress import fmt, note, progress as bar
    from glia_nb.tasks import get_task

    task = get_task(args.task)
    if args.duration is not None and args.duration <= 0:
        raise ValueError("--duration must be > 0 seconds")
    changes = {k: v for k, v in (("duration_s", args.duration), ("num_eval_seeds", args.eval_seeds)) if v}
    task = task.replace(**changes) if changes else task
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
        else:
            line = _progress_line(i, ev)
            if line:
                note(line)

    main_pid = os.getpid()

    def on_term(signum, frame):  # SIGTERM ends the study like Ctrl-C: journals get their end record
        if os.getpid() != main_pid:  # a forked simulation worker: just die
            os._exit(143)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        doc = run_study(args.task, args.researcher, task=task, budget_sims=args.budget_sims,
                        budget_usd=args.budget_usd, parallel=args.parallel,
                        sequential=args.sequential, target=args.target, seed=args.seed,
                        workers=args.workers, out=args.out, progress=progress, max_turns=args.max_turns,
                        wall_time=args.wall_time, max_tokens=args.max_tokens,
                        context_tokens=args.context_tokens)
    finally:
        signal.signal(signal.SIGTERM, previous)
        experiments.close()
    code = {"finished": 0, "stopped": 130}.get(doc["status"], 1)
    if doc["status"] != "finished":
        print(f"glia: study {doc['status']}: {doc['reason']}", file=sys.stderr)
    if args.json:
        print(json.dumps(doc))
        return code
    print(f"task {doc['task']}  researcher {doc['researcher']}  mode {doc.get('mode', 'SCG')}  "
          f"status {doc['status']}")
    if doc.get("session_dir") is None:
        return code
    ratio = f"{fmt(doc['improvement'])}x better" if doc["improvement"] else "no finite ratio"
    print(f"baseline score {fmt(doc['baseline_score'])}  best score {fmt(doc['best_score'])}  "
          f"({ratio}) after {doc['num_experiments']} experiments")
    cost = "unpriced" if not doc["cost_known"] else f"${doc['cost_usd']:.2f}"
    print(f"best design: {doc['best_experiment']}  (session {doc['session_dir']})")
    print(f"model calls {doc['llm_calls']}: {doc['input_tokens']} tokens in / {doc['output_tokens']} out, {cost}")
    return code


def cmd_report(args) -> int:
    from glia_nb.research.report import summarize_session

    doc = summarize_session(args.dir)
    if args.json:
        print(json.dumps(doc))
        return 0
    print(doc["text"])
    return 0
