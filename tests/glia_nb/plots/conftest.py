"""What every figure owes its reader, checked after drawing: plain-words axis labels,
readable text, and legends that never cover the plotted data."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402


def _data_artists(ax):
    return [a for a in (*ax.patches, *ax.lines, *ax.collections) if a.get_visible()]


def check_readable(fig, *, title_has=(), legend: bool = True):
    """Draw ``fig`` and check it: every axes with data has x and y labels in words (no
    raw column names), each legend is inside the figure and overlaps none of the plotted
    artists of any axes, legend text is at least 9 pt, and the titles (together with
    the figure's suptitle) name each of ``title_has``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.transforms import Bbox

    canvas = fig.canvas if hasattr(fig.canvas, "get_renderer") else FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    titles = " ".join([ax.get_title() for ax in fig.axes] + [fig._suptitle.get_text() if fig._suptitle else ""])
    for want in title_has:
        assert want in titles, f"{want!r} not in the titles: {titles!r}"
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert bool(legends) == legend, f"legends: {legends}"
    for ax in fig.axes:
        if not _data_artists(ax) or not ax.axison:
            continue
        for label in (ax.get_xlabel(), ax.get_ylabel()):
            if label:
                assert "_" not in label, f"raw column name as axis label: {label!r}"
    fig_box = fig.bbox
    for leg in legends:
        box = leg.get_window_extent(renderer)
        assert box.x0 >= fig_box.x0 - 1 and box.x1 <= fig_box.x1 + 1 and box.y0 >= fig_box.y0 - 1 \
            and box.y1 <= fig_box.y1 + 1, "legend cut off at the figure's edge"
        assert min(t.get_fontsize() for t in leg.get_texts()) >= 9
        for ax in fig.axes:
            for art in _data_artists(ax):
                # the visible part: a bar on a log axis reaches far below the axes, clipped
                ext = Bbox.intersection(art.get_window_extent(renderer), ax.bbox) if art.get_clip_on() \
                    else art.get_window_extent(renderer)
                if ext is None or (ext.width <= 0 and ext.height <= 0):
                    continue
                assert not box.overlaps(ext), f"the legend covers {art!r} in {ax.get_title()!r}"


@pytest.fixture
def readable():
    return check_readable


@pytest.fixture(scope="module")
def results():
    """LLQ and HRA on the same 200 s routing-a10 trace (seed 0)."""
    from sim_core import simulate
    from workloads import get_scenario

    sc = get_scenario("routing-a10").replace(duration_s=200.0)
    trace = sc.trace(0)
    return simulate(sc.cluster, trace, "llq", seed=0), simulate(sc.cluster, trace, "hra", seed=0)
