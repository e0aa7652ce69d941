"""Fitting calls into a model's context window.

A call's ``max_tokens`` must leave room for the prompt: a local server with an 8k window
rejects "8,309 prompt + 8,192 completion" outright. This module learns the window (from the
server, the caller, or a documented default), estimates a prompt's size before the first
call and calibrates the estimate with the token counts the server reports afterwards.

Windows by server:

* vLLM: ``GET /v1/models`` lists ``max_model_len`` per model;
* llama.cpp's ``llama-server``: ``GET /props`` gives ``default_generation_settings.n_ctx``;
* Ollama: ``POST /api/show`` gives ``num_ctx`` (if the model sets it) and the model's
  trained ``context_length``; Ollama runs with :data:`OLLAMA_DEFAULT_CTX` unless told more;
* anything else (``llama-cpp-python``'s server, LM Studio, ...): ``--context-tokens`` /
  ``context_window=``, else :data:`DEFAULT_LOCAL_CONTEXT`; a server's "maximum context
  length is N" error teaches the client the real window.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Callable, Mapping, Sequence

from glia_nb.llm.retry import LLMError
from glia_nb.llm.types import Message, ToolSpec

__all__ = [
    "DEFAULT_LOCAL_CONTEXT", "MIN_COMPLETION_TOKENS", "OLLAMA_DEFAULT_CTX", "TokenMeter", "context_window_of",
    "estimate_text_tokens", "fit_max_tokens",
    "probe_context_window", "refused", "window_from_payloads",
]

DEFAULT_LOCAL_CONTEXT = 8192  # what an unknown local server is assumed to hold: llama.cpp's usual -c
OLLAMA_DEFAULT_CTX = 4096  # Ollama's runtime context unless the model or OLLAMA_CONTEXT_LENGTH says more
MIN_COMPLETION_TOKENS = 128  # below this a reply cannot hold one tool call: compact instead
_PER_MESSAGE = 6  # role markers and separators of a chat template
_SAFETY = 1.15  # estimates run low on code and JSON; a 400 costs more than a shorter reply


def estimate_text_tokens(text: str, chars_per_token: float = 3.2) -> int:
    """A rough token count of ``text`` (no tokenizer: ``len / chars_per_token``)."""
    return int(len(text) / max(chars_per_token, 0.5)) + 1


class TokenMeter:
    """Estimates prompt sizes, calibrated by the server's own counts.

    ``observe(chars, prompt_tokens)`` after each call updates the characters-per-token
    ratio (a running blend, so one odd prompt does not swing it); ``estimate`` prices a
    conversation and its tool specs before it is sent. Thread-safe.
    """

    def __init__(self, chars_per_token: float = 3.2) -> None:
        self._lock = threading.Lock()
        self.chars_per_token = chars_per_token
        self.observed = 0

    @staticmethod
    def chars(messages: Sequence[Message], tools: Sequence[ToolSpec] = ()) -> int:
        """Characters a conversation sends: contents, tool-call arguments and tool specs."""
        n = sum(len(m.content) + sum(len(tc.name) + len(tc.raw_arguments or "") + 20 for tc in m.tool_calls)
                for m in messages)
        return n + sum(len(json.dumps(t.to_dict())) for t in tools)

    def estimate(self, messages: Sequence[Message], tools: Sequence[ToolSpec] = ()) -> int:
        """Estimated prompt tokens of ``messages`` plus ``tools`` (rounded up for safety)."""
        with self._lock:
            cpt = self.chars_per_token
        return int(self.chars(messages, tools) / cpt * _SAFETY) + _PER_MESSAGE * len(messages) + 16

    def observe(self, chars: int, prompt_tokens: int) -> None:
        """Learn from a call: ``chars`` sent, ``prompt_tokens`` the server counted."""
        if chars <= 0 or prompt_tokens <= 0:
            return
        ratio = max(1.0, min(8.0, chars / prompt_tokens))
        with self._lock:
            self.chars_per_token = ratio if self.observed == 0 else 0.5 * self.chars_per_token + 0.5 * ratio
            self.observed += 1


def context_window_of(client: Any) -> int | None:
    """A client's context window, asking the server first where the client can
    (``discover_context``); a refused connection raises the client's LLMError."""
    discover = getattr(client, "discover_context", None)
    if callable(discover):
        return int(discover())
    window = getattr(client, "context_window", None)
    return int(window) if window else None


