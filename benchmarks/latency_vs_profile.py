"""Print the shipped latency tables beside Vidur's measured operator profiles and the roofline.

    python benchmarks/latency_vs_profile.py

A10 / Llama-3-8B: prefill-only iterations (one request of N tokens) and decode batches, each
beside the profile's operator sum over 32 layers (Vidur's A10 ``mlp.csv``; beyond its 4,096
tokens the table's linear extension, marked ``*``), the roofline's attention and KV-cache write,
the previous (v1) table and, where issue 18 quoted them, Vidur's own predictions, with ratios.
H100: the roofline's linear operators against Vidur's measured H100 ``mlp.csv`` (Llama-2-7B and
-70B, every tensor-parallel degree), Llama-2-7B scaled to Llama-3-8B, and the 70B FP8 tables'
all-reduce against Vidur's H100 DGX ``all_reduce.csv``.  Profiles: ``sim_core/data/vidur_profiles``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from sim_core.latency import (allreduce_ms, iteration_ms, load_latency_table,  # noqa: E402
                              prefill_attn_ms)
from sim_core.roofline import GPUS, MODELS, Efficiency, Roofline  # noqa: E402
from sim_core.vidur_profiles import read_all_reduce, read_mlp  # noqa: E402

PROFILES = ROOT / "sim_core" / "data" / "vidur_profiles"
A10_MLP = PROFILES / "compute/a10/meta-llama/Meta-Llama-3-8B/mlp.csv"
H100_MLP = {"llama-2-7b": PROFILES / "compute/h100/meta-llama/Llama-2-7b-hf/mlp.csv",
            "llama-2-70b": PROFILES / "compute/h100/meta-llama/Llama-2-70b-hf/mlp.csv"}
H100_AR = PROFILES / "network/h100_dgx/all_reduce.csv"
VIDUR_PREFILL = {64: 35.9, 256: 82.8, 1024: 314.6, 4096: 1267.0}  # Vidur's predictions (issue 18)


def _efficiency(table) -> Efficiency:
    known = set(Efficiency.__dataclass_fields__)
    return Efficiency(**{k: v for k, v in table.provenance_dict["efficiency"].items() if k in known})


def _measured(curve, n, layers):
    """Profile sum at n tokens over all layers; '*' marks the linear extension beyond the profile."""
    return layers * float(np.interp(n, curve.x, curve.ms)), ("*" if n > curve.profiled_max else " ")


def a10() -> None:
    table, v1 = load_latency_table("a10", "llama-3-8b", 1), load_latency_table("a10", "llama-3-8b-v1", 1)
    b, b1 = table.pack(), v1.pack()
    r = Roofline(GPUS["a10"], MODELS["llama-3-8b"], 1, _efficiency(table))
    curve, _ = read_mlp(A10_MLP, MODELS["llama-3-8b"], 1)
    print("A10 / llama-3-8b / tp1, prefill-only iteration (one request of N tokens), ms")
    print(f"{'N':>6} {'table':>8} {'sum':>9} {'tab/sum':>7} {'attn+kv':>8} {'sum+attn':>9} {'tab/(s+a)':>9} "
          f"{'v1':>8} {'Vidur':>7} {'tab/Vidur':>9}")
    for n in (64, 128, 256, 512, 1024, 2048, 4096, 8192):
        tab = iteration_ms(b, n, 0, 0, prefill_attn_ms(b, n, n))
        s, mark = _measured(curve, n, 32)
        attn = float(r.prefill_attn(n, n) + r.kv_write(n))
        vid = VIDUR_PREFILL.get(n)
        vtxt = f"{vid:7.1f} {tab / vid:9.2f}" if vid else f"{'-':>7} {'-':>9}"
        print(f"{n:6d} {tab:8.1f} {s:8.1f}{mark} {tab / s:7.2f} {attn:8.1f} {s + attn:9.1f} "
              f"{tab / (s + attn):9.2f} {iteration_ms(b1, n, 0, 0, prefill_attn_ms(b1, n, n)):8.1f} {vtxt}")
    print("\nA10 / llama-3-8b / tp1, decode batch (n decodes at kv context), ms")
    print(f"{'n':>4} {'kv':>5} {'table':>8} {'sum(n)':>7} {'tab/sum':>7} {'attn+kv':>8} {'tab/(s+a)':>9} {'v1':>8}")
    for kv in (256, 1024, 4096):
        for n in (1, 8, 32, 128):
            tab = iteration_ms(b, n, n, n * kv, 0.0)
            s, _ = _measured(curve, n, 32)
            attn = float(r.decode_attn(n, kv) + r.kv_write(n))
            print(f"{n:4d} {kv:5d} {tab:8.2f} {s:7.2f} {tab / s:7.2f} {attn:8.2f} {tab / (s + attn):9.2f} "
                  f"{iteration_ms(b1, n, n, n * kv, 0.0):8.2f}")


def h100() -> None:
    t8 = load_latency_table("h100", "llama-3-8b", 1)
    eff = _efficiency(t8)
    print("\nH100 linear operators (no lm_head): Vidur's measured mlp.csv sum vs the H100 tables' roofline, ms")
    print(f"{'profile':16s} " + " ".join(f"{'N=' + str(n):>17s}" for n in (1, 64, 256, 1024, 4096)))
    for model, path in H100_MLP.items():
        m = MODELS[model]
        for tp in (1, 2, 4, 8):
            curve, _ = read_mlp(path, m, tp)
            r = Roofline(GPUS["h100"], m, tp, eff)
            cells = []
            for n in (1, 64, 256, 1024, 4096):
                s, _ = _measured(curve, n, m.layers)
                mod = float(r.linear_ops(n, lm_head=False))
                cells.append(f"{s:6.2f}/{mod:6.2f} {mod / s:4.2f}")
            print(f"{model + '/tp' + str(tp):16s} " + " ".join(cells))
    curve, _ = read_mlp(H100_MLP["llama-2-7b"], MODELS["llama-2-7b"], 1)
    r7 = Roofline(GPUS["h100"], MODELS["llama-2-7b"], 1, eff)
    r8 = Roofline(GPUS["h100"], MODELS["llama-3-8b"], 1, eff)
    print("\nLlama-2-7B measured, scaled to Llama-3-8B by the roofline's FLOP/byte ratio, vs the H100 "
          "llama-3-8b table's linear operators, ms")
    for n in (1, 64, 256, 1024, 4096):
        s, _ = _measured(curve, n, 32)
        scaled = s * float(r8.linear_ops(n, lm_head=False) / r7.linear_ops(n, lm_head=False))
        tab = float(r8.linear_ops(n, lm_head=False))
        print(f"  N={n:5d}: measured 7B {s:7.2f}  scaled {scaled:7.2f}  table {tab:7.2f}  ratio {tab / scaled:4.2f}")
    m = MODELS["llama-3.3-70b-fp8"]
    print("\nH100 llama-3.3-70b-fp8 all-reduce per iteration (2 x 80 calls): Vidur's DGX profile vs table "
          "(v1 table), ms")
    for tp in (2, 4, 8):
        curve = read_all_reduce(H100_AR, m, tp)
        b = load_latency_table("h100", "llama-3.3-70b-fp8", tp).pack()
        b1 = load_latency_table("h100", "llama-3.3-70b-fp8-v1", tp).pack()
        cells = []
        for n in (1, 64, 256, 1024, 4096):
            s, _ = _measured(curve, n, 2 * m.layers)
            tab = allreduce_ms(b, n)
            cells.append(f"N={n}: {s:6.2f}/{tab:6.2f} {tab / s:4.2f} ({allreduce_ms(b1, n):5.2f})")
        print(f"  tp{tp}: " + "  ".join(cells))


if __name__ == "__main__":
    a10()
    h100()
