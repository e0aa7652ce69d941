"""``glia doctor``, sandboxed ``glia simulate`` policy files, and the bad inputs it refuses."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from glia_nb.cli.main import main
from policy_sources import LLQ_SOURCE

def test_doctor_names_the_isolation_level(capsys):
    assert main(["doctor", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["isolation"] in ("bwrap", "process")
    assert d["isolation"] == ("bwrap" if d["bwrap_usable"] else "process")
    from glia_nb.evaluation.confine import seccomp_profile

    assert d["seccomp"] is (seccomp_profile("policy") is not None) and d["seccomp_detail"]
    assert d["recorded_isolation"] == d["isolation"] + ("+seccomp" if d["seccomp"] else "") + (
        "+landlock" if d["isolation"] == "process" and d["landlock_abi"] > 0 else "")


def test_simulate_sandboxes_a_policy_file_and_matches_the_builtin(tmp_path, capsys):
    path = tmp_path / "llq.py"
    path.write_text(LLQ_SOURCE)
    common = ["simulate", "--seeds", "1", "--duration", "30", "--json"]
    assert main([*common, "--router", "llq"]) == 0
    builtin = json.loads(capsys.readouterr().out)["mean_e2e_s"]
    assert main([*common, "--router", f"{path}:LLQ"]) == 0
    sandboxed = json.loads(capsys.readouterr().out)["mean_e2e_s"]
    assert main([*common, "--router", f"{path}:LLQ", "--trusted"]) == 0
    trusted = json.loads(capsys.readouterr().out)["mean_e2e_s"]
    assert sandboxed == builtin == trusted and math.isfinite(builtin)


@pytest.mark.parametrize("argv, needle", [
    (["--router", "hra:decode_growth=nan"], "decode_growth must be a finite number"),
    (["--router", "hra:decode_growth=inf"], "decode_growth must be a finite number"),
    (["--duration", "0"], "--duration must be > 0"),
    (["--users", "0"], "--users must be >= 1"),
    (["--trace", "t.csv", "--seeds", "2"], "--trace replays one trace"),
])
def test_bad_simulate_input_is_one_line(argv, needle, capsys):
    assert main(["simulate", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("glia: error:") and needle in err


def test_undecodable_policy_file_names_the_file(tmp_path, capsys):
    bad = tmp_path / "latin1.py"
    bad.write_bytes(b"# caf\xe9\nclass R:\n    pass\n")
    assert main(["simulate", "--router", f"{bad}:R", "--seeds", "1", "--duration", "5"]) == 2
    assert str(bad) in capsys.readouterr().err


def test_json_never_prints_nan(capsys):
    assert main(["simulate", "--seeds", "1", "--duration", "0.001", "--json"]) == 0
    out = capsys.readouterr().out
    assert "NaN" not in out and json.loads(out)["seeds"][0]["mean_e2e_s"] is None


@pytest.mark.parametrize("bad", [(0.7, 0), (True, 0), (0, 1.0), ("0", 0)])
def test_non_integer_decisions_are_rejected_not_truncated(bad):
    from sim_core.config import ClusterConfig
    from sim_core.facade import RoutingError, simulate
    from types import SimpleNamespace

    class Bad:
        def reset(self, info, rng):
            pass

        def route(self, view):
            return [bad] if len(view.queue) else []

    trace = SimpleNamespace(arrived_at=np.zeros(1), prompt_tokens=np.ones(1, np.int64),
                            decode_tokens=np.ones(1, np.int64))
    with pytest.raises(RoutingError, match="pair of int"):
        simulate(ClusterConfig(num_replicas=2), trace, Bad())


@pytest.mark.parametrize("argv, needle", [(["--eval-seeds", "0"], "--eval-seeds must be >= 1"),
                                          (["--duration", "0"], "--duration must be > 0")])
def test_compare_refuses_zero_seeds_and_duration(argv, needle, capsys):
    assert main(["compare", "routing-a10", *argv]) == 2
    assert needle in capsys.readouterr().err


def test_study_and_its_resume_confirm_the_best_design_on_unseen_seeds(tmp_path, capsys):
    """``glia study`` ends by scoring its best design and the baseline on seeds drawn then;
    ``glia study --resume`` does it again, on seeds of its own; ``--unseen-seeds 0`` skips it."""
    from glia_nb.tasks import get_task

    assert main(["study", "routing-a10", "--budget-sims", "3", "--duration", "300",
                 "--unseen-seeds", "3", "--out", str(tmp_path / "study"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    used = set(get_task("routing-a10").seeds)
    assert doc["best_experiment"] != "baseline" and doc["unseen_error"] is None
    assert len(doc["unseen_seeds"]) == 3 and not set(doc["unseen_seeds"]) & used
    assert doc["unseen_improvement"] == doc["unseen_baseline_score"] / doc["unseen_best_score"]
    session = doc["session_dir"]
    assert (tmp_path / "study" / "context0" / (session.rsplit("/", 1)[1] + "-unseen_seeds")
            / "best" / "metrics.json").is_file()  # beside the workspace, not in it
    assert main(["study", "--resume", session, "--unseen-seeds", "2", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["best_experiment"] == doc["best_experiment"]
    assert len(again["unseen_seeds"]) == 2 and not set(again["unseen_seeds"]) & used
    assert not set(again["unseen_seeds"]) & set(doc["unseen_seeds"])  # drawn anew, stored nowhere
    assert main(["study", "--resume", session, "--unseen-seeds", "1"]) == 0
    assert "on 1 unseen seed: baseline " in capsys.readouterr().out
    assert main(["study", "--resume", session, "--unseen-seeds", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["unseen_seeds"] is None
    assert main(["study", "--resume", session, "--unseen-seeds", "-1"]) == 2
    assert "--unseen-seeds must be >= 0" in capsys.readouterr().err
