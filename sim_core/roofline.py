"""Roofline latency model of one (GPU, model, tensor-parallel degree): the analytic half of the tables.

Every shipped table in ``sim_core/data/latency`` is built from this model (``scripts/
derive_latency_tables.py`` fits its efficiency factors to measured profiles), and
:meth:`sim_core.latency.LatencyTable.from_vidur` falls back to it for whatever a profile lacks.
Times are milliseconds for the whole model (all layers), per GPU of a tensor-parallel replica;
``tp`` splits weights, query/KV heads and FLOPs.  The parts follow Vidur's operator split:

* ``linear_ops(N)``: the token-proportional operators Vidur profiles in ``mlp.csv`` (projections,
  MLP, norms, rotary, residual adds) = max(GEMM FLOPs / (peak * eff(N)), weight bytes / (bw *
  eta_bw_weights)) + elementwise bytes(N) / (bw * eta_bw_weights) + a fixed cost per layer.
  eff(N) = eta_gemm_lo + (eta_gemm_hi - eta_gemm_lo) * N / (N + n_half) saturates from skinny to
  large GEMMs.  ``lm_head=True`` adds the lm_head weight read (real, but outside Vidur's profile).
* ``kv_write(N)``: writing N tokens' K and V into the paged cache (Vidur's ``attn_kv_cache_save``).
* ``prefill_attn(K, C)``: a C-token chunk attending to K tokens of context (earlier + itself):
  max(FLOPs / (peak * eta_attn_ratio * eff(C)), bytes / (bw * eta_bw_kv)); no fixed cost, since
  the tables charge prefill attention per chunk while a real kernel serves all chunks at once.
* ``decode_attn(n, kv)``: n decodes reading kv cached tokens each, bandwidth-bound, + a fixed
  cost per layer (charged once per batch, as the tables charge decode attention).
* ``allreduce(N)``: two ring all-reduces per layer of N tokens' bf16 activations.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim_core.config import DTYPE_BYTES

ACT_BYTES = 2  # activations stay 16-bit


@dataclass(frozen=True)
class GPU:
    """Spec-sheet figures of one GPU."""
    name: str
    memory_gb: float
    bw: float                 # bytes/s
    peak: dict                # dense tensor FLOP/s by compute dtype
    link_bw: float            # bytes/s one direction per GPU (all-reduce); 0 = none
    source: str


@dataclass(frozen=True)
class Model:
    """Shape of a decoder-only transformer (Llama family: gated MLP, grouped-query attention)."""
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
        """Weights of all transformer layers (attention projections + gated MLP)."""
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
    # Shapes of Vidur's measured H100 profiles, used to check the H100 tables (fp16 throughout;
    # vocab 32768 as in Vidur's model config, which pads Llama-2's 32000).
    "llama-2-7b": Model("llama-2-7b", 32, 4096, 32, 32, 128, 11008, 32768, 6.74,
                        "fp16", "fp16", "fp16", _LLAMA_SRC + "; fp16"),
    "llama-2-70b": Model("llama-2-70b", 80, 8192, 64, 8, 128, 28672, 32768, 69.0,
                         "fp16", "fp16", "fp16", _LLAMA_SRC + "; fp16"),
}


@dataclass(frozen=True)
class Efficiency:
    """Efficiency factors (fractions of spec peak) and fixed costs of the roofline."""
    eta_gemm_lo: float            # achieved FLOP fraction of skinny GEMMs (few tokens)
    eta_gemm_hi: float            # ... of large GEMMs (saturated)
    n_half: float                 # tokens at half the lo->hi gain, on GPU n_half_gpu
    eta_bw_weights: float         # achieved bandwidth fraction streaming weights/activations
    eta_bw_kv: float              # ... reading and writing the KV cache
    overhead_us_per_layer: float  # fixed per-layer cost of the token-proportional operators
    eta_attn_ratio: float = 1.0   # prefill attention FLOP efficiency relative to eff(C)
    decode_us_per_layer: float = 0.0  # fixed per-layer cost of a batch's decode attention
    n_half_gpu: str = "a10"       # the GPU n_half was fitted on; scaled to others by ridge point


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
        # n_half is the batch at which GEMMs turn compute-bound: it moves with the ridge point
        ref = GPUS[eff.n_half_gpu]
        ridge_ref = 2 * ref.peak["fp16"] / (2 * ref.bw)
        self.n_half = eff.n_half * (self.wb * self.peak_gemm / (2 * gpu.bw)) / ridge_ref
        self.n_half_attn = eff.n_half * (2 * self.peak_attn / (2 * gpu.bw)) / ridge_ref

    def _eff(self, n, n_half):
        e = self.e
        return e.eta_gemm_lo + (e.eta_gemm_hi - e.eta_gemm_lo) * n / (n + n_half)

    def linear_ops(self, n, *, lm_head: bool = True):
        """Vidur's ``mlp.csv`` operators over all layers (+ the lm_head weight read), ms."""
        m, e, n = self.m, self.e, np.asarray(n, dtype=float)
        flops = 2 * m.layer_params * n / self.tp
        w_bytes = (m.layer_params + (m.vocab * m.hidden if lm_head else 0)) * self.wb / self.tp
        # two fused add+RMSNorms (8h), rotary on q/k, SiLU-and-mul (3 * mlp), bytes per token
        elem = ACT_BYTES * m.layers * (8 * m.hidden + 2 * (self.heads + self.kv_heads) * m.head_dim
                                       + 3 * m.mlp / self.tp)
        bw = self.g.bw * e.eta_bw_weights
        gemm = np.maximum(flops / (self.peak_gemm * self._eff(n, self.n_half)), w_bytes / bw)
        return 1e3 * (gemm + elem * n / bw) + m.layers * e.overhead_us_per_layer * 1e-3

    def kv_write(self, n):
        """Writing n tokens' K and V into the paged cache, all layers, ms."""
        return 1e3 * np.asarray(n, dtype=float) * self.kv_bytes_tok / (self.g.bw * self.e.eta_bw_kv)

    def token_work(self, n):
        """Everything proportional to the batch's token count: linear ops + KV write, ms."""
        return self.linear_ops(n) + self.kv_write(n)

    def prefill_attn(self, kv, chunk):
        """Attention of a ``chunk``-token prefill with ``kv`` tokens of context (incl. the chunk), ms."""
        m = self.m
        c = np.asarray(chunk, dtype=float)
        k = np.maximum(np.asarray(kv, dtype=float), c)  # cells with chunk > kv: use kv = chunk
        pairs = c * (k - c) + c * (c + 1) / 2
        flops = 4 * m.layers * self.heads * m.head_dim * pairs
        nbytes = k * self.kv_bytes_tok + 2 * c * m.layers * self.heads * m.head_dim * ACT_BYTES
        eff = self.e.eta_attn_ratio * self._eff(c, self.n_half_attn)
        return 1e3 * np.maximum(flops / (self.peak_attn * eff), nbytes / (self.g.bw * self.e.eta_bw_kv))

    def decode_attn(self, n, kv):
        """Attention of ``n`` decodes with ``kv`` cached tokens each, ms."""
        m = self.m
        n, kv = np.asarray(n, dtype=float), np.asarray(kv, dtype=float)
        nbytes = n * kv * self.kv_bytes_tok + 2 * n * m.layers * self.heads * m.head_dim * ACT_BYTES
        flops = 4 * m.layers * self.heads * m.head_dim * n * kv
        return 1e3 * np.maximum(nbytes / (self.g.bw * self.e.eta_bw_kv),
                                flops / (self.peak_attn * self.e.eta_gemm_hi)) \
            + self.m.layers * self.e.decode_us_per_layer * 1e-3

    def allreduce_call(self, n):
        """One ring all-reduce of n tokens' activations, ms (0 for TP1)."""
        n = np.asarray(n, dtype=float)
        if self.tp == 1:
            return np.zeros_like(n)
        return 1e3 * (2 * (self.tp - 1) / self.tp * n * self.m.hidden * ACT_BYTES / self.link_bw
                      + self.ar_lat)

    def allreduce(self, n):
        """Two all-reduces per layer (after attention and after the MLP), ms."""
        return 2 * self.m.layers * self.allreduce_call(n)

    def overhead(self) -> float:
        """Per-iteration constant outside the operators (CPU scheduling, sampling), ms."""
        return self.cpu_ms
