"""The stack tasks: registry, constrained objectives, task text, sandbox per layer, offline."""
import math
from dataclasses import replace

import pytest

from glia_nb.research.study import run_study
from glia_nb.research.report import summarize_session
from glia_nb.evaluation.harness import evaluate
from glia_nb.tasks import TASKS, Objective, get_task


def test_registry_entries():
    b, a, h = get_task("batch-a10"), get_task("autoscale-a10"), get_task("routing-h100-prefill")
    assert (b.layer, b.scenario, b.baseline, b.class_name) == (
        "batch_policy", "routing-a10", "fifo", "CustomBatchPolicy")
    assert b.fixed_router == "llq" and b.objective.name == "mean_e2e_s"
    assert (a.layer, a.baseline, a.class_name) == ("autoscaler", "throughput", "CustomAutoscaler")
    assert (a.objective.name, a.objective.direction) == ("gpu_hours", "min")
    assert (a.objective.constraint, a.objective.constraint_max) == ("p95_slowdown_worst_seed", 5.0)
    # Within the bound on average but not in one seed: infeasible, scored as the worst value.
    summary = {"gpu_hours": 4.0, "p95_slowdown": 4.5, "p95_slowdown_worst_seed": 6.0}
    assert not a.objective.feasible(summary) and a.objective.score(summary) == float("inf")
    assert (h.layer, h.objective.name, h.objective.direction) == ("router", "throughput_qps", "max")
    assert (h.objective.constraint, h.objective.constraint_max) == ("p90_ttft_s", 1.5)
    for t in (b, a, h):
        assert t.to_dict() == type(t).from_dict(t.to_dict()).to_dict()
        assert TASKS[t.name] is t


def test_constrained_objective_scores():
    o = Objective(name="gpu_hours", direction="min", constraint="p95_slowdown",
                  constraint_max=5.0)
    assert o.score({"gpu_hours": 3.0, "p95_slowdown": 4.9}) == 3.0
    assert o.score({"gpu_hours": 2.0, "p95_slowdown": 5.1}) == math.inf
    assert o.is_better(3.0, o.score({"gpu_hours": 2.0, "p95_slowdown": 9.0}))
    m = Objective(name="throughput_qps", direction="max", constraint="p90_ttft_s",
                  constraint_max=1.5)
    assert m.score({"throughput_qps": 20.0, "p90_ttft_s": 2.0}) == -math.inf
    assert not m.feasible({"throughput_qps": 20.0}) and "p90_ttft_s <= 1.5" in m.text()
    with pytest.raises(ValueError, match="constraint"):
        Objective(constraint="p95_slowdown")


def test_task_texts_and_templates():
    b, a, h = get_task("batch-a10"), get_task("autoscale-a10"), get_task("routing-h100-prefill")
    tb = b.render_text(20.0)
    assert "batch-scheduler policy" in tb and "router `llq`" in tb and "20.000" in tb
    assert "--batch-policy policy.py:CustomBatchPolicy" in tb
    ta = a.render_text()
    for s in ("stats.in_flight", "decode_tokens_per_s", "60-second cold start",
              "p95_slowdown_worst_seed <= 5", "--autoscaler policy.py:CustomAutoscaler"):
        assert s in ta, s
    th = h.render_text()
    assert "p90_ttft_s <= 1.5" in th and "Maximise" in th and "routing-h100-prefill" in th
    assert "class CustomBatchPolicy" in b.render_policy_template()
    assert "class CustomAutoscaler" in a.render_policy_template()
    assert "class CustomRouter" in h.render_policy_template()


@pytest.fixture(scope="module")
def short():
    return {"batch": replace(get_task("batch-a10"), duration_s=200.0, num_eval_seeds=1),
            "auto": replace(get_task("autoscale-a10"), duration_s=240.0, num_eval_seeds=1)}


def test_sandbox_evaluates_each_layer_and_templates_equal_baselines(short, tmp_path):
    for key in ("batch", "auto"):
        task = short[key]
        f = tmp_path / f"{key}.py"
        f.write_text(task.render_policy_template())
        cand = evaluate(f, task, tmp_path / f"{key}-cand")
        base = evaluate(task.baseline, task, tmp_path / f"{key}-base")
        assert cand.ok and base.ok, (cand.error, base.error)
        assert cand.summary["mean_e2e_s"] == pytest.approx(base.summary["mean_e2e_s"])
    spf = evaluate("spf", short["batch"])
    assert spf.ok and spf.summary["mean_e2e_s"] != base.summary["mean_e2e_s"]


def test_sandbox_layer_errors(short, tmp_path):
    f = tmp_path / "p.py"
    f.write_text("class CustomAutoscaler:\n    def reset(self, info, rng):\n        pass\n")
    r = evaluate(f, short["auto"])
    assert not r.ok and r.error_kind == "missing_class" and "decide" in r.error
    f.write_text("class CustomAutoscaler:\n    def reset(self, info, rng):\n        pass\n"
                 "    def decide(self, stats):\n        return 1 / 0\n")
    r = evaluate(f, short["auto"])
    assert not r.ok and r.error_kind == "exception" and "ZeroDivisionError" in r.error
    f.write_text("class CustomBatchPolicy:\n    pass\n")
    r = evaluate(f, short["batch"])
    assert not r.ok and r.error_kind == "missing_class"
    f.write_text("class CustomBatchPolicy:\n    def key(self, prompt_tokens, arrived_at):\n"
                 "        return {}[prompt_tokens]\n")
    r = evaluate(f, short["batch"])
    assert not r.ok and r.error_kind == "exception"
    assert r.error.startswith("batch policy CustomBatchPolicy.key(") and "KeyError" in r.error


@pytest.mark.parametrize("name,duration,sims", [("batch-a10", 300.0, 4),
                                                ("autoscale-a10", 300.0, 3),
                                                ("routing-h100-prefill", 60.0, 3)])
def test_offline_study_per_layer(name, duration, sims, tmp_path):
    task = replace(get_task(name), duration_s=duration, num_eval_seeds=1)
    doc = run_study(task=task, budget_sims=sims, out=tmp_path, workers=1)
    assert doc["researcher"] == "offline" and 1 <= doc["num_experiments"] <= sims
    rep = summarize_session(doc["session_dir"])
    assert rep["ended"] and rep["num_failed_experiments"] == 0
    from glia_nb.research.journal import read_journal
    _, records = read_journal(f"{doc['session_dir']}/journal.jsonl")
    calls = [tc["name"] for r in records if r.get("type") == "assistant"
             for tc in (r.get("tool_calls") or [])]
    assert {"write_file", "run_experiment"} <= set(calls)
    if doc["best_score"] is not None and doc["baseline_score"] is not None:
        assert not task.objective.is_better(doc["baseline_score"], doc["best_score"])
