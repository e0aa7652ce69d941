"""``SupervisorInbox(session)``: the Supervisor's pending interventions, for a person to
approve as written, edit then approve, or reject; and the auto ↔ manual approval switch.

The inbox keeps a few card slots built once on the kernel's thread; events from the
session's worker thread only fill or hide them (simple trait sets). The pending set is
folded from the session's ``intervention_*`` events, which the session emits in journal
order, so the view never has to call back into the session from its worker thread.

    inbox = SupervisorInbox(session)
    inbox                 # display; in manual mode interventions wait here
"""
from __future__ import annotations

import html
import threading
from typing import Any, Mapping

import ipywidgets as W

from glia_nb.research import records as R
from glia_nb.research.fold import StudyState, fold
from glia_nb.widgets._base import SessionBox
from glia_nb.widgets.sendbox import SendBox

__all__ = ["SupervisorInbox", "ApprovalSwitch", "STATUS_WORDS"]

STATUS_WORDS = {
    "created": "not started yet", "running": "running",
    "paused": "paused: press Resume to go on",
    "waiting_approval": "waiting for your approval of the Supervisor's intervention",
    "waiting_step": "holding the next experiment for your approval (step mode)",
    "stopped": "stopped", "finished": "finished", "failed": "failed: see the error below",
}

SLOTS = 3  # the session waits while an intervention is pending, so one is the usual case

# The records that change the approval queue or the approval mode.
_QUEUE_TYPES = frozenset(cls.TYPE for cls in (R.InterventionQueued, R.InterventionApproved, R.InterventionEdited,
                                              R.InterventionRejected, R.ApprovalPolicy, R.Resumed))


class _Card:
    """One intervention: what the Supervisor says and why, its text in a :class:`SendBox`
    (edit it there), Approve and Reject. The text travels with the click, so an edit
    arrives whole however busy the kernel is."""

    def __init__(self, on_approve, on_reject) -> None:
        self.iv: dict[str, Any] | None = None
        self.meta = W.HTML("")
        self.meta.add_class("glia-intervention-meta")
        self.text = SendBox(actions=[("approve", "Approve", "success", True), ("reject", "Reject", "danger", False)],
                            rows=3, enter_sends=False)
        self.text.add_class("glia-intervention-text")
        self.text.on_action(self._on_action)
        self._on_approve, self._on_reject = on_approve, on_reject
        self.box = W.VBox([self.meta, self.text],
                          layout=W.Layout(border="2px solid #e0a800", padding="6px", margin="3px 0",
                                          display="none"))
        self.box.add_class("glia-intervention")

    def _on_action(self, action: str, text: str) -> str:
        if self.iv is None:
            raise ValueError("this intervention is no longer pending")
        iv_id = self.iv["id"]
        if action == "reject":
            self._on_reject(iv_id)
            return f"{iv_id} rejected"
        edited = text.strip() != str(self.iv.get("text", "")).strip()
        self._on_approve(iv_id, text if edited else None)
        return f"{iv_id} {'edited and approved' if edited else 'approved'}"

    def show(self, iv: Mapping[str, Any] | None) -> None:
        if iv is None:
            self.iv = None
            self.box.layout.display = "none"
            self.text.alert = False
            return
        same = self.iv is not None and self.iv.get("id") == iv.get("id")
        self.iv = dict(iv)
        if not same:  # never overwrite what a person is typing into the same intervention
            reason = f"<br><span style='color:#555'>why: {html.escape(str(iv.get('reason')))}</span>" \
                if iv.get("reason") else ""
            self.meta.value = (f"<b>&#9888; The Supervisor wants to intervene</b> "
                               f"(<b>{html.escape(str(iv.get('id')))}</b>, a <i>{html.escape(str(iv.get('kind')))}</i>"
                               f" after {html.escape(_TRIGGERS.get(str(iv.get('trigger')), str(iv.get('trigger'))))})."
                               f" The Researcher waits until you approve, edit or reject it.{reason}")
            self.text.value = str(iv.get("text", ""))
        self.box.layout.display = ""
        self.text.alert = True


_TRIGGERS = {"every_n_turns": "its periodic review", "stall": "experiments stopped improving",
             "finish": "the Researcher asked to finish", "idle": "a turn without tool calls"}


class ApprovalSwitch(W.Button):
    """A button that flips the session's approval policy (auto ↔ manual) on each click.
    A click is a message the browser always delivers, so every flip reaches the session,
    however fast they come; the label follows the session's own policy."""

    def __init__(self, session: Any, on_error=None, **kw: Any) -> None:
        super().__init__(layout=W.Layout(width="auto"), **kw)
        self.session = session
        self._on_error = on_error
        self.add_class("glia-policy")
        self.on_click(self._flip)
        self.show(session.approval)

    def show(self, approval: str) -> None:
        """Label the button for the current policy."""
        self.approval = approval
        other = "auto" if approval == "manual" else "manual"
        self.description = f"approval: {approval} (switch to {other})"
        self.button_style = "warning" if approval == "manual" else ""
        self.tooltip = ("interventions wait for a person" if approval == "manual"
                        else "interventions go to the Researcher at once")

    def _flip(self, _b=None) -> None:
        try:
            self.session.set_approval_policy("auto" if self.session.approval == "manual" else "manual")
        except Exception as exc:
            if self._on_error is None:
                raise
            self._on_error(exc)
        self.show(self.session.approval)


