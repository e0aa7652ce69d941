"""Clients for OpenAI Chat Completions and OpenAI-compatible servers (Ollama, vLLM,
llama.cpp), over the official ``openai`` SDK (sync client)."""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any, Callable, Mapping, Sequence

from glia_nb.llm.accounting import UsageLedger
from glia_nb.llm.base import DEFAULT_TIMEOUT_S, NO_KEY, SDKClient, sdk_classifier
from glia_nb.llm.context import DEFAULT_LOCAL_CONTEXT, probe_context_window
from glia_nb.llm.retry import LLMConfigError, LLMError, RetryPolicy
from glia_nb.llm.types import Message, ToolCall, ToolSpec, Usage

DEFAULT_OPENAI_MODEL = "gpt-5"

_FINISH_REASONS = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
    "content_filter": "refusal",
}


def to_openai_tools(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """ToolSpecs → the Chat Completions ``tools`` parameter."""
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": dict(t.parameters)},
        }
        for t in tools
    ]


def _arguments_text(tc: ToolCall) -> str:
    # Echo the model's own text when it was valid; otherwise send "{}" because some
    # servers (vLLM chat templates) re-parse the arguments and would fail on bad JSON.
    if tc.parse_error is None and tc.raw_arguments.strip():
        return tc.raw_arguments
    return json.dumps(dict(tc.arguments))


