"""Latency model: how long one batch iteration takes on one replica.

The iteration time (milliseconds) of a batch is a sum of table look-ups::

    token_ms(total batch tokens)                        # GEMMs, MLP, norms, ...: 1-D table
  + sum over prefill chunks prefill_attn_ms(kv_context, chunk)   # 2-D table
  + decode_attn_ms(n_decodes, mean KV length of the decodes)   # 2-D table, 0 without decodes
  + allreduce_ms(total batch tokens)                    # 1-D table, zeros for TP1
  + overhead_ms                                         # per-iteration constant

``kv_context`` of a prefill chunk counts the request's tokens processed before the chunk plus the
chunk itself.  Every table is piecewise linear over strictly increasing grids (bilinear in 2-D).
Below the first grid point a table is clamped to its first value; beyond the last one it is
extrapolated linearly from the last segment and never drops below 0.  A count argument
(tokens, chunk, decodes) that is ``<= 0`` costs 0.

File format (JSON; ``LatencyTable.load`` / ``save``)::

    {
      "format": "glia-nb-latency-table/1",      # optional on load
      "gpu": "a10", "model": "llama-3-8b", "tp": 1,
      "provenance": {"summary": "how these numbers were obtained", ...},  # object or string
      "overhead_ms": 1.5,                         # optional, default 0
      "token_work":   {"tokens": [1, 128, ...], "ms": [30.1, 35.8, ...]},
      "prefill_attn": {"kv_context": [...], "chunk": [...],
                       "ms": [[...one row per kv_context, one column per chunk...], ...]},
      "decode_attn":  {"n_decodes": [...], "mean_kv": [...],
                       "ms": [[...one row per n_decodes, one column per mean_kv...], ...]},
      "allreduce":    {"tokens": [...], "ms": [...]}   # optional: omitted means TP1 (zeros)
    }

Grids need at least two strictly increasing, finite, non-negative points; times must be finite
and non-negative.  Prefill cells with ``chunk > kv_context`` never occur in a simulation; fill
them with anything sensible (the shipped tables use the value at ``kv_context = chunk``).
Shipped tables live in ``sim_core/data/latency/<gpu>__<model>__tp<tp>.json`` and are derived by
``scripts/derive_latency_tables.py`` from Vidur's measured operator profiles and a roofline
(``sim_core.roofline``); ``LatencyTable.from_vidur`` reads Vidur's profile CSVs
(``sim_core.vidur_profiles``).  ``<model>-v1`` tables are the first calibration, kept for comparison.

Blob layout (``LatencyTable.pack()``, one float64 array read by the compiled functions).  The first
``HEADER_LEN`` slots hold integers stored as floats; ``off_*`` are offsets into the blob::

    [0] BLOB_VERSION          [1] overhead_ms
    [2] off tokens grid       [3] n_tok      [4] off token_ms values (n_tok)
    [5] off prefill kv grid   [6] n_pkv      [7] off chunk grid   [8] n_pch
    [9] off prefill ms (n_pkv x n_pch, row-major: kv rows, chunk columns)
    [10] off decode n grid    [11] n_dn      [12] off decode kv grid   [13] n_dkv
    [14] off decode ms (n_dn x n_dkv, row-major: n rows, kv columns)
    [15] off allreduce tokens grid   [16] n_ar   [17] off allreduce ms (n_ar)

Compiled functions (``@njit(cache=True)``, in :mod:`sim_core.lookups` and re-exported here;
call them from other njit code or from Python)::

    token_ms(blob, n_tokens)                  prefill_attn_ms(blob, kv_context, chunk)
    decode_attn_ms(blob, n_decodes, mean_kv)  allreduce_ms(blob, n_tokens)
    iteration_ms(blob, n_tokens, n_decode, decode_kv_sum, prefill_attn_sum_ms)
    fixed_ms, decode_segment, decode_iteration_ms   (iteration_ms in parts, for decode stretches)
"""
from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from sim_core.lookups import (  # noqa: F401 - the compiled look-ups are part of this API
    allreduce_ms, decode_attn_ms, decode_iteration_ms, decode_segment, fixed_ms, iteration_ms,
    prefill_attn_ms, token_ms,
)

from sim_core.roofline import GPUS, Efficiency

FORMAT = "glia-nb-latency-table/1"
BLOB_VERSION = 1.0
HEADER_LEN = 18
_DATA_PACKAGE = "sim_core"
_DATA_DIR = ("data", "latency")

_ARRAYS_1D = ("tokens", "token_ms", "prefill_kv", "prefill_chunk", "decode_n", "decode_kv",
              "allreduce_tokens", "allreduce_ms")
_ARRAYS_2D = ("prefill_ms", "decode_ms")


