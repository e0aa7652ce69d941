"""The breakdown widget and the progress helpers, headless (no kernel)."""
from __future__ import annotations

import asyncio
import time

import pytest

pytest.importorskip("ipywidgets")

from glia_nb.widgets import (RequestBreakdown, compare_routers, progress, simulate_seeds,  # noqa: E402
                             summary_table, wait_async)

PNG = b"\x89PNG"


# ---------------------------------------------------------------------------- RequestBreakdown
@pytest.fixture(scope="module")
def two_results():
    from workloads import get_scenario

    sc = get_scenario("routing-a10").replace(duration_s=120.0)
    return simulate_seeds(sc, "llq", [0]) + simulate_seeds(sc, "hra", [0])


def test_breakdown_switches_views_with_the_dropdown(two_results):
    llq, hra = two_results
    bd = RequestBreakdown(llq, hra, labels=("LLQ", "HRA"))
    assert {"glia-breakdown"} <= set(bd._dom_classes)
    assert "glia-breakdown-view" in bd.view_dropdown._dom_classes
    assert bytes(bd.image.value).startswith(PNG)
    assert "LLQ" in bd.summary_html.value and "HRA" in bd.summary_html.value
    first = bytes(bd.image.value)
    seen = {first}
    for view in ("prompt", "memory", "restarts"):
        bd.view_dropdown.value = view
        assert bytes(bd.image.value).startswith(PNG) and bytes(bd.image.value) not in seen
        seen.add(bytes(bd.image.value))
        assert bd.note_html.value
    bd.view_dropdown.value = "e2e"
    assert bytes(bd.image.value) == first  # cached
    single = RequestBreakdown(llq, view="restarts")
    assert single.labels == ["llq"] and bytes(single.image.value).startswith(PNG)
    with pytest.raises(ValueError):
        RequestBreakdown(llq, hra, labels=("only one",))
    with pytest.raises(ValueError):
        RequestBreakdown(llq, view="nope")


# ---------------------------------------------------------------------------- progress helpers
def test_progress_helpers_run_batches_in_a_terminal(capsys):
    from workloads import get_scenario

    sc = get_scenario("routing-a10").replace(duration_s=60.0)
    res = simulate_seeds(sc, "rr", [1, 0])
    assert [r.seed for r in res] == [1, 0]
    err = capsys.readouterr().err
    assert "rr" in err and "2/2" in err  # a readable text bar on stderr
    runs, table = compare_routers(sc, {"RR": "rr", "LLQ": "llq"}, [0, 1], record_timeline=False)
    assert list(table.index) == ["RR", "LLQ"] and list(table["seeds"]) == [2, 2]
    per_seed = summary_table(runs, per_seed=True)
    assert len(per_seed) == 4 and set(per_seed["router"]) == {"RR", "LLQ"}
    assert table.loc["RR", "mean_e2e_s"] == pytest.approx(per_seed[per_seed.router == "RR"]["mean_e2e_s"].mean())
    assert list(progress(range(3), desc="x")) == [0, 1, 2]


def test_wait_async_polls_without_blocking():
    class FakeSession:
        def __init__(self):
            self.done_at = time.monotonic() + 0.3

        def wait(self, timeout=None):
            return time.monotonic() >= self.done_at

    assert asyncio.run(wait_async(FakeSession(), timeout=5, poll_s=0.05)) is True
    assert asyncio.run(wait_async(type("S", (), {"wait": lambda self, timeout=None: False})(), timeout=0.2,
                                  poll_s=0.05)) is False
