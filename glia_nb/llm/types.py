"""Provider-neutral message and tool types for the LLM client layer.

Every type here is a frozen dataclass that converts to and from JSON-native dicts
(``to_dict`` / ``from_dict``), so a conversation can be written to the journal and
rebuilt from it when a session resumes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Sequence

Role = Literal["system", "user", "assistant", "tool"]
ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")

# Both Anthropic and OpenAI restrict tool names to this alphabet and length; checking
# early turns a 400 from the API into a clear error at definition time.
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class ToolSpec:
    """A tool the model may call: a name, a description and a JSON-schema for its arguments."""

    name: str
    description: str
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )

    def __post_init__(self) -> None:
        if not _TOOL_NAME.match(self.name):
            raise ValueError(
                f"tool name {self.name!r} must be 1-64 characters of letters, digits, '_' or '-'"
            )
        if not isinstance(self.parameters, Mapping) or self.parameters.get("type") != "object":
            # Anthropic rejects any other top-level schema type; OpenAI functions too.
            raise ValueError(f"tool {self.name!r}: parameters must be a JSON schema with type 'object'")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-native dict."""
        return {"name": self.name, "description": self.description, "parameters": dict(self.parameters)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ToolSpec":
        """Rebuild a ToolSpec from :meth:`to_dict` output."""
        return cls(d["name"], d.get("description", ""), d.get("parameters") or {"type": "object", "properties": {}})


def parse_tool_arguments(raw: str | None) -> tuple[dict[str, Any], str | None]:
    """Parse a tool call's JSON argument text without raising.

    Returns ``(arguments, parse_error)``. Models sometimes emit invalid JSON; the agent
    loop reports the error back to the model instead of crashing, so failures become
    ``({}, "message")``. An empty string means "no arguments" (some local servers send it).
    """
    if raw is None or not raw.strip():
        return {}, None
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, RecursionError) as exc:
        return {}, f"arguments are not valid JSON: {exc}"
    if not isinstance(value, dict):
        return {}, f"arguments must be a JSON object, got {type(value).__name__}"
    return value, None