class SupervisorInbox(SessionBox):
    """Pending interventions with approve / edit / reject, and the approval policy."""

    def __init__(self, session: Any, *, slots: int = SLOTS, **kw: Any) -> None:
        super().__init__(**kw)
        self.session = session
        self._glia_lock = threading.RLock()
        self._ready = False
        self._buffer: list[dict[str, Any]] = []
        self._state = StudyState()  # only its approval queue is used here
        self._history: list[str] = []
        self.error_label = W.HTML("")
        self.error_label.add_class("glia-error")
        self.policy = ApprovalSwitch(session, on_error=self._show_error)
        self.empty_html = W.HTML("<i>No interventions waiting.</i>")
        self.empty_html.add_class("glia-inbox-empty")
        self.count_label = W.Label("0 pending")
        self.count_label.add_class("glia-inbox-count")
        self.history_html = W.HTML("")
        self.history_html.add_class("glia-inbox-history")
        self.cards = [_Card(self._approve, self._reject) for _ in range(max(1, slots))]
        self.children = [
            W.HTML("<h4 style='margin:4px 0'>Supervisor inbox</h4>"),
            W.HBox([self.policy, W.HTML("&nbsp;"), self.count_label],
                   layout=W.Layout(align_items="center")),
            self.empty_html, *[c.box for c in self.cards], self.error_label, self.history_html,
        ]
        self.add_class("glia-inbox")
        self.layout.border = "1px solid #ddd"
        self.layout.padding = "6px"

        self._unsubscribe = session.subscribe(self._on_event)
        pending = session.pending_interventions()
        approval = session.approval
        with self._glia_lock:
            self._state.pending = {iv.id: iv for iv in pending}
            self._set_policy(approval)
            for ev in self._buffer:  # idempotent: replays of what the snapshot holds change nothing
                self._fold(ev)
            self._buffer.clear()
            self._ready = True
            self._render()

    # ------------------------------------------------------------------ events (any thread)
    def _on_event(self, ev: Mapping[str, Any]) -> None:
        t = ev.get("type")
        if t not in _QUEUE_TYPES:
            return
        with self._glia_lock:
            if not self._ready:
                self._buffer.append(dict(ev))
                return
            self._fold(ev)
            self._render()

    @property
    def _pending(self) -> dict[str, dict[str, Any]]:
        return {k: iv.to_dict() for k, iv in self._state.pending.items()}

    def _fold(self, ev: Mapping[str, Any]) -> None:
        t, iv_id = ev.get("type"), ev.get("id")
        was = self._pending.get(iv_id)
        fold(self._state, ev)  # the journal's fold keeps the queue
        if t in ("intervention_approved", "intervention_edited", "intervention_rejected"):
            if ev.get("auto"):
                self._note(f"{iv_id} ({ev.get('kind')}) auto-approved: {ev.get('text', '')}")
            elif was is not None or t != "intervention_approved":
                verb = {"intervention_approved": "approved", "intervention_edited": "edited and approved",
                        "intervention_rejected": "rejected"}[t]
                text = ev.get("text") if t == "intervention_edited" else (was or {}).get("text", "")
                self._note(f"{iv_id} {verb}" + (f": {text}" if text else ""))
        elif t in ("approval_policy", "resumed") and ev.get("approval"):
            self._set_policy(str(ev["approval"]))

    def _note(self, line: str) -> None:
        self._history.append(line)
        del self._history[:-5]

    def _set_policy(self, approval: str) -> None:
        if approval in ("auto", "manual"):
            self.policy.show(approval)

    def _render(self) -> None:
        pending = list(self._pending.values())
        shown = {c.iv["id"] for c in self.cards if c.iv is not None and c.iv["id"] in self._pending}
        for c in self.cards:  # free the slots of resolved interventions, keep the others in place
            if c.iv is not None and c.iv["id"] not in self._pending:
                c.show(None)
        for iv in pending:
            if iv["id"] in shown:
                continue
            free = next((c for c in self.cards if c.iv is None), None)
            if free is None:
                break
            free.show(iv)
            shown.add(iv["id"])
        n = len(pending)
        extra = n - len(shown)
        self.count_label.value = f"{n} pending" + (f" ({extra} more after these)" if extra > 0 else "")
        self.empty_html.layout.display = "none" if n else ""
        self.history_html.value = ("<div style='color:#555;font-size:12px'><b>Recent decisions</b><br>"
                                   + "<br>".join(html.escape(h) for h in self._history) + "</div>"
                                   if self._history else "")

    # ------------------------------------------------------------------ controls (kernel thread)
    def _show_error(self, exc: Exception) -> None:
        self.error_label.value = (f"<span style='color:#b00020'>{html.escape(type(exc).__name__)}: "
                                  f"{html.escape(str(exc))}</span>")

    # ------------------------------------------------------------------ misc
    @property
    def pending_ids(self) -> list[str]:
        """Ids of the interventions the inbox shows as pending."""
        with self._glia_lock:
            return list(self._pending)
