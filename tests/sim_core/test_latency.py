"""Tests of the latency model: shipped tables, calibration, interpolation, file format."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from sim_core.latency import (BLOB_VERSION, LatencyTable, allreduce_ms, available_latency_tables,
                              decode_attn_ms, iteration_ms, load_latency_table, prefill_attn_ms,
                              token_ms)

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = [("a10", "llama-3-8b", 1), ("h100", "llama-3-8b", 1)] + \
          [("h100", "llama-3.3-70b-fp8", tp) for tp in (1, 2, 4, 8)]


def _prefill(blob, n):
    """One request prefilled in one chunk of n tokens, the way the engine composes it."""
    return iteration_ms(blob, n, 0, 0, prefill_attn_ms(blob, n, n))


def _decode(blob, n, kv):
    return iteration_ms(blob, n, n, n * kv, 0.0)


def _tiny(**over) -> dict:
    """A minimal hand-written table document (what a user who measured a GPU would write)."""
    doc = {
        "gpu": "mygpu", "model": "mymodel", "tp": 1, "provenance": "measured by hand",
        "token_work": {"tokens": [0, 10, 20], "ms": [1, 3, 7]},
        "prefill_attn": {"kv_context": [10, 20], "chunk": [1, 3], "ms": [[1, 2], [3, 5]]},
        "decode_attn": {"n_decodes": [1, 5], "mean_kv": [100, 300], "ms": [[2, 4], [6, 12]]},
    }
    doc.update(over)
    return doc


# ------------------------------------------------------------------ shipped tables
def test_every_shipped_table_loads():
    assert set(SHIPPED) <= set(available_latency_tables())
    for key in available_latency_tables():
        t = load_latency_table(*key)
        assert t.key == key
        blob = t.pack()
        assert blob.dtype == np.float64 and blob[0] == BLOB_VERSION
        prov = t.provenance_dict
        assert prov["generated_by"] == "scripts/derive_latency_tables.py"
        assert "kv_pool" in prov and prov["calibration"]["fit"]
        assert t.tokens[-1] >= 16384 and t.prefill_kv[-1] >= 16384
        assert t.prefill_chunk[-1] >= 8192 and t.decode_n[-1] >= 512 and t.decode_kv[-1] >= 16384
        assert (t.allreduce_ms == 0).all() == (t.tp == 1)


def test_load_is_cached_and_immutable():
    a = load_latency_table("a10", "llama-3-8b", 1)
    assert load_latency_table("a10", "llama-3-8b", 1) is a
    with pytest.raises(ValueError):
        a.token_ms[0] = 1.0  # read-only array
    with pytest.raises(AttributeError):
        a.overhead_ms = 1.0  # frozen dataclass


def test_unknown_table_lists_the_shipped_ones():
    with pytest.raises(ValueError, match=r"no shipped latency table.*a10/llama-3-8b/tp1"):
        load_latency_table("a10", "llama-3-8b", 3)


def _a10_profile_sum(n):
    """Vidur's measured A10 operator sum over 32 layers at n tokens (the committed summary)."""
    import pandas as pd

    from sim_core.vidur_profiles import MLP_OPS

    df = pd.read_csv(ROOT / "sim_core/data/vidur_profiles/compute/a10/meta-llama/Meta-Llama-3-8B/mlp.csv")
    row = df[df.num_tokens == n]
    return 32 * float(row[[f"time_stats.{op}.median" for op in MLP_OPS]].sum(axis=1).iloc[0])


@pytest.mark.parametrize("n", [1, 128, 1024, 4096])
def test_a10_token_work_is_the_measured_profile_and_attention_comes_on_top(n):
    t = load_latency_table("a10", "llama-3-8b", 1)
    blob = t.pack()
    measured = _a10_profile_sum(n)
    assert token_ms(blob, n) == pytest.approx(measured, rel=0.01)  # + KV write, isotonic smoothing
    assert token_ms(blob, n) >= measured * 0.995
    extra = _prefill(blob, n) - measured  # prefill attention + KV-cache write on top of the sums
    assert 0 < extra < 0.12 * measured
    if n >= 1024:
        assert extra > 0.02 * measured  # attention is no longer squeezed into the operator sums


