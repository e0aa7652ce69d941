"""Task registry, objective, serialisation and the Researcher's task text."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from glia_nb.tasks import (GS_LOG_COLUMNS, REQS_LOG_COLUMNS, REQUESTS_COLUMNS, TASKS, Budget,
                          Objective, Task, UnknownTaskError, describe_view, get_task,
                          view_members)
from glia_nb.text import load_template


@pytest.fixture(scope="module")
def task():
    return get_task("routing-a10")


def test_registry_and_defaults(task):
    assert "routing-a10" in TASKS
    assert task.scenario == "routing-a10" and task.layer == "router"
    assert task.objective.name == "mean_e2e_s" and task.objective.direction == "min"
    sc = task.load_scenario()
    assert task.seeds == tuple(sc.seeds[: task.num_eval_seeds])
    assert Task(name="x", scenario="routing-a10").seeds == (0, 1, 2)  # the class default
    assert task.baseline == "llq"
    assert task.policy_file == "policy.py" and task.class_name == "CustomRouter"
    assert task.policy_spec == "policy.py:CustomRouter"
    assert isinstance(task.budget, Budget) and task.budget.max_simulations > 0


def test_unknown_task_lists_known_names():
    with pytest.raises(UnknownTaskError) as err:
        get_task("routing-h100-typo")
    assert "routing-a10" in str(err.value) and "routing-h100-typo" in str(err.value)


def test_validation():
    with pytest.raises(ValueError, match="layer"):
        Task(name="x", scenario="routing-a10", layer="kernel")
    with pytest.raises(ValueError, match="policy_file"):
        Task(name="x", scenario="routing-a10", policy_file="../evil.py")
    with pytest.raises(ValueError, match="class_name"):
        Task(name="x", scenario="routing-a10", class_name="not a name")
    with pytest.raises(ValueError, match="distinct"):
        Task(name="x", scenario="routing-a10", eval_seeds=(1, 1))
    with pytest.raises(ValueError, match="direction"):
        Objective(direction="sideways")


def test_objective_score_and_comparisons():
    obj = Objective()
    assert obj.score({"mean_e2e_s": 12.5, "other": 1}) == 12.5
    with pytest.raises(KeyError, match="mean_e2e_s"):
        obj.score({"p90_e2e_s": 1.0})
    assert obj.is_better(10.0, 12.0) and not obj.is_better(12.0, 10.0)
    assert not obj.is_better(float("nan"), 12.0) and obj.is_better(1.0, float("nan"))
    assert obj.improvement(30.0, 40.0) == pytest.approx(0.25)
    assert obj.improvement(50.0, 40.0) == pytest.approx(-0.25)
    up = Objective(name="throughput_qps", direction="max")
    assert up.is_better(6.0, 5.0) and up.improvement(6.0, 5.0) == pytest.approx(0.2)
    assert obj.improvement(1.0, 0.0) is None and obj.improvement(math.inf, 1.0) is None


def test_round_trip_through_json(task):
    t = task.replace(duration_s=60, eval_seeds=(3, 4), budget=Budget(max_simulations=6))
    back = Task.from_dict(json.loads(json.dumps(t.to_dict())))
    assert back == t
    with pytest.raises(ValueError, match="unknown task fields"):
        Task.from_dict({**t.to_dict(), "surprise": 1})


def test_duration_override_and_benchmark_command(task):
    assert task.benchmark_command() == (
        "glia simulate --scenario routing-a10 --router policy.py:CustomRouter "
        f"--seeds {len(task.seeds)} --json --out experiments/NNN")
    short = task.replace(duration_s=60)
    assert short.load_scenario().duration_s == 60
    assert "--duration 60" in short.benchmark_command()


def test_task_text_mentions_the_key_facts(task):
    text = task.render_text(baseline_score=27.73)
    for needle in ("global queue", "waiting", "running", "blocks of 16 tokens", "2240 blocks",
                   "arrived last", "recompute", "4 identical replicas", "run_experiment",
                   task.benchmark_command(), "./run_benchmark.sh", "requests.csv",
                   "request_metrics.csv", "gs_log.csv", "reqs_log.csv", "ledger.csv",
                   "policy.py", "CustomRouter", "27.73", "mean_e2e_s", "lower is better",
                   "25%", "seeds " + ", ".join(map(str, task.seeds)), "finish(summary)", "def route(self, view)",
                   "def reset(self, info, rng)"):
        assert needle in text, needle
    for rule in task.rules:
        assert rule in text
    assert "$" not in text.replace("$20", "")  # no unfilled placeholders
    assert "not been measured" in task.render_text()


def test_view_list_is_generated_from_the_code_and_has_no_decode_length(task):
    from sim_core.view import ClusterView

    public = [n for n in ClusterView.__slots__ if not n.startswith("_")]
    public += [n for n, v in vars(ClusterView).items() if not n.startswith("_")
               and (isinstance(v, property) or callable(v))]
    listing = describe_view()
    text = task.render_text()
    for name in public:
        assert f"`view.{name}" in listing and f"`view.{name}" in text, name
    # Structural: neither the view nor its generated description offers output lengths.
    assert not any("decode" in n for n in dir(ClusterView))
    assert not any("decode" in n for n in view_members())
    assert "view.decode" not in text
    assert "no decode-length" in text


def test_info_fields_and_state_codes_in_text(task):
    import dataclasses

    from sim_core.view import ClusterInfo

    text = task.render_text()
    for f in dataclasses.fields(ClusterInfo):
        assert f"`{f.name}` = " in text
    assert "1 = global" in text and "3 = running" in text


def test_telemetry_columns_match_a_real_run(tmp_path):
    from sim_core import simulate
    from workloads import get_scenario

    sc = get_scenario("routing-a10")
    res = simulate(sc.cluster, sc.workload.trace(30.0, 0), "llq", seed=0)
    res.write_artifacts(tmp_path)
    header = lambda name: (tmp_path / name).read_text().splitlines()[0].split(",")  # noqa: E731
    assert tuple(header("requests.csv")) == REQUESTS_COLUMNS
    assert tuple(header("gs_log.csv")) == GS_LOG_COLUMNS
    assert tuple(header("reqs_log.csv")) == REQS_LOG_COLUMNS


def test_policy_template_is_llq(tmp_path, task):
    """The starting policy is a readable LLQ: same decisions as the built-in router."""
    from sim_core import simulate
    from sim_core.policies import load_policy_class
    from workloads import get_scenario

    src = task.render_policy_template()
    assert "class CustomRouter" in src and "sim_core" not in src
    path = tmp_path / "policy.py"
    path.write_text(src)
    cls = load_policy_class(path, "CustomRouter", "router")
    sc = get_scenario("routing-a10")
    trace = sc.workload.trace(150.0, 1)
    a = simulate(sc.cluster, trace, cls(), seed=1).requests
    b = simulate(sc.cluster, trace, "llq", seed=1).requests
    assert np.array_equal(a["replica"].to_numpy(), b["replica"].to_numpy())
    assert a["e2e_s"].mean() == b["e2e_s"].mean()


def test_prompts_are_package_data():
    assert "$objective_text" in load_template("router_task.md").template


def test_other_layers_render_their_own_text():
    t = Task(name="bp", scenario="routing-a10", layer="batch_policy",
             class_name="CustomBatchPolicy", baseline="fifo")
    assert "def key(self, prompt_tokens, arrived_at)" in t.render_text()
    assert "class CustomBatchPolicy" in t.render_policy_template()
