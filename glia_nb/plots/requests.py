"""Figures of where requests' time went, used by the widgets and the notebooks.

Every function builds a :class:`matplotlib.figure.Figure` directly (no pyplot state), so it
is safe to call from a session's worker thread, and returns it; pass ``ax`` (or ``axes``)
to draw into an existing figure instead. :func:`to_png` turns a figure into PNG bytes for
an ``ipywidgets.Image``. In a notebook, a returned figure displays as a PNG once the inline
backend is active (``%matplotlib inline``, or any ``import matplotlib.pyplot``).

Inputs are duck-typed: a ``SimResult`` (``.requests``, ``.timeline``) or the DataFrames
themselves (the columns of ``SimResult.requests`` / ``SimResult.timeline``).

    from glia_nb import plots
    fig = plots.side_by_side("e2e", [llq_result, new_result], ["LLQ", "discovered"])
"""
from __future__ import annotations

import io
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = [
    "TIME_PARTS", "PART_LABELS", "PART_COLORS", "VIEWS",
    "breakdown_by_e2e", "breakdown_by_prompt", "restart_counts", "memory_timelines",
    "side_by_side", "workload_overview", "router_comparison", "to_png", "axis_label", "outside_legend", "who",
    "AXIS_LABELS",
]

# The five parts a request's end-to-end time splits into (they sum to e2e).
TIME_PARTS = ("global_queue_s", "replica_queue_s", "prefill_s", "decode_s", "lost_to_restarts_s")
PART_LABELS = {
    "global_queue_s": "global queue", "replica_queue_s": "replica queue", "prefill_s": "prefill",
    "decode_s": "decode", "lost_to_restarts_s": "lost to restarts",
}
PART_COLORS = {
    "global_queue_s": "#9467bd", "replica_queue_s": "#ff7f0e", "prefill_s": "#2ca02c",
    "decode_s": "#1f77b4", "lost_to_restarts_s": "#d62728",
}
PROMPT_EDGES = (1, 128, 256, 512, 1024, 2048, 4096, 8192)


# ----------------------------------------------------------------------------- helpers
def _figure(nrows: int = 1, ncols: int = 1, *, figsize=(7.5, 3.6), **kw):
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def _ax(ax, figsize=(7.5, 3.6)):
    if ax is not None:
        return ax.figure, ax
    fig, axes = _figure(figsize=figsize)
    return fig, axes[0, 0]


def who(result: Any) -> str:
    """"llq, seed 0" for a ``SimResult`` (what its figure shows); "" for a bare table."""
    router, seed = getattr(result, "router", None), getattr(result, "seed", None)
    parts = [str(router)] if router else []
    if seed is not None:
        parts.append(f"seed {seed}")
    return ", ".join(parts)


def _titled(result: Any, text: str) -> str:
    w = who(result)
    return f"{w}: {text}" if w else text


def _requests(obj: Any):
    return getattr(obj, "requests", obj)


def _timeline(obj: Any):
    tl = getattr(obj, "timeline", obj)
    if tl is None or not hasattr(tl, "columns"):
        raise ValueError("no replica timeline: simulate with record_timeline=True")
    return tl


