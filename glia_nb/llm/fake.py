"""A scripted, offline ``LLMClient`` for tests, demos and notebooks without API keys."""

from __future__ import annotations

from typing import Callable, Iterable, Sequence, Union

from glia_nb.llm.accounting import UsageLedger
from glia_nb.llm.retry import LLMError
from glia_nb.llm.types import Completion, Message, ToolSpec, Usage

Reply = Union[Message, str, Callable[[list[Message], list[ToolSpec]], Message]]


def _estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)  # rough chars-per-token rule; only for display


class ScriptedClient:
    """Replays a fixed list of replies, one per ``complete`` call.

    A reply is a :class:`Message`, a string (an assistant text turn) or a callable
    ``(messages, tools) -> Message``. Every call's ``(messages, tools)`` is kept in
    ``self.calls``. Running past the script raises :class:`LLMError`. Costs are 0 and
    token counts are a rough estimate from text length.
    """

    provider = "scripted"
    secrets: tuple[str, ...] = ()  # holds no credentials

    def __init__(
        self,
        replies: Iterable[Reply],
        *,
        model: str = "scripted",
        context_window: int = 200_000,
        ledger: UsageLedger | None = None,
    ) -> None:
        self.model = model
        self.context_window = context_window
        self.ledger = ledger
        self._replies = list(replies)
        self.calls: list[tuple[list[Message], list[ToolSpec]]] = []

    @property
    def remaining(self) -> int:
        """Replies not yet used."""
        return len(self._replies) - len(self.calls)

    def complete(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] | None = None,
        *,
        max_tokens: int = 8192,
        temperature: float | None = None,
    ) -> Completion:
        """Return the next scripted reply as a Completion."""
        msgs, tool_list = list(messages), list(tools or ())
        index = len(self.calls)
        if index >= len(self._replies):
            raise LLMError(
                f"scripted:{self.model} has no reply left (script of {len(self._replies)})",
                provider=self.provider,
                model=self.model,
            )
        self.calls.append((msgs, tool_list))
        reply = self._replies[index]
        if callable(reply) and not isinstance(reply, Message):
            reply = reply(msgs, tool_list)
        message = Message.assistant(reply) if isinstance(reply, str) else reply
        if message.role != "assistant":
            raise ValueError(f"scripted reply {index} has role {message.role!r}, expected 'assistant'")
        usage = Usage(
            input_tokens=sum(_estimate_tokens(m.content) for m in msgs),
            output_tokens=_estimate_tokens(message.content + "".join(t.raw_arguments for t in message.tool_calls)),
        )
        completion = Completion(
            message=message,
            usage=usage,
            cost_usd=0.0,
            model=self.model,
            provider=self.provider,
            stop_reason="tool_use" if message.tool_calls else "end_turn",
            latency_s=0.0,
            cost_known=True,
        )
        if self.ledger is not None:
            self.ledger.record(completion)
        return completion
