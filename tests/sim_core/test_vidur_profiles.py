"""Reading Vidur's profile CSVs into a LatencyTable: hand-summed values, fallbacks, bad input, CLI."""
from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim_core.latency import (LatencyTable, allreduce_ms, decode_attn_ms, iteration_ms,
                              prefill_attn_ms, token_ms)
from sim_core.roofline import GPUS, MODELS, Roofline
from sim_core.latency import default_efficiency
from sim_core.vidur_profiles import MLP_OPS

ROOT = Path(__file__).resolve().parents[2]
STATS = ("min", "max", "mean", "median", "std")
L = 32  # llama-3-8b layers
TOKENS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
KV_SAVE = (0.002, 0.00001)             # per layer: a + b * tokens
PREFILL = (0.05, 2e-7, 1e-5)           # a + b * pairs + c * context
DECODE = (0.02, 3e-7, 0.001)           # a + b * batch * kv + c * batch


def _op_ms(i: int, n: float) -> float:
    """Per-layer median time of operator i at n tokens (increasing in n)."""
    return 0.01 * (i + 1) + 0.0002 * (i + 1) * n


def _stats(prefix: str, median: float | None) -> dict:
    if median is None:  # Vidur leaves an operator that did not run empty
        return {f"time_stats.{prefix}.{s}": np.nan for s in STATS}
    return {f"time_stats.{prefix}.{s}": (0.0 if s == "std" else median) for s in STATS}


def write_mlp(d: Path, tp: int = 1, tokens=TOKENS) -> None:
    m = MODELS["llama-3-8b"]
    rows = []
    for n in tokens:
        row = _stats("emb", 0.001)
        for i, op in enumerate(MLP_OPS):
            row.update(_stats(op, _op_ms(i, n)))
        row.update(n_head=m.heads, n_kv_head=m.kv_heads, n_embd=m.hidden, n_expanded_embd=m.mlp,
                   vocab_size=m.vocab, use_gated_mlp=True, num_tokens=n,
                   num_tensor_parallel_workers=tp)
        rows.append(row)
    pd.DataFrame(rows).to_csv(d / "mlp.csv", index=False)


def write_attention(d: Path, tp: int = 1) -> None:
    m = MODELS["llama-3-8b"]
    rows = []
    common = dict(n_embd=m.hidden, n_q_head=m.heads, n_kv_head=m.kv_heads, block_size=16,
                  num_tensor_parallel_workers=tp, max_model_len=8192)
    for chunk in (16, 64, 256, 512):
        for kv in (0, 256, 1024):
            a, b, c = PREFILL
            t = a + b * chunk * (kv + (chunk + 1) / 2) + c * (kv + chunk)
            rows.append({**_stats("attn_input_reshape", 0.001), **_stats("attn_prefill", t),
                         **_stats("attn_decode", None),
                         **_stats("attn_kv_cache_save", KV_SAVE[0] + KV_SAVE[1] * chunk), **common,
                         "batch_size": 1, "prefill_chunk_size": chunk, "kv_cache_size": kv,
                         "is_prefill": True, "attention_backend": "FLASHINFER"})
    for n in (1, 8, 32, 128):
        for kv in (128, 1024, 4096):
            a, b, c = DECODE
            rows.append({**_stats("attn_input_reshape", 0.001), **_stats("attn_prefill", None),
                         **_stats("attn_decode", a + b * n * kv + c * n),
                         **_stats("attn_kv_cache_save", KV_SAVE[0] + KV_SAVE[1] * n), **common,
                         "batch_size": n, "prefill_chunk_size": 0, "kv_cache_size": kv,
                         "is_prefill": False, "attention_backend": "FLASHINFER"})
    pd.DataFrame(rows).to_csv(d / "attention.csv", index=False)


def write_all_reduce(d: Path, tp: int) -> None:
    rows = [{"Unnamed: 0": i, **_stats("all_reduce", 0.01 + 1e-8 * size), "rank": 0,
             "num_workers": tp, "size": size, "collective": "all_reduce", "devices_per_node": tp,
             "max_devices_per_node": 8}
            for i, size in enumerate(2 ** np.arange(11, 27))]
    pd.DataFrame(rows).rename(columns={"Unnamed: 0": ""}).to_csv(d / "all_reduce.csv", index=False)


def _sum_ops(n):
    return sum(_op_ms(i, n) for i in range(len(MLP_OPS)))


