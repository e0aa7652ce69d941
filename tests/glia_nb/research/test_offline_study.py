"""The offline researcher end to end: session, journal, report, CLI and multi-context."""
import json
from dataclasses import replace

import pytest

from glia_nb.cli.main import main
from glia_nb.research.study import run_study
from glia_nb.research.offline.researcher import OfflineSupervisor
from glia_nb.research.report import summarize_session
from glia_nb.tasks import get_task


@pytest.fixture(scope="module")
def tiny_task():
    # Two minutes of traffic, one seed: each experiment is a fraction of a second.
    return replace(get_task("routing-a10"), duration_s=120.0, num_eval_seeds=1)


@pytest.fixture(scope="module")
def study(tiny_task, tmp_path_factory):
    return run_study(task=tiny_task, budget_sims=6, out=tmp_path_factory.mktemp("study"),
                     workers=1)


def test_offline_study_runs_plan_and_journals(study):
    doc = study
    assert doc["researcher"] == "offline" and doc["mode"] == "SCG"
    assert 1 <= doc["num_experiments"] <= 6
    assert doc["best_score"] <= doc["baseline_score"] and doc["cost_usd"] == 0.0
    rep = summarize_session(doc["session_dir"])
    assert rep["num_experiments"] == doc["num_experiments"]
    names = [line for line in rep["text"].splitlines() if "headroom" in line]
    assert names, "the plan reaches head-room admission"
    assert rep["ended"]
    # The researcher wrote and ran its analysis script through the shell tool.
    from glia_nb.research.journal import read_journal
    _, records = read_journal(f"{doc['session_dir']}/journal.jsonl")
    calls = [tc["name"] for r in records if r.get("type") == "assistant"
             for tc in (r.get("tool_calls") or [])]
    assert {"write_file", "shell", "run_experiment"} <= set(calls)


def test_budget_is_respected_exactly(study):
    # Six experiments allowed: the plan wants more, so the budget is what stops it.
    assert study["num_experiments"] == 6


def _context(trigger, experiments=(), previous=(), layer="router", baseline=None):
    from glia_nb.research.supervisor import ReviewContext

    return ReviewContext(task_text="t", researcher_text=[], ledger_summary="", trigger=trigger,
                         previous=list(previous), experiments=list(experiments), baseline=baseline, layer=layer)


def _exp(i, score, restarted):
    return {"id": i, "name": f"e{i}", "ok": True, "score": score, "metrics": {"restart_fraction": restarted}}


def test_offline_supervisor_asks_about_restarts_on_stall():
    # It reads the review's records, never the rendered prompt's text.
    base = {"ok": True, "score": 30.0, "metrics": {"restart_fraction": 0.14}}
    exps = [_exp(1, 29.9, 0.13)]
    kind, text = OfflineSupervisor().decide(_context("stall", exps, baseline=base))
    assert kind == "question" and "restarts" in text
    again = OfflineSupervisor().decide(_context("stall", exps, ["(question) ... restarts ..."], baseline=base))
    assert again[0] == "recall" and "who waits longest" in again[1]
    assert OfflineSupervisor().decide(_context("idle", exps))[0] == "proceed"
    # Restarts under control: no question about them.
    assert OfflineSupervisor().decide(_context("stall", [_exp(1, 29.0, 0.01)]))[0] == "recall"


def test_offline_supervisor_recall_fits_the_layer():
    for layer in ("autoscaler", "batch_policy"):
        kind, text = OfflineSupervisor().decide(_context("stall", [_exp(1, 3.0, 0.0)], layer=layer))
        assert kind == "recall" and "who waits longest" not in text
    assert "replicas" in OfflineSupervisor().decide(_context("stall", [_exp(1, 3.0, 0.0)], layer="autoscaler"))[1]


def test_offline_supervisor_is_a_session_supervisor():
    from glia_nb.research.session.contracts import SupervisorLike
    from glia_nb.research.supervisor import ReviewState

    sup = OfflineSupervisor()
    assert isinstance(sup, SupervisorLike)
    assert sup.should_review(ReviewState(turn=3, finished=True, idle=False, experiments=2,
                                         experiments_since_improvement=0, experiments_at_last_review=0,
                                         turn_at_last_review=0)) == "finish"
    d = sup.review(_context("finish", [_exp(1, 3.0, 0.0)]))
    assert d.kind == "redirect" and d.trigger == "finish" and d.step is None


def test_cli_simulate_json_and_errors(capsys):
    assert main(["simulate", "--router", "llq", "--seeds", "1", "--duration", "60", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["router"] == "llq" and len(doc["seeds"]) == 1
    assert set(doc["seeds"][0]) >= {"seed", "num_requests", "mean_e2e_s", "p50_e2e_s", "p90_e2e_s",
                                    "p99_e2e_s", "mean_ttft_s", "restart_fraction", "cpu_s", "wall_s"}
    assert len(doc["mean_e2e_ci90_s"]) == 2
    assert main(["simulate", "--router", "nope"]) == 2
    assert "unknown router" in capsys.readouterr().err
    assert main(["simulate", "--scenario", "nope"]) == 2
    assert "unknown scenario" in capsys.readouterr().err


def test_cli_bad_policy_file_and_trace(tmp_path, capsys):
    bad = tmp_path / "p.py"
    bad.write_text("class R:\n    def reset(self, info, rng): pass\n"
                   "    def route(self, view): return [(int(q), 9) for q in view.queue]\n")
    assert main(["simulate", "--router", f"{bad}:R", "--seeds", "1", "--duration", "30"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "replica 9" in err
    csv = tmp_path / "t.csv"
    csv.write_text("arrived_at,num_prefill_tokens\n0.1,5\n")
    assert main(["simulate", "--trace", str(csv), "--seeds", "1"]) == 2
    assert "num_decode_tokens" in capsys.readouterr().err


def test_cli_report(study, tmp_path, capsys):
    doc = study
    assert main(["report", doc["session_dir"], "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["num_experiments"] == doc["num_experiments"]
    assert main(["report", str(tmp_path / "missing")]) == 2
