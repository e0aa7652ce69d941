"""ResearchPanel and SupervisorInbox, headless: real sessions with the offline Researcher
on a tiny task; the person's actions arrive as the browser sends them (custom messages
carrying the text, button clicks), and the journal is what is checked."""
from __future__ import annotations

import threading

from glia_nb.widgets import ReplayPanel, ResearchPanel, SupervisorInbox
from glia_nb.widgets.inbox import STATUS_WORDS

PNG = b"\x89PNG"


def _type_and_send(box, text, nonce=1):
    """What the browser does on Enter or a click: one custom message with the whole text."""
    acks = []
    box.send = lambda content, buffers=None: acks.append(content)
    box._on_custom(box, {"event": box.actions[0][0], "text": text, "nonce": nonce}, [])
    return acks[-1]


def test_panel_builds_on_a_new_session(idle_session):
    panel = ResearchPanel(idle_session)
    assert "glia-research-panel" in panel._dom_classes
    for w, cls in ((panel.nudge_box, "glia-nudge"), (panel.status_label, "glia-status"),
                   (panel.transcript_view, "glia-transcript"), (panel.session_dir_label, "glia-session-dir"),
                   (panel.approval_switch, "glia-policy"), (panel.step_button, "glia-step")):
        assert cls in w._dom_classes
    assert panel.status_label.value == STATUS_WORDS["created"] == "not started yet"
    assert panel.banner.box.layout.display == "none" and panel.step_banner.layout.display == "none"
    assert not panel.start_button.disabled and panel.resume_button.disabled and panel.pause_button.disabled
    assert "simulations <b>0</b> / 2" in panel.budget_html.value
    assert bytes(panel.best_image.value).startswith(PNG)
    panel.close()


def test_a_local_model_costs_unpriced_not_zero_dollars(idle_session):
    panel = ResearchPanel(idle_session)
    assert "dollars <b>$0.00</b>" in panel.budget_html.value
    state = idle_session.state  # as the fold leaves it after two calls of a local model
    state.unpriced_calls, state.input_tokens, state.output_tokens = 2, 1234, 56
    panel._render_budget()
    assert "dollars <b>unpriced</b> (2 model calls; tokens 1,234 in / 56 out)" in panel.budget_html.value
    assert "$" not in panel.budget_html.value
    panel.close()


def test_a_typed_nudge_is_delivered_whole_with_a_receipt(idle_session, of_type, records, wait_until):
    panel = ResearchPanel(idle_session)
    long = "Look at who waits longest before you tune parameters, and at the restarts. " * 4
    for i, text in enumerate(["B", long.strip(), "  two\nlines  "]):
        ack = _type_and_send(panel.nudge_box, text, nonce=i)
        assert ack["ok"] and ack["clear"] and "before its next turn" in ack["note"]
    assert [n["text"] for n in of_type(idle_session, "nudge")] == ["B", long.strip(), "two\nlines"]
    assert f"Person: nudge: {long.strip()}" in panel.transcript_text()
    ack = _type_and_send(panel.nudge_box, "   ")  # refused: the box keeps it and says why
    assert not ack["ok"] and not ack["clear"] and "empty nudge" in ack["note"]
    assert len(of_type(idle_session, "nudge")) == 3

    idle_session.start()  # delivered before the Researcher's first turn: a receipt each
    wait_until(lambda: len(of_type(idle_session, "user_message")) >= 4, what="the nudges delivered")
    delivered = [r for r in of_type(idle_session, "user_message") if r["source"] == "person"]
    assert [d["text"] for d in delivered] == ["[Person] B", f"[Person] {long.strip()}", "[Person] two\nlines"]
    wait_until(lambda: panel.transcript_text().count("was delivered to the Researcher before turn 1") == 3,
               what="three receipts")
    idle_session.stop()
    assert idle_session.wait(120)
    panel.close()


def test_the_researcher_is_told_a_nudge_comes_from_a_person(idle_session, of_type, wait_until):
    idle_session.nudge("E")
    idle_session.start()
    first = wait_until(lambda: of_type(idle_session, "assistant"), what="a first turn")[0]
    assert 'The person steering the study says: "E"' in first["text"]
    assert "Supervisor asks" not in first["text"]
    idle_session.stop()
    assert idle_session.wait(120)


def test_controls_and_the_approval_switch_record_every_click(idle_session, of_type):
    panel = ResearchPanel(idle_session)
    inbox = SupervisorInbox(idle_session)
    for _ in range(3):  # flipped three times, fast: each flip recorded
        panel.approval_switch.click()
    inbox.policy.click()
    assert [r["approval"] for r in of_type(idle_session, "approval_policy")] == ["manual", "auto", "manual", "auto"]
    assert idle_session.approval == "auto"
    assert panel.approval_switch.description.startswith("approval: auto")
    assert inbox.policy.description.startswith("approval: auto")  # follows changes made elsewhere
    panel.pause_button.click()
    panel.resume_button.click()
    assert [r["type"] for r in of_type(idle_session, "pause", "resume")] == ["pause", "resume"]
    panel.stop_button.click()
    assert idle_session.status == "stopped" and panel.status_label.value == "stopped"
    assert panel.stop_button.disabled and panel.start_button.description == "Start again"
    assert "asked the session to stop" in panel.transcript_text()
    panel.close()
    inbox.close()