def to_openai_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Neutral messages → Chat Completions ``messages``."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "assistant":
            # Never null: llama-cpp-python's server rejects it (HTTP 500, "Input should be a valid string").
            d: dict[str, Any] = {"role": "assistant", "content": m.content or ""}
            if m.tool_calls:
                d["tool_calls"] = [
                    {"id": tc.id, "type": "function", "function": {"name": tc.name, "arguments": _arguments_text(tc)}}
                    for tc in m.tool_calls
                ]
            out.append(d)
        elif m.role == "tool":
            out.append({"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content})
        else:
            out.append({"role": m.role, "content": m.content})
    return out


def from_openai_response(resp: Any) -> tuple[Message, Usage, str, str | None]:
    """SDK ``ChatCompletion`` → ``(message, usage, stop_reason, served_model)``.

    Malformed function arguments become a ToolCall with ``parse_error`` set, never an
    exception. Missing tool-call ids (some local servers) are filled in as ``call_<i>``.
    """
    choices = getattr(resp, "choices", None) or []
    if not choices:
        raise ValueError("response has no choices")
    choice = choices[0]
    msg = choice.message
    calls: list[ToolCall] = []
    for i, tc in enumerate(getattr(msg, "tool_calls", None) or ()):
        fn = getattr(tc, "function", None)
        if fn is not None:
            name, raw = fn.name, fn.arguments
        else:  # custom (free-form) tool calls carry raw text input
            custom = getattr(tc, "custom", None)
            name, raw = getattr(custom, "name", "unknown"), getattr(custom, "input", "")
        calls.append(ToolCall.from_raw(getattr(tc, "id", None) or f"call_{i}", name, raw))
    content = msg.content or getattr(msg, "refusal", None) or ""
    stop = _FINISH_REASONS.get(choice.finish_reason or "stop", choice.finish_reason)
    if calls:
        stop = "tool_use"  # local servers often report "stop" alongside tool calls
    elif getattr(msg, "refusal", None) and not msg.content:
        stop = "refusal"
    u = getattr(resp, "usage", None)
    if u is None:
        usage = Usage()
    else:
        details = getattr(u, "prompt_tokens_details", None)
        usage = Usage(
            input_tokens=int(getattr(u, "prompt_tokens", None) or 0),  # includes cached tokens
            output_tokens=int(getattr(u, "completion_tokens", None) or 0),  # includes reasoning tokens
            cache_read_tokens=int(getattr(details, "cached_tokens", None) or 0),
            cache_write_tokens=int(getattr(details, "cache_write_tokens", None) or 0),
        )
    return Message("assistant", content, tool_calls=tuple(calls)), usage, stop, getattr(resp, "model", None)


class OpenAIClient(SDKClient):
    """OpenAI models through ``openai.OpenAI`` Chat Completions with function tools.

    ``api_key`` defaults to ``$OPENAI_API_KEY``; ``base_url`` to ``$OPENAI_BASE_URL`` or the
    SDK default. Sends ``max_completion_tokens`` (required by reasoning models) and
    ``temperature`` only when given (reasoning models reject non-default values).
    """

    provider = "openai"
    _max_tokens_field = "max_completion_tokens"

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
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            raise LLMConfigError("no OpenAI API key: pass api_key=... or set the OPENAI_API_KEY environment variable")
        self._init(
            model or DEFAULT_OPENAI_MODEL,
            key,
            base_url or os.environ.get("OPENAI_BASE_URL") or None,
            timeout,
            retry,
            prices,
            True,
            context_window,
            ledger,
            http_client,
            sleep,
        )

    def _init(
        self,
        model: str,
        api_key: str,
        base_url: str | None,
        timeout: float,
        retry: RetryPolicy | None,
        prices: Mapping[str, Any] | None,
        use_builtin_prices: bool,
        context_window: int | None,
        ledger: UsageLedger | None,
        http_client: Any,
        sleep: Callable[[float], None],
    ) -> None:
        import openai  # deferred: importing the SDK costs ~0.5 s

        super().__init__(
            model,
            retry=retry,
            prices=prices,
            use_builtin_prices=use_builtin_prices,
            context_window=context_window,
            ledger=ledger,
            sleep=sleep,
            classify=sdk_classifier(openai, base_url or ""),
            api_key=api_key,
        )
        kwargs: dict[str, Any] = {"api_key": api_key, "timeout": timeout, "max_retries": 0}
        if base_url:
            kwargs["base_url"] = base_url
        if http_client is not None:
            kwargs["http_client"] = http_client
        self.base_url = base_url
        self._sdk = openai.OpenAI(**kwargs)

    def _create(
        self, messages: list[Message], tools: list[ToolSpec], max_tokens: int, temperature: float | None
    ) -> Any:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": to_openai_messages(messages),
            self._max_tokens_field: max_tokens,
        }
        if tools:
            kwargs["tools"] = to_openai_tools(tools)
            kwargs["tool_choice"] = "auto"  # without it llama.cpp's server ignores the tools
        if temperature is not None:
            kwargs["temperature"] = temperature
        return self._sdk.chat.completions.create(**kwargs)

    def _parse(self, raw: Any) -> tuple[Message, Usage, str, str | None]:
        try:
            return from_openai_response(raw)
        except ValueError as exc:
            raise LLMError(f"{self.provider}:{self.model}: {exc}", provider=self.provider, model=self.model) from exc


class OpenAICompatibleClient(OpenAIClient):
    """A local or self-hosted OpenAI-compatible server (Ollama, vLLM, llama.cpp, ...).

    ``base_url`` is the API root, e.g. ``http://127.0.0.1:8000/v1`` (defaults to
    ``$OPENAI_BASE_URL``). Calls are free unless ``prices`` names the model: the built-in
    price table is not used, since a local model that shares a hosted model's name costs
    nothing. Sends ``max_tokens``, which these servers understand, cut to what the context
    window leaves (see :mod:`glia_nb.llm.context` for how the window is found).
    """

    provider = "openai-compatible"
    _max_tokens_field = "max_tokens"

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        *,
        api_key: str | None = NO_KEY,
        timeout: float = DEFAULT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
        prices: Mapping[str, Any] | None = None,
        context_window: int | None = None,
        ledger: UsageLedger | None = None,
        http_client: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not url:
            raise LLMConfigError(
                "openai-compatible client needs base_url (e.g. http://127.0.0.1:8000/v1) or $OPENAI_BASE_URL"
            )
        if not model:
            raise LLMConfigError("openai-compatible client needs the served model's name")
        self._init(
            model, api_key or NO_KEY, url, timeout, retry, prices, False, context_window, ledger, http_client, sleep
        )
        if not context_window:  # a local model's name says nothing about the window it was served with
            self.context_window, self.context_source = DEFAULT_LOCAL_CONTEXT, "default"
        self._probe_lock = threading.Lock()
        self._probed = bool(context_window)
        self._probe_timeout = min(float(timeout), 10.0)

    def discover_context(self) -> int:
        """The served model's context window: asked of the server once (vLLM, llama.cpp,
        Ollama answer), else the one given, else :data:`DEFAULT_LOCAL_CONTEXT`. A refused
        connection raises :class:`LLMError` naming the URL."""
        with self._probe_lock:
            if not self._probed:
                self._probed = True
                http = getattr(self._sdk, "_client", None)  # the SDK's own httpx client
                kw: dict[str, Any] = {"timeout": self._probe_timeout}
                if http is not None and hasattr(http, "get") and hasattr(http, "post"):
                    kw.update(get=http.get, post=http.post)
                found = probe_context_window(str(self.base_url), self.model, **kw)
                if found:
                    self.context_window, self.context_source = int(found), "server"
        return self.context_window
