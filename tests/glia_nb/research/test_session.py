"""Single-Context Glia sessions: the loop, the Supervisor's interventions, the person's
controls, budgets, the background thread, and resuming from the journal (also after
kill -9)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest
from session_fakes import (
    FakeToolBox,
    Gate,
    PricedClient,
    decision,
    exp,
    finish,
    journal_records,
    wait_for,
)

from glia_nb.tasks.budget import Budget
from glia_nb.research.journal import read_journal
from glia_nb.llm import Message, RetryPolicy, ScriptedClient, ToolCall
from glia_nb.research.session.session import RESEARCHERS, Session
from glia_nb.research.supervisor import SupervisorConfig

TASK = "Design a better router for the test cluster. Lower mean latency is better."
NO_SUPERVISOR = {"supervisor_config": None}


def make(tmp_path, replies, scores=(), *, supervisor=None, toolbox=None, **kw) -> Session:
    """A session on a plain-text task with a scripted researcher and a fake toolbox."""
    client = replies if hasattr(replies, "complete") else PricedClient(replies)
    if supervisor is not None:
        kw["supervisor_client"] = supervisor if hasattr(supervisor, "complete") else ScriptedClient(supervisor)
    return Session.create(TASK, tmp_path / "ws", client, toolbox=toolbox or FakeToolBox(scores), **kw)


def types(session: Session) -> list[str]:
    return [r["type"] for r in read_journal(session.journal.path)[1]]


def records(session: Session, kind: str) -> list[dict]:
    return [r for r in read_journal(session.journal.path)[1] if r["type"] == kind]


def valid_conversation(messages: list[Message]) -> bool:
    """Every tool call is answered by the tool messages right after its assistant turn."""
    for i, m in enumerate(messages):
        if m.role == "assistant" and m.tool_calls:
            following = []
            for n in messages[i + 1:]:
                if n.role != "tool":
                    break
                following.append(n.tool_call_id)
            if sorted(following) != sorted(tc.id for tc in m.tool_calls):
                return False
    return True


# ---------------------------------------------------------------------- the loop + Supervisor
def test_supervisor_intervenes_on_a_stall_and_the_researcher_hears_it(tmp_path):
    shell = Message.assistant("Let me look at the telemetry.",
                              [ToolCall.from_arguments("sh", "shell", {"command": "python SECRET_CODE.py"})])
    researcher = PricedClient([exp(1), exp(2), shell, exp(3), exp(4), exp(5), finish("use exp 5")])
    sup = ScriptedClient([decision("question", "Why do restarts persist? Is memory the bottleneck?"),
                          decision("proceed")])
    s = make(tmp_path, researcher, [40, 41, 42, 43, 30], supervisor=sup,
             supervisor_config=SupervisorConfig(stall_experiments=3, trigger_on_idle=False))
    s.run()

    assert s.status == "finished" and s.end_reason == "researcher_finished"
    # exp 1 set the best; 2, 3, 4 did not improve -> review after the 4th experiment.
    review = records(s, "supervisor_review")[0]
    assert (review["trigger"], review["kind"], review["experiments"]) == ("stall", "question", 4)
    (iv,) = [r for r in records(s, "intervention_approved")]
    assert iv["auto"] and iv["kind"] == "question"
    # Delivered as a user message right before the Researcher's next turn.
    next_call = researcher.calls[5][0]
    assert next_call[-1] == Message.user("[Supervisor] Why do restarts persist? Is memory the bottleneck?",
                                         name="supervisor")
    # The Supervisor saw the task, the Researcher's words and the ledger; no code, no tool output.
    prompt = sup.calls[0][0][1].content
    assert TASK in prompt and "Idea 3: testing it." in prompt and "Let me look at the telemetry." in prompt
    assert "idea-4" in prompt and "43" in prompt  # ledger rows
    assert "SECRET_CODE" not in prompt and "SHELL-OUTPUT" not in prompt and "Experiment 001:" not in prompt
    assert sup.calls[0][1] == []  # no tools
    # One simulation per experiment (each over 3 seeds): five experiments, five simulations.
    assert s.best["score"] == 30 and s.budget_used["simulations"] == 5
    assert records(s, "finished")[0]["summary"] == "use exp 5"


def test_finish_with_a_supervisor_question_lets_the_researcher_continue(tmp_path):
    researcher = PricedClient([exp(1), finish("done early"), exp(2), finish("done for real")])
    sup = ScriptedClient([decision("question", "You are close; did you combine SPF with head-room?"),
                          decision("proceed")])
    s = make(tmp_path, researcher, [40, 25], supervisor=sup)
    s.run()
    assert len(researcher.calls) == 4
    assert [(r["trigger"], r["kind"]) for r in records(s, "supervisor_review")] == [
        ("finish", "question"), ("finish", "proceed")]
    assert researcher.calls[2][0][-1].content.startswith("[Supervisor] You are close")
    assert s.status == "finished" and records(s, "finished")[0]["summary"] == "done for real"


def test_supervisor_stop_on_finish_ends_and_unparseable_reply_means_proceed(tmp_path):
    sup = ScriptedClient([
        "I have no strong opinion here.",  # idle review: unparseable, asked once more ...
        "Still none.",  # ... and unparseable again -> proceed, both replies kept
        decision("stop")])
    s = make(tmp_path, [exp(1), "Not sure what to do next.", finish()], supervisor=sup)
    s.run()
    idle, fin = records(s, "supervisor_review")
    assert (idle["trigger"], idle["kind"], idle["parsed"]) == ("idle", "proceed", False)
    assert idle["raw"] == "I have no strong opinion here.\n---\nStill none."
    reask = sup.calls[1][0]
    assert reask[-2].content == "I have no strong opinion here." and "DECISION" in reask[-1].content
    assert [r["agent"] for r in records(s, "llm_call")].count("supervisor") == 3
    assert (fin["trigger"], fin["kind"]) == ("finish", "stop") and s.status == "finished"
    # After a text-only turn with nothing else to say, the loop prompts the model to go on.
    assert [r["source"] for r in records(s, "user_message")] == ["task", "loop"]


def test_without_a_supervisor_finish_ends_the_session(tmp_path):
    s = make(tmp_path, [exp(1), finish()], [40], **NO_SUPERVISOR)
    s.run()
    assert s.supervisor is None and s.status == "finished" and "supervisor_review" not in types(s)


def test_journal_records_every_event_with_its_fields(tmp_path):
    bad = Message.assistant("oops", [ToolCall.from_raw("b1", "run_experiment", "{not json")])
    s = make(tmp_path, PricedClient([bad, exp(1), finish()], cost=0.01), [42], seed=7, **NO_SUPERVISOR)
    s.run()
    header, recs = read_journal(s.journal.path)
    assert header["seed"] == 7 and header["researcher_model"] == "scripted" and header["task_text"] == TASK
    assert header["budget"] and header["version"] and header["numpy"]
    assert [r["seq"] for r in recs] == list(range(1, len(recs) + 1))
    call = recs[[r["type"] for r in recs].index("llm_call")]
    assert call["agent"] == "researcher" and call["cost_usd"] == 0.01 and call["usage"]["input_tokens"] > 0
    assert call["stop_reason"] == "tool_use" and call["model"] == "scripted"
    results = records(s, "tool_result")
    assert results[0]["is_error"] and "not valid JSON" in results[0]["text"]
    assert records(s, "assistant")[0]["tool_calls"][0]["parse_error"]
    (e,) = records(s, "experiment")
    assert (e["id"], e["name"], e["score"], e["simulations"], e["improved"]) == (1, "idea-1", 42, 1, True)
    assert e["seeds"] == 3
    assert e["metrics"] == {"mean_e2e_s": 42}
    end = records(s, "finished")[0]
    assert end["best_score"] == 42 and end["budget_used"]["usd"] == pytest.approx(0.03)


# ---------------------------------------------------------------------- the person
def test_manual_approval_queue_approve_edit_reject(tmp_path):
    researcher = PricedClient([exp(1), "Hmm, stuck.", "Still thinking.", finish("final")])
    sup = ScriptedClient([decision("question", "Q1?"), decision("recall", "R2"), decision("question", "Q3?")])
    s = make(tmp_path, researcher, [40], supervisor=sup, approval="manual")
    s.start()
    try:
        assert wait_for(lambda: s.status == "waiting_approval")
        (iv1,) = s.pending_interventions()
        assert (iv1.kind, iv1.text, iv1.trigger) == ("question", "Q1?", "idle")
        time.sleep(0.05)
        assert len(researcher.calls) == 2  # held until the person decides
        with pytest.raises(KeyError):
            s.approve("iv-nope")
        s.edit(iv1.id, "Edited: where does the time go?")
        assert wait_for(lambda: len(s.pending_interventions()) == 1 and s.pending_interventions()[0].id != iv1.id)
        (iv2,) = s.pending_interventions()
        assert researcher.calls[2][0][-1].content == "[Supervisor] Edited: where does the time go?"
        s.approve(iv2.id)
        assert wait_for(lambda: len(s.pending_interventions()) == 1 and s.pending_interventions()[0].id != iv2.id)
        (iv3,) = s.pending_interventions()
        assert iv3.trigger == "finish" and researcher.calls[3][0][-1].content == "[Supervisor] R2"
        s.reject(iv3.id)  # the finish stands
        assert s.wait(5)
    finally:
        s.stop()
    assert s.status == "finished" and len(researcher.calls) == 4
    kinds = [t for t in types(s) if t.startswith("intervention")]
    assert kinds == ["intervention_queued", "intervention_edited", "intervention_queued", "intervention_approved",
                     "intervention_queued", "intervention_rejected"]
    assert records(s, "intervention_edited")[0]["original"] == "Q1?"


def test_switching_to_auto_approval_releases_the_queue(tmp_path):
    s = make(tmp_path, [exp(1), "stuck", finish()], [40], supervisor=[decision("redirect", "Mind the objective."),
                                                                       decision("proceed")], approval="manual")
    s.start()
    assert wait_for(lambda: s.status == "waiting_approval")
    s.set_approval_policy("auto")
    assert s.wait(5) and s.status == "finished"
    assert records(s, "intervention_approved")[0]["id"] == records(s, "intervention_queued")[0]["id"]


def test_pause_nudge_resume(tmp_path):
    gate = Gate(exp(1))
    researcher = PricedClient([gate, exp(2), finish()])
    s = make(tmp_path, researcher, [40, 35], **NO_SUPERVISOR)
    s.start()
    try:
        assert gate.entered.wait(5)
        s.pause()
        s.nudge("Look at the restart fraction before tuning anything.")
        assert s.status == "paused"
        gate.release.set()
        time.sleep(0.1)
        assert len(researcher.calls) == 1 and s.status == "paused"  # held before the next turn
        s.resume()
        assert s.wait(5) and s.status == "finished"
    finally:
        gate.release.set()
        s.stop()
    assert researcher.calls[1][0][-1] == Message.user(
        "[Person] Look at the restart fraction before tuning anything.", name="person")
    seq = types(s)
    assert seq.index("pause") < seq.index("nudge") < seq.index("resume")
    delivered = [r for r in records(s, "user_message") if r["source"] == "person"]
    assert delivered[0]["source_id"] == f"nudge-{records(s, 'nudge')[0]['seq']}"


def test_subscribers_get_every_record_and_a_failing_one_does_no_harm(tmp_path):
    s = make(tmp_path, [exp(1), finish()], [40], **NO_SUPERVISOR)
    seen: list[dict] = []
    s.subscribe(seen.append)
    s.subscribe(lambda e: 1 / 0)
    off = s.subscribe(seen.append)
    off()
    s.run()
    journaled = [e for e in seen if "seq" in e]
    assert [e["seq"] for e in journaled] == [r["seq"] for r in read_journal(s.journal.path)[1]]
    assert [e["status"] for e in seen if e["type"] == "status"] == ["running", "finished"]


def test_subscribe_with_replay_delivers_each_record_once_in_order(tmp_path):
    # Joining mid-run: the records so far arrive on this thread, then the live ones.
    gate = Gate(exp(1))
    s = make(tmp_path, PricedClient([gate, exp(2), finish()]), [40, 35], **NO_SUPERVISOR)
    s.start()
    try:
        assert gate.entered.wait(5)
        seen: list[dict] = []
        off = s.subscribe(seen.append, replay=True)
        so_far = [e["seq"] for e in seen]
        assert so_far and so_far == [r["seq"] for r in read_journal(s.journal.path)[1]][:len(so_far)]
        gate.release.set()
        assert s.wait(5) and s.status == "finished"
    finally:
        gate.release.set()
        s.stop()
    journal = [r["seq"] for r in read_journal(s.journal.path)[1]]
    assert [e["seq"] for e in seen if "seq" in e] == journal
    assert [e["status"] for e in seen if e["type"] == "status"][-1] == "finished"
    off()
    late: list[dict] = []
    s.subscribe(late.append, replay=True)  # an ended session: the whole journal, once
    assert [e["seq"] for e in late] == journal


def test_replay_gate_holds_live_events_and_drops_second_copies():
    # A record written between registering and reading the journal arrives both live and in
    # the replay; events without a seq (status changes) always pass.
    from glia_nb.research.session.session import _ReplayGate

    got: list[dict] = []
    gate = _ReplayGate(got.append)
    gate({"seq": 3, "type": "b"})
    gate({"type": "status", "status": "running"})
    assert got == []                                   # held until the replay is delivered
    gate.open([{"seq": 1, "type": "a"}, {"seq": 2, "type": "a"}, {"seq": 3, "type": "b"}])
    gate({"seq": 3, "type": "b"})
    gate({"seq": 4, "type": "c"})
    assert [e.get("seq") for e in got] == [1, 2, 3, None, 4]


# ---------------------------------------------------------------------- stopping conditions
@pytest.mark.parametrize(
    "budget, client_kw, toolbox_kw, reason, calls",
    [
        (Budget(max_simulations=2), {}, {}, "simulations", 2),
        (Budget(max_usd=1.0), {"cost": 0.4}, {}, "dollars", 3),
        (Budget(max_turns=4), {}, {}, "turns", 4),
        (Budget(max_wall_s=0.25), {}, {"delay_s": 0.1}, "wall_time", None),
    ],
)
def test_budgets_stop_the_session(tmp_path, budget, client_kw, toolbox_kw, reason, calls):
    client = PricedClient([exp(i) for i in range(1, 40)], **client_kw)
    s = make(tmp_path, client, toolbox=FakeToolBox(**toolbox_kw), budget=budget, **NO_SUPERVISOR)
    s.run()
    assert s.status == "finished" and s.end_reason == f"budget:{reason}"
    (rec,) = records(s, "budget_exhausted")
    assert rec["reason"] == reason
    if calls is not None:
        assert len(client.calls) == calls
    else:
        assert 2 <= len(client.calls) <= 5 and s.budget_used["wall_s"] >= 0.25


def test_no_experiment_starts_once_the_simulation_budget_is_spent(tmp_path):
    three = Message.assistant("Three at once.", [
        ToolCall.from_arguments(f"c{i}", "run_experiment", {"name": f"x{i}", "hypothesis": "h"}) for i in range(3)])
    toolbox = FakeToolBox([40, 41, 42])
    s = make(tmp_path, [three], toolbox=toolbox, budget=Budget(max_simulations=1), **NO_SUPERVISOR)
    s.run()
    assert toolbox.experiments == 1 and s.budget_used["simulations"] == 1
    refused = records(s, "tool_result")[1:]
    assert all(r["is_error"] and "simulation budget is spent" in r["text"] for r in refused)


def test_a_history_beyond_a_small_window_is_compacted_into_a_journaled_digest(tmp_path):
    # An 8k window: the prompt passes the compaction point after the third turn.
    client = PricedClient([exp(i) for i in range(1, 7)] + [finish("done")],
                          input_tokens=[1500, 4000, 7000, 1200, 2500, 3000, 3500], context_window=8192)
    s = make(tmp_path, client, [40, 35, 30, 28, 27, 26], **NO_SUPERVISOR)
    assert s.context_limit_tokens == 8192 and s.sizing.compact
    s.run()
    assert s.status == "finished" and s.end_reason == "researcher_finished"
    assert len(client.calls) == 7  # went on past the window instead of stopping
    (digest,) = records(s, "context_limit")
    assert digest["prompt_tokens"] == 7000 and digest["limit"] == 8192 and digest["number"] == 1
    digest["text"] = digest["digest"]
    assert "Research digest 1" in digest["text"] and "## Experiment ledger" in digest["text"]
    # The fourth call starts from the digest alone, not from the old turns.
    fourth = client.calls[3][0]
    assert fourth[1].content == digest["text"] and len(fourth) == 2  # system prompt + digest
    assert "| 3 |" in digest["text"]  # the ledger holds the three experiments run so far
    # A resumed session rebuilds the same conversation: the digest, then what came after it.
    s.journal.close()  # one process per session: the lock goes with the journal
    resumed = Session.resume(s.path, PricedClient([finish("again")]), toolbox=FakeToolBox([25]))
    assert resumed.messages[0].content == digest["text"] and resumed.messages[0].name == "digest"
    assert [m.to_dict() for m in resumed.messages] == [m.to_dict() for m in s.messages]
    assert len(s.messages) < 2 * 7  # the seven turns' messages minus the folded ones


def test_a_prompt_that_cannot_fit_even_compacted_fails_with_a_reason(tmp_path):
    from glia_nb.llm.retry import LLMError

    def overflow(messages, tools):
        raise LLMError("scripted: the prompt (about 9000 tokens) leaves no room for a reply in the model's "
                       "600-token context window", kind="context_overflow", context_tokens=600)

    s = Session.create(TASK, tmp_path / "ws2", PricedClient([overflow, overflow]), toolbox=FakeToolBox(),
                       supervisor_config=None)
    s.run()
    assert s.status == "failed" and "600-token context window" in s.end_reason
    assert records(s, "finished")[0]["reason"] == s.end_reason


def test_background_thread_never_blocks_the_caller_and_stop_works(tmp_path):
    gate = Gate(exp(1))
    s = make(tmp_path, PricedClient([gate, exp(2)]), [40], **NO_SUPERVISOR)
    t0 = time.perf_counter()
    s.start()
    assert time.perf_counter() - t0 < 0.5
    assert gate.entered.wait(5) and s.status == "running"
    with pytest.raises(RuntimeError):
        s.start()
    t0 = time.perf_counter()
    s.stop()  # the model call is still in flight: stop() must not wait for it
    assert time.perf_counter() - t0 < 0.2
    assert not s.wait(0.05)
    gate.release.set()
    assert s.wait(5) and s.status == "stopped" and s.end_reason == "stop requested"
    assert types(s)[-1] == "finished" and records(s, "finished")[0]["status"] == "stopped"


def test_researcher_llm_failure_fails_the_session_and_is_journaled(tmp_path):
    s = make(tmp_path, ScriptedClient([exp(1)]), [40], **NO_SUPERVISOR)  # the script runs out
    s.run()
    assert s.status == "failed" and "no reply left" in s.end_reason and "\n" not in s.end_reason
    assert "no reply left" in records(s, "error")[0]["error"]


# ---------------------------------------------------------------------- pluggable researcher
def test_a_rule_based_researcher_plugs_in_through_the_registry(tmp_path, monkeypatch):
    monkeypatch.setitem(RESEARCHERS, "rules", "session_fakes:make_rule_researcher")
    s = Session.create(TASK, tmp_path / "ws", "rules", toolbox=FakeToolBox([40, 35]))
    assert s.supervisor is None  # no model to run one on
    s.run()
    assert s.status == "finished" and s.budget_used["usd"] == 0 and s.budget_used["simulations"] == 2
    calls = records(s, "llm_call")
    assert len(calls) == 3 and {c["provider"] for c in calls} == {"offline"} and calls[0]["model"] == "rule-based"
    assert [r["name"] for r in records(s, "tool_result")] == ["run_experiment", "run_experiment", "finish"]
    assert valid_conversation(s.messages)
    header = read_journal(s.journal.path)[0]
    assert header["researcher"] == {"kind": "registered", "name": "rules", "model": "rule-based"}

    monkeypatch.delitem(RESEARCHERS, "offline", raising=False)
    with pytest.raises(LookupError, match="RESEARCHERS"):
        Session.create(TASK, tmp_path / "ws2", "offline", toolbox=FakeToolBox())


# ---------------------------------------------------------------------- resume
def test_resume_continues_with_the_same_counters(tmp_path):
    a = make(tmp_path, PricedClient([exp(1), exp(2), exp(3)], cost=0.1), [40, 41, 42],
             budget=Budget(max_turns=3), **NO_SUPERVISOR)
    a.run()
    assert a.end_reason == "budget:turns"
    before = a.budget_used
    a.journal.close()

    client = PricedClient([exp(4), finish("resumed and done")], cost=0.1)
    b = Session.resume(a.path, researcher_client=client, budget=Budget(max_turns=10),
                       toolbox=FakeToolBox([30]), supervisor_config=None)
    used = b.budget_used
    assert (used["simulations"], used["turns"], used["llm_calls"]) == (3, 3, 3)
    assert used["usd"] == pytest.approx(0.3) and used["wall_s"] >= before["wall_s"] - 0.01
    assert b.messages == a.messages and b.status == "created"
    assert [e["id"] for e in b.experiments] == [1, 2, 3]
    b.run()
    assert b.status == "finished" and b.end_reason == "researcher_finished"
    assert client.calls[0][0][1:-1] == a.messages  # system prompt, the old conversation, then a "resumed" note
    assert client.calls[0][0][-1].content.startswith("The study was resumed.")
    assert b.budget_used["turns"] == 5 and b.budget_used["simulations"] == 4
    assert b.budget_used["usd"] == pytest.approx(0.5)
    assert b.best["score"] == 30 and "resumed" in types(b)


def test_resume_restores_pending_interventions_and_undelivered_nudges(tmp_path):
    s = make(tmp_path, [exp(1), "stuck"], [40], supervisor=[decision("question", "What limits throughput?")],
             approval="manual")
    s.start()
    assert wait_for(lambda: s.status == "waiting_approval")
    s.nudge("Also check memory.")
    s.stop()
    assert s.wait(5) and s.status == "stopped"
    (pending,) = s.pending_interventions()
    s.journal.close()

    client = PricedClient([finish()])
    r = Session.resume(s.path, researcher_client=client, toolbox=FakeToolBox(),
                       supervisor_client=ScriptedClient([decision("proceed")]))
    assert r.approval == "manual" and r.pending_interventions() == [pending]
    r.approve(pending.id)
    r.run()
    last_user = [m.content for m in client.calls[0][0] if m.role == "user"][-2:]
    assert last_user == ["[Person] Also check memory.", "[Supervisor] What limits throughput?"]
    assert r.status == "finished"


def test_resume_after_kill_9_loses_at_most_the_last_record(tmp_path):
    ws = tmp_path / "ws"
    ledger = tmp_path / "ran.txt"
    here = Path(__file__).parents[1]  # where session_fakes lives
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(here)!r})
        from session_fakes import FakeToolBox, PricedClient, exp
        from glia_nb.research.session.session import Session
        client = PricedClient([exp(i) for i in range(1, 3000)], cost=0.01)
        s = Session.create({TASK!r}, {str(ws)!r}, client, supervisor_config=None,
                           toolbox=FakeToolBox(delay_s=0.003, log_path={str(ledger)!r}))
        print("started", flush=True)
        s.run()
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert wait_for(lambda: (ws / "journal.jsonl").exists() and len(journal_records(ws / "journal.jsonl")) > 60,
                        timeout=15), proc.stderr.read1().decode() if proc.poll() is not None else "too slow"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL

    header, recs = read_journal(ws / "journal.jsonl")
    assert [r["seq"] for r in recs] == list(range(1, len(recs) + 1))  # no hole: only the tail can go
    experiments = [r for r in recs if r["type"] == "experiment"]
    ran = len(ledger.read_text().split())
    assert ran - len(experiments) in (0, 1)  # at most the experiment in flight lost its record
    researcher_calls = [r for r in recs if r["type"] == "llm_call"]

    client = PricedClient([finish("after the crash")])
    s = Session.resume(ws, researcher_client=client, toolbox=FakeToolBox())
    used = s.budget_used
    assert used["simulations"] == sum(r["simulations"] for r in experiments) == len(experiments)
    assert all(r["seeds"] == 3 for r in experiments)
    assert used["turns"] == len(researcher_calls) and used["usd"] == pytest.approx(0.01 * len(researcher_calls))
    assert valid_conversation(s.messages)  # a tool call cut off by the kill got an "interrupted" result
    s.run()
    assert s.status == "finished" and valid_conversation(client.calls[0][0])
    assert s.budget_used["simulations"] == used["simulations"]


# ---------------------------------------------------------------------- real task, workspace, toolbox
def test_real_task_workspace_and_toolbox(tmp_path, monkeypatch):
    """The real ToolBox and Workspace (ledger, baseline, ledger text), with the sandboxed
    simulation replaced by a stub so the test takes milliseconds."""
    from glia_nb.research import tools
    from glia_nb.evaluation.harness import EvalResult
    from glia_nb.tasks import get_task

    task = get_task("routing-a10").replace(eval_seeds=(0, 1), duration_s=30.0)
    scores = iter([40.0, 31.5])

    def fake_evaluate(policy, task, out_dir=None, **kw):
        s = next(scores)
        return EvalResult(ok=True, score=s, summary={"mean_e2e_s": s, "restart_fraction": 0.2},
                          per_seed=[{"seed": 0, "mean_e2e_s": s}, {"seed": 1, "mean_e2e_s": s}],
                          seeds=(0, 1), simulations=2, out_dir=str(out_dir))

    monkeypatch.setattr(tools, "evaluate", fake_evaluate)
    researcher = PricedClient([exp(1, name="spf"), finish("SPF wins")])
    s = Session.create(task, tmp_path, researcher, supervisor_client=ScriptedClient([decision("proceed")]),
                       session_id="real", budget=Budget(max_simulations=10))
    s.run()
    assert s.path == (tmp_path / "real").resolve() and s.status == "finished"
    assert "baseline" in types(s) and records(s, "baseline")[0]["score"] == 40.0
    assert "40.00 s" in researcher.calls[0][0][1].content  # the task text quotes the baseline
    (e,) = records(s, "experiment")
    assert (e["id"], e["score"], e["simulations"], e["seeds"], e["ok"]) == (1, 31.5, 1, 2, True)
    assert s.best["id"] == 1 and s.best["score"] == 31.5  # from the workspace ledger
    assert s.budget_used["simulations"] == 1  # the baseline is free
    assert {t.name for t in researcher.calls[0][1]} == {"shell", "read_file", "write_file", "run_experiment",
                                                         "finish"}


# ---------------------------------------------------------------------- real SDK clients, HTTP mocked
ANTHROPIC_URL = "https://api.anthropic.com/v1/messages"
OPENAI_URL = "https://api.openai.com/v1/chat/completions"


def _anthropic(content, stop, usage=(900, 60)):
    return {"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-haiku-4-5-20251001",
            "content": content, "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": usage[0], "output_tokens": usage[1]}}


def _openai(message, finish_reason, usage=(900, 60)):
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1730000000, "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
            "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}}


def _exchange(provider):
    run_args = {"name": "baseline", "hypothesis": "measure LLQ first"}
    fin_args = {"summary": "LLQ is the best I found"}
    if provider == "anthropic":
        return [
            _anthropic([{"type": "text", "text": "I will measure the baseline."},
                        {"type": "tool_use", "id": "toolu_1", "name": "run_experiment", "input": run_args}], "tool_use"),
            (429, {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}),
            _anthropic([{"type": "tool_use", "id": "toolu_2", "name": "finish", "input": fin_args}], "tool_use"),
            _anthropic([{"type": "text", "text": "DECISION: proceed\nREASON: fine"}], "end_turn"),
        ]
    call = lambda cid, name, args: {"role": "assistant", "content": None, "refusal": None, "tool_calls": [  # noqa: E731
        {"id": cid, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}]}
    return [
        _openai(call("call_1", "run_experiment", run_args), "tool_calls"),
        (429, {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}),
        _openai(call("call_2", "finish", fin_args), "tool_calls"),
        _openai({"role": "assistant", "content": "DECISION: proceed\nREASON: fine"}, "stop"),
    ]


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_end_to_end_through_the_real_sdk_clients(tmp_path, llm_http, monkeypatch, provider):
    from glia_nb.llm import AnthropicClient, OpenAIClient

    for var in ("ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(var, raising=False)
    route = llm_http.post(ANTHROPIC_URL if provider == "anthropic" else OPENAI_URL)
    route.side_effect = [httpx.Response(r[0], json=r[1]) if isinstance(r, tuple) else httpx.Response(200, json=r)
                         for r in _exchange(provider)]
    sleeps: list[float] = []
    fast = RetryPolicy(max_retries=2, backoff_s=0.0, max_backoff_s=0.0, jitter=0.0)
    cls, model = (AnthropicClient, "claude-haiku-4-5") if provider == "anthropic" else (OpenAIClient, "gpt-4o-mini")
    client = cls(model, api_key="sk-test", retry=fast, sleep=sleeps.append)

    s = Session.create(TASK, tmp_path / "ws", client, toolbox=FakeToolBox([40.0]))
    s.run()

    assert s.status == "finished" and s.end_reason == "researcher_finished"
    assert route.call_count == 4 and len(sleeps) == 1  # the 429 was retried once
    bodies = [json.loads(c.request.content) for c in route.calls]
    sent = json.dumps(bodies[2]["messages"])
    assert "Experiment 001: mean_e2e_s = 40.00" in sent  # the tool result went back to the model
    assert "tools" in bodies[2] and "tools" not in bodies[3]  # the Supervisor gets no tools ...
    assert "Experiment 001" not in json.dumps(bodies[3])  # ... and never sees tool output
    calls = records(s, "llm_call")
    assert [c["agent"] for c in calls] == ["researcher", "researcher", "supervisor"]
    assert calls[1]["attempts"] == 2 and all(c["cost_usd"] > 0 for c in calls)
    assert s.budget_used["usd"] == pytest.approx(sum(c["cost_usd"] for c in calls))
    assert records(s, "experiment")[0]["score"] == 40.0
    assert records(s, "finished")[0]["summary"] == "LLQ is the best I found"


def test_fold_attaches_tool_results_by_call_id_and_reports_unanswered_calls():
    from glia_nb.research.fold import fold_records

    a1 = {"type": "assistant", "text": "two calls", "tool_calls": [
        ToolCall.from_arguments("t1", "shell", {"command": "ls"}).to_dict(),
        ToolCall.from_arguments("t2", "run_experiment", {"name": "x", "hypothesis": "h"}).to_dict()]}
    recs = [
        {"seq": 1, "type": "user_message", "source": "task", "source_id": "task", "text": "task"},
        {"seq": 2, "type": "tool_result", "call_id": "t1", "name": "shell", "is_error": False, "text": "early"},
        {"seq": 3, **a1},
        {"seq": 4, "type": "experiment", "id": 1, "score": 40.0, "simulations": 3},
        {"seq": 5, "type": "llm_call", "agent": "researcher", "cost_usd": 0.5, "usage": {"input_tokens": 77}},
        {"seq": 6, "type": "llm_call", "agent": "supervisor", "cost_usd": 0.25, "usage": {"input_tokens": 5}},
        {"seq": 7, "type": "tool_result", "call_id": "zz", "name": "shell", "is_error": False, "text": "orphan"},
        {"seq": 8, "type": "nudge", "text": "hello"},
    ]
    r = fold_records(recs)
    assert [m.role for m in r.messages] == ["user", "assistant", "tool"]
    assert r.messages[2].content == "early"
    assert [c.id for c in r.unanswered_calls] == ["t2"]
    # A journal written before one simulation meant one experiment recorded the seeds under
    # "simulations": it resumes counting the experiment once.
    assert (r.simulations, r.turns, r.llm_calls, r.usd, r.last_prompt_tokens) == (1, 1, 2, 0.75, 77)
    assert r.outbox == {"nudge-8": ("person", "hello")}


# ---------------------------------------------------------------------- contracts
def test_parts_are_checked_against_their_protocols_when_the_session_is_built(tmp_path, monkeypatch):
    from glia_nb.research.session.contracts import SupervisorLike

    with pytest.raises(TypeError, match="lacks specs, call"):
        Session.create(TASK, tmp_path / "a", PricedClient([]), toolbox=lambda ws, task, budget: object())
    monkeypatch.setitem(RESEARCHERS, "broken", lambda **kw: object())
    with pytest.raises(TypeError, match="researcher 'broken'.*lacks step"):
        Session.create(TASK, tmp_path / "b", "broken", toolbox=FakeToolBox())

    class Rules:  # a ready Supervisor object is used as it is, not wrapped in an LLM loop
        provider, model = "rules", "always-proceed"

        def should_review(self, state):
            return "finish" if state.finished else None

        def review(self, context):
            from glia_nb.research.supervisor import Decision

            self.seen = context
            return Decision("proceed", trigger=context.trigger)

    rules = Rules()
    assert isinstance(rules, SupervisorLike)
    s = Session.create(TASK, tmp_path / "c", PricedClient([exp(1), finish()]), supervisor_client=rules,
                       toolbox=FakeToolBox([40.0]))
    s.run()
    assert s.end_reason == "researcher_finished" and rules.seen.trigger == "finish"
    assert [e["score"] for e in rules.seen.experiments] == [40.0]  # structured inputs, not prompt text
    assert read_journal(s.journal.path)[0]["supervisor"] == {"provider": "rules", "model": "always-proceed"}
