"""Read Vidur's operator profiles (``mlp.csv``, ``attention.csv``, ``all_reduce.csv``) into the fields of a LatencyTable.

Vidur (microsoft/vidur, ``data/profiling/``) profiles one transformer layer's operators on a GPU
and predicts an iteration as their sum over layers.  :meth:`sim_core.latency.LatencyTable.from_vidur` turns those files
into the piecewise-linear tables of :mod:`sim_core.latency`, using the same operator split Vidur
uses (``vidur/entities/execution_time.py``) and each profile's ``median`` statistic (what Vidur
trains on):

* ``mlp.csv`` (required; ``compute/<gpu>/<org>/<model>/``): ``time_stats.<op>.median`` of the nine
  token-proportional operators in :data:`MLP_OPS` against ``num_tokens``, one row per profiled
  batch, filtered to the model's shape columns (``n_head, n_kv_head, n_embd, n_expanded_embd,
  vocab_size``) and ``num_tensor_parallel_workers == tp``.  Token work(N) = layers * sum of the
  nine operators at N (duplicate rows: median).  The measured sum dips here and there (cuBLAS
  picks a different tile at some sizes: up to 25% in Vidur's public A10 and H100 profiles, e.g.
  136 tokens slower than 144); the table makes it non-decreasing by isotonic regression (pool
  adjacent violators; the provenance counts the points it moved and by how much) so that more
  work never costs less.  A curve whose times do not grow with the batch overall (the largest
  batch no slower than the smallest, or a falling least-squares line) is rejected as bad data.
  Beyond the largest profiled batch the curve goes on linearly with the slope of a least-squares
  line through the upper half of the profiled range (large GEMMs are compute-bound, so time is
  linear in tokens); it is never capped.
* ``attention.csv`` (optional): per-layer ``time_stats.attn_prefill / attn_decode /
  attn_kv_cache_save .median`` against ``batch_size, kv_cache_size, prefill_chunk_size,
  is_prefill`` (``kv_cache_size`` counts the tokens before a prefill chunk), rows filtered to
  ``n_q_head, n_kv_head, n_embd``, ``block_size == 16`` and the tensor-parallel degree.  Each is
  fitted by non-negative least squares to the form its cost follows, then evaluated on the
  table's grids (so beyond the profiled range it extrapolates by that form):
  prefill = a + b * pairs + c * context (pairs = chunk * (kv_before + (chunk + 1) / 2),
  context = kv_before + chunk); decode = a + b * batch * kv + c * batch; KV-cache write = a + b *
  max(chunk, batch) (Vidur's ``num_tokens``), added to the token work.  Without the file, all
  three come from :class:`sim_core.roofline.Roofline` and the table says so (a warning and the
  provenance's ``fallbacks``).
* ``all_reduce.csv`` (``network/<gpu>_dgx/``; needed when ``tp > 1``): ``time_stats.all_reduce
  .median`` of rows with ``collective == all_reduce`` and ``num_workers == devices_per_node ==
  tp``; ``size`` bytes become tokens as size / (2 * hidden) (bf16 activations, as Vidur does);
  two all-reduces per layer; isotonic and extended like the token work.  Missing: roofline ring
  model, with a warning.

Vidur's CPU overheads (scheduling, sampling) and its NCCL launch constants are left out: the table
is GPU time, like the profiles (``overhead_ms = 0``).
"""
from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sim_core.roofline import GPUS, MODELS, Efficiency, Model, Roofline

MLP_OPS = ("attn_pre_proj", "attn_post_proj", "mlp_up_proj", "mlp_down_proj", "mlp_act",
           "input_layernorm", "post_attention_layernorm", "attn_rope", "add")
STAT = "median"
BLOCK_SIZE = 16      # glia-nb's paged-cache block (Vidur's default too)
EXTEND_TO = 8        # extension points up to EXTEND_TO x the largest profiled batch (then linear)
KV_GRID = np.unique(np.r_[np.arange(1, 17), np.round(2.0 ** (np.arange(16, 61) / 4))]).astype(float)
CHUNK_GRID = KV_GRID[KV_GRID <= 16384]
DECODE_N_GRID = np.unique(np.r_[np.arange(1, 17), np.round(2.0 ** (np.arange(16, 41) / 4))]).astype(float)
TOKENS_GRID = np.unique(np.r_[np.arange(1, 33), np.round(2.0 ** (np.arange(40, 121) / 8))]).astype(float)


