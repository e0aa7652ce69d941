"""Token prices and context windows of common hosted models, and the cost of a call.

Unknown models (local Ollama / vLLM / llama.cpp models, or hosted models newer than the
table) cost 0 and are flagged ``known=False``; pass your own ``prices`` to price them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

from glia_nb.llm.types import Usage


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens. Cache rates default to the input rate when not given."""

    input_per_mtok: float
    output_per_mtok: float
    cache_read_per_mtok: float | None = None
    cache_write_per_mtok: float | None = None


@dataclass(frozen=True)
class Cost:
    """The dollar cost of some usage; ``known`` is False when no price was found."""

    usd: float
    known: bool
    price_key: str | None = None

    def __float__(self) -> float:
        return self.usd


# List prices as published by the providers on their public API pricing pages
# (Anthropic: docs "Pricing"; OpenAI: "API pricing"), standard tier, taken in November 2025.
# Not modelled: batch / flex / priority tiers, Anthropic's 1-hour cache writes and the
# long-context (>200k input tokens) surcharge on Sonnet. Prices change: check before
# relying on a total, and pass `prices=` for models added since.
# Keys match a model id exactly or followed by a date / "-latest" / "-0" suffix, so
# "claude-opus-4-20250514" is priced as "claude-opus-4" but "claude-opus-4-6" is unknown.
PRICES: Mapping[str, ModelPrice] = MappingProxyType(
    {
        # Anthropic (cache read = 0.1x input, 5-minute cache write = 1.25x input)
        "claude-opus-4-5": ModelPrice(5.00, 25.00, 0.50, 6.25),
        "claude-opus-4-1": ModelPrice(15.00, 75.00, 1.50, 18.75),
        "claude-opus-4": ModelPrice(15.00, 75.00, 1.50, 18.75),
        "claude-sonnet-4-5": ModelPrice(3.00, 15.00, 0.30, 3.75),
        "claude-sonnet-4": ModelPrice(3.00, 15.00, 0.30, 3.75),
        "claude-3-7-sonnet": ModelPrice(3.00, 15.00, 0.30, 3.75),
        "claude-haiku-4-5": ModelPrice(1.00, 5.00, 0.10, 1.25),
        "claude-3-5-haiku": ModelPrice(0.80, 4.00, 0.08, 1.00),
        # OpenAI (third number: cached input)
        "gpt-5": ModelPrice(1.25, 10.00, 0.125),
        "gpt-5-mini": ModelPrice(0.25, 2.00, 0.025),
        "gpt-5-nano": ModelPrice(0.05, 0.40, 0.005),
        "gpt-4.1": ModelPrice(2.00, 8.00, 0.50),
        "gpt-4.1-mini": ModelPrice(0.40, 1.60, 0.10),
        "gpt-4.1-nano": ModelPrice(0.10, 0.40, 0.025),
        "gpt-4o": ModelPrice(2.50, 10.00, 1.25),
        "gpt-4o-mini": ModelPrice(0.15, 0.60, 0.075),
        "o3": ModelPrice(2.00, 8.00, 0.50),
        "o3-mini": ModelPrice(1.10, 4.40, 0.55),
        "o4-mini": ModelPrice(1.10, 4.40, 0.275),
    }
)

# Context windows (tokens) by model-id prefix, longest prefix wins. A heuristic for the
# agent's history budget; clients accept an explicit `context_window=` override.
CONTEXT_WINDOWS: Mapping[str, int] = MappingProxyType(
    {
        "claude-": 200_000,
        "gpt-5": 400_000,
        "gpt-4.1": 1_047_576,
        "gpt-4o": 128_000,
        "o1": 200_000,
        "o3": 200_000,
        "o4-mini": 200_000,
    }
)
DEFAULT_CONTEXT_WINDOW = 32_768  # conservative for unknown (often local) models

_SNAPSHOT_SUFFIX = re.compile(r"^(?:[-@](?:\d{8}|\d{4}-\d{2}-\d{2}|latest|0|v\d+(?::\d+)?))*$")


def _normalize(model: str) -> str:
    # "openai/gpt-4o" (OpenRouter style) → "gpt-4o"
    return model.strip().lower().rsplit("/", 1)[-1]


def as_model_price(value: Any) -> ModelPrice:
    """Coerce a ModelPrice, an ``(input, output[, cache_read[, cache_write]])`` tuple or a
    dict with ``input``/``output``/``cache_read``/``cache_write`` keys (USD per MTok)."""
    if isinstance(value, ModelPrice):
        return value
    if isinstance(value, Mapping):
        return ModelPrice(
            float(value["input"]),
            float(value["output"]),
            None if value.get("cache_read") is None else float(value["cache_read"]),
            None if value.get("cache_write") is None else float(value["cache_write"]),
        )
    if isinstance(value, (tuple, list)) and 2 <= len(value) <= 4:
        return ModelPrice(*(float(v) for v in value))
    raise TypeError(f"cannot read a model price from {value!r}")


def _match(model: str, table: Mapping[str, Any]) -> str | None:
    name = _normalize(model)
    best: str | None = None
    for key in table:
        k = key.lower()
        if name.startswith(k) and _SNAPSHOT_SUFFIX.match(name[len(k):]):
            if best is None or len(k) > len(best):
                best = key
    return best


def lookup_price(
    model: str, prices: Mapping[str, Any] | None = None, *, use_builtin: bool = True
) -> tuple[str, ModelPrice] | None:
    """Find the price of ``model``: first in ``prices`` (the caller's), then, if
    ``use_builtin``, in :data:`PRICES`. Returns ``(matched_key, price)`` or None."""
    for table in (prices or {}, PRICES if use_builtin else {}):
        key = _match(model, table)
        if key is not None:
            return key, as_model_price(table[key])
    return None


def cost_usd(
    model: str,
    usage: Usage,
    prices: Mapping[str, Any] | None = None,
    *,
    use_builtin: bool = True,
) -> Cost:
    """Dollar cost of ``usage`` on ``model``.

    ``prices`` maps model ids to prices (see :func:`as_model_price`) and takes precedence
    over the built-in table. Unknown models cost 0 with ``known=False``.
    """
    found = lookup_price(model, prices, use_builtin=use_builtin)
    if found is None:
        return Cost(0.0, False, None)
    key, p = found
    read_rate = p.input_per_mtok if p.cache_read_per_mtok is None else p.cache_read_per_mtok
    write_rate = p.input_per_mtok if p.cache_write_per_mtok is None else p.cache_write_per_mtok
    fresh = max(0, usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens)
    usd = (
        fresh * p.input_per_mtok
        + usage.cache_read_tokens * read_rate
        + usage.cache_write_tokens * write_rate
        + usage.output_tokens * p.output_per_mtok
    ) / 1_000_000
    return Cost(usd, True, key)


def context_window_for(model: str, default: int = DEFAULT_CONTEXT_WINDOW) -> int:
    """Context window of ``model`` in tokens (longest matching prefix), else ``default``."""
    name = _normalize(model)
    matches = [k for k in CONTEXT_WINDOWS if name.startswith(k)]
    return CONTEXT_WINDOWS[max(matches, key=len)] if matches else default
