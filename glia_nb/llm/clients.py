"""Model clients and ``make_client(spec)``.

Specs::

    anthropic:MODEL                    e.g. anthropic:claude-opus-4-5
    openai:MODEL                       e.g. openai:gpt-5
    openai-compatible:URL:MODEL        e.g. openai-compatible:http://127.0.0.1:8000/v1:qwen
    openai-compatible:MODEL            URL taken from $OPENAI_BASE_URL
    anthropic | openai                 the provider's default model

The model name may itself contain ':' (Ollama tags such as ``llama3.1:8b``): after the
URL's host, optional numeric port and path, everything past the next ':' is the model.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Mapping

from glia_nb.llm.anthropic_client import DEFAULT_ANTHROPIC_MODEL, AnthropicClient
from glia_nb.llm.base import LLMClient
from glia_nb.llm.openai_client import DEFAULT_OPENAI_MODEL, OpenAIClient, OpenAICompatibleClient
from glia_nb.llm.retry import LLMConfigError

__all__ = [
    "AnthropicClient",
    "ClientSpec",
    "LLMClient",
    "OpenAIClient",
    "OpenAICompatibleClient",
    "client_from_info",
    "make_client",
    "parse_spec",
]

PROVIDERS = ("anthropic", "openai", "openai-compatible")
_SPEC_HELP = (
    "expected 'anthropic:MODEL', 'openai:MODEL', 'openai-compatible:URL:MODEL' "
    "(e.g. 'openai-compatible:http://127.0.0.1:8000/v1:qwen') or 'openai-compatible:MODEL' "
    "with $OPENAI_BASE_URL set"
)
# host (or [ipv6]) and an optional numeric port; a port is digits ending at '/', ':' or the end.
_HOST_PORT = re.compile(r"(?:\[[^\]/]+\]|[^/:\[\]]+)(?::\d+(?=[/:]|$))?")


def _split_url_model(rest: str) -> tuple[str, str] | None:
    """Split 'scheme://host[:port][/path]:model' at the first ':' after the path."""
    scheme, sep, after = rest.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        return None
    m = _HOST_PORT.match(after)
    if not m or not m.group(0):
        return None
    tail = after[m.end():]
    path, colon, model = tail.partition(":") if tail.startswith("/") else ("", tail[:1], tail[1:])
    if colon != ":" or not model.strip():
        return None
    return f"{scheme}://{m.group(0)}{path}".rstrip("/"), model.strip()


@dataclass(frozen=True)
class ClientSpec:
    """A parsed client spec."""

    provider: str
    model: str
    base_url: str | None = None


def parse_spec(spec: str) -> ClientSpec:
    """Parse a client spec string (see the module docstring); raises ``ValueError``."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"empty model spec; {_SPEC_HELP}")
    spec = spec.strip()
    provider, sep, rest = spec.partition(":")
    provider = provider.lower()
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r} in model spec {spec!r}; {_SPEC_HELP}")
    if provider in ("anthropic", "openai"):
        if not sep:
            default = DEFAULT_ANTHROPIC_MODEL if provider == "anthropic" else DEFAULT_OPENAI_MODEL
            return ClientSpec(provider, default)
        if not rest.strip():
            raise ValueError(f"model spec {spec!r} names no model; {_SPEC_HELP}")
        return ClientSpec(provider, rest.strip())
    # openai-compatible
    if not rest.strip():
        raise ValueError(f"model spec {spec!r} names no server or model; {_SPEC_HELP}")
    if re.match(r"^[a-z][a-z0-9+.-]*://", rest, re.IGNORECASE):
        split = _split_url_model(rest)
        if split is None:
            raise ValueError(f"cannot split {rest!r} into an http(s) URL and a model name; {_SPEC_HELP}")
        return ClientSpec(provider, split[1], split[0])
    base = os.environ.get("OPENAI_BASE_URL")
    if not base:
        raise ValueError(f"model spec {spec!r} has no server URL and $OPENAI_BASE_URL is not set; {_SPEC_HELP}")
    return ClientSpec(provider, rest.strip(), base)


def make_client(spec: str | None = None, **kwargs: Any) -> LLMClient:
    """Build a client from a spec string (default: ``$GLIA_MODEL``).

    Keyword arguments go to the client's constructor (``api_key``, ``timeout``, ``retry``,
    ``prices``, ``ledger``, ``context_window``, ...). Raises ``ValueError`` for a bad spec
    and :class:`~glia_nb.llm.retry.LLMConfigError` (a ``ValueError``) for a missing key.
    """
    if spec is None:
        spec = os.environ.get("GLIA_MODEL")
        if not spec:
            raise LLMConfigError(f"no model spec given and $GLIA_MODEL is not set; {_SPEC_HELP}")
    parsed = parse_spec(spec)
    if parsed.provider == "anthropic":
        return AnthropicClient(parsed.model, **kwargs)
    if parsed.provider == "openai":
        return OpenAIClient(parsed.model, **kwargs)
    return OpenAICompatibleClient(parsed.base_url, parsed.model, **kwargs)


def client_from_info(info: Mapping[str, Any], **kwargs: Any) -> LLMClient:
    """Rebuild a client from what a journal header records about it (``provider``,
    ``model``, ``base_url``; a ``context_window`` that was given rather than learnt)."""
    provider, model = info.get("provider"), info.get("model")
    if not provider or not model:
        raise LLMConfigError(f"cannot rebuild a model client from {dict(info)}")
    if provider == "openai-compatible":
        if not info.get("base_url"):
            raise LLMConfigError(f"the journal names no server URL for {model!r}; pass the client explicitly")
        if info.get("context_source") == "given" and info.get("context_window"):
            kwargs.setdefault("context_window", int(info["context_window"]))
        return OpenAICompatibleClient(info["base_url"], model, **kwargs)
    return make_client(f"{provider}:{model}", **kwargs)