def _frozen(a) -> np.ndarray:
    """A read-only float64 C-contiguous copy (the table is immutable and cached)."""
    out = np.array(a, dtype=np.float64, copy=True, order="C")
    out.setflags(write=False)
    return out


def _check_grid(name: str, g: np.ndarray) -> None:
    if g.ndim != 1 or g.size < 2:
        raise ValueError(f"{name}: need a 1-D grid of at least 2 points, got shape {g.shape}")
    if not np.all(np.isfinite(g)) or g[0] < 0:
        raise ValueError(f"{name}: grid points must be finite and >= 0, got {g.tolist()[:8]}...")
    bad = np.flatnonzero(np.diff(g) <= 0)
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{name}: grid must be strictly increasing, but point {i + 1} "
                         f"({g[i + 1]:g}) follows {g[i]:g}")


def _check_values(name: str, v: np.ndarray, shape: tuple) -> None:
    if v.shape != shape:
        raise ValueError(f"{name}: expected shape {shape} to match its grid(s), got {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name}: values must be finite (found NaN or inf)")
    if np.any(v < 0):
        idx = tuple(int(i) for i in np.argwhere(v < 0)[0])
        raise ValueError(f"{name}: times must be >= 0 ms, got {v[idx]:g} at index {idx}")


# An iteration longer than an hour is a unit mistake (seconds or microseconds for milliseconds).
ABSURD_MS = 3.6e6


def _check_plausible(token_ms: np.ndarray, overhead_ms: float) -> None:
    """Refuse a table that would make iterations free, cheaper with more tokens, or absurd."""
    if overhead_ms == 0 and not np.any(token_ms > 0):
        raise ValueError("token_ms: every time is 0 ms and there is no overhead: every iteration "
                         "would be free")
    if token_ms[-1] < token_ms[0]:
        raise ValueError(f"token_ms: decreasing ({token_ms[0]:g} ms at the smallest batch, "
                         f"{token_ms[-1]:g} ms at the largest): more tokens cannot cost less")
    if token_ms.max() + overhead_ms > ABSURD_MS:
        raise ValueError(f"token_ms: {token_ms.max():g} ms for one iteration is over an hour; "
                         "are the times in milliseconds?")


