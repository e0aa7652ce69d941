"""The one fold of a study's journal: ``fold(state, record) -> state``.

A live :class:`~glia_nb.research.session.session.Session` passes every record it appends
through :func:`fold`, and a resume, ``glia report``, the widgets and the multi-context
runners fold the records they read the same way, so the conversation, the budget counters,
the approval queue and "best so far" mean one thing everywhere. Records go through
:func:`glia_nb.research.records.parse` first, so journals written by older glia-nb fold too.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping

from glia_nb.llm.types import Message, ToolCall
from glia_nb.research import records as R
from glia_nb.research.journal import finite_or_none
from glia_nb.tasks.objective import Objective

__all__ = ["CONTINUE_TEXT", "RESUME_TEXT", "Intervention", "StudyState", "best_of", "fold", "fold_records",
           "is_improvement", "new_state"]

CONTINUE_TEXT = "Continue the research with your tools, or call finish(summary) when you are done."
RESUME_TEXT = "The study was resumed. " + CONTINUE_TEXT


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
class StudyState:
    """Everything a study's records say, folded one record at a time (see :func:`fold`)."""

    lower_is_better: bool = True
    approval: str | None = None
    messages: list[Message] = field(default_factory=list)
    outbox: dict[str, tuple[str, str]] = field(default_factory=dict)  # source_id -> (source, text), undelivered
    pending: dict[str, Intervention] = field(default_factory=dict)
    experiments: list[dict[str, Any]] = field(default_factory=list)
    baseline: dict[str, Any] | None = None
    researcher_text: list[str] = field(default_factory=list)
    interventions_text: list[str] = field(default_factory=list)
    reviews: list[dict[str, Any]] = field(default_factory=list)
    nudges: list[str] = field(default_factory=list)
    num_records: int = 0
    simulations: int = 0
    usd: float = 0.0
    turns: int = 0
    llm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    wall_s: float = 0.0
    last_prompt_tokens: int = 0
    since_improvement: int = 0
    experiments_at_review: int = 0
    turn_at_review: int = 0
    finish_unreviewed: bool = False
    finish_accepted: bool = False
    summary: str | None = None
    ended: bool = False
    end: dict[str, Any] | None = None  # the last finished record
    # Indices that place a tool result after its assistant message (a crash-repaired step's
    # results come later in the journal than the turn they answer).
    _owner: dict[str, int] = field(default_factory=dict, repr=False)
    _early: dict[str, Message] = field(default_factory=dict, repr=False)
    _calls: dict[str, ToolCall] = field(default_factory=dict, repr=False)
    _answered: set[str] = field(default_factory=set, repr=False)

    @property
    def unanswered_calls(self) -> list[ToolCall]:
        """Tool calls with no result (the process died mid-step)."""
        return [tc for cid, tc in self._calls.items() if cid not in self._answered]

    @property
    def baseline_score(self) -> float | None:
        """The baseline's score, or None when it was not run or has none."""
        return finite_or_none((self.baseline or {}).get("score"))

    def best_experiment(self) -> dict[str, Any] | None:
        """The best experiment record (the baseline not counted), or None."""
        return best_of(self.experiments, self.lower_is_better)

    @property
    def best(self) -> dict[str, Any] | None:
        """The best result so far, the baseline included (as ``id`` 0, ``name`` baseline)."""
        base = [{**self.baseline, "id": 0, "name": "baseline"}] if self.baseline else []
        return best_of(base + self.experiments, self.lower_is_better)

    def is_improvement(self, score: Any) -> bool:
        """Whether ``score`` beats every experiment so far and the baseline."""
        return is_improvement(score, self.experiments + ([self.baseline] if self.baseline else []),
                              self.lower_is_better)


def is_improvement(score: Any, earlier: Iterable[Mapping[str, Any]], lower_is_better: bool) -> bool:
    """True when ``score`` beats every earlier score (the first valid score always does)."""
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


def new_state(header: Mapping[str, Any] | None = None, *, lower_is_better: bool | None = None) -> StudyState:
    """An empty state for the study ``header`` describes (direction and approval mode)."""
    h = R.Header(dict(header or {}))
    lower = h.lower_is_better if lower_is_better is None else lower_is_better
    return StudyState(lower_is_better=lower, approval=h.get("approval"))


def fold_records(records: Iterable[Mapping[str, Any]], header: Mapping[str, Any] | None = None, *,
                 lower_is_better: bool | None = None) -> StudyState:
    """Fold a journal's records (everything after the header) into a fresh state."""
    state = new_state(header, lower_is_better=lower_is_better)
    for rec in records:
        fold(state, rec)
    return state


def _insert_tool_result(s: StudyState, msg: Message) -> None:
    idx = s._owner.get(msg.tool_call_id or "")
    if idx is None:  # its assistant record comes later: wait for it
        s._early[msg.tool_call_id or ""] = msg
        return
    pos = idx + 1
    while pos < len(s.messages) and s.messages[pos].role == "tool":
        pos += 1
    s.messages.insert(pos, msg)
    for k, v in s._owner.items():  # indices after the insertion point moved by one
        if v >= pos:
            s._owner[k] = v + 1


