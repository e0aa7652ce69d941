"""Derive the shipped latency tables ``sim_core/data/latency/*.json`` from a calibrated roofline.

Model (per GPU of a tensor-parallel replica; ``tp`` splits weights, query/KV heads and FLOPs):

* token work(N) = max(GEMM FLOPs / (peak * eff(N)), weight bytes / (bw * eta_bw_weights))
  + elementwise bytes(N) / (bw * eta_bw_weights).  GEMM FLOPs = 2 * (transformer-layer params)
  * N; weight bytes = (layer params + lm_head) * weight dtype; elementwise traffic per token and
  layer = two fused add+RMSNorms (8h), rotary on q/k, SiLU-and-mul (3 * mlp) and the KV-cache write.
  eff(N) = eta_gemm_lo + (eta_gemm_hi - eta_gemm_lo) * N / (N + n_half) is a saturation curve
  from skinny to large GEMMs.  (lm_head FLOPs scale with sequences, not tokens: left out, <1%.)
* prefill attention(K, C) = max(4 * layers * heads * d * pairs / (peak_attn * eff(C)),
  (K cached K/V + C query/output) bytes / (bw * eta_bw_kv)), pairs = C (K - C) + C (C + 1) / 2.
* decode attention(n, kv) = max(n kv KV-bytes/token / (bw * eta_bw_kv), FLOPs / (peak_attn * eta_gemm_hi)).
* all-reduce(N) = 2 * layers * (2 (tp-1)/tp * N * hidden * 2 B / link_bw + latency); 0 for TP1.
* overhead = layers * overhead_us_per_layer (fixed launch/sync cost) + --cpu-overhead-ms.

The six efficiency parameters are fitted with scipy's ``least_squares`` to Vidur's A10 profile of
Llama-3-8B (relative errors; weak priors pin the directions the six points leave open, chiefly
weight bandwidth against the fixed overhead), then carried to the H100 by its spec sheet, with
``n_half`` scaled by the ratio of ridge points (the batch at which a GEMM turns compute-bound).

Usage::

    python scripts/derive_latency_tables.py [--out-dir DIR] [--check] [--date YYYY-MM-DD]
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from sim_core.config import DTYPE_BYTES, kv_blocks_from_memory  # noqa: E402
from sim_core.latency import LatencyTable, iteration_ms, prefill_attn_ms, table_filename  # noqa: E402


@dataclass(frozen=True)
class GPU:
    name: str
    memory_gb: float
    bw: float                 # bytes/s
    peak: dict                # dense tensor FLOP/s by compute dtype
    link_bw: float            # bytes/s one direction per GPU (all-reduce); 0 = none
    source: str


@dataclass(frozen=True)
class Model:
    name: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    mlp: int
    vocab: int
    params_b: float
    weight_dtype: str         # dtype of weights and GEMM compute
    kv_dtype: str
    attn_dtype: str           # compute dtype of attention
    source: str

    @property
    def layer_params(self) -> float:
        h, q, kv = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim
        return self.layers * (2 * h * q + 2 * h * kv + 3 * h * self.mlp)


GPUS = {
    "a10": GPU("a10", 24.0, 600e9, {"fp16": 125e12}, 0.0,
               "NVIDIA A10 datasheet: 24 GB GDDR6, 600 GB/s, 125 TFLOP/s dense FP16 tensor"),
    "h100": GPU("h100", 80.0, 3.35e12, {"fp16": 989e12, "fp8": 1979e12}, 450e9,
                "NVIDIA H100 datasheet (SXM 80 GB): 3.35 TB/s HBM3, ~989 TFLOP/s dense BF16, "
                "~1979 TFLOP/s dense FP8, NVLink 900 GB/s (bidirectional; a ring all-reduce "
                "sends at one direction's 450 GB/s)"),
}
_LLAMA_SRC = "Meta Llama model config (config.json): layers, hidden, heads, KV heads, head dim, MLP, vocab"
MODELS = {
    "llama-3-8b": Model("llama-3-8b", 32, 4096, 32, 8, 128, 14336, 128256, 8.03,
                        "fp16", "fp16", "fp16", _LLAMA_SRC + "; fp16 weights and KV cache"),
    "llama-3.3-70b-fp8": Model("llama-3.3-70b-fp8", 80, 8192, 64, 8, 128, 28672, 128256, 70.6,
                               "fp8", "fp16", "fp16", _LLAMA_SRC + "; FP8 weights and GEMMs, "
                               "BF16 KV cache and attention (vLLM's default kv_cache_dtype=auto)"),
}
TABLES = [("a10", "llama-3-8b", 1), ("h100", "llama-3-8b", 1)] + \
         [("h100", "llama-3.3-70b-fp8", tp) for tp in (1, 2, 4, 8)]
ACT_BYTES = 2  # activations stay 16-bit


@dataclass(frozen=True)
class Efficiency:
    """Fitted efficiency factors (fractions of spec peak) and fixed cost."""
    eta_gemm_lo: float            # achieved FLOP fraction of skinny GEMMs (few tokens)
    eta_gemm_hi: float            # ... of large GEMMs (saturated)
    n_half_a10: float             # tokens at half the lo->hi gain, on the A10 (scaled per GPU)
    eta_bw_weights: float         # achieved bandwidth fraction streaming weights/activations
    eta_bw_kv: float              # ... reading the KV cache in attention
    overhead_us_per_layer: float  # fixed per-layer launch/sync cost


PARAM_NAMES = list(Efficiency.__dataclass_fields__)
PRIOR_MEAN = np.array([0.4, 0.7, 1000.0, 0.85, 0.7, 30.0])
PRIOR_SD = np.array([0.2, 0.2, 2000.0, 0.1, 0.2, 50.0])
PRIOR_WEIGHT = 0.01  # one prior SD costs as much as a 1% miss: priors only fill flat directions
LOWER = [0.05, 0.05, 1.0, 0.3, 0.1, 0.0]
UPPER = [1.0, 1.0, 1e5, 1.0, 1.0, 1000.0]

# Vidur's A10 profile of Llama-3-8B summed over 32 layers, ms. (kind, N or kv, target)
CALIBRATION = [("prefill", 1, 30.0), ("prefill", 128, 36.0), ("prefill", 1024, 250.0),
               ("prefill", 4096, 914.0), ("decode128", 1024, 86.0), ("decode128", 4096, 224.0)]
CALIBRATION_SOURCE = ("Vidur (microsoft/vidur) A10 profiling data for Llama-3-8B, per-layer "
                      "operation times summed over 32 layers; prefill points are one request of N "
                      "tokens (kv = chunk = N); decode points are 128 requests at that context")


class Roofline:
    """The analytic model of one (gpu, model, tp) under given efficiencies; times in ms."""

    def __init__(self, gpu: GPU, model: Model, tp: int, eff: Efficiency, *,
                 link_bw: float | None = None, allreduce_latency_us: float = 10.0,
                 cpu_overhead_ms: float = 0.0):
        self.g, self.m, self.tp, self.e = gpu, model, tp, eff
        m = model
        self.wb, self.kvb = DTYPE_BYTES[m.weight_dtype], DTYPE_BYTES[m.kv_dtype]
        self.peak_gemm, self.peak_attn = gpu.peak[m.weight_dtype], gpu.peak[m.attn_dtype]
        self.heads = m.heads / tp
        self.kv_heads = max(1, m.kv_heads // tp)  # KV heads replicate once tp > kv_heads
        self.kv_bytes_tok = 2 * m.layers * self.kv_heads * m.head_dim * self.kvb
        self.link_bw = gpu.link_bw if link_bw is None else link_bw
        self.ar_lat = allreduce_latency_us * 1e-6
        self.cpu_ms = cpu_overhead_ms
        a10 = GPUS["a10"]
        ridge_ref = 2 * a10.peak["fp16"] / (2 * a10.bw)
        self.n_half = eff.n_half_a10 * (self.wb * self.peak_gemm / (2 * gpu.bw)) / ridge_ref
        self.n_half_attn = eff.n_half_a10 * (2 * self.peak_attn / (2 * gpu.bw)) / ridge_ref

    def _eff(self, n, n_half):
        e = self.e
        return e.eta_gemm_lo + (e.eta_gemm_hi - e.eta_gemm_lo) * n / (n + n_half)

    def token_work(self, n):
        m, e, n = self.m, self.e, np.asarray(n, dtype=float)
        flops = 2 * m.layer_params * n / self.tp
        w_bytes = (m.layer_params + m.vocab * m.hidden) * self.wb / self.tp
        elem = ACT_BYTES * m.layers * (8 * m.hidden + 2 * (self.heads + self.kv_heads) * m.head_dim
                                       + 3 * m.mlp / self.tp) + 2 * self.kv_bytes_tok
        bw = self.g.bw * e.eta_bw_weights
        gemm = np.maximum(flops / (self.peak_gemm * self._eff(n, self.n_half)), w_bytes / bw)
        return 1e3 * (gemm + elem * n / bw)

    def prefill_attn(self, kv, chunk):
        m = self.m
        c = np.asarray(chunk, dtype=float)
        k = np.maximum(np.asarray(kv, dtype=float), c)  # cells with chunk > kv: use kv = chunk
        pairs = c * (k - c) + c * (c + 1) / 2
        flops = 4 * m.layers * self.heads * m.head_dim * pairs
        nbytes = k * self.kv_bytes_tok + 2 * c * m.layers * self.heads * m.head_dim * ACT_BYTES
        return 1e3 * np.maximum(flops / (self.peak_attn * self._eff(c, self.n_half_attn)),
                                nbytes / (self.g.bw * self.e.eta_bw_kv))

    def decode_attn(self, n, kv):
        m = self.m
        n, kv = np.asarray(n, dtype=float), np.asarray(kv, dtype=float)
        nbytes = n * kv * self.kv_bytes_tok + 2 * n * m.layers * self.heads * m.head_dim * ACT_BYTES
        flops = 4 * m.layers * self.heads * m.head_dim * n * kv
        return 1e3 * np.maximum(nbytes / (self.g.bw * self.e.eta_bw_kv),
                                flops / (self.peak_attn * self.e.eta_gemm_hi))

    def allreduce(self, n):
        n = np.asarray(n, dtype=float)
        if self.tp == 1:
            return np.zeros_like(n)
        per = 2 * (self.tp - 1) / self.tp * n * self.m.hidden * ACT_BYTES / self.link_bw + self.ar_lat
        return 1e3 * 2 * self.m.layers * per

    def overhead(self) -> float:
        return self.m.layers * self.e.overhead_us_per_layer * 1e-3 + self.cpu_ms

    def calibration_point(self, kind: str, x: int) -> float:
        """Model time of one calibration point (see CALIBRATION)."""
        if kind == "prefill":
            return float(self.token_work(x) + self.prefill_attn(x, x) + self.overhead())
        n = 128
        return float(self.token_work(n) + self.decode_attn(n, x) + self.overhead())


def fit(**kw) -> tuple[Efficiency, object]:
    """Least-squares fit of the efficiencies to CALIBRATION (A10 / Llama-3-8B / TP1)."""
    targets = np.array([t for _, _, t in CALIBRATION])

    def residuals(p):
        r = Roofline(GPUS["a10"], MODELS["llama-3-8b"], 1, Efficiency(*p), **kw)
        model = np.array([r.calibration_point(k, x) for k, x, _ in CALIBRATION])
        return np.concatenate([model / targets - 1, PRIOR_WEIGHT * (p - PRIOR_MEAN) / PRIOR_SD])

    res = least_squares(residuals, PRIOR_MEAN, bounds=(LOWER, UPPER), x_scale=PRIOR_SD)
    return Efficiency(*(float(v) for v in res.x)), res


def _loggrid(lo: int, hi: int, per_octave: int, dense_to: int) -> np.ndarray:
    """Integers 1..dense_to, then ~per_octave log-spaced points up to hi (powers of 2 included)."""
    k = np.arange(0, per_octave * int(np.log2(hi)) + 1)
    pts = np.round(2.0 ** (k / per_octave))
    return np.unique(np.concatenate([np.arange(lo, dense_to + 1), pts[(pts >= dense_to) & (pts <= hi)]]))


TOKENS_GRID = _loggrid(1, 32768, 8, 32)
KV_GRID = _loggrid(1, 32768, 4, 16)
CHUNK_GRID = _loggrid(1, 16384, 4, 16)
DECODE_N_GRID = _loggrid(1, 1024, 4, 16)


def _sig(a, digits: int = 5) -> np.ndarray:
    """Round to significant digits so the JSON files stay small and readable."""
    return np.array([float(f"{v:.{digits}g}") for v in np.ravel(a)]).reshape(np.shape(a))


def kv_pool_note(gpu: GPU, model: Model, tp: int) -> dict:
    """KV pool implied by 0.9 memory utilization (sim_core.config.kv_blocks_from_memory)."""
    kw = dict(gpu_memory_gb=gpu.memory_gb, num_params_b=model.params_b, num_layers=model.layers,
              num_kv_heads=model.kv_heads, head_dim=model.head_dim, tp=tp,
              weight_dtype=model.weight_dtype, kv_dtype=model.kv_dtype, memory_utilization=0.9)
    blocks = kv_blocks_from_memory(**kw)
    note = {"kv_blocks_from_memory_0.9": blocks, "tokens": blocks * 16,
            "inputs": {k: v for k, v in kw.items()}}
    if (gpu.name, model.name, tp) == ("a10", "llama-3-8b", 1):
        per_tok = 2 * model.layers * model.kv_heads * model.head_dim * DTYPE_BYTES[model.kv_dtype]
        gap_gb = (blocks - 2240) * 16 * per_tok / 1e9
        note["comparison"] = (
            f"sim_core.config's default pool is 2,240 blocks (35,840 tokens), the paper's Vidur "
            f"configuration; 0.9 utilization without an activation reserve gives {blocks:,} blocks "
            f"({blocks * 16:,} tokens, {100 * (blocks / 2240 - 1):+.0f}%). The default corresponds "
            f"to reserving about {gap_gb:.2f} GB for activations/CUDA graphs; config.py is unchanged.")
    return note


def build(gpu_name, model_name, tp, eff, args, fit_rows, date) -> LatencyTable:
    """Evaluate the roofline on the grids and wrap it with its provenance."""
    g, m = GPUS[gpu_name], MODELS[model_name]
    r = Roofline(g, m, tp, eff, link_bw=args.link_gbps * 1e9,
                 allreduce_latency_us=args.allreduce_latency_us, cpu_overhead_ms=args.cpu_overhead_ms)
    kv, ch = np.meshgrid(KV_GRID, CHUNK_GRID, indexing="ij")
    dn, dkv = np.meshgrid(DECODE_N_GRID, KV_GRID, indexing="ij")
    prov = {
        "summary": (f"Roofline latency model of {m.name} on {tp}x {g.name}, efficiency factors "
                    f"fitted to Vidur's A10 Llama-3-8B profile"
                    + ("" if gpu_name == "a10" else " and carried over by spec-sheet scaling") + "."),
        "generated_by": "scripts/derive_latency_tables.py",
        "parameters": {"link_gbps": args.link_gbps, "allreduce_latency_us": args.allreduce_latency_us,
                       "cpu_overhead_ms": args.cpu_overhead_ms, "priors_mean": PRIOR_MEAN.tolist(),
                       "priors_sd": PRIOR_SD.tolist(), "prior_weight": PRIOR_WEIGHT},
        "date": date,
        "gpu": {**asdict(g), "source": g.source},
        "model": {**asdict(m), "layer_params": m.layer_params},
        "efficiency": {k: float(f"{v:.4g}") for k, v in asdict(eff).items()},
        "efficiency_note": ("eta_bw_weights and overhead_us_per_layer trade off on the 1-token point; "
                            "the weak prior (0.85 +- 0.1 on eta_bw_weights) picks the split."),
        "efficiency_transfer": {"n_half_gemm_tokens": round(r.n_half, 1),
                                "n_half_attention_tokens": round(r.n_half_attn, 1),
                                "rule": "fractions of peak carried over unchanged; n_half scaled by "
                                        "the ridge point (weight bytes * peak / (2 * bandwidth))"},
        "calibration": {"source": CALIBRATION_SOURCE, "fit": fit_rows,
                        "max_abs_error_pct": max((abs(r["model_err_pct"]) for r in fit_rows), default=None)},
        "kv_pool": kv_pool_note(g, m, tp),
        "notes": [
            "All-reduce: 2 per layer, ring cost 2(tp-1)/tp * bytes / link_bw + latency, bf16 activations.",
            "lm_head weights are read every iteration; lm_head FLOPs (per sequence) are left out.",
            "No CPU scheduling/sampling overhead unless cpu_overhead_ms > 0: Vidur's profile is GPU time.",
        ],
    }
    if m.params_b * DTYPE_BYTES[m.weight_dtype] / tp > 0.85 * g.memory_gb:
        prov["notes"].append(f"{m.params_b * DTYPE_BYTES[m.weight_dtype] / tp:.1f} GB of weights per "
                             f"GPU barely fit in {g.memory_gb:g} GB; the KV pool sizing decides.")
    return LatencyTable(
        gpu=gpu_name, model=model_name, tp=tp, provenance=_json(prov),
        tokens=TOKENS_GRID, token_ms=_sig(r.token_work(TOKENS_GRID)),
        prefill_kv=KV_GRID, prefill_chunk=CHUNK_GRID, prefill_ms=_sig(r.prefill_attn(kv, ch)),
        decode_n=DECODE_N_GRID, decode_kv=KV_GRID, decode_ms=_sig(r.decode_attn(dn, dkv)),
        allreduce_tokens=TOKENS_GRID, allreduce_ms=_sig(r.allreduce(TOKENS_GRID)),
        overhead_ms=float(_sig(r.overhead())),
    )


def _json(obj) -> str:
    return json.dumps(obj, indent=1)


def table_point(blob, kind: str, x: int) -> float:
    """A calibration point evaluated the way the engine does, through the compiled functions."""
    if kind == "prefill":
        return float(iteration_ms(blob, x, 0, 0, prefill_attn_ms(blob, x, x)))
    return float(iteration_ms(blob, 128, 128, 128 * x, 0.0))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", type=Path, default=ROOT / "sim_core" / "data" / "latency")
    ap.add_argument("--check", action="store_true", help="fit and print only; write nothing")
    ap.add_argument("--date", default=_dt.date.today().isoformat())
    ap.add_argument("--link-gbps", type=float, default=450.0,
                    help="per-direction NVLink bandwidth used by the ring all-reduce")
    ap.add_argument("--allreduce-latency-us", type=float, default=10.0)
    ap.add_argument("--cpu-overhead-ms", type=float, default=0.0)
    args = ap.parse_args(argv)

    eff, res = fit(cpu_overhead_ms=args.cpu_overhead_ms)
    print("fitted efficiency parameters (A10 / llama-3-8b / tp1):")
    for name in PARAM_NAMES:
        print(f"  {name:24s} {getattr(eff, name):10.4g}")
    a10 = Roofline(GPUS["a10"], MODELS["llama-3-8b"], 1, eff, cpu_overhead_ms=args.cpu_overhead_ms)
    print(f"  -> overhead_ms = {a10.overhead():.3f}, eff(1)={a10._eff(1, a10.n_half):.3f}, "
          f"eff(4096)={a10._eff(4096, a10.n_half):.3f}")
    blob = build("a10", "llama-3-8b", 1, eff, args, [], args.date).pack()  # rows don't change values
    rows = []
    print("\ncalibration (A10 / llama-3-8b / tp1), ms; 'table' = shipped table via iteration_ms:")
    print(f"  {'point':24s} {'target':>8s} {'model':>8s} {'err%':>6s} {'table':>8s} {'err%':>6s}")
    for kind, x, target in CALIBRATION:
        mod, tab = a10.calibration_point(kind, x), table_point(blob, kind, x)
        label = f"prefill N={x}" if kind == "prefill" else f"decode n=128 kv={x}"
        rows.append({"point": label, "target_ms": target, "model_ms": round(mod, 2),
                     "model_err_pct": round(100 * (mod / target - 1), 2), "table_ms": round(tab, 2),
                     "table_err_pct": round(100 * (tab / target - 1), 2)})
        print(f"  {label:24s} {target:8.1f} {mod:8.2f} {100 * (mod / target - 1):+6.1f} "
              f"{tab:8.2f} {100 * (tab / target - 1):+6.1f}")

    print("\nreference points per table, ms (iteration_ms):")
    print(f"  {'table':32s} {'1 tok':>7s} {'prefill 1024':>12s} {'prefill 4096':>12s} "
          f"{'dec128@1024':>11s} {'dec128@4096':>11s}  kv blocks@0.9")
    for gpu_name, model_name, tp in TABLES:
        t = build(gpu_name, model_name, tp, eff, args, rows, args.date)
        b = t.pack()
        pts = [table_point(b, "prefill", 1), table_point(b, "prefill", 1024),
               table_point(b, "prefill", 4096), table_point(b, "decode128", 1024),
               table_point(b, "decode128", 4096)]
        blocks = t.provenance_dict["kv_pool"]["kv_blocks_from_memory_0.9"]
        print(f"  {table_filename(gpu_name, model_name, tp):32s} {pts[0]:7.2f} {pts[1]:12.2f} "
              f"{pts[2]:12.2f} {pts[3]:11.2f} {pts[4]:11.2f}  {blocks}")
        if not args.check:
            args.out_dir.mkdir(parents=True, exist_ok=True)
            t.save(args.out_dir / table_filename(gpu_name, model_name, tp))
    if not args.check:
        print(f"\nwrote {len(TABLES)} tables to {args.out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