def to_png(fig, dpi: int = 150) -> bytes:
    """The figure as PNG bytes (for ``ipywidgets.Image``); 150 dpi stays crisp on
    high-density screens."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _stack(ax, x, parts: Mapping[str, np.ndarray], width) -> None:
    bottom = np.zeros(len(x))
    for p in TIME_PARTS:
        vals = np.asarray(parts[p], float)
        ax.bar(x, vals, width=width, bottom=bottom, color=PART_COLORS[p], label=PART_LABELS[p],
               linewidth=0, align="edge")
        bottom += vals


def _legend(ax, **kw) -> None:
    ax.legend(fontsize=9, frameon=False, **kw)


def outside_legend(ax, **kw) -> None:
    """A legend to the right of the axes, where it can never cover the data."""
    ax.legend(fontsize=9, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, **kw)


# Plain words (and units) for the metric columns used as axis labels.
AXIS_LABELS = {
    "score": "score", "mean_e2e_s": "mean end-to-end latency (s)", "p90_e2e_s": "p90 end-to-end latency (s)",
    "p99_e2e_s": "p99 end-to-end latency (s)", "p95_e2e_s": "p95 end-to-end latency (s)",
    "mean_ttft_s": "mean time to first token (s)", "p90_ttft_s": "p90 time to first token (s)",
    "restart_fraction": "requests restarted (fraction of all)", "mean_tpot_s": "mean time per output token (s)",
    "throughput_qps": "throughput (requests/s)", "gpu_hours": "GPU-hours", "p95_slowdown": "p95 slowdown (×)",
    "mean_lost_to_restarts_s": "mean time lost to restarts (s)", "mean_replica_queue_s": "mean replica queueing (s)",
    "mean_global_queue_s": "mean global queueing (s)", "max_qps": "max throughput (requests/s)",
}


def axis_label(column: str) -> str:
    """Plain words with units for a metric column (``mean_e2e_s`` → "mean end-to-end
    latency (s)"); unknown names lose their underscores and keep a seconds suffix."""
    if column in AXIS_LABELS:
        return AXIS_LABELS[column]
    words = column.replace("_", " ")
    return words[:-2] + " (s)" if words.endswith(" s") else words


# ----------------------------------------------------------------------------- per-request views
def breakdown_by_e2e(result, ax=None, *, bins: int = 50, title: str | None = None):
    """Stacked time components of requests sorted by end-to-end latency: requests are put
    in ``bins`` groups of equal count (fastest first) and each bar is the group's mean
    time in global queue, replica queue, prefill, decode and time lost to restarts."""
    req = _requests(result)
    fig, ax = _ax(ax)
    if len(req) == 0:
        ax.text(0.5, 0.5, "no completed requests", ha="center", transform=ax.transAxes)
        return fig
    order = np.argsort(req["e2e_s"].to_numpy(), kind="stable")
    n = len(order)
    starts = np.unique(np.linspace(0, n, min(bins, n) + 1).astype(int))[:-1]
    sizes = np.diff(np.append(starts, n)).astype(float)
    parts = {p: np.add.reduceat(req[p].to_numpy(float)[order], starts) / sizes for p in TIME_PARTS}
    _stack(ax, 100.0 * starts / n, parts, 100.0 * sizes / n)
    ax.set_xlim(0, 100)
    ax.set_xlabel("requests sorted by e2e latency (percentile)")
    ax.set_ylabel("mean time per request (s)")
    ax.set_title(title or _titled(result, f"where time goes, {len(req):,} requests sorted by e2e"), fontsize=11)
    outside_legend(ax)
    return fig


def breakdown_by_prompt(result, ax=None, *, edges: Sequence[int] = PROMPT_EDGES, title: str | None = None):
    """Mean time components of requests binned by prompt length (log-spaced bins); the
    number of requests in each bin is written above its bar."""
    req = _requests(result)
    fig, ax = _ax(ax)
    prompts = req["prompt_tokens"].to_numpy()
    edges = list(edges) + [max(int(prompts.max()) + 1 if len(prompts) else 1, edges[-1] + 1)]
    which = np.clip(np.searchsorted(edges, prompts, side="right") - 1, 0, len(edges) - 2)
    x = np.arange(len(edges) - 1)
    parts = {p: np.zeros(len(x)) for p in TIME_PARTS}
    counts = np.bincount(which, minlength=len(x))
    for p in TIME_PARTS:
        sums = np.bincount(which, weights=req[p].to_numpy(float), minlength=len(x))
        parts[p] = np.divide(sums, counts, out=np.zeros(len(x)), where=counts > 0)
    keep = len(x) - int(np.argmax(counts[::-1] > 0)) if counts.any() else len(x)  # drop empty top bins
    x, counts = x[:keep], counts[:keep]
    parts = {p: v[:keep] for p, v in parts.items()}
    _stack(ax, x - 0.4, parts, 0.8)
    totals = sum(parts.values())
    for xi, n, t in zip(x, counts, totals):
        if n:
            ax.annotate(f"{n:,}", (xi, t), ha="center", va="bottom", fontsize=8, color="0.3")
    labels = [f"{edges[i]}–{edges[i + 1] - 1}" if i < len(x) - 1 else f"≥{edges[i]}" for i in x]
    ax.set_xticks(x, labels, rotation=30, fontsize=9)
    ax.set_xlabel("prompt length (tokens)")
    ax.set_ylabel("mean time per request (s)")
    ax.set_title(title or _titled(result, "where time goes by prompt length (number: requests in the bin)"),
                 fontsize=11)
    outside_legend(ax)
    return fig


def restart_counts(result, axes=None, *, title: str | None = None):
    """Two panels: how many requests were restarted 0, 1, 2, … times (log scale), and the
    e2e latency distribution (ECDF) of restarted against never-restarted requests."""
    req = _requests(result)
    if axes is None:
        fig, grid = _figure(1, 2, figsize=(10.5, 3.6))
        axes = grid[0]
    fig = axes[0].figure
    r = req["restarts"].to_numpy().astype(int)
    top = 5
    counts = np.bincount(np.minimum(r, top), minlength=top + 1)
    ax = axes[0]
    ax.bar(np.arange(top + 1), np.maximum(counts, 0), color=["#1f77b4"] + ["#d62728"] * top)
    ax.set_yscale("log")
    ax.set_xticks(np.arange(top + 1), [str(i) for i in range(top)] + [f"{top}+"])
    ax.set_xlabel("restarts per request")
    ax.set_ylabel("requests (log scale)")
    frac = float((r > 0).mean()) if len(r) else 0.0
    ax.set_title(title or _titled(result, f"{frac:.1%} of all requests restarted"), fontsize=11)
    ax = axes[1]
    e2e = req["e2e_s"].to_numpy()
    for mask, label, color in ((r == 0, "never restarted", "#1f77b4"), (r > 0, "restarted", "#d62728")):
        v = np.sort(e2e[mask])
        if len(v):
            q = np.linspace(0.0, 1.0, min(len(v), 400))  # the ECDF at up to 400 quantiles
            ax.plot(np.quantile(v, q), q, color=color, drawstyle="steps-post",
                    label=f"{label}\n(n={len(v):,}, mean {v.mean():.1f} s)")
    ax.set_xscale("log")
    ax.set_xlabel("end-to-end latency (s, log scale)")
    ax.set_ylabel("fraction of requests ≤ x")
    ax.set_title("end-to-end latency: restarted vs not", fontsize=11)
    outside_legend(ax)
    return fig


def memory_timelines(result, axes=None, *, points: int = 400, title: str | None = None):
    """KV-cache memory use over time, one row per replica: the maximum in each of
    ``points`` time bins (so that peaks survive downsampling), and the mean as a line."""
    tl = _timeline(result)
    replicas = sorted(int(r) for r in tl["replica"].unique())
    if axes is None:
        fig, grid = _figure(len(replicas), 1, figsize=(7.5, 1.0 + 0.8 * len(replicas)), sharex=True)
        axes = grid[:, 0]
    fig = axes[0].figure
    t_all = tl["time"].to_numpy(float)
    t0, t1 = (float(t_all.min()), float(t_all.max())) if len(t_all) else (0.0, 1.0)
    edges = np.linspace(t0, t1 if t1 > t0 else t0 + 1.0, points + 1)
    mids = 0.5 * (edges[:-1] + edges[1:])
    for ax, rep in zip(axes, replicas):
        sub = tl[tl["replica"] == rep]
        idx = np.clip(np.searchsorted(edges, sub["time"].to_numpy(float), side="right") - 1, 0, points - 1)
        mem = sub["memory_usage_percent"].to_numpy(float)
        peak = np.full(points, np.nan)
        np.fmax.at(peak, idx, mem)
        n = np.bincount(idx, minlength=points)
        mean = np.divide(np.bincount(idx, weights=mem, minlength=points), n,
                         out=np.full(points, np.nan), where=n > 0)
        ok = ~np.isnan(peak)
        ax.fill_between(mids[ok], peak[ok], step="mid", color="#1f77b4", alpha=0.3, linewidth=0)
        ax.plot(mids[ok], mean[ok], drawstyle="steps-mid", color="#1f77b4", linewidth=0.8)
        ax.axhline(100, color="#d62728", linewidth=0.6, linestyle=":")
        ax.set_ylim(0, 105)
        ax.set_ylabel(f"replica {rep}\nKV use (%)", fontsize=9)
        ax.tick_params(labelsize=8)
    axes[-1].set_xlabel("simulated time (s)")
    axes[0].set_title(title or _titled(result, "KV-cache memory use per replica (shaded: peak, line: mean)"),
                      fontsize=11)
    return fig


VIEWS = {
    "e2e": ("sorted by e2e", breakdown_by_e2e),
    "prompt": ("binned by prompt length", breakdown_by_prompt),
    "memory": ("memory timelines", memory_timelines),
    "restarts": ("restarts", restart_counts),
}


def side_by_side(view: str, results: Sequence[Any], labels: Sequence[str] | None = None):
    """One of :data:`VIEWS` (``"e2e"``, ``"prompt"``, ``"memory"``, ``"restarts"``) for
    several results in columns with shared y axes, e.g. LLQ next to a discovered router."""
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; known: {', '.join(VIEWS)}")
    results = list(results)
    labels = list(labels) if labels is not None else [f"policy {i + 1}" for i in range(len(results))]
    if len(labels) != len(results):
        raise ValueError("one label per result")
    k = len(results)
    draw = VIEWS[view][1]
    seeds = sorted({getattr(r, "seed", None) for r in results} - {None})
    on = (f" on seed {seeds[0]}" if len(seeds) == 1 else f" on seeds {', '.join(map(str, seeds))}") if seeds else ""
    head = f"{VIEWS[view][0].capitalize()}{on}" + (f"; left: {labels[0]} (the baseline)" if k > 1 else "")
    fig = _side_by_side(view, draw, results, labels, k)
    if head:
        fig.suptitle(head, fontsize=12)
    return fig


def _side_by_side(view, draw, results, labels, k):
    if view == "memory":
        n = max(len(_timeline(r)["replica"].unique()) for r in results)
        fig, grid = _figure(n, k, figsize=(5.2 * k, 1.0 + 0.8 * n), sharex=True, sharey=True)
        for j, (res, lab) in enumerate(zip(results, labels)):
            draw(res, axes=grid[:, j], title=f"{lab}: KV-cache memory use per replica")
        return fig
    if view == "restarts":
        fig, grid = _figure(2, k, figsize=(5.2 * k, 6.8), sharey="row")
        for j, (res, lab) in enumerate(zip(results, labels)):
            draw(res, axes=grid[:, j])
            frac = float((_requests(res)["restarts"] > 0).mean()) if len(_requests(res)) else 0.0
            grid[0, j].set_title(f"{lab}: {frac:.1%} of all requests restarted", fontsize=11)
        return fig
    fig, grid = _figure(1, k, figsize=(5.2 * k, 3.8), sharey=True)
    for j, (res, lab) in enumerate(zip(results, labels)):
        req = _requests(res)
        draw(res, ax=grid[0, j], title=f"{lab}: mean e2e {req['e2e_s'].mean():.1f} s")
        if j < k - 1:  # one legend, right of the last panel
            grid[0, j].get_legend().remove()
    return fig


# ----------------------------------------------------------------------------- studies
def workload_overview(trace, *, bin_s: float = 5.0):
    """Three panels of a trace: arrivals per second over time, and the prompt and decode
    length distributions (log-spaced histograms)."""
    import seaborn as sns

    fig, grid = _figure(1, 3, figsize=(11.0, 3.2))
    arr = np.asarray(trace.arrived_at, float)
    ax = grid[0, 0]
    if len(arr):
        edges = np.arange(0.0, arr.max() + bin_s, bin_s)
        counts, _ = np.histogram(arr, bins=edges)
        ax.plot(edges[:-1], counts / bin_s, drawstyle="steps-post", color="#1f77b4", linewidth=0.8)
        ax.axhline(len(arr) / max(arr.max(), 1e-9), color="0.4", linestyle="--", linewidth=0.8)
    mean_qps = len(arr) / max(arr.max(), 1e-9) if len(arr) else 0.0
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"arrivals per second ({bin_s:g} s bins)")
    ax.set_title(f"Arrival rate (dashed: mean {mean_qps:.1f} requests/s)", fontsize=11)
    for ax, values, name, color in ((grid[0, 1], trace.prompt_tokens, "prompt", "#2ca02c"),
                                    (grid[0, 2], trace.decode_tokens, "decode", "#ff7f0e")):
        v = np.asarray(values, float)
        sns.histplot(v, bins=40, log_scale=True, ax=ax, color=color, edgecolor="none")
        ax.set_xlabel(f"{name} length (tokens, log scale)")
        ax.set_ylabel("requests")
        ax.set_title(f"{name.capitalize()} lengths: median {np.median(v):.0f}, p99 {np.percentile(v, 99):.0f}",
                     fontsize=10)
    return fig


