"""Multi-context Glia over a local process pool and over a real Dask LocalCluster."""
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

import pytest

from glia_nb.research.multi import ParallelGlia, SequentialGlia
from glia_nb.tasks import get_task


@pytest.fixture(scope="module")
def task():
    return replace(get_task("routing-a10"), duration_s=60.0, num_eval_seeds=1)


def _budget(task, experiments):
    from glia_nb.tasks.budget import Budget
    return replace(Budget.coerce(task.budget), max_simulations=experiments)


def test_parallel_glia_same_best_on_process_pool_and_dask(task, tmp_path):
    distributed = pytest.importorskip("distributed")
    with ProcessPoolExecutor(2) as pool:
        local = ParallelGlia(4, task, tmp_path / "pool", executor=pool,
                             budget=_budget(task, 2)).run()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, host="127.0.0.1") as cluster, \
            distributed.Client(cluster) as client:
        dask = ParallelGlia(4, task, tmp_path / "dask", executor=client.get_executor(),
                            budget=_budget(task, 2)).run()
    assert len(local.sessions) == len(dask.sessions) == 4
    assert local.best_score is not None
    assert local.best_score == pytest.approx(dask.best_score, rel=0, abs=1e-12)
    assert local.scores() == pytest.approx(dask.scores(), rel=0, abs=1e-12)
    assert local.best["name"] == dask.best["name"]


def test_sequential_glia_stops_at_target(task, tmp_path):
    with ProcessPoolExecutor(2) as pool:
        res = SequentialGlia(3, task, tmp_path, executor=pool, budget=_budget(task, 2),
                             target=1e9).run()
    # Any score meets an absurdly loose target: one session is enough.
    assert len(res.sessions) == 1 and res.best_score is not None
