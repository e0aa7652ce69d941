"""SendBox: the typed text travels with the click (a custom message), whole."""
from __future__ import annotations

from glia_nb.widgets import SendBox


def _box(**kw):
    box = SendBox(**kw)
    sent = []
    box.send = lambda content, buffers=None: sent.append(content)
    return box, sent


def test_the_text_of_a_custom_message_reaches_the_handler_whole_and_is_acknowledged():
    box, sent = _box()
    got = []
    box.on_action(lambda action, text: got.append((action, text)) or "queued")
    text = "Look at who waits longest — the long prompts?\nSecond line, 'quoted' & <b>not bold</b>" * 5
    box._on_custom(box, {"event": "send", "text": text, "nonce": 7}, [])
    assert got == [("send", text)]
    assert sent == [{"event": "ack", "ok": True, "note": "queued", "nonce": 7, "clear": True}]


def test_a_refused_text_stays_in_the_box_with_the_reason():
    box, sent = _box()

    def refuse(action, text):
        raise ValueError("empty nudge")

    box.on_action(refuse)
    box._on_custom(box, {"event": "send", "text": "  ", "nonce": 1}, [])
    assert sent[-1]["ok"] is False and sent[-1]["clear"] is False
    assert sent[-1]["note"] == "not sent: empty nudge"
    assert box.last_note == "not sent: empty nudge"


def test_unknown_actions_and_stray_acks_do_nothing():
    box, sent = _box(actions=[("approve", "Approve", "success", True), ("reject", "Reject", "danger", False)])
    calls = []
    box.on_action(lambda a, t: calls.append(a))
    box._on_custom(box, {"event": "ack", "ok": True}, [])
    assert sent == [] and calls == []
    assert box.submit("delete", "x") == (False, "unknown action 'delete'")
    assert box.submit("reject", "") == (True, "") and calls == ["reject"]
    assert [a[0] for a in box.actions] == ["approve", "reject"] and box.actions[1][3] is False


def test_the_browser_never_syncs_the_value_back():
    """The JS sends the text inside the click and never saves ``value`` (a value sync is
    what ipykernel 7.4 holds back while a cell awaits)."""
    from glia_nb.widgets.sendbox import _ESM

    assert "model.send({ event: action, text: ta.value" in _ESM
    assert "save_changes" not in _ESM and "model.set(" not in _ESM
