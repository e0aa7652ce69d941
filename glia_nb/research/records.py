"""The journal's schema: one typed record per event, the header, and the tolerant reader.

Every writer builds one of these records and every reader parses journal lines through
:func:`parse`, so the field names live here and nowhere else. A record's ``to_dict()`` is
what :meth:`glia_nb.research.journal.Journal.write` appends (the journal adds ``seq`` and
``ts``); ``from_dict`` reads both today's shape and the shape older glia-nb wrote (journals
without a ``schema`` field in the header), so old studies still report and resume.

Schema history:

* 1 (no ``schema`` field): token counts nested under ``usage`` in ``llm_call``; a few early
  journals and hand-made fixtures have them at the top of the record instead, and call the
  last record ``session_end``. Both are read.
* 2: the header carries ``schema``; a ``supervisor_review`` says whether it answered a turn
  that called ``finish`` (``finished_turn``), so a resume knows the Supervisor let it end.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

__all__ = [
    "SCHEMA_VERSION", "ENDED", "HEADER", "RECORD_TYPES", "Record", "Header", "UserMessage", "Assistant",
    "ToolResultRecord", "LlmCall", "Experiment", "Baseline", "SupervisorReview", "InterventionQueued",
    "InterventionApproved", "InterventionEdited", "InterventionRejected", "Nudge", "ApprovalPolicy", "Resumed",
    "Restarted", "Control", "BudgetExhausted", "ContextLimit", "Error", "Finished", "parse", "parse_header",
    "usage_tokens", "record_type", "CONTROL_TYPES",
]

SCHEMA_VERSION = 2
#: The statuses a session ends in (the ``status`` of a ``finished`` record).
ENDED = ("stopped", "finished", "failed")
HEADER = "header"

_LEGACY_TYPES = {"session_end": "finished"}  # an old name -> today's


@dataclass(frozen=True)
class Record:
    """Base of every journal record: ``TYPE`` names it, ``wall_s`` is the study's active
    wall time when it was written; ``seq``/``ts`` are filled in when read back."""

    TYPE: ClassVar[str] = ""
    wall_s: float = 0.0
    seq: int | None = None
    ts: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fields to journal (without ``type``, ``seq`` and ``ts``, which the journal owns)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for k in ("seq", "ts"):
            d.pop(k)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Record":
        """Read a record dict, ignoring fields this version does not know and defaulting
        missing ones (tolerant of older and newer writers)."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in cls._migrate(dict(d)).items() if k in names}
        kwargs["wall_s"] = float(kwargs.get("wall_s") or 0.0)
        return cls(**kwargs)

    @classmethod
    def _migrate(cls, d: dict[str, Any]) -> dict[str, Any]:
        return d


@dataclass(frozen=True)
class Header:
    """The first line of a journal (``seq`` 0). ``fields`` keeps everything the session put
    there (task, budget, researcher, approval, ...)."""

    fields: Mapping[str, Any] = field(default_factory=dict)

    @property
    def schema(self) -> int:
        """The schema version the journal was written with (1 when the header has none)."""
        return int(self.fields.get("schema") or 1)

    @property
    def lower_is_better(self) -> bool:
        """The recorded task's objective direction (lower is better unless it says max)."""
        task = self.fields.get("task") or {}
        return ((task.get("objective") or {}) if isinstance(task, Mapping) else {}).get("direction", "min") != "max"

    def get(self, key: str, default: Any = None) -> Any:
        """A header field."""
        return self.fields.get(key, default)


def parse_header(d: Mapping[str, Any]) -> Header:
    """The typed header of a journal's first record."""
    if d.get("type") != HEADER:
        raise ValueError(f"not a journal header: type {d.get('type')!r}")
    return Header(dict(d))


@dataclass(frozen=True)
class UserMessage(Record):
    """A message delivered to the Researcher: the task, a Supervisor intervention, a nudge."""

    TYPE: ClassVar[str] = "user_message"
    source: str = ""
    source_id: str = ""
    text: str = ""


@dataclass(frozen=True)
class Assistant(Record):
    """One Researcher reply: its text and tool calls (``ToolCall.to_dict`` shapes)."""

    TYPE: ClassVar[str] = "assistant"
    agent: str = "researcher"
    text: str = ""
    tool_calls: tuple = ()