def router_comparison(table, *, metric: str = "mean_e2e_s", by: str = "router", ax=None,
                      baseline: str | None = None):
    """Bars of ``metric`` per router (the mean over seeds) with each seed as a dot, from a
    long table with one row per (router, seed); ``baseline`` (a router's name) draws its
    mean as a dashed line to compare the others with."""
    fig, ax = _ax(ax, figsize=(6.4, 3.4))
    names = list(dict.fromkeys(table[by]))
    for i, name in enumerate(names):
        v = table.loc[table[by] == name, metric].to_numpy(float)
        ax.bar(i, v.mean(), color="#1f77b4", alpha=0.75)
        ax.scatter(np.full(len(v), i), v, color="k", s=10, zorder=3)
        ax.annotate(f"{v.mean():.3g}", (i, max(v.max(), v.mean())), xytext=(0, 6), textcoords="offset points",
                    ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel(axis_label(metric))
    seeds = sorted(set(table["seed"])) if "seed" in table else []
    on = f"mean over seeds {', '.join(str(s) for s in seeds)}" if seeds else "mean over seeds"
    title = f"{axis_label(metric).split(' (')[0].capitalize()} per {by} (bar: {on}; dots: one seed each)"
    if baseline is not None and baseline in names:
        ref = float(table.loc[table[by] == baseline, metric].mean())
        ax.axhline(ref, color="#d62728", linestyle="--", linewidth=1)
        title += f"; dashed: baseline {baseline}"
    ax.set_title(title, fontsize=10)
    return fig
