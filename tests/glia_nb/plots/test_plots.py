"""The figures: right numbers in the right places, for one result and side by side."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from glia_nb.plots import requests as plots

PNG = b"\x89PNG"


def bar_totals(ax) -> np.ndarray:
    """Top of each stacked bar (x -> max y over the parts drawn there)."""
    tops: dict[float, float] = {}
    for patch in ax.patches:
        x = round(patch.get_x(), 6)
        tops[x] = max(tops.get(x, 0.0), patch.get_y() + patch.get_height())
    return np.array([tops[k] for k in sorted(tops)])


def test_parts_sum_to_e2e(results):
    req = results[0].requests
    assert np.allclose(req[list(plots.TIME_PARTS)].sum(axis=1), req["e2e_s"], atol=1e-6)


def test_breakdown_by_e2e_stacks_group_means(results):
    req = results[0].requests
    fig = plots.breakdown_by_e2e(results[0], bins=10)
    ax = fig.axes[0]
    assert len(ax.patches) == 10 * len(plots.TIME_PARTS)
    e2e = np.sort(req["e2e_s"].to_numpy())
    cuts = np.linspace(0, len(e2e), 11).astype(int)  # ten groups of equal count (±1)
    groups = [e2e[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
    assert np.allclose(bar_totals(ax), [g.mean() for g in groups], rtol=1e-6)
    assert np.all(np.diff(bar_totals(ax)) >= 0)  # sorted by e2e
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [plots.PART_LABELS[p] for p in plots.TIME_PARTS]
    assert plots.to_png(fig).startswith(PNG)


def test_breakdown_by_prompt_bins_and_counts(results):
    req = results[0].requests
    fig = plots.breakdown_by_prompt(req)  # a bare DataFrame works too
    ax = fig.axes[0]
    counts = [int(t.get_text().replace(",", "")) for t in ax.texts]
    assert sum(counts) == len(req)
    edges = list(plots.PROMPT_EDGES)
    first = req[(req.prompt_tokens >= edges[0]) & (req.prompt_tokens < edges[1])]
    assert bar_totals(ax)[0] == pytest.approx(first["e2e_s"].mean())


def test_restart_counts_panels(results):
    req = results[0].requests
    fig = plots.restart_counts(results[0])
    left, right = fig.axes[:2]
    heights = [p.get_height() for p in left.patches]
    assert heights[0] == (req.restarts == 0).sum() and sum(heights) == len(req)
    assert f"{(req.restarts > 0).mean():.1%}" in left.get_title()
    assert len(right.lines) == (2 if (req.restarts > 0).any() else 1)


def test_memory_timelines_one_row_per_replica(results):
    fig = plots.memory_timelines(results[0])
    n = results[0].cluster.num_replicas
    assert len(fig.axes) == n
    for ax in fig.axes:
        y = ax.lines[0].get_ydata()
        assert 0 <= np.nanmin(y) and np.nanmax(y) <= 100.0 + 1e-9
    with pytest.raises(ValueError):
        plots.memory_timelines(type("R", (), {"timeline": None})())


@pytest.mark.parametrize("view", list(plots.VIEWS))
def test_side_by_side(results, view):
    fig = plots.side_by_side(view, results, ["LLQ", "HRA"])
    titles = " ".join(ax.get_title() for ax in fig.axes)
    assert "LLQ" in titles and "HRA" in titles
    assert plots.to_png(fig, dpi=50).startswith(PNG)


def test_side_by_side_checks_its_arguments(results):
    with pytest.raises(ValueError):
        plots.side_by_side("nope", results)
    with pytest.raises(ValueError):
        plots.side_by_side("e2e", results, ["one"])
    fig = plots.side_by_side("e2e", results)
    assert fig.axes[0].get_shared_y_axes().joined(fig.axes[0], fig.axes[1])


def test_workload_overview_and_router_comparison(results):
    from workloads import get_scenario

    trace = get_scenario("routing-a10").replace(duration_s=200.0).trace(0)
    fig = plots.workload_overview(trace)
    assert len(fig.axes) == 3 and "median" in fig.axes[1].get_title()
    table = pd.DataFrame({"router": ["A", "A", "B", "B"], "mean_e2e_s": [1.0, 3.0, 4.0, 6.0]})
    ax = plots.router_comparison(table).axes[0]
    assert [p.get_height() for p in ax.patches] == [2.0, 5.0]


def test_figures_are_safe_off_the_main_thread(results):
    import threading

    out = []
    t = threading.Thread(target=lambda: out.append(plots.to_png(plots.side_by_side("prompt", results))))
    t.start()
    t.join(60)
    assert out and out[0].startswith(PNG)
