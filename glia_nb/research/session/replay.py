"""Rebuild a session's state from its journal records alone.

The journal is the source of truth: the conversation comes from ``user_message``,
``assistant`` and ``tool_result`` records, the budget from ``llm_call`` (dollars, turns) and
``experiment`` (simulations) records, and the approval queue from the ``intervention_*``
and ``nudge`` records. Everything here is pure: records in, :class:`Replay` out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping

from glia_nb.research.journal import finite_or_none, to_jsonable
from glia_nb.llm.types import Message, ToolCall
from glia_nb.tasks.objective import Objective

__all__ = ["Intervention", "Replay", "replay_records", "best_of", "is_improvement", "experiment_fields"]


@dataclass(frozen=True)
class Intervention:
    """A Supervisor decision on its way to the Researcher (pending in manual mode)."""

    id: str
    kind: str
    text: str
    reason: str = ""
    trigger: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-native dict."""
        return asdict(self)


@dataclass
class Replay:
    """Session state recovered from records (see :func:`replay_records`)."""

    messages: list[Message] = field(default_factory=list)
    outbox: list[tuple[str, str, str]] = field(default_factory=list)  # (source, source_id, text)
    pending: list[Intervention] = field(default_factory=list)
    experiments: list[dict[str, Any]] = field(default_factory=list)
    researcher_text: list[str] = field(default_factory=list)
    interventions_text: list[str] = field(default_factory=list)
    unanswered_calls: list[ToolCall] = field(default_factory=list)
    simulations: int = 0
    usd: float = 0.0
    turns: int = 0
    llm_calls: int = 0
    wall_s: float = 0.0
    last_prompt_tokens: int = 0
    since_improvement: int = 0
    experiments_at_review: int = 0
    turn_at_review: int = 0
    finish_unreviewed: bool = False
    finish_accepted: bool = False
    summary: str | None = None
    ended: bool = False
    approval: str | None = None
    baseline: dict[str, Any] | None = None


def is_improvement(score: Any, earlier: Iterable[Mapping[str, Any]], lower_is_better: bool) -> bool:
    """True when ``score`` beats every earlier experiment's score (the first valid score
    always does)."""
    best = best_of(earlier, lower_is_better)
    return _objective(lower_is_better).is_better(finite_or_none(score),
                                                 None if best is None else best["score"])


def best_of(experiments: Iterable[Mapping[str, Any]], lower_is_better: bool) -> dict[str, Any] | None:
    """The experiment with the best finite score (the earliest on ties), or None."""
    best = _objective(lower_is_better).best_of(experiments, lambda e: finite_or_none(e.get("score")))
    return None if best is None else {**best, "score": finite_or_none(best.get("score"))}


def _objective(lower_is_better: bool) -> Objective:
    """An Objective of that direction: which score is better is answered by Objective only."""
    return Objective(direction="min" if lower_is_better else "max")


def _safe(value: Any) -> Any:
    try:
        return to_jsonable(value)
    except TypeError:
        return repr(value)


def experiment_fields(arguments: Mapping[str, Any], result: Any) -> dict[str, Any] | None:
    """The journal fields of one ``run_experiment`` result, or None when no experiment was
    run (refused, bad arguments, budget spent).

    Reads :class:`glia_nb.research.tools.ToolBox`'s data (``{"experiment": ledger row, "result":
    EvalResult dict}``) and, for other toolboxes, a flat dict with an ``id``.
    ``simulations`` is the budget's charge, always 1 (one experiment); ``seeds`` how many
    seeds it simulated (from the data, else the number of seeds listed, else 1).
    """
    data = getattr(result, "data", None)
    if not isinstance(data, Mapping):
        return None
    row = data.get("experiment") if isinstance(data.get("experiment"), Mapping) else data
    evaluation = data.get("result") if isinstance(data.get("result"), Mapping) else {}
    exp_id = row.get("id", row.get("experiment_id"))
    if exp_id is None:
        return None
    seeds = row.get("seeds", evaluation.get("simulations"))
    if isinstance(seeds, (list, tuple)):
        seeds = len(seeds)
    if seeds is None:
        listed = evaluation.get("seeds")
        seeds = len(listed) if isinstance(listed, (list, tuple)) else 1
    metrics = row.get("metrics", evaluation.get("summary"))
    status = row.get("status")
    ok = status == "ok" if status is not None else bool(row.get("ok", not getattr(result, "is_error", False)))
    error = row.get("error") or evaluation.get("error")
    return {
        "id": _safe(exp_id),
        "name": str(row.get("name") or arguments.get("name") or ""),
        "hypothesis": str(arguments.get("hypothesis") or row.get("hypothesis") or ""),
        "score": finite_or_none(row.get("score")),
        "ok": ok,
        "simulations": 1,
        "seeds": int(seeds),
        "metrics": _safe(metrics) if isinstance(metrics, Mapping) else {},
        "error": str(error)[:500] if error else None,
        "folder": row.get("folder"),
    }