def test_a_waiting_intervention_is_a_banner_to_approve_edit_or_reject(questioning_session, of_type, records,
                                                                       wait_until):
    s = questioning_session
    panel, inbox = ResearchPanel(s), SupervisorInbox(s)
    panel.start_button.click()
    wait_until(lambda: panel.banner.iv is not None, what="a first intervention")
    iv = s.pending_interventions()[0]
    assert panel.banner.iv["id"] == iv.id and panel.banner.text.value == iv.text
    assert panel.banner.box.layout.display == "" and "wants to intervene" in panel.banner.meta.value
    assert inbox.pending_ids == [iv.id]
    wait_until(lambda: panel.status_label.value == STATUS_WORDS["waiting_approval"], what="the waiting status")

    assert _type_and_send(panel.banner.text, iv.text)["ok"]  # approve as written
    assert any(r["id"] == iv.id and not r.get("auto") for r in of_type(s, "intervention_approved"))

    wait_until(lambda: panel.banner.iv is not None and panel.banner.iv["id"] != iv.id, what="a second one")
    iv2 = panel.banner.iv["id"]
    ack = _type_and_send(panel.banner.text, panel.banner.text.value + " Focus on restarts.")
    assert ack["note"] == f"{iv2} edited and approved"
    assert [(r["id"], r["text"].endswith("Focus on restarts.")) for r in of_type(s, "intervention_edited")] == \
        [(iv2, True)]
    wait_until(lambda: any(r["type"] == "user_message" and r.get("source_id") == iv2
                           and "Focus on restarts." in r["text"] for r in records(s)), what="the edit delivered")

    wait_until(lambda: inbox.pending_ids, what="a third one")  # rejected from the inbox this time
    card = next(c for c in inbox.cards if c.iv is not None)
    iv3 = card.iv["id"]
    assert card.text.submit("reject", "")[0]
    assert [r["id"] for r in of_type(s, "intervention_rejected")] == [iv3]
    wait_until(lambda: panel.banner.iv is None or panel.banner.iv["id"] != iv3, what="the banner to move on")
    assert "rejected" in inbox.history_html.value

    panel.pause_button.click()
    wait_until(lambda: panel.status_label.value == STATUS_WORDS["paused"], what="paused")
    panel.resume_button.click()
    panel.stop_button.click()
    assert s.wait(timeout=60)
    text = panel.transcript_text()
    assert "Supervisor: question (every_n_turns): Question 0: why?" in text
    assert f"Person: edited intervention {iv2}" in text and f"Person: rejected intervention {iv3}" in text
    panel.close()
    inbox.close()


def test_step_mode_holds_each_experiment_for_the_person(idle_session, of_type, records, wait_until):
    s = idle_session
    panel = ResearchPanel(s)
    panel.step_button.click()
    assert s.pause_before_experiment and panel.step_button.description == "Step mode: on"
    s.start()
    hold = wait_until(lambda: of_type(s, "step_hold"), what="a held experiment")[0]
    wait_until(lambda: panel.step_banner.layout.display == "", what="the step banner")
    assert panel.status_label.value == STATUS_WORDS["waiting_step"]
    assert panel.step_box.value == hold["hypothesis"] and hold["name"] in panel.step_meta.value
    assert "+" in hold["diff"]  # the code change since the start
    assert not of_type(s, "experiment")  # nothing ran while held
    assert _type_and_send(panel.step_box, "Edited: balancing memory cuts restarts.")["ok"]
    exp = wait_until(lambda: of_type(s, "experiment"), timeout=120, what="the experiment")[0]
    assert exp["hypothesis"] == "Edited: balancing memory cuts restarts."
    rel = of_type(s, "step_released")[0]
    assert rel["action"] == "run" and rel["hypothesis"] == exp["hypothesis"]

    wait_until(lambda: len(of_type(s, "step_hold")) == 2, timeout=120, what="the next hold")
    assert panel.step_box.submit("skip", "Not yet: profile the queues first.")[0]
    skipped = wait_until(lambda: [r for r in of_type(s, "tool_result") if "skipped it" in r["text"]],
                         what="the skip reported to the Researcher")
    assert "Not yet: profile the queues first." in skipped[0]["text"] and skipped[0]["is_error"]
    assert len(of_type(s, "experiment")) == 1
    s.stop()
    assert s.wait(60)
    panel.close()


