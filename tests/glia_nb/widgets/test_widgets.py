"""The widgets, headless: no kernel (ipywidgets uses a dummy comm), real sessions with the
offline researcher on a tiny task. Set values, click, and check the session's state and
journal, which are what the buttons are for."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("ipywidgets")

from glia_nb.tasks.budget import Budget  # noqa: E402
from glia_nb.llm import ScriptedClient  # noqa: E402
from glia_nb.research.offline.researcher import OfflineSupervisor  # noqa: E402
from glia_nb.research.session.session import Session  # noqa: E402
from glia_nb.research.supervisor import SupervisorConfig  # noqa: E402
from glia_nb.tasks import get_task  # noqa: E402
from glia_nb.widgets import (RequestBreakdown, ResearchPanel, SupervisorInbox, compare_routers,  # noqa: E402
                             progress, simulate_seeds, summary_table, track_session, wait_async)

PNG = b"\x89PNG"


@pytest.fixture(scope="module")
def tiny_task():
    return dataclasses.replace(get_task("routing-a10"), duration_s=60.0, num_eval_seeds=1)


def records(session) -> list[dict]:
    out = []
    for line in (Path(session.path) / "journal.jsonl").read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out[1:]  # without the header


def of_type(session, *types: str) -> list[dict]:
    return [r for r in records(session) if r["type"] in types]


def wait_until(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def idle_session(tiny_task, tmp_path):
    s = Session.create(tiny_task, tmp_path, researcher_client="offline", supervisor_client=OfflineSupervisor(),
                       budget=Budget(max_simulations=2), run_baseline=False)
    yield s
    s.close()


@pytest.fixture
def questioning_session(tiny_task, tmp_path):
    """Manual approval, and a scripted Supervisor that asks a question after every turn:
    each turn queues an intervention, and the session waits for a person."""
    sup = ScriptedClient([f"DECISION: question\nMESSAGE: Question {i}: why?" for i in range(40)])
    s = Session.create(tiny_task, tmp_path, researcher_client="offline", supervisor_client=sup,
                       supervisor_config=SupervisorConfig(every_n_turns=1, stall_experiments=None),
                       budget=Budget(max_simulations=20), approval="manual", run_baseline=False)
    yield s
    s.close()


# ---------------------------------------------------------------------------- ResearchPanel
def test_panel_builds_on_a_new_session(idle_session):
    panel = ResearchPanel(idle_session)
    assert "glia-research-panel" in panel._dom_classes
    for w, cls in ((panel.nudge_text, "glia-nudge-text"), (panel.send_button, "glia-nudge-send"),
                   (panel.status_label, "glia-status"), (panel.transcript_html, "glia-transcript"),
                   (panel.session_dir_label, "glia-session-dir")):
        assert cls in w._dom_classes
    assert panel.status_label.value == "created"
    assert panel.session_dir_label.value == str(idle_session.path)
    assert not panel.start_button.disabled and panel.resume_button.disabled and panel.pause_button.disabled
    assert panel.send_button.disabled  # nothing typed yet
    assert "simulations <b>0</b> / 2" in panel.budget_html.value
    assert bytes(panel.best_image.value).startswith(PNG)
    panel.close()


def test_nudge_box_makes_one_nudge_call(idle_session):
    panel = ResearchPanel(idle_session)
    panel.nudge_text.value = "  Look at who waits longest.  "
    assert not panel.send_button.disabled
    panel.send_button.click()
    nudges = of_type(idle_session, "nudge")
    assert [n["text"] for n in nudges] == ["Look at who waits longest."]
    assert panel.nudge_text.value == "" and panel.send_button.disabled
    assert "Person: nudge: Look at who waits longest." in panel.transcript_text()
    assert "Look at who waits longest." in panel.transcript_html.value

    panel.nudge_text.value = "   "  # whitespace only: the button stays off, and a forced click is refused
    assert panel.send_button.disabled
    panel.send_button.click()
    assert "ValueError" in panel.error_label.value
    assert len(of_type(idle_session, "nudge")) == 1
    panel.close()


def test_controls_call_pause_resume_stop(idle_session):
    panel = ResearchPanel(idle_session)
    panel.pause_button.click()
    panel.resume_button.click()
    assert [r["type"] for r in of_type(idle_session, "pause", "resume")] == ["pause", "resume"]
    panel.stop_button.click()
    assert idle_session.status == "stopped"
    assert panel.status_label.value == "stopped"
    assert panel.stop_button.disabled and not panel.start_button.disabled
    assert panel.start_button.description == "Start again"
    assert "asked the session to stop" in panel.transcript_text()
    panel.close()


def test_panel_and_inbox_steer_a_running_session(questioning_session):
    s = questioning_session
    panel, inbox = ResearchPanel(s), SupervisorInbox(s)
    assert inbox.policy.value == "manual"
    assert inbox.empty_html.layout.display != "none"

    panel.start_button.click()  # the worker thread runs; updates arrive from it
    wait_until(lambda: inbox.pending_ids, what="a first intervention")
    card = inbox.cards[0]
    iv = s.pending_interventions()[0]
    assert inbox.pending_ids == [iv.id] and card.iv["id"] == iv.id
    assert card.text.value == iv.text and card.box.layout.display != "none"
    assert inbox.empty_html.layout.display == "none"
    wait_until(lambda: panel.status_label.value == "waiting_approval", what="status waiting_approval")

    # approve as written
    card.approve.click()
    assert iv.id not in {p.id for p in s.pending_interventions()}
    assert any(r["id"] == iv.id and not r.get("auto") for r in of_type(s, "intervention_approved"))

    # edit, then approve: the edited text is what the Researcher receives
    wait_until(lambda: inbox.pending_ids, what="a second intervention")
    card = next(c for c in inbox.cards if c.iv is not None)
    iv2 = card.iv["id"]
    card.text.value = card.text.value + " Focus on restarts."
    assert card.approve.description == "Approve edited"
    card.approve.click()
    edited = of_type(s, "intervention_edited")
    assert [(r["id"], r["text"].endswith("Focus on restarts.")) for r in edited] == [(iv2, True)]
    wait_until(lambda: any(r["type"] == "user_message" and r.get("source_id") == iv2 and "Focus on restarts." in r["text"]
                           for r in records(s)), what="the edited text delivered")

    # reject
    wait_until(lambda: inbox.pending_ids, what="a third intervention")
    card = next(c for c in inbox.cards if c.iv is not None)
    iv3 = card.iv["id"]
    card.reject.click()
    assert [r["id"] for r in of_type(s, "intervention_rejected")] == [iv3]
    assert iv3 not in inbox.pending_ids
    assert "rejected" in inbox.history_html.value

    # pause / resume / stop from the panel while the worker runs
    panel.pause_button.click()
    wait_until(lambda: s.status == "paused", what="paused")
    wait_until(lambda: panel.status_label.value == "paused", what="the panel to show paused")
    assert not panel.resume_button.disabled
    panel.resume_button.click()
    assert s.status != "paused"
    panel.stop_button.click()
    assert s.wait(timeout=60)
    wait_until(lambda: panel.status_label.value == "stopped", what="the panel to show stopped")

    text = panel.transcript_text()
    assert "Supervisor: question (every_n_turns): Question 0: why?" in text
    assert f"Person: edited intervention {iv2}" in text and f"Person: rejected intervention {iv3}" in text
    assert "Researcher:" in text
    panel.close()
    inbox.close()


def test_policy_switch_calls_the_session_and_follows_it(idle_session):
    inbox = SupervisorInbox(idle_session)
    assert "glia-policy" in inbox.policy._dom_classes and "glia-inbox" in inbox._dom_classes
    inbox.policy.value = "manual"
    assert idle_session.approval == "manual"
    assert [r["approval"] for r in of_type(idle_session, "approval_policy")] == ["manual"]
    idle_session.set_approval_policy("auto")  # changed elsewhere: the switch follows, without a second call
    assert inbox.policy.value == "auto"
    assert [r["approval"] for r in of_type(idle_session, "approval_policy")] == ["manual", "auto"]
    inbox.close()


def test_switching_to_auto_delivers_what_is_pending(questioning_session):
    s = questioning_session
    inbox = SupervisorInbox(s)
    s.start()
    wait_until(lambda: inbox.pending_ids, what="an intervention")
    pending = inbox.pending_ids[0]
    inbox.policy.value = "auto"
    assert s.approval == "auto" and not s.pending_interventions()
    wait_until(lambda: not inbox.pending_ids, what="the inbox to empty")
    assert any(r["id"] == pending for r in of_type(s, "intervention_approved"))
    s.stop()
    s.wait(60)
    inbox.close()


@pytest.mark.slow
def test_panel_follows_a_whole_offline_study_and_replays_it(tiny_task, tmp_path):
    s = Session.create(tiny_task, tmp_path, researcher_client="offline", supervisor_client=OfflineSupervisor(),
                       budget=Budget(max_simulations=3))
    panel = ResearchPanel(s)
    events = []
    close_bar = track_session(s)
    s.subscribe(events.append)
    s.start()
    assert s.wait(timeout=240)
    close_bar()
    assert s.status == "finished"
    wait_until(lambda: panel.status_label.value == "finished", what="the panel to show finished")
    exps = [e for e in events if e["type"] == "experiment"]
    assert len(exps) == 3
    for e in exps:
        assert e["name"] in panel.ledger_html.value
    assert ">baseline<" in panel.ledger_html.value and "★ best" in panel.ledger_html.value
    assert "simulations <b>3</b> / 3" in panel.budget_html.value
    assert bytes(panel.best_image.value).startswith(PNG)
    assert (s.best or {}).get("name") in panel.best_text.value
    assert "Session finished" in panel.transcript_text()
    assert "tool: run_experiment(" in panel.transcript_html.value  # collapsible tool calls

    # A panel opened later (e.g. after a kernel restart) rebuilds the same view from the journal.
    later = ResearchPanel(s)
    assert later.ledger_html.value == panel.ledger_html.value
    assert later.transcript_text() == panel.transcript_text()
    assert later.status_label.value == "finished"
    panel.close()
    later.close()
    s.close()


def test_panel_updates_from_a_worker_thread_do_not_deadlock(idle_session):
    """Events arrive on other threads while the kernel thread clicks: both finish."""
    panel = ResearchPanel(idle_session)
    errors = []

    def nudger(k):
        try:
            for i in range(20):
                idle_session.nudge(f"thread {k} nudge {i}")
        except Exception as exc:  # pragma: no cover - would fail the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=nudger, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for i in range(10):
        panel.nudge_text.value = f"kernel nudge {i}"
        panel.send_button.click()
    for t in threads:
        t.join(timeout=30)
    assert not errors and not any(t.is_alive() for t in threads)
    assert len(of_type(idle_session, "nudge")) == 70
    assert panel.transcript_text().count("Person: nudge:") == 70
    panel.close()


# ---------------------------------------------------------------------------- RequestBreakdown
@pytest.fixture(scope="module")
def two_results():
    from workloads import get_scenario

    sc = get_scenario("routing-a10").replace(duration_s=120.0)
    return simulate_seeds(sc, "llq", [0]) + simulate_seeds(sc, "hra", [0])


def test_breakdown_switches_views_with_the_dropdown(two_results):
    llq, hra = two_results
    bd = RequestBreakdown(llq, hra, labels=("LLQ", "HRA"))
    assert {"glia-breakdown"} <= set(bd._dom_classes)
    assert "glia-breakdown-view" in bd.view_dropdown._dom_classes
    assert bytes(bd.image.value).startswith(PNG)
    assert "LLQ" in bd.summary_html.value and "HRA" in bd.summary_html.value
    first = bytes(bd.image.value)
    seen = {first}
    for view in ("prompt", "memory", "restarts"):
        bd.view_dropdown.value = view
        assert bytes(bd.image.value).startswith(PNG) and bytes(bd.image.value) not in seen
        seen.add(bytes(bd.image.value))
        assert bd.note_html.value
    bd.view_dropdown.value = "e2e"
    assert bytes(bd.image.value) == first  # cached
    single = RequestBreakdown(llq, view="restarts")
    assert single.labels == ["llq"] and bytes(single.image.value).startswith(PNG)
    with pytest.raises(ValueError):
        RequestBreakdown(llq, hra, labels=("only one",))
    with pytest.raises(ValueError):
        RequestBreakdown(llq, view="nope")


# ---------------------------------------------------------------------------- progress helpers
def test_progress_helpers_run_batches_in_a_terminal(capsys):
    from workloads import get_scenario

    sc = get_scenario("routing-a10").replace(duration_s=60.0)
    res = simulate_seeds(sc, "rr", [1, 0])
    assert [r.seed for r in res] == [1, 0]
    err = capsys.readouterr().err
    assert "rr" in err and "2/2" in err  # a readable text bar on stderr
    runs, table = compare_routers(sc, {"RR": "rr", "LLQ": "llq"}, [0, 1], record_timeline=False)
    assert list(table.index) == ["RR", "LLQ"] and list(table["seeds"]) == [2, 2]
    per_seed = summary_table(runs, per_seed=True)
    assert len(per_seed) == 4 and set(per_seed["router"]) == {"RR", "LLQ"}
    assert table.loc["RR", "mean_e2e_s"] == pytest.approx(per_seed[per_seed.router == "RR"]["mean_e2e_s"].mean())
    assert list(progress(range(3), desc="x")) == [0, 1, 2]


def test_wait_async_polls_without_blocking():
    class FakeSession:
        def __init__(self):
            self.done_at = time.monotonic() + 0.3

        def wait(self, timeout=None):
            return time.monotonic() >= self.done_at

    assert asyncio.run(wait_async(FakeSession(), timeout=5, poll_s=0.05)) is True
    assert asyncio.run(wait_async(type("S", (), {"wait": lambda self, timeout=None: False})(), timeout=0.2,
                                  poll_s=0.05)) is False


def test_the_transcript_renders_every_record_type_the_panel_sends_it():
    # The panel's list comes from glia_nb.research.records; a renamed record type must not
    # silently fall out of the transcript.
    from glia_nb.research import records as R
    from glia_nb.widgets.research_panel import _TRANSCRIPT_TYPES
    from glia_nb.widgets.transcript import Transcript

    assert _TRANSCRIPT_TYPES <= set(R.RECORD_TYPES) | set(R.CONTROL_TYPES)
    assert all(callable(getattr(Transcript, f"_on_{t}", None)) for t in _TRANSCRIPT_TYPES)