def _insert_tool_result(messages: list[Message], owner: dict[str, int], msg: Message,
                        early: dict[str, Message]) -> None:
    """Place a tool result right after its assistant message's earlier results (records of
    a crash-repaired step come later in the journal than the turn they answer). A result
    whose assistant record has not been seen yet waits in ``early``."""
    idx = owner.get(msg.tool_call_id or "")
    if idx is None:
        early[msg.tool_call_id or ""] = msg
        return
    pos = idx + 1
    while pos < len(messages) and messages[pos].role == "tool":
        pos += 1
    messages.insert(pos, msg)
    for k, v in owner.items():  # indices after the insertion point moved by one
        if v >= pos:
            owner[k] = v + 1


def replay_records(records: Iterable[Mapping[str, Any]], *, lower_is_better: bool = True) -> Replay:
    """Fold journal records (everything after the header) into a :class:`Replay`."""
    r = Replay()
    owner: dict[str, int] = {}  # tool call id -> index of its assistant message
    early: dict[str, Message] = {}  # tool results journaled before their assistant message
    calls: dict[str, ToolCall] = {}
    answered: set[str] = set()
    queued: dict[str, Intervention] = {}
    approved: dict[str, tuple[str, str]] = {}  # source_id -> (source, text), in approval order
    delivered: set[str] = set()
    for rec in records:
        t = rec.get("type")
        r.wall_s = max(r.wall_s, float(rec.get("wall_s") or 0.0))
        if t == "user_message":
            r.messages.append(Message.user(rec.get("text", ""), name=rec.get("source")))
            delivered.add(str(rec.get("source_id")))
            r.finish_unreviewed = False
        elif t == "assistant":
            tcs = [ToolCall.from_dict(d) for d in rec.get("tool_calls") or ()]
            r.messages.append(Message.assistant(rec.get("text", ""), tcs))
            for tc in tcs:
                owner[tc.id], calls[tc.id] = len(r.messages) - 1, tc
                if tc.id in early:
                    _insert_tool_result(r.messages, owner, early.pop(tc.id), early)
            if (rec.get("text") or "").strip():
                r.researcher_text.append(rec["text"])
            r.finish_unreviewed = False
        elif t == "tool_result":
            cid = str(rec.get("call_id"))
            msg = Message.tool_result(cid, rec.get("text", ""), name=rec.get("name"), is_error=bool(rec.get("is_error")))
            _insert_tool_result(r.messages, owner, msg, early)
            answered.add(cid)
            if rec.get("name") == "finish" and not rec.get("is_error") and cid in calls:
                r.finish_unreviewed = True
                r.summary = str(calls[cid].arguments.get("summary") or rec.get("text") or "")
        elif t == "llm_call":
            r.usd += float(rec.get("cost_usd") or 0.0)
            r.llm_calls += 1
            if rec.get("agent") == "researcher":
                r.turns += 1
                r.last_prompt_tokens = int((rec.get("usage") or {}).get("input_tokens", 0))
        elif t == "experiment":
            reference = r.experiments + ([r.baseline] if r.baseline else [])
            improved = is_improvement(rec.get("score"), reference, lower_is_better)
            r.since_improvement = 0 if improved else r.since_improvement + 1
            r.simulations += 1  # one per experiment (older journals recorded seeds here)
            r.experiments.append({k: v for k, v in rec.items() if k != "ts"})
        elif t == "supervisor_review":
            r.experiments_at_review = int(rec.get("experiments", len(r.experiments)))
            r.turn_at_review = int(rec.get("turn", r.turns))
            r.finish_unreviewed = False
        elif t == "intervention_queued":
            iv = Intervention(rec["id"], rec.get("kind", ""), rec.get("text", ""), rec.get("reason", ""),
                              rec.get("trigger", ""))
            queued[iv.id] = iv
            r.interventions_text.append(f"({iv.kind}) {iv.text}")
        elif t == "intervention_approved":
            iv = queued.pop(rec["id"], None)
            if iv is None:  # auto approval: the record carries the intervention itself
                r.interventions_text.append(f"({rec.get('kind', '')}) {rec.get('text', '')}")
            approved[rec["id"]] = ("supervisor", iv.text if iv else rec.get("text", ""))
        elif t == "intervention_edited":
            queued.pop(rec["id"], None)
            approved[rec["id"]] = ("supervisor", rec.get("text", ""))
        elif t == "intervention_rejected":
            iv = queued.pop(rec["id"], None)
            if iv is not None and iv.trigger == "finish":
                r.finish_accepted = True
        elif t == "nudge":
            approved[f"nudge-{rec['seq']}"] = ("person", rec.get("text", ""))
        elif t == "baseline":
            r.baseline = {k: v for k, v in rec.items() if k != "ts"}
        elif t in ("approval_policy", "resumed") and rec.get("approval"):
            r.approval = rec["approval"]
        elif t == "finished":
            r.ended, r.finish_accepted, r.finish_unreviewed = True, False, False
    r.pending = list(queued.values())
    r.outbox = [(src, sid, text) for sid, (src, text) in approved.items() if sid not in delivered]
    r.unanswered_calls = [tc for cid, tc in calls.items() if cid not in answered]
    return r
