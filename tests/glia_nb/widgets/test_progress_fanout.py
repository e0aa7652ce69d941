"""The notebook helpers fan out to a local pool or a Dask cluster by address and give the
same results, in the same order, as a run in the kernel's process."""
from __future__ import annotations

import pytest

from glia_nb.widgets import compare_routers, simulate_seeds
from workloads import get_scenario

pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def scenario():
    return get_scenario("routing-a10", duration_s=60)


def _summaries(results):
    """The summaries without the run's own timings (they differ between processes)."""
    return [{k: v for k, v in r.summary.items() if k not in ("cpu_s", "wall_s")} for r in results]


def test_simulate_seeds_on_a_pool_and_a_cluster_equal_in_process(scenario, dask_scheduler, monkeypatch):
    monkeypatch.delenv("GLIA_DASK", raising=False)
    here = simulate_seeds(scenario, "llq", [2, 0, 1], record_timeline=False)
    pooled = simulate_seeds(scenario, "llq", [2, 0, 1], record_timeline=False, workers=2)
    remote = simulate_seeds(scenario, "llq", [2, 0, 1], record_timeline=False, dask=dask_scheduler)
    assert [r.summary["seed"] for r in remote] == [2, 0, 1]  # seed order, not finish order
    assert _summaries(pooled) == _summaries(here)
    assert _summaries(remote) == _summaries(here)


def test_compare_routers_on_a_cluster_by_environment(scenario, dask_scheduler, monkeypatch):
    monkeypatch.delenv("GLIA_DASK", raising=False)
    routers = {"RR": "rr", "LLQ": "llq"}
    runs, table = compare_routers(scenario, routers, [0, 1], record_timeline=False)
    monkeypatch.setenv("GLIA_DASK", dask_scheduler)
    runs_d, table_d = compare_routers(scenario, routers, [0, 1], record_timeline=False)
    assert {k: _summaries(v) for k, v in runs_d.items()} == {k: _summaries(v) for k, v in runs.items()}
    timing = [c for c in table.columns if c in ("cpu_s", "wall_s")]
    assert table_d.drop(columns=timing).equals(table.drop(columns=timing))
    assert table.loc["LLQ", "mean_e2e_s"] != table.loc["RR", "mean_e2e_s"]  # two real runs


def test_a_bad_address_is_refused_before_any_run(scenario, monkeypatch):
    from glia_nb.evaluation.executors import ExecutorError

    monkeypatch.delenv("GLIA_DASK", raising=False)
    with pytest.raises(ExecutorError, match="not a Dask scheduler address"):
        simulate_seeds(scenario, "llq", [0], dask="localhost-8786")
