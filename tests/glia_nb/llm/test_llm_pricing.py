"""Price lookup and cost arithmetic."""

from __future__ import annotations

import pytest

from glia_nb.llm import PRICES, ModelPrice, Usage, context_window_for, cost_usd, lookup_price


@pytest.mark.parametrize(
    "model, key",
    [
        ("claude-sonnet-4-5", "claude-sonnet-4-5"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-opus-4-20250514", "claude-opus-4"),
        ("claude-opus-4-0", "claude-opus-4"),
        ("claude-haiku-4-5", "claude-haiku-4-5"),
        ("gpt-5", "gpt-5"),
        ("gpt-5-mini-2025-08-07", "gpt-5-mini"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("o3", "o3"),
        ("o4-mini", "o4-mini"),
        ("openai/gpt-4o", "gpt-4o"),
        ("GPT-4o", "gpt-4o"),
    ],
)
def test_known_models_resolve_to_the_right_key(model, key):
    found = lookup_price(model)
    assert found is not None and found[0] == key


@pytest.mark.parametrize("model", ["claude-opus-4-6", "o3-pro", "gpt-5.1", "qwen2.5-coder:7b", "llama3.1:8b", ""])
def test_unknown_models_are_free_and_flagged(model):
    cost = cost_usd(model, Usage(1_000_000, 1_000_000))
    assert cost.usd == 0.0 and cost.known is False and cost.price_key is None
    assert float(cost) == 0.0


def test_cost_arithmetic_with_cache():
    p = PRICES["claude-sonnet-4-5"]
    assert (p.input_per_mtok, p.output_per_mtok) == (3.0, 15.0)
    usage = Usage(input_tokens=10_000, output_tokens=2_000, cache_read_tokens=4_000, cache_write_tokens=1_000)
    cost = cost_usd("claude-sonnet-4-5-20250929", usage)
    expected = (5_000 * 3.0 + 4_000 * 0.30 + 1_000 * 3.75 + 2_000 * 15.0) / 1e6
    assert cost.known and cost.usd == pytest.approx(expected)


def test_one_million_tokens_cost_the_list_price():
    assert cost_usd("gpt-4o-mini", Usage(1_000_000, 0)).usd == pytest.approx(0.15)
    assert cost_usd("gpt-4o-mini", Usage(0, 1_000_000)).usd == pytest.approx(0.60)
    assert cost_usd("claude-opus-4", Usage(1_000_000, 1_000_000)).usd == pytest.approx(90.0)


def test_user_prices_override_and_extend():
    usage = Usage(2_000_000, 1_000_000)
    # Own price for a local or newer model, in any of the accepted forms.
    assert cost_usd("my-local", usage, {"my-local": (0.5, 1.0)}).usd == pytest.approx(2.0)
    assert cost_usd("my-local", usage, {"my-local": {"input": 1, "output": 2}}).usd == pytest.approx(4.0)
    assert cost_usd("gpt-4o", usage, {"gpt-4o": ModelPrice(0.0, 0.0)}).usd == 0.0
    assert cost_usd("gpt-4o", usage, {"gpt-4o": ModelPrice(0.0, 0.0)}).known
    # Built-in table skipped on request (OpenAI-compatible servers).
    assert not cost_usd("gpt-4o", usage, use_builtin=False).known
    with pytest.raises(TypeError):
        cost_usd("x", usage, {"x": "cheap"})


def test_cache_rates_default_to_input_rate():
    usage = Usage(input_tokens=1_000, output_tokens=0, cache_read_tokens=1_000)
    assert cost_usd("m", usage, {"m": (2.0, 8.0)}).usd == pytest.approx(1_000 * 2.0 / 1e6)


def test_price_table_is_read_only():
    with pytest.raises(TypeError):
        PRICES["gpt-5"] = ModelPrice(0, 0)  # type: ignore[index]


def test_context_windows():
    assert context_window_for("claude-haiku-4-5") == 200_000
    assert context_window_for("gpt-5-mini") == 400_000
    assert context_window_for("gpt-4o-mini") == 128_000
    assert context_window_for("qwen2.5-coder") == 32_768
    assert context_window_for("qwen2.5-coder", default=8192) == 8192
