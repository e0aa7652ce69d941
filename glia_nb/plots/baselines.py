"""Figures of a comparison: best-so-far curves with 90% bootstrap bands (the paper's
Fig. 7), best mean response time per method with confidence intervals (Fig. 3) and the
LLM-as-is score distribution (Fig. 2). The data and tables come from
:mod:`glia_nb.baselines.compare` / :mod:`glia_nb.baselines.results`.

Figures are built with matplotlib's object-oriented API on an Agg canvas, so writing them
never touches pyplot's global state (or a notebook's backend).
"""
from __future__ import annotations

from pathlib import Path

KIND_COLOURS = {"llm-search": "#4C72B0", "glia": "#C44E52", "fixed": "#8C8C8C"}



def _figure(width: float = 7.0, height: float = 4.2):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=150, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


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


def draw_comparison(doc: dict) -> dict:
    """Draw the figures of a :func:`glia_nb.baselines.compare.run_compare` document next to
    its tables and add their paths to each budget's ``files``: ``best_so_far_bN.png``
    (best score against simulations, mean over runs with a 90% bootstrap band; the paper's
    Fig. 7), ``best_score_bN.png`` (best score per method with its 90% CI; Fig. 3) and
    ``as_is_distribution_bN.png`` when LLM-as-is ran (Fig. 2). Returns ``doc``."""
    out = Path(doc["out"])
    for budget, res in doc["results"].items():
        fig = res["figure"]
        better = "lower" if fig["direction"] == "min" else "higher"
        ylabel = f"best {fig['metric']} ({fig['unit']}; {better} is better)"
        files = res["files"]
        files["curves"] = str(plot_curves(
            res["bands"], fig["fixed_scores"], out / f"best_so_far_b{budget}.png",
            title=f"{fig['task']}: best so far, budget {budget} simulations (90% bootstrap "
                  "band over runs)", ylabel=ylabel))
        files["bars"] = str(plot_bars(
            res["rows"], out / f"best_score_b{budget}.png",
            title=f"{fig['task']}: best design per method, budget {budget} (90% CI)",
            ylabel=ylabel))
        if fig.get("as_is_scores") is not None:
            scores = fig["as_is_scores"]
            files["as_is_distribution"] = str(plot_distribution(
                scores, fig["baseline_score"], out / f"as_is_distribution_b{budget}.png",
                title=f"LLM as-is: {len(scores)} scored samples",
                xlabel=f"{fig['metric']} ({fig['unit']})"))
    return doc


__all__ = ["plot_curves", "plot_bars", "plot_distribution", "draw_comparison", "KIND_COLOURS"]
