"""The stack figures draw what the documents say."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from glia_nb.plots import stack as plots_stack  # noqa: E402


def _row(gpu, busy, start, drain, meets=True, vs=0.0):
    return {"gpu_hours": gpu, "busy_gpu_hours": busy, "starting_gpu_hours": start,
            "draining_gpu_hours": drain, "meets_constraint": meets, "gpu_hours_vs_standard": vs}


def test_stacked_bars_split_each_stacks_bill():
    doc = {"slowdown_limit": 5.0, "stacks": {
        "standard": _row(5.0, 4.7, 0.3, 0.5),
        "glia-stack": _row(4.0, 3.5, 0.2, 0.4, vs=-0.2),
        "broken": _row(3.0, 2.5, 0.1, 0.2, meets=False, vs=-0.4)}}
    ax = plots_stack.stack_gpu_hours(doc)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["running iterations (active)", "draining", "cold starts", "idle"]
    heights = {}
    for container, label in zip(ax.containers, labels):
        heights[label] = [b.get_height() for b in container]
    assert heights["running iterations (active)"] == pytest.approx([4.2, 3.1, 2.3])
    assert heights["draining"] == pytest.approx([0.5, 0.4, 0.2])
    assert heights["idle"] == pytest.approx([0.0, 0.3, 0.4])
    tops = [sum(h[i] for h in heights.values()) for i in range(3)]
    assert tops == pytest.approx([5.0, 4.0, 3.0])          # the whole bill, nothing more
    # Only the stack that breaks the bound gets the hatched outline.
    assert len(ax.containers) == 5 and ax.containers[4][0].get_hatch() == "//"
    assert [t.get_text() for t in ax.texts] == ["baseline", "-20%", "-40%"]
    plt.close(ax.figure)