@pytest.mark.parametrize("kv, target", [(1024, 86.0), (4096, 224.0)])
def test_a10_decode_calibration(kv, target):
    blob = load_latency_table("a10", "llama-3-8b", 1).pack()
    assert _decode(blob, 128, kv) == pytest.approx(target, rel=0.03)


def test_previous_tables_load_by_name_for_comparison():
    old = load_latency_table("a10", "llama-3-8b-v1", 1)
    new = load_latency_table("a10", "llama-3-8b", 1)
    assert old.key == ("a10", "llama-3-8b-v1", 1) and "superseded" in old.provenance_dict
    assert _prefill(old.pack(), 1024) == pytest.approx(250.0, rel=0.01)
    assert _prefill(new.pack(), 1024) > _prefill(old.pack(), 1024)
    for tp in (1, 2, 4, 8):
        assert load_latency_table("h100", "llama-3.3-70b-fp8-v1", tp).tp == tp


def test_h100_tables_record_their_check_against_measured_profiles():
    for key in SHIPPED[1:]:
        prov = load_latency_table(*key).provenance_dict
        after = prov["h100_check"]["after"]
        assert after and all(v["median_abs_err_pct"] < 10 for v in after.values())
        if key[2] > 1:
            chk = prov["allreduce_check"]
            assert chk["after"]["median_abs_err_pct"] < chk["before"]["median_abs_err_pct"]


@pytest.mark.parametrize("key", SHIPPED)
def test_monotone_in_tokens_kv_and_n(key):
    blob = load_latency_table(*key).pack()
    xs = np.unique(np.r_[np.arange(1, 300), np.geomspace(300, 60000, 200).astype(np.int64)])
    for f in (token_ms, allreduce_ms):
        y = np.array([f(blob, x) for x in xs])
        assert (np.diff(y) >= -1e-9).all() and (y >= 0).all()
    y = np.array([_prefill(blob, x) for x in xs])
    assert (np.diff(y) > 0).all()
    for chunk in (1, 7, 512, 3000, 8192, 20000):  # growing context at a fixed chunk
        kv = xs[xs >= chunk]
        y = np.array([prefill_attn_ms(blob, k, chunk) for k in kv])
        assert (np.diff(y) >= -1e-9).all()
    for kv in (1, 500, 4096, 40000):
        y = np.array([decode_attn_ms(blob, n, kv) for n in range(1, 700)])
        assert (np.diff(y) >= -1e-9).all() and y[-1] > y[0]
        y = np.array([_decode(blob, n, kv) for n in range(1, 700)])
        assert (np.diff(y) >= -1e-9).all()
    for n in (1, 128, 600):
        y = np.array([decode_attn_ms(blob, n, k) for k in xs])
        assert (np.diff(y) >= -1e-9).all() and y[-1] > y[0]


def test_tensor_parallel_70b_is_faster_per_iteration():
    blobs = {tp: load_latency_table("h100", "llama-3.3-70b-fp8", tp).pack() for tp in (1, 2, 4, 8)}
    cases = [("prefill", n) for n in (1, 16, 128, 1024, 4096, 16384, 50000)] + \
            [("decode", n, kv) for n in (1, 32, 256) for kv in (128, 2048, 16384)]
    for case in cases:
        t = {tp: (_prefill(b, case[1]) if case[0] == "prefill" else _decode(b, case[1], case[2]))
             for tp, b in blobs.items()}
        assert t[8] < t[4] < t[2] < t[1], (case, t)


def test_h100_faster_than_a10_for_llama_3_8b():
    a10 = load_latency_table("a10", "llama-3-8b", 1).pack()
    h100 = load_latency_table("h100", "llama-3-8b", 1).pack()
    for n in (1, 128, 1024, 4096):
        assert _prefill(h100, n) < _prefill(a10, n) / 3


def test_iteration_is_the_sum_of_its_parts():
    blob = load_latency_table("h100", "llama-3.3-70b-fp8", 4).pack()
    attn = prefill_attn_ms(blob, 3000, 500) + prefill_attn_ms(blob, 200, 200)
    expect = (token_ms(blob, 764) + attn + decode_attn_ms(blob, 64, 1500.5) + allreduce_ms(blob, 764)
              + load_latency_table("h100", "llama-3.3-70b-fp8", 4).overhead_ms)
    assert iteration_ms(blob, 764, 64, 64 * 1500.5, attn) == pytest.approx(expect, rel=1e-12)
    assert iteration_ms(blob, 0, 0, 0, 0.0) == 0.0
    assert decode_attn_ms(blob, 0, 1000) == 0.0 and prefill_attn_ms(blob, 100, 0) == 0.0