@dataclass(frozen=True, eq=False)
class LatencyTable:
    """Piecewise-linear latency tables of one (gpu, model, tp) replica; times in ms.

    ``prefill_ms[i, j]`` is the attention time of a chunk of ``prefill_chunk[j]`` tokens whose
    context (earlier tokens plus the chunk) is ``prefill_kv[i]``; ``decode_ms[i, j]`` is the
    attention time of ``decode_n[i]`` decodes whose mean KV length is ``decode_kv[j]``.
    Arrays are stored as read-only float64 copies.  See the module docstring for the file
    format and :meth:`pack` for the compiled representation.
    """

    gpu: str
    model: str
    tp: int
    provenance: str
    tokens: np.ndarray
    token_ms: np.ndarray
    prefill_kv: np.ndarray
    prefill_chunk: np.ndarray
    prefill_ms: np.ndarray
    decode_n: np.ndarray
    decode_kv: np.ndarray
    decode_ms: np.ndarray
    allreduce_tokens: np.ndarray = field(default_factory=lambda: np.array([1.0, 2.0]))
    allreduce_ms: np.ndarray = field(default_factory=lambda: np.zeros(2))
    overhead_ms: float = 0.0

    def __post_init__(self) -> None:
        for name in _ARRAYS_1D + _ARRAYS_2D:
            try:
                object.__setattr__(self, name, _frozen(getattr(self, name)))
            except (TypeError, ValueError) as exc:  # ragged rows, strings where numbers belong
                raise ValueError(f"{name}: not a numeric array of consistent shape ({exc})") from None
        if not isinstance(self.tp, (int, np.integer)) or self.tp < 1:
            raise ValueError(f"tp must be an integer >= 1, got {self.tp!r}")
        object.__setattr__(self, "tp", int(self.tp))
        if not self.gpu or not self.model:
            raise ValueError("gpu and model must be non-empty names")
        if not isinstance(self.provenance, str):
            raise ValueError("provenance must be a string (save() writes JSON objects as such)")
        oh = float(self.overhead_ms)
        if not math.isfinite(oh) or oh < 0:
            raise ValueError(f"overhead_ms must be finite and >= 0, got {self.overhead_ms!r}")
        object.__setattr__(self, "overhead_ms", oh)
        for g in ("tokens", "prefill_kv", "prefill_chunk", "decode_n", "decode_kv",
                  "allreduce_tokens"):
            _check_grid(g, getattr(self, g))
        _check_values("token_ms", self.token_ms, self.tokens.shape)
        _check_values("prefill_ms", self.prefill_ms, self.prefill_kv.shape + self.prefill_chunk.shape)
        _check_values("decode_ms", self.decode_ms, self.decode_n.shape + self.decode_kv.shape)
        _check_values("allreduce_ms", self.allreduce_ms, self.allreduce_tokens.shape)
        _check_plausible(self.token_ms, self.overhead_ms)

    @property
    def provenance_dict(self) -> dict:
        """The provenance as a dict (a plain-text provenance comes back as ``{"summary": text}``)."""
        try:
            obj = json.loads(self.provenance)
        except ValueError:
            obj = None
        return obj if isinstance(obj, dict) else {"summary": self.provenance}

    @property
    def key(self) -> tuple[str, str, int]:
        """``(gpu, model, tp)``."""
        return (self.gpu, self.model, self.tp)

    # ---------------------------------------------------------------- files
    @classmethod
    def from_dict(cls, doc: dict, *, source: str = "<dict>") -> "LatencyTable":
        """Build a table from the JSON document described in the module docstring."""
        def need(d, k, where):
            if not isinstance(d, dict) or k not in d:
                raise ValueError(f"{source}: missing {where}{k!r} (see sim_core.latency docstring)")
            return d[k]

        if not isinstance(doc, dict):
            raise ValueError(f"{source}: the top level must be a JSON object, got {type(doc).__name__}")
        fmt = doc.get("format", FORMAT)
        if fmt != FORMAT:
            raise ValueError(f"{source}: unknown format {fmt!r}; expected {FORMAT!r}")
        prov = doc.get("provenance", "")
        prov = prov if isinstance(prov, str) else json.dumps(prov, indent=1)
        tw, pa, da = (need(doc, k, "") for k in ("token_work", "prefill_attn", "decode_attn"))
        ar = doc.get("allreduce") or {"tokens": [1.0, 2.0], "ms": [0.0, 0.0]}
        try:
            return cls(
                gpu=str(need(doc, "gpu", "")), model=str(need(doc, "model", "")),
                tp=need(doc, "tp", ""), provenance=prov,
                tokens=need(tw, "tokens", "token_work."), token_ms=need(tw, "ms", "token_work."),
                prefill_kv=need(pa, "kv_context", "prefill_attn."),
                prefill_chunk=need(pa, "chunk", "prefill_attn."),
                prefill_ms=need(pa, "ms", "prefill_attn."),
                decode_n=need(da, "n_decodes", "decode_attn."),
                decode_kv=need(da, "mean_kv", "decode_attn."), decode_ms=need(da, "ms", "decode_attn."),
                allreduce_tokens=need(ar, "tokens", "allreduce."), allreduce_ms=need(ar, "ms", "allreduce."),
                overhead_ms=doc.get("overhead_ms", 0.0),
            )
        except (TypeError, ValueError) as exc:  # ragged lists, strings where numbers belong, ...
            raise ValueError(f"{source}: {exc}") from exc

    def to_dict(self) -> dict:
        """The JSON document of this table (inverse of :meth:`from_dict`)."""
        try:  # a JSON-object provenance is written back as an object, anything else as text
            prov = json.loads(self.provenance)
        except ValueError:
            prov = None
        prov = prov if isinstance(prov, dict) else self.provenance
        return {
            "format": FORMAT, "gpu": self.gpu, "model": self.model, "tp": self.tp,
            "provenance": prov, "overhead_ms": self.overhead_ms,
            "token_work": {"tokens": self.tokens.tolist(), "ms": self.token_ms.tolist()},
            "prefill_attn": {"kv_context": self.prefill_kv.tolist(),
                             "chunk": self.prefill_chunk.tolist(), "ms": self.prefill_ms.tolist()},
            "decode_attn": {"n_decodes": self.decode_n.tolist(), "mean_kv": self.decode_kv.tolist(),
                            "ms": self.decode_ms.tolist()},
            "allreduce": {"tokens": self.allreduce_tokens.tolist(), "ms": self.allreduce_ms.tolist()},
        }

    @classmethod
    def load(cls, path) -> "LatencyTable":
        """Read a table from a JSON file (format in the module docstring)."""
        path = Path(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from exc
        return cls.from_dict(doc, source=str(path))

    @classmethod
    def from_vidur(cls, directory, *, gpu: str, model: str, tp: int = 1,
                   efficiency: "Efficiency | None" = None, all_reduce=None) -> "LatencyTable":
        """A table from Vidur's profile files (``mlp.csv``, optional ``attention.csv`` and
        ``all_reduce.csv``) in ``directory``; see :mod:`sim_core.vidur_profiles`.
        ``efficiency`` sets the roofline used for what the files lack (default: the factors
        recorded in a shipped table of the same GPU, :func:`default_efficiency`)."""
        # Lazy: the profile reader needs pandas, which simulating never does.
        from sim_core.vidur_profiles import table_fields_from_vidur

        if gpu not in GPUS:
            raise ValueError(f"unknown gpu {gpu!r}; known: {sorted(GPUS)}")
        source = "given"
        if efficiency is None:
            efficiency, source = default_efficiency(gpu)
        return cls(**table_fields_from_vidur(directory, gpu=gpu, model=model, tp=tp,
                                             efficiency=efficiency, efficiency_source=source,
                                             all_reduce=all_reduce))

    def save(self, path) -> None:
        """Write the table as JSON, one grid or table row per line so it stays hand-editable."""
        Path(path).write_text(_dumps(self.to_dict()) + "\n", encoding="utf-8")

    # ---------------------------------------------------------------- compiled form
    def pack(self) -> np.ndarray:
        """The table as one writable float64 blob for the compiled functions (layout above)."""
        parts = [self.tokens, self.token_ms, self.prefill_kv, self.prefill_chunk,
                 self.prefill_ms.ravel(), self.decode_n, self.decode_kv, self.decode_ms.ravel(),
                 self.allreduce_tokens, self.allreduce_ms]
        offs, pos = [], HEADER_LEN
        for p in parts:
            offs.append(pos)
            pos += p.size
        head = [BLOB_VERSION, self.overhead_ms,
                offs[0], self.tokens.size, offs[1],
                offs[2], self.prefill_kv.size, offs[3], self.prefill_chunk.size, offs[4],
                offs[5], self.decode_n.size, offs[6], self.decode_kv.size, offs[7],
                offs[8], self.allreduce_tokens.size, offs[9]]
        assert len(head) == HEADER_LEN
        return np.concatenate([np.asarray(head, dtype=np.float64)] + parts)


def _fmt_scalar(x) -> str:
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return str(int(x))  # grids read better as 1024 than 1024.0
    return json.dumps(x)


def _dumps(obj, indent: int = 0) -> str:
    """JSON with numeric lists on one line and lists of lists one row per line."""
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(str(k))}: {_dumps(v, indent + 2)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list):
        if all(not isinstance(v, (dict, list)) for v in obj):
            return "[" + ", ".join(_fmt_scalar(v) for v in obj) + "]"
        return "[\n" + ",\n".join(inner + _dumps(v, indent + 2) for v in obj) + "\n" + pad + "]"
    return _fmt_scalar(obj)