@dataclass(frozen=True)
class Curve:
    """A non-decreasing 1-D profile curve: per-layer ms at ``x`` (profiled, then extended)."""
    x: np.ndarray
    ms: np.ndarray
    profiled_max: float
    slope_beyond: float
    moved_points: int
    max_move_pct: float


def _read(path: Path, required: list[str], numeric: list[str], may_be_empty=()):
    """Read a CSV with pandas; one ValueError naming the file for missing columns, non-numeric
    values, or empty cells (allowed only in ``may_be_empty``: Vidur leaves a prefill row's decode
    time empty and vice versa)."""
    import pandas as pd  # lazy: the simulator itself never needs pandas at import time

    try:
        df = pd.read_csv(path)
    except Exception as exc:  # unreadable, empty, not CSV: say which file
        raise ValueError(f"{path}: cannot be read as CSV ({exc})") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing} (Vidur's layout; see "
                         f"sim_core.vidur_profiles)")
    for c in numeric:
        vals = pd.to_numeric(df[c], errors="coerce").astype(float)
        bad = (vals.isna() & df[c].notna()) | np.isinf(vals)
        if c not in may_be_empty:
            bad |= df[c].isna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise ValueError(f"{path}: column {c!r} is not numeric at data row {i + 1} "
                             f"(value {df[c].iloc[i]!r})")
        df[c] = vals
    return df


def _select(df, path: Path, where: dict):
    """Rows matching every ``column == value``; an error listing what the file holds if none."""
    mask = np.ones(len(df), dtype=bool)
    for c, v in where.items():
        mask &= (df[c] == v).to_numpy()
    if not mask.any():
        have = df[list(where)].drop_duplicates().head(8).to_dict("records")
        raise ValueError(f"{path}: no rows with {where}; the file holds e.g. {have}")
    return df[mask]


def _positive(path: Path, name: str, x: np.ndarray, y: np.ndarray, what: str) -> None:
    bad = np.flatnonzero(~(y > 0))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{path}: {name} must be > 0 ms, got {y[i]:g} at {what} = {x[i]:g}")


def _isotonic(y: np.ndarray) -> np.ndarray:
    """Least-squares non-decreasing fit (pool adjacent violators)."""
    vals, counts = [], []
    for v in y:
        vals.append(float(v))
        counts.append(1)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            c = counts[-2] + counts[-1]
            vals[-2] = (vals[-2] * counts[-2] + vals[-1] * counts[-1]) / c
            counts[-2] = c
            vals.pop()
            counts.pop()
    return np.repeat(vals, counts)


def _curve(path: Path, name: str, x: np.ndarray, y: np.ndarray, what: str) -> Curve:
    """Check, smooth to non-decreasing and extend one profiled curve (see module docstring)."""
    order = np.argsort(x)
    x, y = x[order], y[order]
    _positive(path, name, x, y, what)
    if x.size < 2:
        raise ValueError(f"{path}: {name} needs at least 2 distinct {what} values, got {x.size}")
    if y[-1] <= y[0] or np.polyfit(x, y, 1)[0] <= 0:
        raise ValueError(f"{path}: {name} does not increase with {what}: {y[0]:g} ms at "
                         f"{x[0]:g}, {y[-1]:g} ms at {x[-1]:g} (columns swapped or mislabelled?)")
    iso = _isotonic(y)
    upper = x >= x[-1] / 2
    if upper.sum() >= 2:
        slope = float(np.polyfit(x[upper], iso[upper], 1)[0])
    else:
        slope = float((iso[-1] - iso[-2]) / (x[-1] - x[-2]))
    slope = max(slope, 0.0)
    ext = x[-1] * 2.0 ** np.arange(1, int(np.log2(EXTEND_TO)) + 1)
    return Curve(x=np.r_[x, ext], ms=np.r_[iso, iso[-1] + slope * (ext - x[-1])],
                 profiled_max=float(x[-1]), slope_beyond=slope,
                 moved_points=int(np.sum(np.abs(iso - y) > 1e-12)),
                 max_move_pct=float(100 * np.max(np.abs(iso - y) / y)))


