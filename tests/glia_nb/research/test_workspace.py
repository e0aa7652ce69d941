"""Workspace layout, experiments and ledger round trip, resume, path confinement."""
from __future__ import annotations

import json
import os
import stat

import pytest

from glia_nb.evaluation.harness import EvalResult
from glia_nb.tasks import get_task
from glia_nb.research.workspace import (LEDGER_COLUMNS, PathEscapeError, Workspace, WorkspaceError,
                               slugify)


@pytest.fixture
def task():
    return get_task("routing-a10").replace(duration_s=60, eval_seeds=(0, 1, 2))


@pytest.fixture
def ws(tmp_path, task):
    return Workspace.create(tmp_path / "runs", task, "s1")


def _result(score, *, ok=True, kind=None, sims=3, restart=0.1):
    per_seed = [{"seed": s, "mean_e2e_s": score + d, "restart_fraction": restart,
                 "p90_ttft_s": 2.0} for s, d in ((0, -1.0), (1, 0.0), (2, 1.0))]
    summary = {"mean_e2e_s": score, "restart_fraction": restart, "p90_ttft_s": 2.0,
               "mean_e2e_ci90_s": [score - 1, score + 1]} if ok else {}
    return EvalResult(ok=ok, score=score if ok else None, summary=summary,
                      per_seed=per_seed if ok else [], error_kind=kind,
                      error=None if ok else "it broke\nsecond line", wall_s=1.25,
                      policy="policy.py:CustomRouter", seeds=(0, 1, 2), simulations=sims)


def test_layout(ws, task):
    p = ws.path
    assert p.name == "s1" and p.parent.name == "runs"
    for name in ("TASK.md", "policy.py", "run_benchmark.sh", "ledger.csv", "workspace.json"):
        assert (p / name).is_file(), name
    assert (p / "experiments").is_dir()
    assert (p / "policy.py").read_text() == task.render_policy_template()
    assert "run_experiment" in (p / "TASK.md").read_text()
    script = (p / "run_benchmark.sh").read_text()
    assert "--router policy.py:CustomRouter" in script and "--duration 60" in script
    assert os.stat(p / "run_benchmark.sh").st_mode & stat.S_IXUSR
    assert (p / "ledger.csv").read_text().strip() == ",".join(LEDGER_COLUMNS)
    assert ws.ledger_rows() == [] and ws.ledger().empty
    assert ws.ledger_text() == "(no experiments yet)"


def test_create_twice_and_bad_ids(tmp_path, task, ws):
    with pytest.raises(WorkspaceError, match="already"):
        Workspace.create(tmp_path / "runs", task, "s1")
    again = Workspace.create(tmp_path / "runs", task, "s1", exist_ok=True)
    assert again.path == ws.path
    for bad in ("../up", "a/b", "", ".hidden"):
        with pytest.raises(ValueError):
            Workspace.create(tmp_path, task, bad)
    with pytest.raises(WorkspaceError, match="not a workspace"):
        Workspace.open(tmp_path)


def test_experiments_and_ledger_round_trip(ws):
    ws.set_baseline(30.0, {"restart_fraction": 0.2})
    assert "30.00" in (ws.path / "TASK.md").read_text()
    eid, folder = ws.new_experiment("HRA: head-room r=0.6!")
    assert eid == 1 and folder.name == "001_hra-head-room-r-0-6"
    assert (folder / "policy.py").read_text() == ws.policy_path.read_text()
    row = ws.record_experiment(eid, "hra", "hold requests\n when memory is tight", _result(24.0),
                               folder)
    assert row["vs_baseline"] == pytest.approx(0.2) and row["hypothesis"] == \
        "hold requests when memory is tight"
    meta = json.loads((folder / "metrics.json").read_text())
    assert meta["experiment"]["id"] == 1 and meta["score"] == 24.0
    assert (folder / "seeds.csv").read_text().splitlines()[0].startswith("seed,")

    eid2, folder2 = ws.new_experiment("broken")
    ws.record_experiment(eid2, "broken", "typo", _result(0, ok=False, kind="import", sims=0),
                         folder2)
    rows = ws.ledger_rows()
    assert [r["id"] for r in rows] == [1, 2]
    assert rows[0]["score"] == 24.0 and rows[0]["status"] == "ok"
    assert rows[0]["ci_low"] == 23.0 and rows[0]["seeds"] == 3
    assert rows[1]["status"] == "error" and rows[1]["error_kind"] == "import"
    assert rows[1]["score"] is None and rows[1]["error"] == "it broke"
    df = ws.ledger()
    assert list(df.columns) == list(LEDGER_COLUMNS) and len(df) == 2
    assert df.loc[0, "mean_e2e_s"] == 24.0
    text = ws.ledger_text()
    assert "001*" in text and "+20.0%" in text and "[import] it broke" in text
    assert "baseline llq: 30.00" in text
    assert ws.best()["id"] == 1
    assert ws.simulations_used() == 2  # one per experiment, the failed one too


def test_resume(tmp_path, ws, task):
    ws.set_baseline(30.0)
    eid, folder = ws.new_experiment("a")
    ws.record_experiment(eid, "a", "h", _result(25.0), folder)
    ws.new_experiment("crashed-before-recording")  # a folder without a ledger row
    again = Workspace.open(ws.path)
    assert again.task == task and again.session_id == "s1"
    assert again.baseline_score == 30.0
    assert again.ledger_rows() == ws.ledger_rows()
    assert again.next_experiment_id() == 3


def test_baseline_is_free_and_experiment_zero(ws):
    eid, folder = ws.new_experiment("baseline-llq", exp_id=0, snapshot=False)
    assert folder.name == "000_baseline-llq" and not (folder / "policy.py").exists()
    ws.record_experiment(eid, "baseline-llq", "baseline", _result(30.0), folder)
    assert ws.simulations_used() == 0 and ws.simulations_used(include_baseline=True) == 1
    assert ws.next_experiment_id() == 1


def test_paths_are_confined(tmp_path, ws):
    assert ws.resolve("policy.py") == ws.path / "policy.py"
    assert ws.resolve("sub/new.txt") == ws.path / "sub" / "new.txt"
    assert ws.resolve(".") == ws.path
    assert ws.resolve(ws.path / "TASK.md") == ws.path / "TASK.md"
    for bad in ("../outside.txt", "/etc/passwd", "sub/../../x", str(tmp_path), "a\x00b"):
        with pytest.raises(PathEscapeError):
            ws.resolve(bad)
    with pytest.raises(FileNotFoundError):
        ws.resolve("missing.txt", must_exist=True)
    # A symlink inside the workspace that points outside is rejected, with or without
    # a path below it; one pointing inside is fine.
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "key.txt").write_text("x")
    (ws.path / "escape").symlink_to(outside)
    (ws.path / "escape_file").symlink_to(outside / "key.txt")
    for bad in ("escape", "escape/key.txt", "escape_file"):
        with pytest.raises(PathEscapeError):
            ws.resolve(bad)
    (ws.path / "inner").symlink_to(ws.path / "experiments")
    assert ws.resolve("inner") == ws.path / "experiments"


def test_slugify():
    assert slugify("HRA: tuned r=0.6!") == "hra-tuned-r-0-6"
    assert slugify("!!!") == "experiment"
    assert len(slugify("x" * 100)) == 40
