"""The Supervisor: the agent loop with no tools, watching ideas and results, never code.

It sees only the task text, the Researcher's own words (assistant message text, never
tool calls or tool output) and the experiment ledger, and answers with a decision:
``proceed`` (no intervention) or an intervention (``question``, ``recall``, ``redirect``,
``stop``). :meth:`Supervisor.should_review` says *when* to ask it; the session decides
what to do with the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from glia_nb.research.agent import Agent, AgentConfig, StepResult
from glia_nb.text import load_prompt
from glia_nb.llm.types import Message

__all__ = [
    "DECISION_KINDS",
    "Decision",
    "ReviewContext",
    "ReviewState",
    "Supervisor",
    "SupervisorConfig",
    "review_trigger",
    "parse_decision",
    "strip_code",
]

DECISION_KINDS = ("proceed", "question", "recall", "redirect", "stop")
TRIGGERS = ("finish", "stall", "idle", "every_n_turns", "manual")

# Words models use instead of the exact tag; mapping them keeps a near-miss from being
# read as "proceed" and silently dropping an intervention.
_SYNONYMS = {
    "continue": "proceed", "approve": "proceed", "approved": "proceed", "ok": "proceed", "none": "proceed",
    "ask": "question", "questions": "question", "probe": "question",
    "remind": "recall", "reminder": "recall",
    "refocus": "redirect", "focus": "redirect",
    "halt": "stop", "end": "stop", "finish": "stop", "abandon": "stop",
}
_WORDS = "|".join(sorted(set(DECISION_KINDS) | set(_SYNONYMS), key=len, reverse=True))
_TAG = re.compile(rf"^[\s>*_#`\[]*decision[\s*_`\]]*[:=\-]?[\s*_`\[]*({_WORDS})\b", re.IGNORECASE)
_BARE = re.compile(rf"^[\s>*_#`]*(?:\[({_WORDS})\]|({_WORDS})[\s*_`]*(?:[:.\-]|$))", re.IGNORECASE)
_REASON = re.compile(r"^[\s>*_#`]*reason[\s*_`]*[:=\-]\s*(.*)$", re.IGNORECASE)
_MESSAGE = re.compile(r"^[\s>*_#`]*message[\s*_`]*[:=\-]?\s*(.*)$", re.IGNORECASE)


@dataclass(frozen=True)
class SupervisorConfig:
    """When the Supervisor reviews, and how it is called.

    ``stall_experiments``: review after this many experiments in a row without a new best
    score (None: never). ``every_n_turns``: review every n Researcher turns (None: never).
    ``trigger_on_idle``: review when the Researcher ends a turn without calling any tool,
    the usual sign that it is reporting or about to give up.
    """

    trigger_on_finish: bool = True
    stall_experiments: int | None = 3
    every_n_turns: int | None = None
    trigger_on_idle: bool = True
    max_tokens: int = 2048
    temperature: float | None = None
    max_context_chars: int = 40_000

    def __post_init__(self) -> None:
        for name in ("stall_experiments", "every_n_turns"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"SupervisorConfig.{name} must be >= 1 or None, got {value!r}")


@dataclass(frozen=True)
class ReviewState:
    """What :meth:`Supervisor.should_review` looks at after each Researcher turn."""

    turn: int
    finished: bool = False
    idle: bool = False
    experiments: int = 0
    experiments_since_improvement: int = 0
    experiments_at_last_review: int = 0
    turn_at_last_review: int = 0


@dataclass(frozen=True)
class ReviewContext:
    """Everything the Supervisor may see. ``researcher_text`` holds the Researcher's
    message texts, oldest first; ``previous`` the Supervisor's earlier interventions."""

    task_text: str
    researcher_text: Sequence[str]
    ledger_summary: str
    trigger: str
    previous: Sequence[str] = ()
    budget_summary: str = ""
    # The same results as data (journal experiment records, the baseline record) and the
    # layer under design, for a Supervisor that reads them rather than the rendered prompt.
    experiments: Sequence[Mapping[str, Any]] = ()
    baseline: Mapping[str, Any] | None = None
    layer: str = ""


@dataclass(frozen=True)
class Decision:
    """The Supervisor's answer. ``text`` is the message for the Researcher, ``reason`` the
    one-line rationale for the person; ``parsed`` is False when no tag was found (then the
    kind is ``proceed`` and ``raw`` keeps the model's text for the journal)."""

    kind: str
    text: str = ""
    reason: str = ""
    trigger: str = ""
    raw: str = ""
    parsed: bool = True
    step: StepResult | None = field(default=None, compare=False, repr=False)

    @property
    def intervenes(self) -> bool:
        """True for any decision other than ``proceed``."""
        return self.kind != "proceed"

    @property
    def message(self) -> str:
        """What to send the Researcher: the text, else the reason, else a stock line (a
        model sometimes gives only the tag; an empty intervention would waste a turn)."""
        return self.text.strip() or self.reason.strip() or _STOCK.get(self.kind, "")


_STOCK = {
    "question": "Before going on: what does the evidence so far say about where the time goes?",
    "recall": "Look back at your earlier experiments: which findings have you not used yet?",
    "redirect": "Remember the objective, the rules of the task and the budget left.",
    "stop": "This line of work is not paying off; step back and reconsider the bottleneck.",
}


