"""Every "best so far" of a session follows the task's direction: the report, the journal
replay and the research panel's plot pick the highest score on a maximised task."""
from __future__ import annotations

import json

from glia_nb.research.report import summarize_session
from glia_nb.research.fold import best_of, is_improvement


def _journal(path, direction):
    header = {"type": "header", "seq": 0, "version": "0.1.0", "kind": "glia-session",
              "task_name": "t", "task": {"objective": {"name": "throughput_qps",
                                                        "direction": direction}}}
    recs = [{"type": "experiment", "seq": i, "id": i, "name": f"e{i}", "score": s, "ok": True}
            for i, s in enumerate([3.0, 9.0, 5.0], start=1)]
    path.write_text("\n".join(json.dumps(r) for r in [header, *recs]) + "\n")
    return path


def test_report_best_follows_the_direction(tmp_path):
    up = summarize_session(_journal(tmp_path / "up.jsonl", "max"))
    down = summarize_session(_journal(tmp_path / "down.jsonl", "min"))
    assert up["best"]["name"] == "e2" and down["best"]["name"] == "e1"


def test_replay_best_and_improvement_follow_the_direction():
    exps = [{"id": 1, "score": 3.0}, {"id": 2, "score": 9.0}, {"id": 3, "score": None}]
    assert best_of(exps, lower_is_better=False)["id"] == 2
    assert best_of(exps, lower_is_better=True)["id"] == 1
    assert is_improvement(10.0, exps, lower_is_better=False)
    assert not is_improvement(4.0, exps, lower_is_better=False)
    assert is_improvement(1.0, [], lower_is_better=False) and not is_improvement(None, [], False)
