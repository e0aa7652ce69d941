"""``glia report`` and the journal schema: typed records, the one fold, old journals."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from session_fakes import FakeToolBox, PricedClient, exp, finish

from glia_nb.cli.main import main
from glia_nb.research import records as R
from glia_nb.research.fold import fold_records
from glia_nb.research.journal import Journal, read_journal
from glia_nb.research.report import summarize_session
from glia_nb.research.session.session import Session

OLD = Path(__file__).parent / "data" / "journal_schema1.jsonl"  # written by glia-nb before schema 2
TASK = "Design a better router for the test cluster. Lower mean latency is better."


def _study(path: Path, scores=(30.0, 25.0, 20.0), tokens=((100, 20), (50, 10)), direction="min") -> Path:
    """A journal written through the typed records: a baseline, two experiments, two model calls."""
    task = {"name": "t", "objective": {"direction": direction}}
    with Journal.create(path / "journal.jsonl", {"task_name": "t", "task": task, "approval": "auto"}) as j:
        j.write(R.Baseline(score=scores[0], simulations=3))
        for i, (tin, tout) in enumerate(tokens, 1):
            j.write(R.LlmCall(agent="researcher", usage={"input_tokens": tin, "output_tokens": tout}, cost_usd=0.5))
            j.write(R.Experiment(id=i, name=f"idea-{i}", score=scores[i], seeds=3))
        j.write(R.Finished(status="finished", reason="researcher_finished"))
    return path


def test_report_counts_tokens_nested_under_usage_and_the_gain_over_the_baseline(tmp_path):
    doc = summarize_session(_study(tmp_path))
    assert (doc["input_tokens"], doc["output_tokens"]) == (150, 30)
    assert "tokens 150 in / 30 out" in doc["text"]
    assert doc["baseline_score"] == 30.0 and doc["best"]["name"] == "idea-2"
    assert doc["improvement"] == pytest.approx(1.5)
    assert "(1.5x better than the baseline)" in doc["text"]
    assert doc["ended"] == "researcher_finished" and "ended: researcher_finished" in doc["text"]
    assert doc["schema"] == R.SCHEMA_VERSION and doc["cost_usd"] == pytest.approx(1.0)


def test_report_follows_a_maximised_objective(tmp_path):
    doc = summarize_session(_study(tmp_path, scores=(2.0, 3.0, 2.5), direction="max"))
    assert doc["best"]["name"] == "idea-1" and doc["improvement"] == pytest.approx(1.5)


def test_every_record_round_trips_through_its_type(tmp_path):
    path = _study(tmp_path)
    header, recs = read_journal(path / "journal.jsonl")
    assert header["schema"] == R.SCHEMA_VERSION
    for rec in recs:
        typed = R.parse(rec)
        assert R.record_type(typed) == rec["type"]
        assert {k: v for k, v in rec.items() if k not in ("seq", "ts", "type")} == json.loads(
            json.dumps(typed.to_dict()))
    assert R.parse({"type": "from_the_future", "x": 1}) is None  # a newer writer's type is skipped


def test_an_old_journal_reads_reports_and_resumes(tmp_path):
    header, recs = read_journal(OLD)
    assert "schema" not in header
    state = fold_records(recs, header)
    # Three experiments of three seeds each: one simulation per experiment (the budget's unit).
    assert (state.simulations, state.turns, state.llm_calls) == (3, 3, 4)
    assert state.input_tokens == 120 + 150 + 180 + 40 and state.best["score"] == 35.0
    doc = summarize_session(OLD)
    assert doc["schema"] == 1 and "tokens 490 in" in doc["text"] and doc["ended"] == "budget:turns"

    ws = tmp_path / "old"
    ws.mkdir()
    shutil.copy(OLD, ws / "journal.jsonl")
    s = Session.resume(ws, researcher_client=PricedClient([exp(4), finish("done")]), budget={"max_turns": 10},
                       toolbox=FakeToolBox([20.0]), supervisor_config=None)
    assert s.budget_used["simulations"] == 3 and [e["id"] for e in s.experiments] == [1, 2, 3]
    assert s.best["score"] == 35.0
    s.run()
    assert s.end_reason == "researcher_finished" and s.best["score"] == 20.0
    # The question the Supervisor asked before the old process ended reached the Researcher.
    assert any(m.content.startswith("[Supervisor] Why do restarts persist?") for m in s.messages)


def test_legacy_record_shapes_are_read(tmp_path):
    # Flat token counts, the header's baseline score and a session_end record: shapes the
    # old report looked for; the tolerant reader takes them too.
    lines = [{"type": "header", "seq": 0, "baseline_score": 40.0, "task_name": "t"},
             {"seq": 1, "type": "llm_call", "agent": "researcher", "input_tokens": 7, "output_tokens": 3},
             {"seq": 2, "type": "experiment", "id": 1, "name": "a", "score": 20.0, "simulations": 1},
             {"seq": 3, "type": "session_end", "status": "stopped", "reason": "stop requested"}]
    (tmp_path / "journal.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    doc = summarize_session(tmp_path)
    assert (doc["input_tokens"], doc["output_tokens"]) == (7, 3)
    assert doc["improvement"] == pytest.approx(2.0) and doc["ended"] == "stop requested"


def test_live_state_is_the_fold_of_the_journal(tmp_path):
    s = Session.create(TASK, tmp_path / "ws", PricedClient([exp(1), exp(2), finish()], cost=0.1),
                       toolbox=FakeToolBox([40.0, 30.0]), supervisor_config=None)
    s.run()
    header, recs = read_journal(s.journal.path)
    replayed = fold_records(recs, header)
    live = s.state
    assert replayed.messages == live.messages and replayed.experiments == live.experiments
    assert (replayed.usd, replayed.turns, replayed.simulations) == (live.usd, live.turns, live.simulations)
    assert s.best == replayed.best and s.best["score"] == 30.0
    s.journal.close()
    (s.path / "journal.jsonl").rename(s.path / "moved.jsonl")
    assert s.best["score"] == 30.0  # from memory: no file is read on access


def test_report_on_a_study_folder_reports_every_session(tmp_path, capsys):
    _study(tmp_path / "study" / "context0")
    _study(tmp_path / "study" / "context1", scores=(30.0, 28.0, 29.0))
    doc = summarize_session(tmp_path / "study")
    assert [Path(d["path"]).name for d in doc["sessions"]] == ["context0", "context1"]
    assert main(["report", str(tmp_path / "study")]) == 0
    out = capsys.readouterr().out
    assert "2 sessions" in out and "context0" in out and "context1" in out
    assert main(["report", str(tmp_path / "study"), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["sessions"]) == 2
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "or in any folder below it" in err
