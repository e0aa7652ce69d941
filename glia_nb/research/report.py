"""Summaries of research sessions read from their journals (the source of truth).

Every figure comes from :func:`glia_nb.research.fold.fold_records`, the same fold a live
session and a resume use. ``path`` may be a session folder, a journal file, or a study's
top folder (``glia study --out``), whose sessions (``context0/...``) are found below it.
"""
from __future__ import annotations

import math
from pathlib import Path

from glia_nb.research.fold import StudyState, fold_records
from glia_nb.research.journal import read_journal
from glia_nb.tasks.objective import Objective

__all__ = ["JOURNAL", "experiments_frame", "find_journals", "session_records", "summarize", "summarize_session"]

JOURNAL = "journal.jsonl"


def find_journals(path) -> list[Path]:
    """The journals at ``path``: the file itself, the folder's own journal, or (for a
    study's top folder) every journal below it, in path order. Raises FileNotFoundError
    with one line naming where it looked."""
    p = Path(path)
    if p.is_file():
        return [p]
    if (p / JOURNAL).is_file():
        return [p / JOURNAL]
    found = sorted(p.rglob(JOURNAL)) if p.is_dir() else []
    if not found:
        raise FileNotFoundError(f"no {JOURNAL} at {p} or in any folder below it")
    return found


def session_records(path) -> tuple[dict, list[dict]]:
    """The journal's header and records (a session folder or the journal file itself)."""
    found = find_journals(path)
    if len(found) > 1:
        raise ValueError(f"{path} holds {len(found)} sessions; pick one: "
                         + ", ".join(str(f.parent) for f in found[:4]) + (" ..." if len(found) > 4 else ""))
    return read_journal(found[0])


def experiments_frame(path):
    """The experiments of a session as a DataFrame (one row per experiment record)."""
    import pandas as pd

    header, records = session_records(path)
    return pd.DataFrame(fold_records(records, header).experiments)


def _num(x, spec: str = ".4g") -> str:
    return "-" if x is None or not math.isfinite(float(x)) else format(float(x), spec)


def _ratio(base: float | None, best: float | None, lower: bool) -> float | None:
    """How many times better ``best`` is than ``base`` (:meth:`Objective.ratio`)."""
    return Objective(direction="min" if lower else "max").ratio(best, base)


def summarize(state: StudyState, header: dict, path) -> dict:
    """The report document of one folded session (see :func:`summarize_session`)."""
    exps = state.experiments
    ok = [e for e in exps if e.get("score") is not None]
    # A constrained task's violations are journalled with no score (non-finite) but
    # ok=True: "infeasible", not failed.
    infeasible = [e for e in exps if e.get("score") is None and e.get("ok")]
    best = state.best_experiment()
    baseline = state.baseline_score
    if baseline is None:  # journals from before the baseline record kept it in the header
        baseline = header.get("baseline_score")
    improvement = _ratio(baseline, (best or {}).get("score"), state.lower_is_better)
    researcher = header.get("researcher") or {}
    interventions = [r for r in state.reviews if r.get("kind") not in (None, "proceed")]
    end = state.end or {}
    doc = {
        "path": str(path),
        "task": header.get("task_name"),
        "researcher": researcher.get("name") or researcher.get("model"),
        "created": header.get("created"),
        "schema": int(header.get("schema") or 1),
        "num_records": state.num_records,
        "num_experiments": len(exps),
        "num_failed_experiments": len(exps) - len(ok) - len(infeasible),
        "num_infeasible_experiments": len(infeasible),
        "baseline_score": baseline,
        "best": {k: best.get(k) for k in ("id", "name", "score", "hypothesis")} if best else None,
        "improvement": improvement,
        "simulations": state.simulations,
        "llm_calls": state.llm_calls,
        "input_tokens": state.input_tokens,
        "output_tokens": state.output_tokens,
        "cost_usd": state.usd,
        "supervisor_reviews": len(state.reviews),
        "interventions": [{"kind": r.get("kind"), "trigger": r.get("trigger"), "text": r.get("text")}
                          for r in interventions],
        "nudges": list(state.nudges),
        "ended": end.get("reason") or end.get("status"),
    }
    lines = [f"session {path}",
             f"task {doc['task']}  researcher {doc['researcher']}  records {state.num_records}",
             f"experiments {len(exps)} ({doc['num_failed_experiments']} failed)  "
             f"LLM calls {state.llm_calls}  tokens {state.input_tokens:,} in / {state.output_tokens:,} out  "
             f"cost ${state.usd:.2f}"]
    if baseline is not None:
        lines.append(f"  {'0':>4} {'baseline':34s} {_num(baseline):>8}")
    for e in exps:
        score = e.get("score")
        lines.append(f"  {str(e.get('id', '')):>4} {str(e.get('name', ''))[:34]:34s} "
                     + (f"{_num(score):>8}" if score is not None else ("infeasible" if e.get("ok") else "   error")))
    if best:
        lines.append(f"best: {best.get('name')} score {_num(best['score'])}"
                     + (f" ({improvement:.3g}x better than the baseline)" if improvement else ""))
    for iv in doc["interventions"]:
        lines.append(f"supervisor ({iv['kind']}, on {iv['trigger']}): {iv['text']}")
    for n in doc["nudges"]:
        lines.append(f"person: {n}")
    if doc["ended"]:
        lines.append(f"ended: {doc['ended']}")
    doc["text"] = "\n".join(lines)
    return doc


def summarize_session(path) -> dict:
    """Counts, tokens, costs, the baseline and the best experiment, the Supervisor's
    interventions and the person's nudges, plus a readable ``text``.

    For a study's top folder holding several sessions the document has ``sessions`` (one
    document each) and a ``text`` that reports each in turn."""
    found = find_journals(path)
    docs = []
    for j in found:
        header, records = read_journal(j)
        docs.append(summarize(fold_records(records, header), header, j.parent))
    if len(docs) == 1:
        return docs[0]
    head = f"study {path}: {len(docs)} sessions"
    return {"path": str(path), "sessions": docs, "text": "\n\n".join([head] + [d["text"] for d in docs])}
