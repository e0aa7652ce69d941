"""Client for Anthropic's Messages API over the official ``anthropic`` SDK (sync client)."""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Mapping, Sequence

from glia_nb.llm.accounting import UsageLedger
from glia_nb.llm.base import DEFAULT_TIMEOUT_S, SDKClient, sdk_classifier
from glia_nb.llm.retry import LLMConfigError, LLMError, RetryPolicy
from glia_nb.llm.types import Message, ToolCall, ToolSpec, Usage

DEFAULT_ANTHROPIC_MODEL = "claude-opus-4-5"
_EMPTY = "(empty)"  # the API rejects empty text blocks and empty turns


def to_anthropic_tools(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """ToolSpecs → the Messages API ``tools`` parameter."""
    return [{"name": t.name, "description": t.description, "input_schema": dict(t.parameters)} for t in tools]


def to_anthropic_messages(messages: Sequence[Message]) -> tuple[str | None, list[dict[str, Any]]]:
    """Neutral messages → ``(system, messages)`` for the Messages API.

    System messages are joined into the separate ``system`` parameter. Tool results become
    ``tool_result`` blocks in a user turn; consecutive turns of one role are merged (the
    API wants the results of all parallel tool calls in the single user turn that follows
    the assistant's ``tool_use`` blocks), and within a user turn tool results go first.
    """
    system_parts: list[str] = []
    turns: list[dict[str, Any]] = []

    def push(role: str, blocks: list[dict[str, Any]]) -> None:
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": list(blocks)})

    for m in messages:
        if m.role == "system":
            if m.content:
                system_parts.append(m.content)
        elif m.role == "user":
            push("user", [{"type": "text", "text": m.content}] if m.content else [])
        elif m.role == "tool":
            block: dict[str, Any] = {"type": "tool_result", "tool_use_id": m.tool_call_id}
            if m.content:
                block["content"] = m.content
            if m.is_error:
                block["is_error"] = True
            push("user", [block])
        else:  # assistant
            blocks: list[dict[str, Any]] = [{"type": "text", "text": m.content}] if m.content else []
            for tc in m.tool_calls:
                blocks.append({"type": "tool_use", "id": tc.id, "name": tc.name, "input": dict(tc.arguments)})
            push("assistant", blocks)

    for turn in turns:
        content = turn["content"]
        if turn["role"] == "user":
            content.sort(key=lambda b: b["type"] != "tool_result")  # stable: results first
        if not content:
            content.append({"type": "text", "text": _EMPTY})
    system = "\n\n".join(system_parts) or None
    return system, turns


def from_anthropic_response(resp: Any) -> tuple[Message, Usage, str, str | None]:
    """SDK ``Message`` → ``(message, usage, stop_reason, served_model)``.

    Thinking and server-tool blocks are not part of the neutral message and are dropped.
    """
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in resp.content or ():
        kind = getattr(block, "type", None)
        if kind == "text":
            texts.append(block.text)
        elif kind == "tool_use":
            args = block.input
            if isinstance(args, dict):
                calls.append(ToolCall.from_arguments(block.id, block.name, args))
            else:
                calls.append(ToolCall(block.id, block.name, {}, repr(args), "tool input is not a JSON object"))
    u = resp.usage
    cache_read = int(getattr(u, "cache_read_input_tokens", None) or 0)
    cache_write = int(getattr(u, "cache_creation_input_tokens", None) or 0)
    # Anthropic's input_tokens excludes cached tokens; the neutral Usage counts all input.
    usage = Usage(
        input_tokens=int(getattr(u, "input_tokens", None) or 0) + cache_read + cache_write,
        output_tokens=int(getattr(u, "output_tokens", None) or 0),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )
    message = Message("assistant", "\n".join(t for t in texts if t), tool_calls=tuple(calls))
    stop = resp.stop_reason or ("tool_use" if calls else "end_turn")
    return message, usage, stop, getattr(resp, "model", None)


class AnthropicClient(SDKClient):
    """Claude through ``anthropic.Anthropic`` (Messages API, tool use).

    ``api_key`` defaults to ``$ANTHROPIC_API_KEY``; ``base_url`` to the SDK's default
    (which honours ``$ANTHROPIC_BASE_URL``). Retries follow ``retry`` (the SDK's own
    retries are off). ``http_client`` is passed to the SDK unchanged (for proxies).
    """

    provider = "anthropic"

    def __init__(
        self,
        model: str | None = None,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
        prices: Mapping[str, Any] | None = None,
        context_window: int | None = None,
        ledger: UsageLedger | None = None,
        http_client: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        import anthropic  # deferred: importing the SDK costs ~0.5 s

        key = api_key or os.environ.get("ANTHROPIC_API_KEY")
        if not key:
            raise LLMConfigError(
                "no Anthropic API key: pass api_key=... or set the ANTHROPIC_API_KEY environment variable"
            )
        super().__init__(
            model or DEFAULT_ANTHROPIC_MODEL,
            retry=retry,
            prices=prices,
            use_builtin_prices=True,
            context_window=context_window,
            ledger=ledger,
            sleep=sleep,
            classify=sdk_classifier(anthropic),
            api_key=key,
        )
        kwargs: dict[str, Any] = {"api_key": key, "timeout": timeout, "max_retries": 0}
        if base_url:
            kwargs["base_url"] = base_url
        if http_client is not None:
            kwargs["http_client"] = http_client
        self._sdk = anthropic.Anthropic(**kwargs)

    def _create(
        self, messages: list[Message], tools: list[ToolSpec], max_tokens: int, temperature: float | None
    ) -> Any:
        system, turns = to_anthropic_messages(messages)
        kwargs: dict[str, Any] = {"model": self.model, "max_tokens": max_tokens, "messages": turns}
        if system:
            kwargs["system"] = system
        if tools:
            kwargs["tools"] = to_anthropic_tools(tools)
        if temperature is not None:
            # anthropic SDK 2.x dropped the `temperature` keyword; the API field is sent as-is.
            kwargs["extra_body"] = {"temperature": temperature}
        return self._sdk.messages.create(**kwargs)

    def _parse(self, raw: Any) -> tuple[Message, Usage, str, str | None]:
        if getattr(raw, "content", None) is None:
            raise LLMError(f"anthropic:{self.model} returned no content", provider=self.provider, model=self.model)
        return from_anthropic_response(raw)