def test_hand_summed_iteration_times(tmp_path):
    write_mlp(tmp_path)
    write_attention(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every file is there: no fallback warning
        t = LatencyTable.from_vidur(tmp_path, gpu="a10", model="llama-3-8b", tp=1)
    blob = t.pack()
    for n in (1, 64, 256):
        assert token_ms(blob, n) == pytest.approx(L * (_sum_ops(n) + KV_SAVE[0] + KV_SAVE[1] * n), rel=1e-9)
    # beyond the profile: linear with the slope of the upper half (exactly linear here)
    assert token_ms(blob, 2048) == pytest.approx(L * (_sum_ops(2048) + KV_SAVE[0] + KV_SAVE[1] * 2048),
                                                 rel=1e-6)
    a, b, c = PREFILL
    pf = L * (a + b * 256 * (0 + 257 / 2) + c * 256)  # chunk 256, nothing before it
    assert prefill_attn_ms(blob, 256, 256) == pytest.approx(pf, rel=1e-6)
    assert prefill_attn_ms(blob, 1024, 256) == pytest.approx(
        L * (a + b * 256 * (768 + 257 / 2) + c * 1024), rel=1e-6)
    a, b, c = DECODE
    assert decode_attn_ms(blob, 32, 1024) == pytest.approx(L * (a + b * 32 * 1024 + c * 32), rel=1e-6)
    expect = L * (_sum_ops(256) + KV_SAVE[0] + KV_SAVE[1] * 256) + pf
    assert iteration_ms(blob, 256, 0, 0, prefill_attn_ms(blob, 256, 256)) == pytest.approx(expect, rel=1e-6)
    assert allreduce_ms(blob, 1000) == 0.0 and t.overhead_ms == 0.0
    prov = t.provenance_dict
    assert prov["fallbacks"] == []
    assert prov["profile"]["mlp.csv"]["columns"] == [f"time_stats.{op}.median" for op in MLP_OPS]
    assert "linear" in prov["profile"]["mlp.csv"]["beyond"]
    assert prov["profile"]["attention.csv"]["residual_pct"]["attn_prefill"]["max"] < 1e-3


def test_all_reduce_is_two_per_layer(tmp_path):
    write_mlp(tmp_path, tp=2)
    write_attention(tmp_path, tp=2)
    write_all_reduce(tmp_path, tp=2)
    t = LatencyTable.from_vidur(tmp_path, gpu="h100", model="llama-3-8b", tp=2)
    blob = t.pack()
    size = 1024 * 2 * 4096  # bytes of 1,024 tokens' bf16 activations
    assert allreduce_ms(blob, 1024) == pytest.approx(2 * L * (0.01 + 1e-8 * size), rel=1e-3)
    assert "2 per layer" in t.provenance_dict["profile"]["all_reduce.csv"]["summed"]


def test_missing_attention_falls_back_to_the_roofline(tmp_path):
    write_mlp(tmp_path)
    with pytest.warns(UserWarning, match=r"attention\.csv: not found.*roofline"):
        t = LatencyTable.from_vidur(tmp_path, gpu="a10", model="llama-3-8b", tp=1)
    assert "attention.csv: not found" in t.provenance_dict["fallbacks"][0]
    eff, _ = default_efficiency("a10")
    r = Roofline(GPUS["a10"], MODELS["llama-3-8b"], 1, eff)
    blob = t.pack()
    assert prefill_attn_ms(blob, 1024, 1024) == pytest.approx(float(r.prefill_attn(1024, 1024)), rel=1e-9)
    assert token_ms(blob, 64) == pytest.approx(L * _sum_ops(64) + float(r.kv_write(64)), rel=1e-9)


def test_missing_all_reduce_falls_back_to_the_roofline(tmp_path):
    write_mlp(tmp_path, tp=2)
    write_attention(tmp_path, tp=2)
    with pytest.warns(UserWarning, match=r"all_reduce\.csv: not found"):
        t = LatencyTable.from_vidur(tmp_path, gpu="h100", model="llama-3-8b", tp=2)
    assert allreduce_ms(t.pack(), 100) > 0


def _mlp_df(tmp_path):
    write_mlp(tmp_path)
    return pd.read_csv(tmp_path / "mlp.csv")


@pytest.mark.parametrize("spoil, message", [
    (lambda df: df.drop(columns=["time_stats.mlp_act.median"]), r"missing column.*mlp_act"),
    (lambda df: df.drop(columns=["num_tokens"]), r"missing column.*num_tokens"),
    (lambda df: df.astype({"time_stats.add.median": object}).assign(
        **{"time_stats.add.median": ["fast"] + [0.1] * (len(df) - 1)}), r"'time_stats.add.median' is not numeric"),
    (lambda df: df.assign(**{"time_stats.mlp_up_proj.median": 0.0}), r"mlp_up_proj.median must be > 0"),
    (lambda df: df.assign(**{f"time_stats.{op}.median": df[f"time_stats.{op}.median"].to_numpy()[::-1]
                             for op in MLP_OPS}), r"does not increase with num_tokens"),
    (lambda df: df.assign(num_tensor_parallel_workers=4), r"no rows with .*num_tensor_parallel_workers"),
])
def test_bad_mlp_input_is_one_clear_error_naming_the_file(tmp_path, spoil, message):
    spoil(_mlp_df(tmp_path)).to_csv(tmp_path / "mlp.csv", index=False)
    with pytest.raises(ValueError, match=message) as err:
        LatencyTable.from_vidur(tmp_path, gpu="a10", model="llama-3-8b", tp=1)
    assert str(tmp_path / "mlp.csv") in str(err.value) and "\n" not in str(err.value)


def test_bad_attention_input_names_the_file(tmp_path):
    write_mlp(tmp_path)
    write_attention(tmp_path)
    df = pd.read_csv(tmp_path / "attention.csv")
    df.loc[df.is_prefill, "time_stats.attn_prefill.median"] = -1.0
    df.to_csv(tmp_path / "attention.csv", index=False)
    with pytest.raises(ValueError, match=r"attention\.csv: time_stats.attn_prefill.median must be > 0"):
        LatencyTable.from_vidur(tmp_path, gpu="a10", model="llama-3-8b", tp=1)
    (tmp_path / "mlp.csv").unlink()
    with pytest.raises(ValueError, match=r"mlp\.csv: not found"):
        LatencyTable.from_vidur(tmp_path, gpu="a10", model="llama-3-8b", tp=1)


def test_unknown_gpu_or_model_lists_the_known_ones(tmp_path):
    write_mlp(tmp_path)
    with pytest.raises(ValueError, match=r"unknown gpu 'b200'.*a10"):
        LatencyTable.from_vidur(tmp_path, gpu="b200", model="llama-3-8b")
    with pytest.raises(ValueError, match=r"unknown model 'gpt-2'.*llama-3-8b"):
        LatencyTable.from_vidur(tmp_path, gpu="a10", model="gpt-2")


def test_shipped_a10_token_work_is_the_committed_profile_summary():
    d = ROOT / "sim_core/data/vidur_profiles/compute/a10/meta-llama/Meta-Llama-3-8B"
    with pytest.warns(UserWarning, match="attention.csv"):
        t = LatencyTable.from_vidur(d, gpu="a10", model="llama-3-8b", tp=1)
    from sim_core.latency import load_latency_table

    shipped = load_latency_table("a10", "llama-3-8b", 1)
    np.testing.assert_allclose(t.token_ms, shipped.token_ms, rtol=1e-4)
    assert t.provenance_dict["profile"]["mlp.csv"]["isotonic_moved_points"] > 0


def test_cli_latency_import_writes_the_table(tmp_path, capsys):
    from glia_nb.cli.latency import register

    write_mlp(tmp_path)
    write_attention(tmp_path)
    parser = argparse.ArgumentParser(prog="glia")
    register(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "mine.json"
    args = parser.parse_args(["latency", "import", str(tmp_path), "--gpu", "a10", "--model",
                              "llama-3-8b", "--tp", "1", "--out", str(out)])
    assert args.func(args) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    t = LatencyTable.load(out)
    assert t.key == ("a10", "llama-3-8b", 1)
    ref = LatencyTable.from_vidur(tmp_path, gpu="a10", model="llama-3-8b", tp=1)
    np.testing.assert_allclose(t.pack(), ref.pack())
    assert json.loads(out.read_text())["provenance"]["generated_by"] == \
        "sim_core.latency.LatencyTable.from_vidur"


def test_cli_latency_import_reports_fallbacks_on_stderr(tmp_path, capsys, monkeypatch):
    from glia_nb.cli.latency import register

    write_mlp(tmp_path)
    monkeypatch.chdir(tmp_path)
    parser = argparse.ArgumentParser(prog="glia")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["latency", "import", str(tmp_path), "--gpu", "a10", "--model",
                              "llama-3-8b"])
    assert args.func(args) == 0
    assert "attention.csv: not found" in capsys.readouterr().err
    assert (tmp_path / "a10__llama-3-8b__tp1.json").is_file()