@dataclass(frozen=True)
class ToolCall:
    """One tool invocation requested by the model.

    ``arguments`` is the parsed object; ``raw_arguments`` the text the model produced.
    When the text is not a JSON object, ``arguments`` is ``{}`` and ``parse_error`` says why.
    """

    id: str
    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    raw_arguments: str = ""
    parse_error: str | None = None

    @classmethod
    def from_raw(cls, id: str, name: str, raw_arguments: str | None) -> "ToolCall":
        """Build a ToolCall from argument text, recording (not raising) a parse error."""
        args, err = parse_tool_arguments(raw_arguments)
        return cls(id=id, name=name, arguments=args, raw_arguments=raw_arguments or "", parse_error=err)

    @classmethod
    def from_arguments(cls, id: str, name: str, arguments: Mapping[str, Any]) -> "ToolCall":
        """Build a ToolCall from an already-parsed argument object."""
        return cls(id=id, name=name, arguments=dict(arguments), raw_arguments=json.dumps(dict(arguments)))

    @property
    def ok(self) -> bool:
        """True when the arguments parsed as a JSON object."""
        return self.parse_error is None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-native dict."""
        d: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "arguments": dict(self.arguments),
            "raw_arguments": self.raw_arguments,
        }
        if self.parse_error is not None:
            d["parse_error"] = self.parse_error
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ToolCall":
        """Rebuild a ToolCall from :meth:`to_dict` output."""
        return cls(
            id=d["id"],
            name=d["name"],
            arguments=dict(d.get("arguments") or {}),
            raw_arguments=d.get("raw_arguments", ""),
            parse_error=d.get("parse_error"),
        )


@dataclass(frozen=True)
class Message:
    """One conversation turn.

    ``tool_calls`` only on assistant messages; ``tool_call_id`` (required) on tool
    messages, which carry a tool's result in ``content``. ``name`` is bookkeeping (the
    tool's name on a tool message, a speaker label on a user message) and is not sent to
    the providers. ``is_error`` marks a failed tool result (Anthropic's ``is_error``).
    """

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    is_error: bool = False

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; expected one of {ROLES}")
        if not isinstance(self.content, str):
            raise TypeError(f"Message.content must be str, got {type(self.content).__name__}")
        if not isinstance(self.tool_calls, tuple):
            object.__setattr__(self, "tool_calls", tuple(self.tool_calls))
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only assistant messages may carry tool_calls")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("tool messages need the tool_call_id they answer")

    # Convenience constructors keep call sites short in the agent loop and notebooks.
    @classmethod
    def system(cls, content: str) -> "Message":
        """A system prompt."""
        return cls("system", content)

    @classmethod
    def user(cls, content: str, name: str | None = None) -> "Message":
        """A user turn (``name`` labels the speaker, e.g. ``"supervisor"``)."""
        return cls("user", content, name=name)

    @classmethod
    def assistant(cls, content: str = "", tool_calls: Sequence[ToolCall] = ()) -> "Message":
        """An assistant turn, optionally with tool calls."""
        return cls("assistant", content, tool_calls=tuple(tool_calls))

    @classmethod
    def tool_result(
        cls, tool_call_id: str, content: str, *, name: str | None = None, is_error: bool = False
    ) -> "Message":
        """The result of the tool call ``tool_call_id``."""
        return cls("tool", content, tool_call_id=tool_call_id, name=name, is_error=is_error)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-native dict, omitting fields at their defaults."""
        d: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            d["tool_calls"] = [tc.to_dict() for tc in self.tool_calls]
        if self.tool_call_id is not None:
            d["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            d["name"] = self.name
        if self.is_error:
            d["is_error"] = True
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Message":
        """Rebuild a Message from :meth:`to_dict` output."""
        return cls(
            role=d["role"],
            content=d.get("content") or "",
            tool_calls=tuple(ToolCall.from_dict(t) for t in d.get("tool_calls") or ()),
            tool_call_id=d.get("tool_call_id"),
            name=d.get("name"),
            is_error=bool(d.get("is_error", False)),
        )


@dataclass(frozen=True)
class Usage:
    """Token counts of one or more calls.

    ``input_tokens`` counts *all* prompt tokens, including those read from or written to
    the provider's prompt cache; ``cache_read_tokens`` and ``cache_write_tokens`` are the
    parts of it billed at the cache rates.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def __add__(self, other: "Usage") -> "Usage":
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
        )

    def to_dict(self) -> dict[str, int]:
        """Return a JSON-native dict."""
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Usage":
        """Rebuild a Usage from :meth:`to_dict` output."""
        return cls(
            int(d.get("input_tokens", 0)),
            int(d.get("output_tokens", 0)),
            int(d.get("cache_read_tokens", 0)),
            int(d.get("cache_write_tokens", 0)),
        )


@dataclass(frozen=True)
class Completion:
    """The result of one ``LLMClient.complete`` call.

    ``stop_reason`` uses a neutral vocabulary: ``end_turn``, ``tool_use``, ``max_tokens``,
    ``stop_sequence``, ``refusal`` (other provider values pass through unchanged).
    ``latency_s`` is wall time including retries; ``attempts`` counts HTTP attempts.
    ``cost_known`` is False when the model has no price (cost then reads 0).
    """

    message: Message
    usage: Usage
    cost_usd: float
    model: str
    provider: str
    stop_reason: str
    latency_s: float
    cost_known: bool = True
    attempts: int = 1

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-native dict."""
        return {
            "message": self.message.to_dict(),
            "usage": self.usage.to_dict(),
            "cost_usd": self.cost_usd,
            "model": self.model,
            "provider": self.provider,
            "stop_reason": self.stop_reason,
            "latency_s": self.latency_s,
            "cost_known": self.cost_known,
            "attempts": self.attempts,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Completion":
        """Rebuild a Completion from :meth:`to_dict` output."""
        return cls(
            message=Message.from_dict(d["message"]),
            usage=Usage.from_dict(d.get("usage") or {}),
            cost_usd=float(d.get("cost_usd", 0.0)),
            model=d.get("model", ""),
            provider=d.get("provider", ""),
            stop_reason=d.get("stop_reason", ""),
            latency_s=float(d.get("latency_s", 0.0)),
            cost_known=bool(d.get("cost_known", True)),
            attempts=int(d.get("attempts", 1)),
        )


def messages_to_dicts(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Serialize a conversation to a list of JSON-native dicts."""
    return [m.to_dict() for m in messages]


def messages_from_dicts(items: Sequence[Mapping[str, Any]]) -> list[Message]:
    """Rebuild a conversation from :func:`messages_to_dicts` output."""
    return [Message.from_dict(d) for d in items]
