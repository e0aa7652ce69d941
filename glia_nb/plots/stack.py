"""Matplotlib figures for the stack studies (batch policy, autoscaler, H100 adaptation).

Thin views over the documents that :mod:`glia_nb.evaluation.stack` returns (and ``glia sweep`` /
``glia stack`` print), so a notebook and the CLI show the same numbers.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from sim_core.policies import spec_label
from glia_nb.plots.requests import outside_legend
from glia_nb.plots.research import seeds_text


def _ax(ax, size=(6.0, 3.8)):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax


def _on(seeds: Sequence[int] | int | None) -> str:
    if isinstance(seeds, int):
        return f" ({seeds} seeds)" if seeds != 1 else " (1 seed)"
    return f" ({seeds_text(seeds)})" if seeds else ""


def ttft_tradeoff(curves: Mapping[str, dict], limit: float = 1.5, ax=None, labels=None, baseline: str | None = None):
    """P90 TTFT against throughput, one line per router, the bound as a dashed line
    (the paper's Fig. 6).  ``curves`` maps a name to a :func:`~glia_nb.evaluation.stack.
    concurrency_sweep` document; points are annotated with their user counts."""
    ax = _ax(ax)
    for name, doc in curves.items():
        pts = doc["points"]
        x = [p["throughput_qps"] for p in pts]
        y = [p["p90_ttft_s"] for p in pts]
        line, = ax.plot(x, y, marker="o", label=(labels or {}).get(name, spec_label(name)))
        for p in pts:
            ax.annotate(str(p["users"]), (p["throughput_qps"], p["p90_ttft_s"]),
                        textcoords="offset points", xytext=(3, 4), fontsize=8,
                        color=line.get_color())
    ax.axhline(limit, ls="--", color="grey", lw=1, label=f"P90 TTFT bound {limit:g} s")
    ax.set_xlabel("throughput (requests/s)")
    ax.set_ylabel("p90 time to first token (s, log scale)")
    ax.set_yscale("log")
    seeds = next((d.get("seeds") for d in curves.values() if d.get("seeds")), None)
    base = f"; baseline: {(labels or {}).get(baseline, spec_label(baseline))}" if baseline else ""
    ax.set_title(f"Tail TTFT vs throughput{_on(seeds)}; numbers: closed-loop users{base}", fontsize=10)
    outside_legend(ax)
    return ax


# Where each stack's GPU-hours went, bottom to top: (label, colour, share of a row).
_LIFECYCLE = (
    ("running iterations (active)", "#1f77b4",
     lambda r: r["busy_gpu_hours"] - r["draining_gpu_hours"]),
    ("draining", "#ff7f0e", lambda r: r["draining_gpu_hours"]),
    ("cold starts", "#7f7f7f", lambda r: r["starting_gpu_hours"]),
    ("idle", "#d9d9d9", lambda r: max(0.0, r["gpu_hours"] - r["busy_gpu_hours"]
                                      - r["starting_gpu_hours"])),
)


def stack_gpu_hours(doc: dict, ax=None):
    """Stacked bars of each stack's GPU-hours from a :func:`~glia_nb.evaluation.stack.compare_stacks`
    document — running iterations, draining, cold starts, idle — labelled with the change
    against the tuned standard stack (the paper's Fig. 4); a stack that breaks the
    slowdown bound is hatched."""
    ax = _ax(ax, (8.4, 4.0))
    rows = doc["stacks"]
    names = list(rows)
    x = np.arange(len(names))
    bottom = np.zeros(len(names))
    for label, color, part in _LIFECYCLE:
        h = np.array([part(rows[k]) for k in names])
        ax.bar(x, h, bottom=bottom, color=color, label=label, width=0.6, edgecolor="white",
               linewidth=0.5)
        bottom += h
    for i, k in enumerate(names):
        if not rows[k]["meets_constraint"]:
            ax.bar(x[i], bottom[i], width=0.6, fill=False, hatch="//", edgecolor="#d62728")
        vs = rows[k]["gpu_hours_vs_standard"]
        ax.text(x[i], bottom[i], f"{vs:+.0%}" if vs else ("baseline" if k == "standard" else ""),
                ha="center", va="bottom", fontsize=9)
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=15, fontsize=9)
    ax.set_ylabel("GPU-hours (mean over the seeds)")
    ax.set_ylim(0, float(bottom.max()) * 1.15 if len(bottom) else 1.0)
    outside_legend(ax)
    ax.set_title(f"GPU-hours{_on(doc.get('seeds'))} at p95 slowdown <= {doc['slowdown_limit']:g}x in every seed;"
                 "\nbar labels: change in GPU-hours against the baseline, the tuned standard stack", fontsize=10)
    return ax


def replicas_over_time(results: Mapping[str, object], ax=None, rate=None, baseline: str | None = None):
    """Serving replicas (active + starting) over time for each :class:`SimResult`, from
    its timeline; ``rate`` = (times, qps) draws the offered load on a second axis."""
    ax = _ax(ax, (7.0, 3.4))
    for name, res in results.items():
        tl = res.timeline
        if tl.empty or "state" not in tl:
            continue
        serving = tl.assign(on=tl["state"].isin((1, 2))).groupby("time")["on"].sum()
        ax.step(serving.index, serving.to_numpy(), where="post", label=name, lw=1.2)
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("serving replicas (active + starting)")
    if rate is not None:
        ax2 = ax.twinx()
        ax2.plot(rate[0], rate[1], color="grey", lw=0.8, ls=":", label="offered load")
        ax2.set_ylabel("offered load (requests/s)", color="grey")
    seeds = sorted({getattr(r, "seed", None) for r in results.values()} - {None})
    base = f"; baseline: {baseline}" if baseline else ""
    ax.set_title(f"Pool size under a sinusoidal load{_on(seeds)}{base}", fontsize=10)
    ax.legend(fontsize=9, frameon=False, loc="upper left", bbox_to_anchor=(1.12 if rate is not None else 1.01, 1.0))
    return ax


def e2e_by_prompt(results: Mapping[str, object], ax=None, bins=(0, 64, 256, 1024, 4096, 1e9),
                  baseline: str | None = None):
    """Mean e2e per prompt-length bucket for each :class:`SimResult` (who gains from SPF)."""
    ax = _ax(ax)
    edges = np.asarray(bins, dtype=float)
    labels = [f"<{int(b)}" if b < 1e8 else f">={int(edges[-2])}" for b in edges[1:]]
    width = 0.8 / max(1, len(results))
    for i, (name, res) in enumerate(results.items()):
        df = res.requests
        k = np.clip(np.digitize(df["prompt_tokens"], edges[1:-1]), 0, len(labels) - 1)
        means = [df["e2e_s"][k == j].mean() if (k == j).any() else np.nan
                 for j in range(len(labels))]
        ax.bar(np.arange(len(labels)) + i * width, means, width=width, label=name)
    ax.set_xticks(np.arange(len(labels)) + width * (len(results) - 1) / 2)
    ax.set_xticklabels(labels)
    ax.set_xlabel("prompt length (tokens)")
    ax.set_ylabel("mean end-to-end latency (s)")
    outside_legend(ax)
    seeds = sorted({getattr(r, "seed", None) for r in results.values()} - {None})
    base = f"; baseline: {baseline}" if baseline else ""
    ax.set_title(f"Mean end-to-end latency by prompt length{_on(seeds)}{base}", fontsize=10)
    return ax


__all__ = ["ttft_tradeoff", "stack_gpu_hours", "replicas_over_time", "e2e_by_prompt"]
