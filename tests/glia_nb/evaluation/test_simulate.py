"""One path simulates seeds of a scenario under a stack: the CLI, the notebook helpers, the
stack experiments and the evaluator's worker all agree with it."""
from __future__ import annotations

import pytest

from glia_nb.cli.main import run_simulations
from glia_nb.evaluation import harness
from glia_nb.evaluation.simulate import (aggregate, evaluate_config, run_seeds, seed_list,
                                         simulate_config, simulate_seeds)
from glia_nb.widgets.progress import simulate_seeds as widget_seeds
from workloads import get_scenario

DURATION = 30.0


@pytest.fixture(scope="module")
def scenario():
    return get_scenario("routing-a10", duration_s=DURATION)


def test_seed_list(scenario):
    assert seed_list(scenario, 2) == list(scenario.seeds[:2])
    assert seed_list(scenario, [7, 3]) == [7, 3]
    assert seed_list(scenario, len(scenario.seeds) + 2) == list(range(len(scenario.seeds) + 2))
    with pytest.raises(ValueError):
        seed_list(scenario, 0)


def test_every_caller_gets_the_same_numbers(scenario):
    seeds = seed_list(scenario, 2)
    direct = [simulate_config(scenario, s, "hra").summary["mean_e2e_s"] for s in seeds]
    assert [r.summary["mean_e2e_s"] for r in simulate_seeds(scenario, seeds, "hra")] == direct
    assert [r.summary["mean_e2e_s"] for r in widget_seeds(scenario, "hra", seeds)] == direct
    assert [s["mean_e2e_s"] for s in run_seeds(scenario, seeds, "hra")] == direct
    doc = run_simulations("routing-a10", "hra", 2, duration_s=DURATION)
    assert [s["mean_e2e_s"] for s in doc["seeds"]] == direct
    agg = evaluate_config("routing-a10", router="hra", seeds=2, duration_s=DURATION)
    assert agg["mean_e2e_s"] == pytest.approx(sum(direct) / 2, rel=1e-12)
    assert agg["seeds"] == seeds and len(agg["per_seed"]) == 2


def test_the_evaluator_worker_simulates_through_the_same_path(scenario):
    from glia_nb.evaluation.worker import run_seeds as worker_run_seeds
    from glia_nb.tasks import get_task

    task = get_task("routing-a10").replace(duration_s=DURATION, eval_seeds=(0, 1))
    out = worker_run_seeds({"spec": "hra", "task": task.to_dict(), "seeds": [0, 1]})
    assert out["error"] is None
    assert [s["mean_e2e_s"] for s in out["per_seed"]] == \
        [simulate_config(scenario, s, "hra").summary["mean_e2e_s"] for s in (0, 1)]


def test_aggregate_has_one_home():
    assert harness.aggregate is aggregate
    agg = aggregate([{"seed": 0, "mean_e2e_s": 2.0, "p90_ttft_s": 1.0},
                     {"seed": 1, "mean_e2e_s": 4.0, "p90_ttft_s": 3.0}])
    assert agg["mean_e2e_s"] == 3.0 and agg["p90_ttft_s_worst_seed"] == 3.0
    assert agg["seeds"] == [0, 1] and aggregate([]) == {}
