"""Figures of a research session: best so far, the trade-off between experiments, and
where each experiment's requests spent their time.

Inputs are the session's ``experiment`` records (``{"id", "name", "score", "metrics"}``,
the metrics being the evaluator's summary over the evaluation seeds) and the baseline's
score. Every function builds a :class:`matplotlib.figure.Figure` without pyplot, so it is
safe on a session's worker thread. Titles say what the numbers are averaged over
(``seeds``) and what they are compared with (the baseline).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from glia_nb.plots.requests import PART_COLORS, PART_LABELS, _ax, axis_label, outside_legend
from glia_nb.tasks.objective import Objective

__all__ = ["best_so_far", "tradeoff_scatter", "experiment_time_split", "seeds_text"]

# metrics key of each time part in an experiment's summary (mean seconds per request)
_PART_METRICS = {"global_queue_s": "mean_global_queue_s", "replica_queue_s": "mean_replica_queue_s",
                 "prefill_s": "mean_prefill_s", "decode_s": "mean_decode_s",
                 "lost_to_restarts_s": "mean_lost_to_restarts_s"}


def seeds_text(seeds: Sequence[int] | None) -> str:
    """"seed 0" / "seeds 0, 1" / "" for unknown seeds."""
    if not seeds:
        return ""
    seeds = list(seeds)
    return f"seed {seeds[0]}" if len(seeds) == 1 else "seeds " + ", ".join(str(s) for s in seeds)


def _scores(experiments: Sequence[Mapping[str, Any]], key: str = "score") -> tuple[list[int], list[float], list[int]]:
    xs, ys, bad = [], [], []
    for i, e in enumerate(experiments, start=1):
        try:
            s = float(e.get(key))
        except (TypeError, ValueError):
            s = float("nan")
        (xs.append(i), ys.append(s)) if np.isfinite(s) else bad.append(i)
    return xs, ys, bad


def best_so_far(experiments: Sequence[Mapping[str, Any]], baseline: float | None = None, *,
                objective: Objective | None = None, lower_is_better: bool | None = None, ax=None,
                metric: str = "score", seeds: Sequence[int] | None = None, baseline_name: str = "baseline",
                key: str = "score"):
    """Each experiment's score (dots; failed ones as crosses under the axis) and the best
    so far (a step line, ranked by ``objective``, or by ``lower_is_better`` when only the
    direction is known, as in a published case study; default lower is better) against
    the experiment number (integer ticks), with the baseline as a dashed line. ``metric``
    labels the y axis (e.g. ``mean_e2e_s``)."""
    if objective is None:
        objective = Objective(direction="max" if lower_is_better is False else "min")
    lower_is_better = objective.lower_is_better
    fig, ax = _ax(ax, figsize=(6.4, 3.4))
    xs, ys, bad = _scores(experiments, key)
    if xs:
        y = np.array(ys)
        best = objective.best_so_far(y)
        ax.scatter(xs, y, s=22, color="0.45", zorder=3, label="experiment")
        ax.step(xs, best, where="post", color="#2ca02c", linewidth=2, label="best so far")
    base_ok = baseline is not None and np.isfinite(baseline)
    if base_ok:
        ax.axhline(baseline, color="#d62728", linestyle="--", linewidth=1.2, label=f"{baseline_name} {baseline:.3g}")
    if bad:
        lo = ax.get_ylim()[0]
        ax.scatter(bad, [lo] * len(bad), marker="x", color="#d62728", label="failed", clip_on=False)
    n = len(experiments)
    if n == 0 and not base_ok:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no experiments yet: the plot fills in as they finish", ha="center", va="center",
                transform=ax.transAxes, color="0.35", fontsize=11)
    else:
        ax.set_xlim(0.5, max(n, 1) + 0.5)
        ax.set_xticks(range(1, max(n, 1) + 1, max(1, (n + 11) // 12)))
        if not xs and base_ok:
            ax.set_ylim(baseline * 0.9, baseline * 1.1)
    ax.set_xlabel("experiment number")
    ax.set_ylabel(axis_label(metric))
    where = f" on {seeds_text(seeds)}" if seeds else ""
    ax.set_title(f"Best so far{where}, against {baseline_name}"
                 + (" (lower is better)" if lower_is_better else " (higher is better)"), fontsize=11)
    if xs or base_ok:
        outside_legend(ax)
    return fig


def tradeoff_scatter(experiments: Sequence[Mapping[str, Any]], baseline: Mapping[str, Any] | None = None, *,
                     x: str = "restart_fraction", y: str = "mean_e2e_s", seeds: Sequence[int] | None = None,
                     best_id: Any = None, ax=None):
    """One dot per experiment at (``x``, ``y``) of its metrics, labelled by number; the
    baseline as a red star and the best experiment circled. Shows what an experiment
    traded for its score (e.g. mean e2e against the fraction of requests restarted)."""
    fig, ax = _ax(ax, figsize=(6.4, 3.8))
    pts = []
    for e in experiments:
        m = e.get("metrics") or {}
        try:
            px, py = float(m.get(x)), float(m.get(y))
        except (TypeError, ValueError):
            continue
        if np.isfinite(px) and np.isfinite(py):
            pts.append((px, py, e))
    if pts:
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=30, color="#1f77b4", zorder=3, label="experiment")
        for px, py, e in pts:
            ax.annotate(str(e.get("id")), (px, py), textcoords="offset points", xytext=(4, 3), fontsize=9)
            if best_id is not None and e.get("id") == best_id:
                ax.scatter([px], [py], s=160, facecolors="none", edgecolors="#2ca02c", linewidths=2, zorder=4,
                           label="best")
    bm = (baseline or {}).get("metrics") or {}
    try:
        bx, by = float(bm.get(x)), float(bm.get(y))
        if np.isfinite(bx) and np.isfinite(by):
            ax.scatter([bx], [by], marker="*", s=160, color="#d62728", zorder=4, label="baseline")
    except (TypeError, ValueError):
        pass
    if not pts:
        ax.text(0.5, 0.5, "no experiment with these metrics yet", ha="center", va="center",
                transform=ax.transAxes, color="0.35")
    ax.set_xlabel(axis_label(x))
    ax.set_ylabel(axis_label(y))
    where = f", mean over {seeds_text(seeds)}" if seeds else ""
    ax.set_title(f"What each experiment traded{where}; red star: baseline", fontsize=11)
    if ax.get_legend_handles_labels()[0]:
        outside_legend(ax)
    return fig


def experiment_time_split(experiments: Sequence[Mapping[str, Any]], baseline: Mapping[str, Any] | None = None, *,
                          seeds: Sequence[int] | None = None, ax=None):
    """Where a mean request's time went, per experiment (stacked horizontal bars of mean
    seconds: global queue, replica queue, prefill, decode, lost to restarts), with the
    baseline as the first bar. Experiments without the split are left out."""
    rows = ([("baseline", baseline.get("metrics") or {})] if baseline else []) + [
        (f"#{e.get('id')} {str(e.get('name') or '')[:22]}", e.get("metrics") or {}) for e in experiments]
    rows = [(label, m) for label, m in rows if any(m.get(k) is not None for k in _PART_METRICS.values())]
    fig, ax = _ax(ax, figsize=(7.0, 0.6 + 0.32 * max(4, len(rows))))
    left = np.zeros(len(rows))
    ypos = np.arange(len(rows))[::-1]
    for part, key in _PART_METRICS.items():
        vals = np.array([float(m.get(key) or 0.0) for _, m in rows])
        ax.barh(ypos, vals, left=left, color=PART_COLORS[part], label=PART_LABELS[part], height=0.7)
        left += vals
    ax.set_yticks(ypos, [label for label, _ in rows], fontsize=9)
    if not rows:
        ax.text(0.5, 0.5, "no experiment reported its time split yet", ha="center", va="center",
                transform=ax.transAxes, color="0.35")
    ax.set_xlabel("mean time per request (s)")
    where = f" (mean over {seeds_text(seeds)})" if seeds else ""
    ax.set_title(f"Where a request's time went, per experiment{where}; top bar: baseline", fontsize=11)
    if rows:
        outside_legend(ax)
    return fig
