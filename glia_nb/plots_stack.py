"""Matplotlib figures for the stack studies (batch policy, autoscaler, H100 adaptation).

Thin views over the documents that :mod:`glia_nb.stack` returns (and ``glia sweep`` /
``glia stack`` print), so a notebook and the CLI show the same numbers.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np


def _ax(ax, size=(6.0, 3.8)):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=size)
    return ax


def ttft_tradeoff(curves: Mapping[str, dict], limit: float = 1.5, ax=None, labels=None):
    """P90 TTFT against throughput, one line per router, the bound as a dashed line
    (the paper's Fig. 6).  ``curves`` maps a name to a :func:`~glia_nb.stack.
    concurrency_sweep` document; points are annotated with their user counts."""
    ax = _ax(ax)
    for name, doc in curves.items():
        pts = doc["points"]
        x = [p["throughput_qps"] for p in pts]
        y = [p["p90_ttft_s"] for p in pts]
        line, = ax.plot(x, y, marker="o", label=(labels or {}).get(name, name))
        for p in pts:
            ax.annotate(str(p["users"]), (p["throughput_qps"], p["p90_ttft_s"]),
                        textcoords="offset points", xytext=(3, 4), fontsize=7,
                        color=line.get_color())
    ax.axhline(limit, ls="--", color="grey", lw=1)
    ax.text(ax.get_xlim()[0], limit, f" P90 TTFT bound {limit:g} s", va="bottom", fontsize=8,
            color="grey")
    ax.set_xlabel("throughput (QPS)")
    ax.set_ylabel("P90 TTFT (s)")
    ax.set_yscale("log")
    ax.set_title("Tail TTFT vs throughput (closed-loop users annotated)", fontsize=10)
    ax.legend(fontsize=8)
    return ax


def stack_gpu_hours(doc: dict, ax=None):
    """Bars of GPU-hours per stack from a :func:`~glia_nb.stack.compare_stacks` document,
    labelled with the change against the standard stack (the paper's Fig. 4)."""
    ax = _ax(ax, (7.0, 3.6))
    rows = doc["stacks"]
    names = list(rows)
    vals = [rows[k]["gpu_hours"] for k in names]
    baselines = ("standard", "off-the-shelf")
    colors = ["#999999" if k in baselines else ("#d62728" if not rows[k]["meets_constraint"]
                                                else "#1f77b4") for k in names]
    bars = ax.bar(range(len(names)), vals, color=colors, alpha=0.45, label="paid (replica lifetime)")
    if all("busy_gpu_hours" in rows[k] for k in names):
        # The time spent running iterations: what the router and batch layers can shrink;
        # the lighter rest (idle, cold starts, drains) is the autoscaler's to save.
        ax.bar(range(len(names)), [rows[k]["busy_gpu_hours"] for k in names], width=0.5,
               color=colors, label="busy (running iterations)")
        ax.legend(fontsize=8, loc="lower left")
    for b, k in zip(bars, names):
        vs = rows[k]["gpu_hours_vs_standard"]
        ax.text(b.get_x() + b.get_width() / 2, b.get_height(), f"{vs:+.0%}" if vs else "",
                ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=15, fontsize=8)
    ax.set_ylabel("GPU-hours")
    ax.set_title(f"GPU-hours at p95 slowdown <= {doc['slowdown_limit']:g}x in every seed",
                 fontsize=10)
    return ax


def replicas_over_time(results: Mapping[str, object], ax=None, rate=None):
    """Serving replicas (active + starting) over time for each :class:`SimResult`, from
    its timeline; ``rate`` = (times, qps) draws the offered load on a second axis."""
    ax = _ax(ax, (7.0, 3.4))
    for name, res in results.items():
        tl = res.timeline
        if tl.empty or "state" not in tl:
            continue
        serving = tl.assign(on=tl["state"].isin((1, 2))).groupby("time")["on"].sum()
        ax.step(serving.index, serving.to_numpy(), where="post", label=name, lw=1.2)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("serving replicas")
    ax.legend(fontsize=8, loc="upper left")
    if rate is not None:
        ax2 = ax.twinx()
        ax2.plot(rate[0], rate[1], color="grey", lw=0.8, ls=":")
        ax2.set_ylabel("offered QPS", color="grey")
    ax.set_title("Pool size under a sinusoidal load", fontsize=10)
    return ax


def e2e_by_prompt(results: Mapping[str, object], ax=None, bins=(0, 64, 256, 1024, 4096, 1e9)):
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
    ax.set_xlabel("prompt tokens")
    ax.set_ylabel("mean e2e (s)")
    ax.legend(fontsize=8)
    ax.set_title("Mean end-to-end time by prompt length", fontsize=10)
    return ax


__all__ = ["ttft_tradeoff", "stack_gpu_hours", "replicas_over_time", "e2e_by_prompt"]
