"""The latency model's compiled look-ups: interpolation over a packed
:class:`~sim_core.latency.LatencyTable` blob (layout and formula in :mod:`sim_core.latency`,
which re-exports the public functions).  Kept apart from the table format so that each
module stays small."""
from __future__ import annotations

from numba import njit


# inline="always" on the helpers of the per-iteration look-ups: every call of a compiled
# function with array arguments updates their reference counts atomically, and at one call
# per helper per iteration that was a quarter of the engine's time.
@njit(cache=True, inline="always")
def _segment(blob, off, n, x):
    """Segment index i (0..n-2) and fraction t for x on the grid blob[off:off+n].

    t == 0 below the grid (clamp), 0 <= t <= 1 inside, t > 1 beyond the last point (extrapolate).
    """
    if x <= blob[off]:
        return 0, 0.0
    if x >= blob[off + n - 1]:
        i = n - 2
    else:  # bisection: the grids are short (tens of points), so this is a handful of steps
        lo, hi = 0, n - 1
        while hi - lo > 1:
            mid = (lo + hi) >> 1
            if blob[off + mid] <= x:
                lo = mid
            else:
                hi = mid
        i = lo
    x0 = blob[off + i]
    return i, (x - x0) / (blob[off + i + 1] - x0)


@njit(cache=True, inline="always")
def _interp1(blob, hx, x):
    gx, n, vy = int(blob[hx]), int(blob[hx + 1]), int(blob[hx + 2])
    i, t = _segment(blob, gx, n, x)
    y = blob[vy + i] + t * (blob[vy + i + 1] - blob[vy + i])
    return y if y > 0.0 else 0.0


@njit(cache=True, inline="always")
def _interp2(blob, h, x, y):
    """Bilinear look-up; header slots h..h+4 = off x grid, nx, off y grid, ny, off values."""
    i, tx = _segment(blob, int(blob[h]), int(blob[h + 1]), x)
    return _interp2_at(blob, h, i, tx, y)


@njit(cache=True, inline="always")
def _interp2_at(blob, h, i, tx, y):
    """:func:`_interp2` with the x segment ``(i, tx)`` already found (a decode stretch
    keeps x, the batch size, fixed)."""
    gy, ny, v = int(blob[h + 2]), int(blob[h + 3]), int(blob[h + 4])
    j, ty = _segment(blob, gy, ny, y)
    r0 = v + i * ny + j
    r1 = r0 + ny
    z0 = blob[r0] + ty * (blob[r0 + 1] - blob[r0])
    z1 = blob[r1] + ty * (blob[r1 + 1] - blob[r1])
    z = z0 + tx * (z1 - z0)
    return z if z > 0.0 else 0.0


@njit(cache=True)
def token_ms(blob, n_tokens):
    """Token-proportional work (GEMMs, MLP, norms) of a batch of ``n_tokens`` tokens, ms."""
    if n_tokens <= 0:
        return 0.0
    return _interp1(blob, 2, float(n_tokens))


@njit(cache=True)
def prefill_attn_ms(blob, kv_context, chunk):
    """Attention time of one prefill chunk of ``chunk`` tokens; ``kv_context`` = tokens before it + chunk."""
    if chunk <= 0:
        return 0.0
    return _interp2(blob, 5, float(kv_context), float(chunk))


@njit(cache=True)
def decode_attn_ms(blob, n_decodes, mean_kv):
    """Attention time of ``n_decodes`` decode tokens whose mean KV length is ``mean_kv``; 0 if none."""
    if n_decodes <= 0:
        return 0.0
    return _interp2(blob, 10, float(n_decodes), float(mean_kv))


@njit(cache=True)
def allreduce_ms(blob, n_tokens):
    """Tensor-parallel all-reduce time of a batch of ``n_tokens`` tokens (0 for TP1 tables)."""
    if n_tokens <= 0:
        return 0.0
    return _interp1(blob, 15, float(n_tokens))


@njit(cache=True, inline="always")
def iteration_ms(blob, n_tokens, n_decode, decode_kv_sum, prefill_attn_sum_ms):
    """Time of one batch iteration, ms; 0 for an empty batch.

    ``n_tokens`` counts every token of the batch (prefill chunks plus one per decode),
    ``decode_kv_sum`` sums the KV lengths of the ``n_decode`` decodes and
    ``prefill_attn_sum_ms`` is the sum of :func:`prefill_attn_ms` over the prefill chunks.
    """
    if n_tokens <= 0:
        return 0.0
    t = fixed_ms(blob, float(n_tokens), prefill_attn_sum_ms)
    if n_decode > 0:
        t += _interp2(blob, 10, float(n_decode), float(decode_kv_sum) / float(n_decode))
    return t


@njit(cache=True, inline="always")
def fixed_ms(blob, n_tokens, prefill_attn_sum_ms):
    """The part of :func:`iteration_ms` that does not depend on the decodes' KV lengths
    (``n_tokens`` > 0, as a float)."""
    return (_interp1(blob, 2, n_tokens) + prefill_attn_sum_ms + _interp1(blob, 15, n_tokens)
            + blob[1])


@njit(cache=True)
def decode_segment(blob, n_decode):
    """The decode-attention table's segment for ``n_decode`` decodes: what
    :func:`decode_iteration_ms` takes instead of looking it up at every iteration."""
    return _segment(blob, int(blob[10]), int(blob[11]), float(n_decode))


@njit(cache=True, inline="always")
def decode_iteration_ms(blob, fixed, seg, tx, n_decode, decode_kv_sum):
    """:func:`iteration_ms` of a decode-only batch from its :func:`fixed_ms` and
    :func:`decode_segment`: the same operations on the same numbers, so the same float."""
    return fixed + _interp2_at(blob, 10, seg, tx, float(decode_kv_sum) / float(n_decode))