def read_mlp(path, model: Model, tp: int) -> tuple[Curve, dict]:
    """Per-layer sum of :data:`MLP_OPS` against ``num_tokens`` (and each operator's share)."""
    path = Path(path)
    cols = [f"time_stats.{op}.{STAT}" for op in MLP_OPS]
    shape = {"n_head": model.heads, "n_kv_head": model.kv_heads, "n_embd": model.hidden,
             "n_expanded_embd": model.mlp, "vocab_size": model.vocab,
             "num_tensor_parallel_workers": tp}
    numeric = cols + list(shape) + ["num_tokens"]
    df = _select(_read(path, numeric, numeric), path, shape)
    g = df.groupby("num_tokens")[cols].median()
    x = g.index.to_numpy(dtype=float)
    for c in cols:
        _positive(path, c, x, g[c].to_numpy(), "num_tokens")
    curve = _curve(path, "the sum of " + ", ".join(MLP_OPS), x, g[cols].sum(axis=1).to_numpy(),
                   "num_tokens")
    top = g.iloc[-1]
    share = {op: round(float(top[f"time_stats.{op}.{STAT}"] / top[cols].sum()), 4) for op in MLP_OPS}
    return curve, share


@dataclass(frozen=True)
class AttentionFit:
    """Per-layer attention costs fitted to ``attention.csv`` (ms; see the module docstring)."""
    prefill: tuple          # a, b (per pair), c (per context token)
    decode: tuple           # a, b (per batch * kv), c (per decode)
    kv_save: tuple          # a, b (per token)
    residual_pct: dict      # max and median |fit / measured - 1| per part, in %
    ranges: dict            # profiled ranges

    def prefill_ms(self, kv_context, chunk):
        c = np.asarray(chunk, dtype=float)
        k = np.maximum(np.asarray(kv_context, dtype=float), c)
        a, b, cc = self.prefill
        return a + b * c * (k - c + (c + 1) / 2) + cc * k

    def decode_ms(self, n, kv):
        a, b, c = self.decode
        n = np.asarray(n, dtype=float)
        return a + b * n * np.asarray(kv, dtype=float) + c * n

    def kv_save_ms(self, n):
        a, b = self.kv_save
        return a + b * np.asarray(n, dtype=float)


def _nnls(path: Path, part: str, X: np.ndarray, y: np.ndarray) -> tuple[tuple, dict]:
    from scipy.optimize import nnls

    if len(y) < X.shape[1]:
        raise ValueError(f"{path}: {part} needs at least {X.shape[1]} profiled rows, got {len(y)}")
    w = 1 / y  # relative errors: short kernels matter as much as long ones
    coef, _ = nnls(X * w[:, None], np.ones_like(y))
    rel = np.abs(X @ coef / y - 1) * 100
    return tuple(float(c) for c in coef), {"max": round(float(rel.max()), 2),
                                            "median": round(float(np.median(rel)), 2)}


