"""The transcript: append-only entries, causal order, who said what, failed steps."""
from __future__ import annotations

from glia_nb.widgets.transcript import Transcript, failed_result


def _turn(call_id="c1", name="run_experiment", text="I test head-room."):
    return {"type": "assistant", "text": text,
            "tool_calls": [{"id": call_id, "name": name, "arguments": {"name": "headroom", "hypothesis": "h"}}]}


def test_an_experiment_journaled_before_its_reasoning_is_shown_after_its_result():
    """The offline Researcher's experiment is journaled inside its tool call, before the
    assistant message; the transcript still reads message -> call -> result -> experiment."""
    tx = Transcript()
    for rec in ({"type": "experiment", "id": 1, "name": "headroom", "score": 12.5, "ok": True, "improved": True},
                {"type": "llm_call", "agent": "researcher"},
                _turn(),
                {"type": "tool_result", "call_id": "c1", "name": "run_experiment", "text": "Experiment 001 ok"}):
        tx.add(rec)
    kinds = [e["text"].split(":")[0] + ":" + e["text"].split(":")[1][:12] for e in tx.entries]
    assert [e["who"] for e in tx.entries] == ["Researcher", "Researcher", "Tool", "Study"], kinds
    assert "I test head-room." in tx.entries[0]["text"]
    assert "tool call: run_experiment(headroom)" in tx.entries[1]["text"]
    assert "result of run_experiment(headroom)" in tx.entries[2]["text"]
    assert "Experiment #1 headroom: score 12.5" in tx.entries[3]["text"]


def test_entries_only_grow_and_never_change():
    tx = Transcript()
    seen = []
    recs = [{"type": "user_message", "source": "task", "text": "the task"},
            {"type": "nudge", "text": "look at queues", "seq": 3},
            _turn("a"), {"type": "tool_result", "call_id": "a", "name": "run_experiment", "text": "ok"},
            {"type": "experiment", "id": 1, "name": "x", "score": 1.0},
            {"type": "supervisor_review", "kind": "question", "trigger": "stall", "text": "why?"},
            {"type": "finished", "status": "finished", "reason": "researcher_finished"}]
    for rec in recs:
        tx.add(rec)
        assert tx.entries[:len(seen)] == seen
        seen = [dict(e) for e in tx.entries]
    assert [e["id"] for e in tx.entries] == list(range(len(tx.entries)))


def test_people_and_the_supervisor_are_labelled_as_what_they_are():
    tx = Transcript()
    tx.add({"type": "nudge", "text": "look at who waits longest", "seq": 4})
    tx.add({"type": "user_message", "source": "person", "source_id": "nudge-4", "text": "[Person] look"})
    tx.add({"type": "supervisor_review", "kind": "question", "trigger": "stall", "text": "Why restarts?"})
    tx.add({"type": "intervention_queued", "id": "iv-9", "kind": "question", "text": "Why restarts?"})
    tx.add({"type": "intervention_edited", "id": "iv-9", "text": "Why restarts? Check memory."})
    text = tx.text().splitlines()
    assert text[0] == "Person: nudge: look at who waits longest"
    assert text[1] == "Study: your nudge (nudge-4) was delivered to the Researcher before turn 1"
    assert text[2].startswith("Supervisor: question (stall): Why restarts?")
    assert text[4] == "Person: edited intervention iv-9 and approved it: Why restarts? Check memory."


def test_a_failed_shell_step_is_marked_failed():
    tx = Transcript()
    tx.add(_turn("s1", "shell"))
    ok = {"type": "tool_result", "call_id": "s1", "name": "shell", "text": "done\n[exit code 0]"}
    bad = {"type": "tool_result", "call_id": "s1", "name": "shell", "text": "Traceback\n[exit code 2]"}
    err = {"type": "tool_result", "call_id": "s1", "name": "shell", "text": "no such tool", "is_error": True}
    assert failed_result(ok) is None and failed_result(bad) == "exit code 2" and failed_result(err) == "error"
    for rec in (ok, bad, err):
        tx.add(rec)
    results = [e for e in tx.entries if e["who"] == "Tool"]
    assert "&#10003;" in results[0]["html"] and "failed" not in results[0]["html"]
    assert "&#10007; failed (exit code 2)" in results[1]["html"] and "&#10003;" not in results[1]["html"]
    assert "&#10007; failed (error)" in results[2]["html"]


def test_text_is_escaped_and_long_output_clipped():
    tx = Transcript()
    tx.add({"type": "nudge", "text": "<script>alert(1)</script>"})
    tx.add(_turn("x", "shell"))
    tx.add({"type": "tool_result", "call_id": "x", "name": "shell", "text": "y" * 5000})
    assert "<script>" not in tx.html() and "&lt;script&gt;" in tx.html()
    assert "more characters in the journal" in tx.entries[-1]["html"]


def test_every_record_type_the_transcript_shows_has_a_renderer():
    """The list comes from glia_nb.research.records: a renamed record type must not silently
    fall out of the transcript."""
    from glia_nb.research import records as R
    from glia_nb.research.session.step import StepHold
    from glia_nb.widgets.transcript import SHOWN_TYPES

    assert SHOWN_TYPES <= set(R.RECORD_TYPES) | set(R.CONTROL_TYPES) | {StepHold.TYPE}
    assert all(callable(getattr(Transcript, f"_on_{t}", None)) for t in SHOWN_TYPES)
    assert {R.Nudge.TYPE, R.Experiment.TYPE, R.ToolResultRecord.TYPE, R.InterventionQueued.TYPE} <= SHOWN_TYPES
