"""Figures and tables of a comparison: best-so-far curves with 90% bootstrap bands (the
paper's Fig. 7), best mean response time per method with confidence intervals (Fig. 3),
the LLM-as-is score distribution (Fig. 2), and the results table as CSV and Markdown.

Figures are built with matplotlib's object-oriented API on an Agg canvas, so writing them
never touches pyplot's global state (or a notebook's backend).
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

KIND_COLOURS = {"llm-search": "#4C72B0", "glia": "#C44E52", "fixed": "#8C8C8C"}
TABLE_COLUMNS = ("method", "kind", "status", "runs", "budget_sims", "sims_used_mean",
                 "sims_used_max", "best_score_mean", "ci_low", "ci_high", "best_score_min",
                 "vs_baseline", "valid_fraction", "llm_calls_mean", "usd_mean", "wall_s_mean",
                 "reason")


def _figure(width: float = 7.0, height: float = 4.2):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=150, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def curve_band(curves: list[list[float]], confidence: float = 0.90,
               length: int | None = None) -> dict:
    """Mean best-so-far over runs at each simulation count, with a bootstrap band;
    ``length`` cuts the curves after that many simulations (a method that stopped early,
    like SCG, gets a shorter curve)."""
    from sim_core.results import bootstrap_ci

    n = max((len(c) for c in curves), default=0)
    if length is not None:
        n = min(n, length + 1)
    mean, lo, hi = [], [], []
    for x in range(n):
        vals = [c[x] for c in curves if x < len(c) and c[x] == c[x]]
        a, b = bootstrap_ci(vals, confidence) if vals else (math.nan, math.nan)
        mean.append(sum(vals) / len(vals) if vals else math.nan)
        lo.append(a)
        hi.append(b)
    return {"x": list(range(n)), "mean": mean, "low": lo, "high": hi}


def plot_curves(bands: dict[str, dict], fixed: dict[str, float], path, *, title: str,
                ylabel: str) -> Path:
    """One line per method (mean over runs) with its 90% band; fixed routers as dashed lines."""
    fig = _figure()
    ax = fig.add_subplot(111)
    for name, band in bands.items():
        line, = ax.plot(band["x"], band["mean"], label=name, lw=1.8)
        ax.fill_between(band["x"], band["low"], band["high"], color=line.get_color(), alpha=0.18,
                        lw=0)
    for i, (name, score) in enumerate(fixed.items()):
        if score is not None and score == score:
            ax.axhline(score, ls="--", lw=1, color="0.45", alpha=0.8)
            ax.annotate(name, (1.0, score), xycoords=("axes fraction", "data"), fontsize=9,
                        color="0.3", ha="left", va="center", xytext=(2, 0),
                        textcoords="offset points")
    ax.set_xlabel("simulations (benchmark runs over the eval seeds)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if bands:  # right of the axes, past the fixed routers' names: never over a curve
        ax.legend(fontsize=9, frameon=False, loc="upper left", bbox_to_anchor=(1.12, 1.0))
    fig.savefig(path)
    return Path(path)


def plot_bars(rows: list[dict], path, *, title: str, ylabel: str) -> Path:
    """Best score per method (mean over runs) with its confidence interval."""
    rows = [r for r in rows if r.get("best_score_mean") is not None]
    fig = _figure(max(6.0, 0.8 * len(rows) + 2), 4.2)
    ax = fig.add_subplot(111)
    xs = range(len(rows))
    vals = [r["best_score_mean"] for r in rows]
    err_lo = [max(0.0, v - r["ci_low"]) if r.get("ci_low") is not None else 0.0 for v, r in zip(vals, rows)]
    err_hi = [max(0.0, r["ci_high"] - v) if r.get("ci_high") is not None else 0.0 for v, r in zip(vals, rows)]
    colours = [KIND_COLOURS.get(r.get("kind"), "#55A868") for r in rows]
    ax.bar(xs, vals, color=colours, yerr=[err_lo, err_hi], capsize=4, ecolor="0.2")
    if vals:  # zoom on the differences: start the axis a little below the lowest interval
        lows = [v - e for v, e in zip(vals, err_lo)]
        highs = [v + e for v, e in zip(vals, err_hi)]
        span = (max(highs) - min(lows)) or max(abs(max(highs)), 1.0) * 0.1
        ax.set_ylim(max(0.0, min(lows) - 0.25 * span), max(highs) + 0.15 * span)
    for x, v in zip(xs, vals):
        ax.annotate(f"{v:.2f}", (x, v), ha="center", va="bottom", fontsize=8,
                    xytext=(0, 2), textcoords="offset points")
    ax.set_xticks(list(xs))
    ax.set_xticklabels([r["method"] for r in rows], rotation=30, ha="right", fontsize=9)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=c, label=k) for k, c in KIND_COLOURS.items()], fontsize=9,
              frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.savefig(path)
    return Path(path)


def plot_distribution(scores: list[float], baseline: float | None, path, *, title: str,
                      xlabel: str) -> Path:
    """Histogram of the LLM-as-is samples' scores, with the starting program's score."""
    fig = _figure(6.0, 3.6)
    ax = fig.add_subplot(111)
    if scores:
        ax.hist(scores, bins=min(30, max(5, len(scores) // 2)), color=KIND_COLOURS["llm-search"],
                alpha=0.85)
    if baseline is not None:
        ax.axvline(baseline, ls="--", color="0.3", label="starting program (LLQ)")
        ax.legend(fontsize=9, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("samples")
    ax.set_title(title, fontsize=10)
    fig.savefig(path)
    return Path(path)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "-" if v != v else f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"
    return str(v)


def write_table(rows: list[dict], csv_path, md_path) -> tuple[Path, Path]:
    """The per-method table as CSV (all columns) and Markdown (the readable ones)."""
    with open(csv_path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(TABLE_COLUMNS), extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k) for k in TABLE_COLUMNS})
    cols = ("method", "kind", "status", "runs", "sims_used_mean", "best_score_mean", "ci_low",
            "ci_high", "vs_baseline", "valid_fraction", "llm_calls_mean", "usd_mean", "wall_s_mean")
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rows]
    Path(md_path).write_text("\n".join(lines) + "\n")
    return Path(csv_path), Path(md_path)


__all__ = ["curve_band", "plot_curves", "plot_bars", "plot_distribution", "write_table",
           "TABLE_COLUMNS", "KIND_COLOURS"]
