"""Summaries of a research session read from its journal (the source of truth)."""
from __future__ import annotations

from pathlib import Path

from glia_nb.research.journal import read_journal
from glia_nb.tasks.objective import Objective

JOURNAL = "journal.jsonl"


def _journal_path(path) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / JOURNAL
    if not p.exists():
        raise FileNotFoundError(f"no journal at {p}")
    return p


def session_records(path) -> tuple[dict, list[dict]]:
    """The journal's header and records (a folder or the journal file itself)."""
    return read_journal(_journal_path(path))


def experiments_frame(path):
    """The experiments of a session as a DataFrame (one row per experiment record)."""
    import pandas as pd

    _, records = session_records(path)
    rows = [r for r in records if r.get("type") == "experiment"]
    return pd.DataFrame(rows)


def summarize_session(path) -> dict:
    """Counts, costs, the best experiment, the Supervisor's interventions and the person's
    nudges, plus a readable ``text``."""
    header, records = session_records(path)
    by_type: dict[str, list] = {}
    for r in records:
        by_type.setdefault(r.get("type", "?"), []).append(r)
    exps = by_type.get("experiment", [])
    ok = [e for e in exps if e.get("score") is not None]
    # Direction from the recorded task; a constrained task's violations are journalled with
    # no score (non-finite) but ok=True: "infeasible", not failed.
    direction = ((header.get("task") or {}).get("objective") or {}).get("direction", "min")
    infeasible = [e for e in exps if e.get("score") is None and e.get("ok")]
    best = Objective(direction=direction).best_of(ok, lambda e: e["score"])
    calls = by_type.get("llm_call", [])
    cost = sum(float(c.get("cost_usd") or 0.0) for c in calls)
    tokens_in = sum(int(c.get("input_tokens") or 0) for c in calls)
    tokens_out = sum(int(c.get("output_tokens") or 0) for c in calls)
    reviews = by_type.get("supervisor_review", [])
    interventions = [r for r in reviews if r.get("kind") not in (None, "proceed")]
    nudges = by_type.get("nudge", [])
    finished = (by_type.get("finished") or by_type.get("session_end") or [None])[-1]
    researcher = header.get("researcher") or {}
    baseline = header.get("baseline_score")
    if baseline is None:
        base_rows = [e for e in exps if e.get("id") == 0 or e.get("name") == "baseline"]
        baseline = base_rows[0].get("score") if base_rows else None
    doc = {
        "task": header.get("task_name"),
        "researcher": researcher.get("name") or researcher.get("model"),
        "created": header.get("created"),
        "num_records": len(records),
        "num_experiments": len(exps),
        "num_failed_experiments": len(exps) - len(ok) - len(infeasible),
        "num_infeasible_experiments": len(infeasible),
        "best": {k: best.get(k) for k in ("id", "name", "score", "hypothesis")} if best else None,
        "llm_calls": len(calls),
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "cost_usd": cost,
        "supervisor_reviews": len(reviews),
        "interventions": [{"kind": r.get("kind"), "trigger": r.get("trigger"),
                           "text": r.get("text")} for r in interventions],
        "nudges": [n.get("text") for n in nudges],
        "ended": (finished or {}).get("reason") or (finished or {}).get("type"),
    }
    lines = [f"session {Path(path)}",
             f"task {doc['task']}  researcher {doc['researcher']}  records {len(records)}",
             f"experiments {len(exps)} ({doc['num_failed_experiments']} failed)  "
             f"LLM calls {len(calls)}  tokens {tokens_in:,} in / {tokens_out:,} out  "
             f"cost ${cost:.2f}"]
    for e in exps:
        score = e.get("score")
        lines.append(f"  {str(e.get('id', '')):>4} {str(e.get('name', ''))[:34]:34s} "
                     + (f"{score:8.2f}" if score is not None
                        else ("infeasible" if e.get("ok") else "   error"))
                     + (f"  restarted {e['restart_fraction']:.1%}"
                        if e.get("restart_fraction") is not None else ""))
    if best:
        lines.append(f"best: {best.get('name')} score {best['score']:.2f}"
                     + (f" ({(baseline / best['score']) if lower else (best['score'] / baseline):.2f}x "
                        "better than the baseline)" if baseline and best["score"] else ""))
    for iv in doc["interventions"]:
        lines.append(f"supervisor ({iv['kind']}, on {iv['trigger']}): {iv['text']}")
    for n in doc["nudges"]:
        lines.append(f"person: {n}")
    if doc["ended"]:
        lines.append(f"ended: {doc['ended']}")
    doc["text"] = "\n".join(lines)
    return doc