def read_attention(path, model: Model, tp: int) -> AttentionFit:
    """Fit the per-layer prefill, decode and KV-cache-write costs of ``attention.csv``."""
    path = Path(path)
    t = {p: f"time_stats.attn_{p}.{STAT}" for p in ("prefill", "decode", "kv_cache_save")}
    sel = {"n_q_head": model.heads, "n_kv_head": model.kv_heads, "n_embd": model.hidden,
           "block_size": BLOCK_SIZE, "num_tensor_parallel_workers": tp}
    feats = ["batch_size", "kv_cache_size", "prefill_chunk_size"]
    df = _select(_read(path, list(t.values()) + feats + ["is_prefill"] + list(sel),
                       list(t.values()) + feats + list(sel), may_be_empty=list(t.values())),
                 path, sel)
    is_pf = df["is_prefill"].astype(str).str.lower().isin(["true", "1", "1.0"]).to_numpy()
    pf, dc = df[is_pf], df[~is_pf]
    if pf.empty or dc.empty:
        raise ValueError(f"{path}: needs both prefill (is_prefill true) and decode rows")
    for name, d, x in ((t["prefill"], pf, "prefill_chunk_size"), (t["decode"], dc, "kv_cache_size")):
        _positive(path, name, d[x].to_numpy(), d[name].to_numpy(), x)  # NaN fails too
    kb, c = pf["kv_cache_size"].to_numpy(), pf["prefill_chunk_size"].to_numpy()
    prefill, r_pf = _nnls(path, "attn_prefill", np.c_[np.ones_like(c), c * (kb + (c + 1) / 2), kb + c],
                          pf[t["prefill"]].to_numpy())
    n, kv = dc["batch_size"].to_numpy(), dc["kv_cache_size"].to_numpy()
    decode, r_dc = _nnls(path, "attn_decode", np.c_[np.ones_like(n), n * kv, n], dc[t["decode"]].to_numpy())
    saved = df[df[t["kv_cache_save"]].notna()]  # Vidur fills an empty KV-save time with 0: skip it
    ntok = np.maximum(saved["prefill_chunk_size"].to_numpy(), saved["batch_size"].to_numpy())
    y = saved[t["kv_cache_save"]].to_numpy()
    _positive(path, t["kv_cache_save"], ntok, y, "num_tokens")
    kv_save, r_kv = _nnls(path, "attn_kv_cache_save", np.c_[np.ones_like(ntok), ntok], y)
    ranges = {"prefill_chunk_size": [float(c.min()), float(c.max())],
              "prefill_kv_cache_size": [float(kb.min()), float(kb.max())],
              "decode_batch_size": [float(n.min()), float(n.max())],
              "decode_kv_cache_size": [float(kv.min()), float(kv.max())]}
    return AttentionFit(prefill, decode, kv_save,
                        {"attn_prefill": r_pf, "attn_decode": r_dc, "attn_kv_cache_save": r_kv}, ranges)


def read_all_reduce(path, model: Model, tp: int) -> Curve:
    """Median time of one all-reduce against tokens (size / (2 * hidden)) for ``tp`` workers."""
    path = Path(path)
    col = f"time_stats.all_reduce.{STAT}"
    df = _read(path, [col, "num_workers", "devices_per_node", "size", "collective"],
               [col, "num_workers", "devices_per_node", "size"])
    df = _select(df, path, {"collective": "all_reduce", "num_workers": tp, "devices_per_node": tp})
    g = df.groupby("size")[col].median()  # one row per rank: take the median rank
    return _curve(path, col, g.index.to_numpy(dtype=float) / (2 * model.hidden), g.to_numpy(), "tokens")


def _resolve(gpu: str, model: str) -> tuple:
    if gpu not in GPUS:
        raise ValueError(f"unknown gpu {gpu!r}; known: {sorted(GPUS)}")
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; known: {sorted(MODELS)}")
    return GPUS[gpu], MODELS[model]