# ------------------------------------------------------------------ interpolation, hand-worked
def test_interpolation_exact_on_grid_and_linear_between():
    blob = LatencyTable.from_dict(_tiny(overhead_ms=0.5,
                                        allreduce={"tokens": [4, 8], "ms": [1, 2]})).pack()
    # 1-D: grid points, midpoints, extrapolation from the last segment (slope 0.4), count <= 0.
    assert [token_ms(blob, x) for x in (10, 20)] == pytest.approx([3, 7])
    assert token_ms(blob, 1) == pytest.approx(1.2)
    assert token_ms(blob, 15) == pytest.approx(5.0)
    assert token_ms(blob, 12.5) == pytest.approx(4.0)
    assert token_ms(blob, 25) == pytest.approx(9.0)
    assert token_ms(blob, 0) == 0.0
    # below the first grid point a table is clamped to its first value
    assert allreduce_ms(blob, 2) == pytest.approx(1.0)
    assert allreduce_ms(blob, 6) == pytest.approx(1.5)
    # 2-D bilinear: rows kv 10/20, columns chunk 1/3.
    assert prefill_attn_ms(blob, 20, 3) == pytest.approx(5.0)
    assert prefill_attn_ms(blob, 15, 2) == pytest.approx(0.25 * (1 + 2 + 3 + 5))
    assert prefill_attn_ms(blob, 10, 2) == pytest.approx(1.5)
    assert prefill_attn_ms(blob, 30, 3) == pytest.approx(8.0)     # kv extrapolated: 2 + 2 * 3
    assert prefill_attn_ms(blob, 5, 1) == pytest.approx(1.0)      # kv clamped below the grid
    assert decode_attn_ms(blob, 3, 200) == pytest.approx((2 + 4 + 6 + 12) / 4)
    assert decode_attn_ms(blob, 9, 300) == pytest.approx(20.0)    # n extrapolated: 4 + 2 * (12 - 4)
    # iteration: token 4 + prefill 1.25 + decode(2, 150) + allreduce 3.125 + overhead 0.5
    dec = 2 + 0.25 * (4 - 2) + 0.25 * (6 - 2) + 0.25 * 0.25 * (12 - 6 - 4 + 2)
    assert decode_attn_ms(blob, 2, 150) == pytest.approx(dec)
    assert allreduce_ms(blob, 12.5) == pytest.approx(1 + (12.5 - 4) / 4)
    assert iteration_ms(blob, 12.5, 2, 300, 1.25) == pytest.approx(4 + 1.25 + dec + 3.125 + 0.5)


def test_extrapolation_never_goes_below_zero():
    # Rises overall but its last segment falls (a measured dip): extrapolating that segment
    # would reach negative times.
    doc = _tiny(token_work={"tokens": [1, 2, 3], "ms": [5, 7, 6]})
    blob = LatencyTable.from_dict(doc).pack()
    assert token_ms(blob, 2.5) == pytest.approx(6.5)
    assert token_ms(blob, 100) == 0.0
    with pytest.raises(ValueError, match="decreasing"):  # a table that falls is refused
        LatencyTable.from_dict(_tiny(token_work={"tokens": [1, 2], "ms": [5, 1]}))


# ------------------------------------------------------------------ files
def test_save_load_round_trip(tmp_path):
    t = load_latency_table("h100", "llama-3.3-70b-fp8", 2)
    path = tmp_path / "copy.json"
    t.save(path)
    u = LatencyTable.load(path)
    assert u.key == t.key and u.overhead_ms == t.overhead_ms
    assert u.provenance_dict == t.provenance_dict
    np.testing.assert_array_equal(u.pack(), t.pack())
    for line in path.read_text().splitlines()[:3]:
        assert len(line) < 200  # hand-editable layout, not one giant line