def parse_decision(text: str) -> tuple[str, str, str, bool]:
    """Read ``(kind, message, reason, parsed)`` from a Supervisor reply, leniently.

    Accepts ``DECISION: question`` (any case, markdown decoration, synonyms such as
    ``continue`` or ``ask``), or a bare first word like ``Question:``. The message is the
    text after a ``MESSAGE:`` line or, without one, everything except the tag and reason
    lines. An unreadable reply gives ``("proceed", text, "", False)``.
    """
    lines = (text or "").strip().splitlines()
    kind: str | None = None
    reason = ""
    body: list[str] = []
    message_started = False
    for i, line in enumerate(lines):
        if message_started:
            body.append(line)
            continue
        if kind is None and i < 5:
            m = _TAG.match(line) or (_BARE.match(line) if i == 0 else None)
            if m:
                word = next(g for g in m.groups() if g).lower()
                kind = _SYNONYMS.get(word, word)
                rest = line[m.end():].strip(" *_`]:.-")
                if rest:
                    body.append(rest)
                continue
        m = _REASON.match(line)
        if m and not reason:
            reason = m.group(1).strip()
            continue
        m = _MESSAGE.match(line)
        if m:
            message_started = True
            body = [m.group(1)] if m.group(1).strip() else []
            continue
        body.append(line)
    message = "\n".join(body).strip()
    if kind is None:
        return "proceed", (text or "").strip(), "", False
    return kind, message, reason, True


_FENCE = re.compile(r"(^|\n)[ \t]*(```|~~~)[^\n]*\n.*?(\n[ \t]*\2[^\n]*(?=\n|$)|$)", re.DOTALL)


def strip_code(text: str) -> str:
    """``text`` with fenced code blocks replaced by a marker: the Supervisor judges ideas
    and evidence, never code (an unclosed fence hides the rest of the message)."""
    return _FENCE.sub(lambda m: f"{m.group(1)}[code omitted]", text)


def render_review_prompt(context: ReviewContext, max_chars: int) -> str:
    """The user message of one review: task, ledger, the Researcher's recent words."""
    recent: list[str] = []
    used = 0
    texts = [strip_code(t) for t in context.researcher_text if t.strip()]
    # Newest first until the character budget is spent: the latest reasoning matters most.
    for text in reversed(texts):
        if used + len(text) > max_chars and recent:
            break
        recent.append(text[-max_chars:])
        used += len(text)
    omitted = len(texts) - len(recent)
    parts = [
        f"# Review requested ({context.trigger})",
        _TRIGGER_NOTES.get(context.trigger, ""),
        "## Task given to the Researcher", context.task_text.strip(),
        "## Experiment ledger", context.ledger_summary.strip() or "(no experiments yet)",
    ]
    if context.budget_summary:
        parts += ["## Budget", context.budget_summary.strip()]
    if context.previous:
        parts += ["## Your earlier interventions", "\n\n".join(f"- {p}" for p in context.previous)]
    header = "## The Researcher's messages" + (f" ({omitted} earlier ones omitted)" if omitted else "")
    parts += [header, "\n\n---\n\n".join(reversed(recent)) or "(none yet)"]
    parts.append("Reply in the required form, starting with the DECISION line.")
    return "\n\n".join(p for p in parts if p)


_TRIGGER_NOTES = {
    "finish": "The Researcher has called finish and wants to end the study. Decide whether it may.",
    "stall": "Several experiments in a row have not improved the best score.",
    "idle": "The Researcher ended its turn without using a tool.",
    "every_n_turns": "This is a periodic check-in.",
    "manual": "The person overseeing the study asked for a review.",
}


class Supervisor:
    """Decides when to review and reviews; one model call per review, no tools."""

    def __init__(self, client: Any, config: SupervisorConfig | None = None, *, system_prompt: str | None = None) -> None:
        self.config = config or SupervisorConfig()
        prompt = system_prompt if system_prompt is not None else load_prompt("supervisor_system")
        self.agent = Agent(
            client,
            AgentConfig(
                name="supervisor", system_prompt=prompt, tools=False,
                max_tokens=self.config.max_tokens, temperature=self.config.temperature,
            ),
        )

    @property
    def model(self) -> str:
        """The Supervisor's model name."""
        return self.agent.model

    @property
    def provider(self) -> str:
        """The Supervisor's model provider."""
        return str(getattr(self.agent.client, "provider", ""))

    def should_review(self, state: ReviewState) -> str | None:
        """The trigger that calls for a review now (``finish``, ``stall``, ``idle``,
        ``every_n_turns``), or None."""
        return review_trigger(self.config, state)

    def review(self, context: ReviewContext) -> Decision:
        """Ask the model for a decision on ``context``; LLM errors propagate."""
        prompt = render_review_prompt(context, self.config.max_context_chars)
        step = self.agent.step([Message.user(prompt)])
        raw = step.assistant.content
        kind, text, reason, parsed = parse_decision(raw)
        return Decision(kind=kind, text=text, reason=reason, trigger=context.trigger, raw=raw, parsed=parsed, step=step)

    def __repr__(self) -> str:
        return f"Supervisor(model={self.model!r}, config={self.config})"


def review_trigger(cfg: SupervisorConfig, state: ReviewState) -> str | None:
    """The trigger that calls for a review now under ``cfg`` (``finish``, ``stall``,
    ``idle``, ``every_n_turns``), or None: one rule for every Supervisor."""
    if state.finished:
        return "finish" if cfg.trigger_on_finish else None
    k = cfg.stall_experiments
    if (
        k is not None
        and state.experiments_since_improvement >= k
        and state.experiments - state.experiments_at_last_review >= k
    ):
        return "stall"
    if cfg.trigger_on_idle and state.idle:
        return "idle"
    n = cfg.every_n_turns
    if n is not None and state.turn - state.turn_at_last_review >= n:
        return "every_n_turns"
    return None