@dataclass(frozen=True)
class ToolResultRecord(Record):
    """What a tool call returned to the Researcher."""

    TYPE: ClassVar[str] = "tool_result"
    call_id: str = ""
    name: str | None = None
    is_error: bool = False
    text: str = ""


def usage_tokens(usage: Mapping[str, Any] | None) -> tuple[int, int]:
    """``(input_tokens, output_tokens)`` of a usage dict (missing counts are 0)."""
    u = usage or {}
    return int(u.get("input_tokens") or 0), int(u.get("output_tokens") or 0)


@dataclass(frozen=True)
class LlmCall(Record):
    """One model call (or one rule-based Researcher turn): tokens under ``usage``, cost."""

    TYPE: ClassVar[str] = "llm_call"
    agent: str = ""
    model: str = ""
    provider: str = ""
    usage: Mapping[str, Any] = field(default_factory=dict)
    cost_usd: float = 0.0
    cost_known: bool = True
    stop_reason: str = ""
    latency_s: float = 0.0
    attempts: int = 1
    tool_mode: str = ""  # "text": the model acted through the plain-text tool protocol

    @classmethod
    def _migrate(cls, d: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(d.get("usage"), Mapping):  # flat token counts (schema 1 variants)
            d["usage"] = {k: int(d.get(k) or 0) for k in ("input_tokens", "output_tokens")}
        d["cost_usd"] = float(d.get("cost_usd") or 0.0)
        return d

    @property
    def input_tokens(self) -> int:
        """Prompt tokens of the call."""
        return usage_tokens(self.usage)[0]

    @property
    def output_tokens(self) -> int:
        """Completion tokens of the call."""
        return usage_tokens(self.usage)[1]


@dataclass(frozen=True)
class Experiment(Record):
    """One ``run_experiment`` the harness ran; ``score`` is None when it failed or broke a
    constraint (``ok`` then tells which)."""

    TYPE: ClassVar[str] = "experiment"
    id: Any = None
    name: str = ""
    hypothesis: str = ""
    score: float | None = None
    ok: bool = True
    simulations: int = 1      # the budget's charge: one per experiment (glia_nb.tasks.budget)
    seeds: int = 1            # how many seeds it simulated
    metrics: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    folder: str | None = None
    improved: bool = False

    @classmethod
    def from_tool_result(cls, arguments: Mapping[str, Any], result: Any) -> "Experiment | None":
        """The record of one ``run_experiment`` result, or None when nothing was simulated
        (refused, bad arguments, budget spent).

        Reads :class:`glia_nb.research.tools.ToolBox`'s data (``{"experiment": ledger row,
        "result": EvalResult dict}``) and, for other toolboxes, a flat dict with an ``id``.
        ``simulations`` is the budget's charge, always 1; ``seeds`` comes from the data, else
        the number of seeds listed, else 1.
        """
        from glia_nb.jsonable import finite_or_none, to_jsonable

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

        def safe(value: Any) -> Any:
            try:
                return to_jsonable(value)
            except TypeError:
                return repr(value)

        return cls(id=safe(exp_id), name=str(row.get("name") or arguments.get("name") or ""),
                   hypothesis=str(arguments.get("hypothesis") or row.get("hypothesis") or ""),
                   score=finite_or_none(row.get("score")), ok=ok, simulations=1, seeds=int(seeds),
                   metrics=safe(metrics) if isinstance(metrics, Mapping) else {},
                   error=str(error)[:500] if error else None, folder=row.get("folder"))


@dataclass(frozen=True)
class Baseline(Record):
    """The free evaluation of the task's baseline policy before the first turn."""

    TYPE: ClassVar[str] = "baseline"
    ok: bool = True
    score: float | None = None
    simulations: int = 0
    error: str | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SupervisorReview(Record):
    """The Supervisor's decision on one trigger."""

    TYPE: ClassVar[str] = "supervisor_review"
    trigger: str = ""
    kind: str = "proceed"
    text: str = ""
    reason: str = ""
    parsed: bool = True
    raw: str | None = None
    experiments: int = 0
    turn: int = 0
    finished_turn: bool = False


@dataclass(frozen=True)
class InterventionQueued(Record):
    """An intervention waiting for a person (manual approval)."""

    TYPE: ClassVar[str] = "intervention_queued"
    id: str = ""
    kind: str = ""
    text: str = ""
    reason: str = ""
    trigger: str = ""


@dataclass(frozen=True)
class InterventionApproved(Record):
    """An intervention on its way to the Researcher; ``auto`` ones carry it whole."""

    TYPE: ClassVar[str] = "intervention_approved"
    id: str = ""
    auto: bool = False
    kind: str = ""
    text: str = ""
    reason: str = ""
    trigger: str = ""


@dataclass(frozen=True)
class InterventionEdited(Record):
    """A person rewrote a pending intervention, then sent it."""

    TYPE: ClassVar[str] = "intervention_edited"
    id: str = ""
    text: str = ""
    original: str = ""


@dataclass(frozen=True)
class InterventionRejected(Record):
    """A person dropped a pending intervention."""

    TYPE: ClassVar[str] = "intervention_rejected"
    id: str = ""


@dataclass(frozen=True)
class Nudge(Record):
    """A person's message for the Researcher's next turn."""

    TYPE: ClassVar[str] = "nudge"
    text: str = ""


@dataclass(frozen=True)
class ApprovalPolicy(Record):
    """The approval mode changed (``auto`` or ``manual``)."""

    TYPE: ClassVar[str] = "approval_policy"
    approval: str = "auto"


@dataclass(frozen=True)
class Resumed(Record):
    """The session was rebuilt from its journal by a new process."""

    TYPE: ClassVar[str] = "resumed"
    dropped_bytes: int = 0
    budget_used: Mapping[str, Any] = field(default_factory=dict)
    pending: tuple = ()
    undelivered: tuple = ()
    approval: str | None = None


@dataclass(frozen=True)
class Restarted(Record):
    """An ended session was started again in the same process."""

    TYPE: ClassVar[str] = "restarted"
    previous: str = ""


@dataclass(frozen=True)
class Control(Record):
    """A person's ``pause``, ``resume`` (un-pause) or ``stop``: ``TYPE`` is per instance."""

    kind: str = "pause"

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d.pop("kind")
        return d


@dataclass(frozen=True)
class BudgetExhausted(Record):
    """A budget ran out; the study ends."""

    TYPE: ClassVar[str] = "budget_exhausted"
    reason: str = ""
    budget_used: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ContextLimit(Record):
    """The Researcher's prompt neared the model's window: older turns were folded into the
    research ``digest`` number ``number`` (the conversation restarts from it), or, with no
    digest, the study ends."""

    TYPE: ClassVar[str] = "context_limit"
    prompt_tokens: int = 0
    limit: int | None = None
    number: int = 0
    why: str = ""
    digest: str = ""


@dataclass(frozen=True)
class Error(Record):
    """The session's worker failed (it can be resumed from here)."""

    TYPE: ClassVar[str] = "error"
    error: str = ""
    kind: str | None = None  # a model failure's kind (see glia_nb.llm.retry.LLMError)


@dataclass(frozen=True)
class Finished(Record):
    """The last record of a run: how it ended and the best experiment then."""

    TYPE: ClassVar[str] = "finished"
    status: str = "finished"
    reason: str = ""
    best: Mapping[str, Any] | None = None
    best_score: float | None = None
    summary: str | None = None
    budget_used: Mapping[str, Any] = field(default_factory=dict)


#: The types of :class:`Control` records (a person's pause, un-pause and stop).
CONTROL_TYPES = ("pause", "resume", "stop")
RECORD_TYPES: dict[str, type[Record]] = {
    cls.TYPE: cls for cls in (
        UserMessage, Assistant, ToolResultRecord, LlmCall, Experiment, Baseline, SupervisorReview,
        InterventionQueued, InterventionApproved, InterventionEdited, InterventionRejected, Nudge, ApprovalPolicy,
        Resumed, Restarted, BudgetExhausted, ContextLimit, Error, Finished,
    )
}


def record_type(record: Record) -> str:
    """The journal ``type`` of a record object."""
    return record.kind if isinstance(record, Control) else record.TYPE


def parse(d: Mapping[str, Any]) -> Record | None:
    """The typed record of one journal line (header excluded), or None for a type this
    version does not know (readers skip those: a newer writer may add types)."""
    t = _LEGACY_TYPES.get(str(d.get("type")), d.get("type"))
    if t in CONTROL_TYPES:
        return Control(wall_s=float(d.get("wall_s") or 0.0), seq=d.get("seq"), ts=d.get("ts"), kind=str(t))
    cls = RECORD_TYPES.get(str(t))
    return None if cls is None else cls.from_dict(d)