def _record_dict(rec: R.Record, raw: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": R.record_type(rec), "seq": raw.get("seq"), **rec.to_dict()}


def fold(state: StudyState, record: Mapping[str, Any] | R.Record) -> StudyState:
    """Apply one journal record to ``state`` (updated in place and returned).

    ``record`` is a journal dict (as :meth:`Journal.append` returns or :func:`read_journal`
    reads) or a typed record; unknown types and status events change nothing but the count.
    """
    raw: Mapping[str, Any] = record.to_dict() if isinstance(record, R.Record) else record
    rec = record if isinstance(record, R.Record) else R.parse(record)
    if rec is None:
        return state
    s = state
    s.num_records += 1
    s.wall_s = max(s.wall_s, rec.wall_s)
    if isinstance(rec, R.UserMessage):
        s.messages.append(Message.user(rec.text, name=rec.source or None))
        s.outbox.pop(str(rec.source_id), None)
        s.finish_unreviewed = False
    elif isinstance(rec, R.Assistant):
        tcs = [ToolCall.from_dict(d) for d in rec.tool_calls or ()]
        s.messages.append(Message.assistant(rec.text or "", tcs))
        for tc in tcs:
            s._owner[tc.id], s._calls[tc.id] = len(s.messages) - 1, tc
            if tc.id in s._early:
                _insert_tool_result(s, s._early.pop(tc.id))
        if (rec.text or "").strip():
            s.researcher_text.append(rec.text)
        s.finish_unreviewed = False
    elif isinstance(rec, R.ToolResultRecord):
        cid = str(rec.call_id)
        _insert_tool_result(s, Message.tool_result(cid, rec.text, name=rec.name, is_error=bool(rec.is_error)))
        s._answered.add(cid)
        if rec.name == "finish" and not rec.is_error and cid in s._calls:
            s.finish_unreviewed = True
            s.summary = str(s._calls[cid].arguments.get("summary") or rec.text or "")
    elif isinstance(rec, R.LlmCall):
        s.usd += rec.cost_usd
        s.llm_calls += 1
        s.input_tokens += rec.input_tokens
        s.output_tokens += rec.output_tokens
        if rec.agent == "researcher":
            s.turns += 1
            s.last_prompt_tokens = rec.input_tokens
    elif isinstance(rec, R.Experiment):
        s.since_improvement = 0 if s.is_improvement(rec.score) else s.since_improvement + 1
        s.simulations += 1  # one per experiment (older journals recorded seeds here)
        s.experiments.append(_record_dict(rec, raw))
    elif isinstance(rec, R.Baseline):
        s.baseline = _record_dict(rec, raw)
    elif isinstance(rec, R.SupervisorReview):
        s.reviews.append(_record_dict(rec, raw))
        s.experiments_at_review, s.turn_at_review = int(rec.experiments), int(rec.turn)
        s.finish_unreviewed = False
        if rec.finished_turn and rec.kind in ("proceed", "stop"):  # the Supervisor lets the study end
            s.finish_accepted = True
    elif isinstance(rec, R.InterventionQueued):
        s.pending[rec.id] = Intervention(rec.id, rec.kind, rec.text, rec.reason, rec.trigger)
        s.interventions_text.append(f"({rec.kind}) {rec.text}")
    elif isinstance(rec, R.InterventionApproved):
        iv = s.pending.pop(rec.id, None)
        if iv is None:  # auto approval: the record carries the intervention itself
            s.interventions_text.append(f"({rec.kind}) {rec.text}")
        s.outbox[rec.id] = ("supervisor", iv.text if iv else rec.text)
    elif isinstance(rec, R.InterventionEdited):
        s.pending.pop(rec.id, None)
        s.outbox[rec.id] = ("supervisor", rec.text)
    elif isinstance(rec, R.InterventionRejected):
        iv = s.pending.pop(rec.id, None)
        if iv is not None and iv.trigger == "finish":  # the Researcher's finish stands
            s.finish_accepted = True
    elif isinstance(rec, R.Nudge):
        s.nudges.append(rec.text)
        s.outbox[f"nudge-{raw.get('seq')}"] = ("person", rec.text)
    elif isinstance(rec, R.ApprovalPolicy):
        s.approval = rec.approval
    elif isinstance(rec, R.Resumed):
        s.approval = rec.approval or s.approval
        if s.ended and not s.outbox and s.messages:  # an ended study, resumed: ask it to go on
            s.outbox["resume"] = ("loop", RESUME_TEXT)
        s.ended = False
    elif isinstance(rec, R.Restarted):
        s.finish_accepted = False
        if s.messages and s.messages[-1].role != "user" and not s.outbox:
            s.outbox["resume"] = ("loop", RESUME_TEXT)
        s.ended = False
    elif isinstance(rec, R.Finished):
        s.ended, s.finish_accepted, s.finish_unreviewed = True, False, False
        s.end = _record_dict(rec, raw)
    return s