def fit_max_tokens(window: int, prompt_tokens: int, requested: int) -> int:
    """``requested`` cut to what the window leaves after the prompt (and a small margin);
    0 when less than :data:`MIN_COMPLETION_TOKENS` would be left."""
    left = int(window) - int(prompt_tokens) - 16
    if left < min(MIN_COMPLETION_TOKENS, int(requested)):
        return 0
    return min(int(requested), left)


def window_from_payloads(model: str, *, models: Any = None, props: Any = None, show: Any = None) -> int | None:
    """The context window found in a server's answers (see the module docstring), or None."""
    for entry in (models or {}).get("data") or () if isinstance(models, Mapping) else ():
        if not isinstance(entry, Mapping):
            continue
        if entry.get("id") not in (model, None) and len((models or {}).get("data") or ()) > 1:
            continue
        for key in ("max_model_len", "context_length", "max_context_length", "context_window"):
            value = entry.get(key) or (entry.get("meta") or {}).get(key)
            if isinstance(value, int) and value > 0:
                return value
    if isinstance(props, Mapping):
        settings = props.get("default_generation_settings") or {}
        for value in (settings.get("n_ctx"), props.get("n_ctx")):
            if isinstance(value, int) and value > 0:
                return value
    if isinstance(show, Mapping):
        for line in str(show.get("parameters") or "").splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == "num_ctx" and parts[1].isdigit():
                return int(parts[1])
        trained = [v for k, v in (show.get("model_info") or {}).items()
                   if k.endswith(".context_length") and isinstance(v, int)]
        if trained:
            return min(trained[0], OLLAMA_DEFAULT_CTX)
    return None


def probe_context_window(base_url: str, model: str, *, timeout: float = 5.0,
                         get: Callable[..., Any] | None = None, post: Callable[..., Any] | None = None) -> int | None:
    """Ask an OpenAI-compatible server for ``model``'s context window (vLLM, llama.cpp,
    Ollama); None when it does not say. A refused connection raises :class:`LLMError`
    (``kind="connection"``) naming the URL, so a dead endpoint fails at once.

    ``get``/``post`` default to ``httpx.get``/``httpx.post``; a client passes its SDK's own
    HTTP client's, so proxies and test transports apply to the probe too.
    """
    if get is None or post is None:
        import httpx  # a dependency of the openai SDK; imported here so the package stays light

        get, post = get or httpx.get, post or httpx.post
    base = base_url.rstrip("/")
    root = base[:-3] if base.endswith("/v1") else base

    def fetch(fn: Callable[..., Any], url: str, **kw: Any) -> Any:
        try:
            resp = fn(url, timeout=timeout, **kw)
        except Exception as exc:  # noqa: BLE001 - any failure means "this server does not say"
            if refused(exc):
                raise LLMError(f"cannot reach {base_url}: connection refused", kind="connection",
                               model=model, provider="openai-compatible") from exc
            return None
        if getattr(resp, "status_code", 0) != 200:
            return None
        try:
            return resp.json()
        except ValueError:
            return None

    found = window_from_payloads(model, models=fetch(get, f"{base}/models"))
    if found:
        return found
    found = window_from_payloads(model, props=fetch(get, f"{root}/props"))
    if found:
        return found
    return window_from_payloads(model, show=fetch(post, f"{root}/api/show", json={"model": model}))


def refused(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) is a refused TCP connection: nothing listens there."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        text = str(e).lower()
        if isinstance(e, ConnectionRefusedError) or "connection refused" in text or "errno 111" in text:
            return True
        e = e.__cause__ or e.__context__
    return False