def table_fields_from_vidur(directory, *, gpu: str, model: str, tp: int, efficiency: Efficiency,
                            efficiency_source: str = "given", all_reduce=None) -> dict:
    """The fields of a :class:`~sim_core.latency.LatencyTable` from Vidur's profile files in
    ``directory`` (see the module docstring); ``LatencyTable.from_vidur`` builds the table.

    ``all_reduce`` names the all-reduce CSV when it is not in ``directory`` (Vidur keeps it under
    ``network/<gpu>_dgx/``); ``efficiency`` sets the roofline used for what the files lack.
    """
    d = Path(directory)
    g, m = _resolve(gpu, model)
    if not (d / "mlp.csv").is_file():
        raise ValueError(f"{d / 'mlp.csv'}: not found (Vidur's compute profile is required)")
    eff_src = efficiency_source
    roof = Roofline(g, m, tp, efficiency)
    tok_curve, share = read_mlp(d / "mlp.csv", m, tp)
    fallbacks, prof = [], {
        "mlp.csv": {"file": str(d / "mlp.csv"), "columns": [f"time_stats.{op}.{STAT}" for op in MLP_OPS],
                    "against": "num_tokens", "rows": f"model shape of {m.name}, tp={tp}",
                    "summed": f"{len(MLP_OPS)} operators per layer x {m.layers} layers",
                    "profiled_tokens": [float(tok_curve.x[0]), tok_curve.profiled_max],
                    "beyond": f"linear, {m.layers * tok_curve.slope_beyond:.5g} ms/token (least "
                              f"squares over the upper half of the profiled range); never capped",
                    "isotonic_moved_points": tok_curve.moved_points,
                    "isotonic_max_move_pct": round(tok_curve.max_move_pct, 2),
                    "operator_share_at_largest_batch": share}}
    tokens = tok_curve.x
    attn_file = d / "attention.csv"
    if attn_file.is_file():
        fit = read_attention(attn_file, m, tp)
        token_ms = m.layers * (tok_curve.ms + fit.kv_save_ms(tokens))
        kv, ch = np.meshgrid(KV_GRID, CHUNK_GRID, indexing="ij")
        prefill = m.layers * fit.prefill_ms(kv, ch)
        dn, dkv = np.meshgrid(DECODE_N_GRID, KV_GRID, indexing="ij")
        decode = m.layers * fit.decode_ms(dn, dkv)
        prof["attention.csv"] = {"file": str(attn_file), "fit_per_layer_ms": {
            "prefill a + b*pairs + c*context": fit.prefill, "decode a + b*batch*kv + c*batch": fit.decode,
            "kv_cache_save a + b*tokens": fit.kv_save}, "residual_pct": fit.residual_pct,
            "profiled": fit.ranges, "summed": f"x {m.layers} layers", "beyond": "the fitted forms"}
    else:
        msg = (f"{attn_file}: not found; prefill and decode attention and the KV-cache write come "
               f"from the roofline ({g.name}, efficiencies {eff_src})")
        warnings.warn(msg, stacklevel=2)
        fallbacks.append(msg)
        token_ms = m.layers * tok_curve.ms + roof.kv_write(tokens)
        kv, ch = np.meshgrid(KV_GRID, CHUNK_GRID, indexing="ij")
        prefill = roof.prefill_attn(kv, ch)
        dn, dkv = np.meshgrid(DECODE_N_GRID, KV_GRID, indexing="ij")
        decode = roof.decode_attn(dn, dkv)
    ar_tokens, ar_ms = np.array([1.0, 2.0]), np.zeros(2)
    if tp > 1:
        ar_file = Path(all_reduce) if all_reduce is not None else d / "all_reduce.csv"
        if ar_file.is_file():
            ar = read_all_reduce(ar_file, m, tp)
            keep = np.r_[TOKENS_GRID[(TOKENS_GRID > ar.x[0]) & (TOKENS_GRID < ar.profiled_max)],
                         ar.x[ar.x >= ar.profiled_max]]
            ar_tokens = np.r_[ar.x[0], keep]
            ar_ms = 2 * m.layers * np.interp(ar_tokens, ar.x, ar.ms)
            prof["all_reduce.csv"] = {
                "file": str(ar_file), "columns": [f"time_stats.all_reduce.{STAT}"],
                "rows": f"collective=all_reduce, num_workers=devices_per_node={tp}",
                "tokens": f"size / (2 * {m.hidden})", "summed": f"2 per layer x {m.layers} layers",
                "profiled_tokens": [float(ar.x[0]), ar.profiled_max],
                "beyond": f"linear, {2 * m.layers * ar.slope_beyond:.5g} ms/token; below the "
                          f"smallest size: its time", "isotonic_moved_points": ar.moved_points}
        else:
            msg = f"{ar_file}: not found; the all-reduce comes from the roofline ring model"
            warnings.warn(msg, stacklevel=2)
            fallbacks.append(msg)
            ar_tokens, ar_ms = TOKENS_GRID, roof.allreduce(TOKENS_GRID)
    prov = {"summary": f"{m.name} on {tp}x {g.name} from Vidur operator profiles in {d}",
            "generated_by": "sim_core.latency.LatencyTable.from_vidur", "statistic": STAT,
            "profile": prof, "fallbacks": fallbacks,
            "roofline": {"efficiency": asdict(efficiency), "efficiency_source": eff_src},
            "notes": ["GPU time only: Vidur's CPU overheads and NCCL launch constants are left out "
                      "(overhead_ms = 0)."]}
    return dict(gpu=gpu, model=model, tp=tp, provenance=json.dumps(prov, indent=1),
                        tokens=tokens, token_ms=token_ms, prefill_kv=KV_GRID, prefill_chunk=CHUNK_GRID,
                        prefill_ms=prefill, decode_n=DECODE_N_GRID, decode_kv=KV_GRID,
                        decode_ms=decode, allreduce_tokens=ar_tokens, allreduce_ms=ar_ms)