# -------------------------------------------------------------------- shipped tables
def _data_dir():
    d = resources.files(_DATA_PACKAGE)
    for part in _DATA_DIR:
        d = d.joinpath(part)
    return d


def table_filename(gpu: str, model: str, tp: int) -> str:
    """File name of a shipped table, e.g. ``a10__llama-3-8b__tp1.json``."""
    return f"{gpu.lower()}__{model.lower()}__tp{int(tp)}.json"


def available_latency_tables() -> list[tuple[str, str, int]]:
    """``(gpu, model, tp)`` of every table shipped in ``sim_core/data/latency``, sorted."""
    out = []
    for entry in _data_dir().iterdir():
        parts = entry.name[:-len(".json")].split("__") if entry.name.endswith(".json") else []
        if len(parts) == 3 and parts[2].startswith("tp") and parts[2][2:].isdigit():
            out.append((parts[0], parts[1], int(parts[2][2:])))
    return sorted(out)


@functools.lru_cache(maxsize=None)
def load_latency_table(gpu: str = "a10", model: str = "llama-3-8b", tp: int = 1) -> LatencyTable:
    """The shipped table of ``(gpu, model, tp)``; cached, since tables are immutable.

    Raises ValueError naming the shipped tables when there is none for this key; a table you
    measured yourself loads with :meth:`LatencyTable.load`.
    """
    entry = _data_dir().joinpath(table_filename(gpu, model, tp))
    if not entry.is_file():
        have = ", ".join(f"{g}/{m}/tp{t}" for g, m, t in available_latency_tables()) or "none"
        raise ValueError(f"no shipped latency table for gpu={gpu!r} model={model!r} tp={tp}; "
                         f"shipped: {have}. Load your own with LatencyTable.load(path).")
    with resources.as_file(entry) as path:
        return LatencyTable.load(path)


def default_efficiency(gpu: str) -> tuple[Efficiency, str]:
    """The efficiency factors recorded in a shipped table of ``gpu`` (for roofline fallbacks)."""
    for g, m, tp in available_latency_tables():
        if g == gpu and not m.endswith("-v1"):
            prov = load_latency_table(g, m, tp).provenance_dict
            known = set(Efficiency.__dataclass_fields__)
            eff = prov.get("efficiency") or {}
            if set(eff) >= {"eta_gemm_lo", "eta_gemm_hi", "n_half", "eta_bw_weights", "eta_bw_kv"}:
                return Efficiency(**{k: v for k, v in eff.items() if k in known}), f"{g}/{m}/tp{tp}"
    raise ValueError(f"no shipped {gpu!r} table records roofline efficiencies; pass efficiency=")
