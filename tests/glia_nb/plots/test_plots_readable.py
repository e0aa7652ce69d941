"""Every figure, drawn: titles name the seeds and what is compared with, axis labels are
plain words with units, legends sit clear of the data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from glia_nb import plots
from glia_nb.plots import stack as plots_stack

PNG = b"\x89PNG"


EXPERIMENTS = [
    {"id": 1, "name": "two-choices", "score": 34.0,
     "metrics": {"mean_e2e_s": 34.0, "restart_fraction": 0.17, "p90_ttft_s": 40.0, "mean_global_queue_s": 0.0,
                 "mean_replica_queue_s": 20.0, "mean_prefill_s": 1.0, "mean_decode_s": 9.0,
                 "mean_lost_to_restarts_s": 4.0}},
    {"id": 2, "name": "broken", "score": None, "metrics": {}},
    {"id": 3, "name": "headroom", "score": 29.0,
     "metrics": {"mean_e2e_s": 29.0, "restart_fraction": 0.03, "p90_ttft_s": 31.0, "mean_global_queue_s": 8.0,
                 "mean_replica_queue_s": 6.0, "mean_prefill_s": 1.0, "mean_decode_s": 13.0,
                 "mean_lost_to_restarts_s": 1.0}},
]
BASELINE = {"score": 35.0, "metrics": {**EXPERIMENTS[0]["metrics"], "mean_e2e_s": 35.0, "restart_fraction": 0.16,
                                       "mean_replica_queue_s": 21.0}}


@pytest.mark.parametrize("draw", [plots.breakdown_by_e2e, plots.breakdown_by_prompt, plots.restart_counts])
def test_per_request_views_name_router_and_seed(results, readable, draw):
    readable(draw(results[0]), title_has=("llq", "seed 0"))


def test_memory_timelines_name_router_and_seed(results, readable):
    fig = plots.memory_timelines(results[1])
    readable(fig, title_has=("hra", "seed 0"), legend=False)
    assert all(ax.get_ylabel().endswith("KV use (%)") for ax in fig.axes)


@pytest.mark.parametrize("view", list(plots.VIEWS))
def test_side_by_side_names_the_seed_and_the_baseline(results, readable, view):
    fig = plots.side_by_side(view, results, ["LLQ", "discovered"])
    readable(fig, title_has=("seed 0", "LLQ (the baseline)"), legend=view != "memory")
    assert plots.to_png(fig).startswith(PNG)


def test_router_comparison_names_seeds_and_baseline_in_words(readable):
    table = pd.DataFrame({"router": ["A", "A", "B", "B"], "seed": [0, 1, 0, 1], "mean_e2e_s": [1.0, 3.0, 4.0, 6.0]})
    fig = plots.router_comparison(table, baseline="A")
    readable(fig, title_has=("seeds 0, 1", "baseline A"), legend=False)
    ax = fig.axes[0]
    assert ax.get_ylabel() == "mean end-to-end latency (s)"
    assert any(list(line.get_ydata()) == [2.0, 2.0] for line in ax.lines)  # the baseline's mean


def test_workload_overview_says_what_the_dashed_line_is(readable):
    from workloads import get_scenario

    fig = plots.workload_overview(get_scenario("routing-a10").replace(duration_s=120.0).trace(0))
    readable(fig, title_has=("dashed: mean",), legend=False)


def test_best_so_far_integer_ticks_seeds_and_baseline(readable):
    exps = [{"score": 30.0}, {"score": 28.0}, {"score": None}, {"score": 29.0}, {"score": 20.0}]
    fig = plots.best_so_far(exps, baseline=31.0, metric="mean_e2e_s", seeds=[0])
    readable(fig, title_has=("seed 0", "against baseline"))
    ax = fig.axes[0]
    assert list(ax.lines[0].get_ydata()) == [30.0, 28.0, 28.0, 20.0]
    assert list(ax.lines[0].get_xdata()) == [1, 2, 4, 5]
    assert any(line.get_ydata()[0] == 31.0 for line in ax.lines[1:])
    ticks = ax.get_xticks()
    assert np.all(ticks == np.round(ticks)) and ticks.min() >= 1 and ticks.max() <= 5
    assert ax.get_ylabel() == "mean end-to-end latency (s)" and ax.get_xlabel() == "experiment number"
    up = plots.best_so_far([{"score": 1}, {"score": 3}, {"score": 2}], lower_is_better=False)
    assert list(up.axes[0].lines[0].get_ydata()) == [1, 3, 3]
    from glia_nb.tasks import Objective

    up = plots.best_so_far([{"score": 1}, {"score": 3}, {"score": 2}],
                           objective=Objective(name="throughput_qps", direction="max"), metric="throughput_qps")
    assert list(up.axes[0].lines[0].get_ydata()) == [1, 3, 3] and "higher is better" in up.axes[0].get_title()


def test_best_so_far_before_any_experiment_says_so_instead_of_empty_axes():
    fig = plots.best_so_far([], None, seeds=[0])
    ax = fig.axes[0]
    assert not ax.axison and "no experiments yet" in ax.texts[0].get_text()
    fig = plots.best_so_far([], 12.0, seeds=[0])  # only the baseline: its line, axes around it
    lo, hi = fig.axes[0].get_ylim()
    assert lo < 12.0 < hi and fig.axes[0].get_xticks().tolist() == [1]


def test_tradeoff_scatter_places_each_experiment_and_the_baseline(readable):
    fig = plots.tradeoff_scatter(EXPERIMENTS, BASELINE, seeds=[0, 1], best_id=3)
    readable(fig, title_has=("seeds 0, 1", "baseline"))
    ax = fig.axes[0]
    pts = ax.collections[0].get_offsets()
    assert [tuple(p) for p in pts] == [(0.17, 34.0), (0.03, 29.0)]  # the failed one has no point
    assert [t.get_text() for t in ax.texts] == ["1", "3"]
    assert ax.get_xlabel() == "requests restarted (fraction of all)"


def test_time_split_bars_add_up_to_each_experiments_parts(readable):
    fig = plots.experiment_time_split(EXPERIMENTS, BASELINE, seeds=[0])
    readable(fig, title_has=("seed 0", "baseline"))
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["baseline", "#1 two-choices", "#3 headroom"]  # top to bottom
    right = {}
    for patch in ax.patches:
        y = round(patch.get_y() + patch.get_height() / 2, 6)
        right[y] = max(right.get(y, 0.0), patch.get_x() + patch.get_width())
    assert sorted(right.values()) == pytest.approx([29.0, 34.0, 35.0])


def _row(gpu, busy, start, drain, meets=True, vs=0.0):
    return {"gpu_hours": gpu, "busy_gpu_hours": busy, "starting_gpu_hours": start,
            "draining_gpu_hours": drain, "meets_constraint": meets, "gpu_hours_vs_standard": vs}


def test_stack_gpu_hours_says_what_its_percentages_are_relative_to(readable):
    doc = {"slowdown_limit": 5.0, "seeds": [0, 1, 2], "stacks": {
        "standard": _row(5.0, 4.7, 0.3, 0.5), "glia-stack": _row(4.0, 3.5, 0.2, 0.4, vs=-0.2)}}
    ax = plots_stack.stack_gpu_hours(doc)
    readable(ax.figure, title_has=("seeds 0, 1, 2", "against the baseline, the tuned standard stack"))
    assert [t.get_text() for t in ax.texts] == ["baseline", "-20%"]
    six = {"slowdown_limit": 5.0, "seeds": [0], "stacks": {f"stack-{i}": _row(5.0 - 0.1 * i, 4.0, 0.3, 0.5, vs=-0.02 * i)
                                                            for i in range(6)}}
    ax = plots_stack.stack_gpu_hours(six)
    ax.figure.canvas.draw()
    boxes = [t.get_window_extent() for t in ax.texts]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:]), "bar labels overlap"


def test_other_stack_figures_are_readable(results, readable):
    curves = {"llq": {"seeds": 2, "points": [{"users": 8, "throughput_qps": 1.0, "p90_ttft_s": 0.5},
                                             {"users": 16, "throughput_qps": 1.8, "p90_ttft_s": 2.0}]}}
    ax = plots_stack.ttft_tradeoff(curves, baseline="llq")
    readable(ax.figure, title_has=("2 seeds", "baseline: llq"))
    ax = plots_stack.e2e_by_prompt({"LLQ": results[0], "HRA": results[1]}, baseline="LLQ")
    readable(ax.figure, title_has=("seed 0", "baseline: LLQ"))
