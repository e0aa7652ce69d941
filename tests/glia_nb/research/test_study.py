"""``glia study``: the document and the text it prints, on a maximised task, and how the
study's budget is shared between contexts."""
from __future__ import annotations

import json
import math

from glia_nb.cli.main import main
from glia_nb.research.study import run_study, study_text
from glia_nb.tasks import get_task


def test_study_on_a_maximised_task_prints_its_result(tmp_path, capsys):
    # routing-h100-prefill maximises throughput under a P90 TTFT bound that its LLQ
    # baseline breaks (300 users): the baseline has no score, only a raw value.
    rc = main(["study", "routing-h100-prefill", "--budget-sims", "2", "--duration", "60",
               "--eval-seeds", "1", "--out", str(tmp_path / "text"), "--workers", "1"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "mode SCG" in out and "baseline score" in out and "best score" in out
    assert "Traceback" not in err and "error" not in err

    rc = main(["study", "routing-h100-prefill", "--budget-sims", "2", "--duration", "60",
               "--eval-seeds", "1", "--out", str(tmp_path / "json"), "--workers", "1", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["direction"] == "max" and doc["objective"] == "throughput_qps"
    assert doc["baseline_feasible"] is False and doc["baseline_score"] is None
    assert doc["baseline_value"] is not None and math.isfinite(doc["baseline_value"])
    assert doc["improvement"] is None  # no ratio against an infeasible baseline ...
    assert "breaks the constraint" in study_text(doc) or doc["best_score"] is None  # ... said so


def test_study_text_says_better_or_worse_from_the_ratio():
    base = {"task": "t", "researcher": "offline", "mode": "SCG", "status": "finished",
            "objective": "throughput_qps",
            "baseline_score": 10.0, "baseline_feasible": True, "baseline_value": 10.0,
            "best_experiment": "x", "num_experiments": 2, "session_dir": "d", "cost_usd": 0.0,
            "cost_known": True, "llm_calls": 0, "input_tokens": 0, "output_tokens": 0}
    assert "1.5x better" in study_text({**base, "best_score": 15.0, "improvement": 1.5})
    assert "worse than the baseline" in study_text({**base, "best_score": 8.0, "improvement": 0.8})
    assert "no design met" in study_text({**base, "best_score": None, "improvement": None})


def test_parallel_study_splits_the_budget_between_contexts(tmp_path):
    task = get_task("routing-a10").replace(duration_s=60.0, num_eval_seeds=1)
    doc = run_study(task=task, budget_sims=6, parallel=2, out=tmp_path, workers=1)
    assert doc["mode"] == "MCG-Par2" and doc["sessions"] == 2
    assert doc["num_experiments"] <= 6  # the total, not 6 per context
    limits = [json.loads(line)["budget"]["max_simulations"]
              for line in _headers(tmp_path)]
    assert limits == [3, 3]


def _headers(root):
    for i in range(2):
        (path,) = (root / f"context{i}").rglob("journal.jsonl")
        with open(path) as fh:
            yield fh.readline()