def test_a_hold_can_be_released_the_moment_it_is_announced(idle_session, of_type, wait_until):
    """A person who answers the hold's event at once (a fast click, a script) is not told
    that nothing is held."""
    s = idle_session
    s.pause_before_experiment = True
    answers = []

    def on_event(ev):
        if ev.get("type") == "step_hold" and not answers:
            try:
                s.release_step("skip", note="Not this one.")
                answers.append("released")
            except RuntimeError as exc:
                answers.append(str(exc))

    s.subscribe(on_event)
    s.start()
    wait_until(lambda: of_type(s, "step_released"), what="the released hold")
    assert answers == ["released"]
    s.stop()
    assert s.wait(60)


def test_pace_gives_each_turn_a_minimum_length(idle_session, of_type, wait_until):
    import time

    s = idle_session
    s.pace_s = 0.6
    t0 = time.monotonic()
    s.start()
    wait_until(lambda: len(of_type(s, "assistant")) >= 3, timeout=60, what="three turns")
    assert time.monotonic() - t0 >= 1.2  # turns 2 and 3 waited for the pace
    s.pause()  # a pause is not held up by the pace
    s.stop()
    assert s.wait(120)


def test_ledger_views_and_replay_of_a_finished_study(finished_study):
    s = finished_study
    panel = ResearchPanel(s)
    events = [e for e in panel.ledger.experiments]
    assert len(events) == 3 and panel.status_label.value == "finished"
    assert ">baseline<" in panel.ledger_html.value and "★ best" in panel.ledger_html.value
    best = panel.ledger.best()
    assert best["name"] in panel.best_text.value
    # the best row comes right after the baseline, whatever the sort
    for _ in range(2):
        html = panel.ledger_html.value
        assert html.index(f">{best['name']}<") < min(html.index(f">{e['name']}<") for e in events
                                                    if e["id"] != best["id"])
        panel.sort_button.click()
    panel.view_buttons["lineage"].click()
    assert "built on" in panel.view_html.value and "code diff against its parent" in panel.view_html.value
    for v in ("trade-off", "time split"):
        panel.view_buttons[v].click()
        assert bytes(panel.view_image.value).startswith(PNG) and panel.view_image.layout.display == ""
    panel.view_buttons["time split"].click()  # a second click hides it
    assert panel.view_image.layout.display == "none"
    assert "tool call: run_experiment(" in panel.transcript_text()

    replay = ReplayPanel(s.path)
    assert replay.position == len(replay.records)
    assert replay.transcript_text() == panel.transcript_text()
    assert replay.ledger_html.value == panel.ledger_html.value
    first_exp = next(i for i, r in enumerate(replay.records) if r["type"] == "experiment")
    replay.slider.value = first_exp  # just before the first experiment
    assert replay._ledger.experiments == [] and panel.transcript_text().startswith(replay.transcript_text())
    replay.next_button.click()
    assert len(replay._ledger.experiments) == 1 and replay.where_label.value.startswith(f"{first_exp + 1} /")
    replay.slider.value = 0
    assert replay.transcript_view.entries == [] and replay.prev_button.disabled
    panel.close()


def test_updates_from_worker_threads_do_not_deadlock_with_clicks(idle_session, of_type):
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
        assert _type_and_send(panel.nudge_box, f"kernel nudge {i}")["ok"]
    for t in threads:
        t.join(timeout=30)
    assert not errors and not any(t.is_alive() for t in threads)
    assert len(of_type(idle_session, "nudge")) == 70
    assert panel.transcript_text().count("Person: nudge:") == 70
    panel.close()


def test_the_pace_button_cycles_the_sessions_pace(idle_session):
    panel = ResearchPanel(idle_session)
    seen = []
    for _ in range(3):
        panel.pace_button.click()
        seen.append((idle_session.pace_s, panel.pace_button.description))
    assert seen == [(5.0, "pace: 5 s per turn"), (15.0, "pace: 15 s per turn"), (0.0, "pace: full speed")]
    panel.close()


def test_a_waiting_intervention_asks_for_attention(questioning_session, wait_until):
    panel = ResearchPanel(questioning_session)
    assert not panel.banner.text.alert
    questioning_session.start()
    wait_until(lambda: panel.banner.iv is not None, what="an intervention")
    assert panel.banner.text.alert
    questioning_session.pause()  # no next intervention: the banner goes and stops asking
    rejected = panel.banner.iv["id"]
    assert panel.banner.text.submit("reject", "")[0]
    wait_until(lambda: panel.banner.iv is None, what="the banner to go")
    assert not panel.banner.text.alert and rejected not in {iv.id for iv in questioning_session.pending_interventions()}
    questioning_session.stop()
    assert questioning_session.wait(120)
    panel.close()
