"""The one tool-use loop. The Researcher and the Supervisor are two configurations of it.

``Agent.step(messages)`` makes exactly one model call and runs every tool call in the reply
through the toolbox. Malformed arguments and failing tools go back to the model as error
tool results, so the model can correct itself and the loop never raises for them. The
caller (a :class:`~glia_nb.research.session.session.Session`, a test, a notebook cell) owns the
conversation and decides when to stop, which keeps this module small.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Sequence

from glia_nb.llm.types import Completion, Message, ToolCall, ToolSpec, Usage
from glia_nb.text import truncate_middle

__all__ = ["Agent", "AgentConfig", "Researcher", "StepResult", "ToolBoxLike", "ToolOutcome"]

FINISH_TOOL = "finish"
# The event hook gets ("reply", {"completion": ...}) right after the model answers and
# ("tool", {"call", "message", "outcome"}) after each tool, so a session can journal as it goes.
EventHook = Callable[[str, Mapping[str, Any]], None]


class ToolBoxLike(Protocol):
    """What the loop needs from a toolbox (``glia_nb.research.tools.ToolBox`` satisfies it)."""

    def specs(self) -> list[ToolSpec]: ...

    def call(self, name: str, arguments: Mapping[str, Any]) -> Any: ...  # -> ToolResult(text, is_error, data)


class Researcher(Protocol):
    """Anything the session can drive: an :class:`Agent` or a rule-based stand-in."""

    def step(self, messages: Sequence[Message], on_event: EventHook | None = None) -> "StepResult": ...


@dataclass(frozen=True)
class AgentConfig:
    """One configuration of the loop. ``max_tool_chars`` caps a tool result sent back to
    the model (head and tail are kept: errors and summaries tend to sit at the end)."""

    name: str
    system_prompt: str
    tools: bool = True
    max_tokens: int = 8192
    temperature: float | None = None
    max_tool_chars: int = 20_000


@dataclass(frozen=True)
class ToolOutcome:
    """One executed tool call: what the model asked for and what came back."""

    call_id: str
    name: str
    arguments: Mapping[str, Any]
    text: str
    is_error: bool
    data: Any = None


@dataclass(frozen=True)
class StepResult:
    """One turn of an agent: its assistant message, the tool result messages that answer
    it (same order as the tool calls), usage and cost, and whether ``finish`` was called."""

    assistant: Message
    tool_messages: tuple[Message, ...] = ()
    outcomes: tuple[ToolOutcome, ...] = ()
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    model: str = ""
    stop_reason: str = ""
    finished: bool = False
    finish_summary: str | None = None
    completion: Completion | None = None  # None for researchers that call no model

    @property
    def messages(self) -> tuple[Message, ...]:
        """The messages to append to the conversation."""
        return (self.assistant, *self.tool_messages)

    @property
    def prompt_tokens(self) -> int:
        """Prompt size of this turn's call (how full the context window is)."""
        return self.usage.input_tokens


class Agent:
    """A model plus (optionally) a toolbox, advanced one call at a time."""

    def __init__(self, client: Any, config: AgentConfig, toolbox: ToolBoxLike | None = None) -> None:
        if config.tools and toolbox is None:
            raise ValueError(f"agent {config.name!r} is configured with tools but got no toolbox")
        self.client = client
        self.config = config
        self.toolbox = toolbox if config.tools else None

    @property
    def model(self) -> str:
        """The client's model name."""
        return str(getattr(self.client, "model", ""))

    def step(self, messages: Sequence[Message], on_event: EventHook | None = None) -> StepResult:
        """One model call on ``messages`` (without the system prompt, which is prepended
        here), then every tool call executed in order. LLM errors propagate."""
        emit = on_event or (lambda kind, payload: None)
        specs = list(self.toolbox.specs()) if self.toolbox is not None else None
        convo = [Message.system(self.config.system_prompt), *messages]
        completion = self.client.complete(
            convo, specs or None, max_tokens=self.config.max_tokens, temperature=self.config.temperature
        )
        emit("reply", {"completion": completion})
        tool_messages: list[Message] = []
        outcomes: list[ToolOutcome] = []
        summary: str | None = None
        for call in completion.message.tool_calls:
            outcome = self._run_tool(call)
            message = Message.tool_result(call.id, outcome.text, name=call.name, is_error=outcome.is_error)
            tool_messages.append(message)
            outcomes.append(outcome)
            emit("tool", {"call": call, "message": message, "outcome": outcome})
            if call.name == FINISH_TOOL and not outcome.is_error and summary is None:
                summary = str(call.arguments.get("summary") or outcome.text)
        return StepResult(
            assistant=completion.message,
            tool_messages=tuple(tool_messages),
            outcomes=tuple(outcomes),
            usage=completion.usage,
            cost_usd=completion.cost_usd,
            model=completion.model,
            stop_reason=completion.stop_reason,
            finished=summary is not None,
            finish_summary=summary,
            completion=completion,
        )

    def _run_tool(self, call: ToolCall) -> ToolOutcome:
        # Every failure becomes an error result the model reads; raising here would end the
        # study over a typo in a tool argument.
        def fail(text: str) -> ToolOutcome:
            return ToolOutcome(call.id, call.name, dict(call.arguments), text, True)

        if call.parse_error is not None:
            return fail(f"Tool call not run: {call.parse_error}. Send the arguments as one JSON object.")
        if self.toolbox is None:
            return fail(f"Agent {self.config.name!r} has no tools; {call.name!r} was not run.")
        try:
            result = self.toolbox.call(call.name, dict(call.arguments))
        except Exception as exc:  # a toolbox bug must not kill the study either
            return fail(f"Tool {call.name!r} crashed: {type(exc).__name__}: {exc}")
        text = truncate_middle(str(getattr(result, "text", result)), self.config.max_tool_chars)
        return ToolOutcome(
            call.id, call.name, dict(call.arguments), text, bool(getattr(result, "is_error", False)),
            getattr(result, "data", None),
        )

    def __repr__(self) -> str:
        return f"Agent({self.config.name!r}, model={self.model!r}, tools={self.config.tools})"