def test_user_written_minimal_table_loads(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(_tiny()))
    t = LatencyTable.load(path)
    assert t.key == ("mygpu", "mymodel", 1) and t.overhead_ms == 0.0
    assert t.provenance_dict == {"summary": "measured by hand"}
    blob = t.pack()
    assert allreduce_ms(blob, 1000) == 0.0  # no all-reduce section: TP1
    assert _prefill(blob, 10) == pytest.approx(3 + 1 + (2 - 1) * 4.5)
    t.save(tmp_path / "again.json")
    assert LatencyTable.load(tmp_path / "again.json").provenance == "measured by hand"


@pytest.mark.parametrize("change, message", [
    (dict(token_work={"tokens": [1, 5, 3], "ms": [1, 2, 3]}), r"token.*strictly increasing.*3"),
    (dict(token_work={"tokens": [1, 2, 3], "ms": [1, 2]}), r"token_ms.*shape"),
    (dict(token_work={"tokens": [1], "ms": [1]}), r"tokens.*at least 2"),
    (dict(prefill_attn={"kv_context": [10, 20], "chunk": [1, 3], "ms": [[1, 2], [3, -5]]}),
     r"prefill_ms.*>= 0"),
    (dict(prefill_attn={"kv_context": [10, 20], "chunk": [1, 3], "ms": [[1, 2], [3]]}),
     r"prefill_ms: not a numeric array"),
    (dict(decode_attn={"n_decodes": [1, 5], "mean_kv": [100, 300], "ms": [[2, 4, 5], [6, 12, 1]]}),
     r"decode_ms.*expected shape \(2, 2\)"),
    (dict(decode_attn={"n_decodes": [1, 5], "ms": [[2, 4], [6, 12]]}), r"missing.*mean_kv"),
    (dict(tp=0), r"tp must be"),
    (dict(overhead_ms=-1), r"overhead_ms"),
    (dict(format="something-else/9"), r"unknown format"),
])
def test_malformed_table_raises_helpful_error(tmp_path, change, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_tiny(**change)))
    with pytest.raises(ValueError, match=message):
        LatencyTable.load(path)


def test_not_json_raises_value_error(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        LatencyTable.load(path)


def test_missing_section_is_named():
    doc = _tiny()
    del doc["decode_attn"]
    with pytest.raises(ValueError, match="decode_attn"):
        LatencyTable.from_dict(doc)


# ------------------------------------------------------------------ the derivation script
def test_derivation_script_reproduces_the_shipped_tables():
    spec = importlib.util.spec_from_file_location("derive", ROOT / "scripts" / "derive_latency_tables.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the class is built
    spec.loader.exec_module(mod)
    a10_tokens, eff_a10, eff_h100, *_ = mod.fit_all()
    built = mod.build_a10(eff_a10, a10_tokens, "2000-01-01")
    shipped = load_latency_table("a10", "llama-3-8b", 1)
    np.testing.assert_allclose(built.token_ms, shipped.token_ms, rtol=1e-4)
    np.testing.assert_allclose(built.decode_ms, shipped.decode_ms, rtol=1e-4)
    assert shipped.provenance_dict["calibration"]["max_abs_error_pct"] < 3
    h100 = load_latency_table("h100", "llama-3-8b", 1)
    r = mod.Roofline(mod.GPUS["h100"], mod.MODELS["llama-3-8b"], 1, eff_h100)
    np.testing.assert_allclose(r.token_work(h100.tokens), h100.token_ms, rtol=1e-3)


@pytest.mark.parametrize("token_ms, overhead, match", [
    ([0.0, 0.0], 0.0, "every iteration would be free"),
    ([50.0, 5.0], 1.0, "decreasing"),
    ([1.0, 4.0e6], 0.0, "over an hour"),
])
def test_implausible_tables_are_refused(token_ms, overhead, match):
    from sim_core.latency import LatencyTable

    z = np.zeros((2, 2))
    with pytest.raises(ValueError, match=match):
        LatencyTable(gpu="test", model="bad", tp=1, provenance="hand-made", tokens=[1.0, 1e4],
                     token_ms=token_ms, prefill_kv=[1.0, 1e4], prefill_chunk=[1.0, 1e4],
                     prefill_ms=z, decode_n=[1.0, 2.0], decode_kv=[1.0, 1e4], decode_ms=z,
                     overhead_ms=overhead)
