"""``SendBox``: a text box whose buttons carry the typed text to the kernel with the click.

Why not an ``ipywidgets.Textarea`` and a ``Button``: a Textarea syncs its value to the
kernel as a stream of ``update`` messages, and the browser sends the next update only
after the kernel reports *idle* for the previous one. While a notebook cell awaits a
running session (``await wait_async(session)``), ipykernel 7.4 dispatches widget messages
concurrently with the cell and reports no idle for them, so the browser sent the first
keystroke and held the rest: a typed nudge reached the Researcher as its first letter.
A button click is a *custom* message, which the browser never holds back. Here the text
travels inside that custom message (``{"event": action, "text": ...}``), so what was
typed arrives whole however busy the kernel is, and the browser never syncs the value.

Measured in Chromium (JupyterLab 4.6.6, ipywidgets 8.1.9, ipykernel 7.4.0), typing two texts
key by key into each box while a cell awaited: a ``Textarea`` delivered "f"; a ``Textarea``
with ``continuous_update=False`` delivered the first text whole and never the second (its
first update's idle never comes, so the browser holds every later one); ``SendBox``
delivered both, whole.

The kernel answers each message with ``{"event": "ack", "ok": ..., "note": ...}``; the
box clears itself only when the kernel accepted the text, so nothing typed is lost.
Enter sends with the first action; Shift+Enter starts a new line.

    box = SendBox(actions=[("send", "Send", "primary")], placeholder="Nudge the Researcher…")
    box.on_action(lambda action, text: session.nudge(text))
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import anywidget
import traitlets

__all__ = ["SendBox", "TranscriptView"]

_ESM = r"""
function render({ model, el }) {
  const wrap = document.createElement("div");
  wrap.className = "glia-sendbox-wrap";
  wrap.style.cssText = "display:flex;gap:6px;align-items:flex-end;width:100%";
  const ta = document.createElement("textarea");
  ta.className = "glia-sendbox-text";
  ta.rows = model.get("rows");
  ta.style.cssText = "flex:1 1 auto;min-width:0;font:inherit;font-size:13px;padding:4px;resize:vertical";
  const buttons = document.createElement("div");
  buttons.style.cssText = "display:flex;gap:4px;flex-wrap:wrap";
  const note = document.createElement("div");
  note.className = "glia-sendbox-note";
  note.style.cssText = "font-size:12px;color:#555;min-height:1em;margin-top:2px";
  wrap.append(ta, buttons);
  el.append(wrap, note);
  let nonce = 0;
  let waiting = null;
  const btns = [];

  function refresh() {
    const empty = ta.value.trim() === "";
    const off = model.get("disabled") || waiting !== null;
    ta.disabled = model.get("disabled");
    btns.forEach(([b, a]) => { b.disabled = off || (a[3] && empty); });
  }
  function fire(action) {
    if (model.get("disabled") || waiting !== null) return;
    const needs = (model.get("actions").find(a => a[0] === action) || [])[3];
    if (needs && ta.value.trim() === "") return;
    nonce += 1;
    waiting = nonce;
    note.textContent = "sending…";
    model.send({ event: action, text: ta.value, nonce: nonce });
    refresh();
  }
  function build() {
    buttons.replaceChildren();
    btns.length = 0;
    for (const a of model.get("actions")) {
      const b = document.createElement("button");
      b.className = "jupyter-button widget-button glia-sendbox-" + a[0] + (a[2] ? " mod-" + a[2] : "");
      b.textContent = a[1];
      b.style.cssText = "width:auto;min-width:80px";
      b.addEventListener("click", () => fire(a[0]));
      buttons.append(b);
      btns.push([b, a]);
    }
    refresh();
  }
  ta.placeholder = model.get("placeholder");
  ta.value = model.get("value");
  ta.addEventListener("input", refresh);
  ta.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && model.get("enter_sends")) {
      e.preventDefault();
      const first = model.get("actions")[0];
      if (first) fire(first[0]);
    }
  });
  model.on("change:value", () => { ta.value = model.get("value"); refresh(); });
  model.on("change:placeholder", () => { ta.placeholder = model.get("placeholder"); });
  model.on("change:disabled", refresh);
  model.on("change:actions", build);
  // A request for attention (a waiting intervention): pulse the box and mark the tab's title.
  const baseTitle = () => document.title.replace(/^\u26a0 /, "");
  function alertChanged() {
    if (model.get("alert")) {
      wrap.animate([{ boxShadow: "0 0 0 0 rgba(224,168,0,0.9)" }, { boxShadow: "0 0 0 8px rgba(224,168,0,0)" }],
                   { duration: 900, iterations: 4 });
      if (!document.title.startsWith("\u26a0 ")) document.title = "\u26a0 " + document.title;
    } else {
      document.title = baseTitle();
    }
  }
  model.on("change:alert", alertChanged);
  if (model.get("alert")) alertChanged();
  model.on("msg:custom", (msg) => {
    if (!msg || msg.event !== "ack") return;
    if (msg.nonce === waiting) waiting = null;
    if (msg.ok && msg.clear) ta.value = "";
    note.textContent = msg.note || "";
    note.style.color = msg.ok ? "#1d7a33" : "#b00020";
    refresh();
  });
  build();
}
export default { render };
"""


class SendBox(anywidget.AnyWidget):
    """A textarea and action buttons; each click (or Enter, for the first action) sends
    ``(action, text)`` to the handlers registered with :meth:`on_action`.

    ``actions`` is a list of ``(name, label, button_style, needs_text)``. ``value`` is the
    text the kernel puts in the box (e.g. an intervention to edit); the browser never
    sends it back, the text comes with each action instead. ``last_note`` is the receipt
    shown under the box."""

    _esm = _ESM
    value = traitlets.Unicode("").tag(sync=True)
    placeholder = traitlets.Unicode("").tag(sync=True)
    actions = traitlets.List(traitlets.List()).tag(sync=True)
    disabled = traitlets.Bool(False).tag(sync=True)
    enter_sends = traitlets.Bool(True).tag(sync=True)
    rows = traitlets.Int(3).tag(sync=True)
    alert = traitlets.Bool(False).tag(sync=True)  # pulse the box and mark the tab title
    last_note = traitlets.Unicode("").tag(sync=False)

    def __init__(self, actions: Sequence[Sequence[Any]] = (("send", "Send", "primary", True),), **kw: Any) -> None:
        super().__init__(actions=[list(a) + [True] * (4 - len(a)) for a in actions], **kw)
        self._handlers: list[Callable[[str, str], Any]] = []
        self.on_msg(self._on_custom)

    def on_action(self, handler: Callable[[str, str], Any]) -> None:
        """Call ``handler(action, text)`` for each action. It returns a receipt line (or
        None) when it accepted the text, and raises to refuse it; the error's message is
        shown under the box and the text stays for the person to fix."""
        self._handlers.append(handler)

    def submit(self, action: str, text: str) -> tuple[bool, str]:
        """Do what a click on ``action`` with ``text`` in the box does (also for tests and
        scripts): run the handlers; returns ``(accepted, note)``."""
        if action not in {a[0] for a in self.actions}:
            return False, f"unknown action {action!r}"
        try:
            notes = [h(action, text) for h in list(self._handlers)]
        except Exception as exc:  # refused: say why in one line, keep the text
            self.last_note = f"not sent: {exc}"
            return False, self.last_note
        self.last_note = next((str(n) for n in notes if n), "")
        return True, self.last_note

    def _on_custom(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict) or content.get("event") == "ack":
            return
        ok, note = self.submit(str(content.get("event")), str(content.get("text") or ""))
        self.send({"event": "ack", "ok": ok, "note": note, "nonce": content.get("nonce"), "clear": ok})


_TRANSCRIPT_ESM = r"""
function render({ model, el }) {
  const style = document.createElement("div");
  style.innerHTML = model.get("css");
  const box = document.createElement("div");
  box.className = "glia-tx glia-tx-scroll";
  box.style.cssText = "overflow-y:auto;position:relative;max-height:" + model.get("height_px") + "px";
  const marker = document.createElement("button");
  marker.className = "glia-new-entries";
  marker.style.cssText = "display:none;position:sticky;bottom:4px;left:100%;font-size:12px;cursor:pointer;" +
    "background:#1f5fa8;color:#fff;border:0;border-radius:10px;padding:2px 10px";
  el.append(style, box);
  let shown = [];      // ids of the entries in the box, in order
  let unseen = 0;
  const atBottom = () => box.scrollHeight - box.scrollTop - box.clientHeight < 24;
  const toBottom = () => { box.scrollTop = box.scrollHeight; unseen = 0; marker.style.display = "none"; };
  marker.addEventListener("click", toBottom);
  box.addEventListener("scroll", () => { if (atBottom()) { unseen = 0; marker.style.display = "none"; } });
  function update() {
    const entries = model.get("entries");
    const same = shown.length <= entries.length && shown.every((id, i) => entries[i].id === id);
    if (!same) { box.replaceChildren(); shown = []; unseen = 0; }
    const follow = !same || shown.length === 0 || atBottom();
    for (const e of entries.slice(shown.length)) {
      const d = document.createElement("div");
      d.innerHTML = e.html;
      box.insertBefore(d.firstElementChild || d, marker.parentNode === box ? marker : null);
      shown.push(e.id);
      if (!follow) unseen += 1;
    }
    if (marker.parentNode !== box) box.append(marker);
    if (follow) { toBottom(); }
    else if (unseen > 0) {
      marker.textContent = unseen + " new " + (unseen === 1 ? "entry" : "entries") + " \u2193";
      marker.style.display = "block";
    }
  }
  model.on("change:entries", update);
  update();
}
export default { render };
"""


class TranscriptView(anywidget.AnyWidget):
    """Shows a growing list of HTML entries: appends the new ones and never redraws
    the others (an opened tool call stays open), follows the newest entry only while the
    reader is at the bottom, and otherwise shows a "N new entries ↓" marker. When the
    list is replaced by one that is not an extension (a replay scrubbed back), it redraws."""

    _esm = _TRANSCRIPT_ESM
    entries = traitlets.List(traitlets.Dict()).tag(sync=True)
    css = traitlets.Unicode("").tag(sync=True)
    height_px = traitlets.Int(420).tag(sync=True)
