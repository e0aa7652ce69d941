"""``ResearchPanel(session)``: a live view of a research session with its controls.

A thin view: every button makes one call on the :class:`~glia_nb.research.session.session.Session`; what
the view shows is folded from the session's events (journal records), which arrive on the
session's worker thread. From that thread the panel only sets simple traits, never
``with output:``, and it never calls the session while it holds its own lock.

Everything a person does while the session runs is a click (a message the browser always
delivers, however busy the kernel): typed text travels with the click (:class:`SendBox`),
the approval switch and the ledger's sort are buttons. A Supervisor intervention that
waits for the person, or an experiment held in step mode, appears as a banner at the top.

    panel = ResearchPanel(session)
    panel                      # display it; then session.start() or the Start button
"""
from __future__ import annotations

import html
import threading
from typing import Any, Mapping

import ipywidgets as W

from glia_nb.research import records as R
from glia_nb.research.records import ENDED
from glia_nb.research.session.step import StepHold, StepReleased
from glia_nb.tasks.objective import Objective
from glia_nb.widgets._base import SessionBox
from glia_nb.widgets.inbox import STATUS_WORDS, ApprovalSwitch, _Card
from glia_nb.widgets.ledger import Ledger
from glia_nb.widgets.sendbox import SendBox, TranscriptView
from glia_nb.widgets.transcript import CSS, Transcript

__all__ = ["ResearchPanel", "button", "show_ledger_view"]

_VIEWS = ("lineage", "trade-off", "time split")
PACES = (0.0, 5.0, 15.0)  # seconds per Researcher turn the pace button cycles through


def button(description: str, cls: str, style: str = "", icon: str = "", tooltip: str = "") -> W.Button:
    """A ``Button`` sized to its text with a test hook class."""
    b = W.Button(description=description, button_style=style, icon=icon, tooltip=tooltip,
                 layout=W.Layout(width="auto"))
    b.add_class(cls)
    return b


def show_ledger_view(ledger: Ledger, view: str | None, seeds: list[int], view_html: W.HTML, view_image: W.Image,
                     buttons: Mapping[str, W.Button]) -> None:
    """Draw one of the ledger's views (lineage as HTML; trade-off and time split as PNG)
    into the two widgets, and mark its button."""
    from glia_nb.plots import research as plots, to_png

    view_html.value, view_image.layout.display = "", "none"
    exps, best = ledger.experiments, ledger.best()
    if view == "lineage":
        view_html.value = ledger.lineage_html()
    elif view in ("trade-off", "time split"):
        fig = (plots.tradeoff_scatter(exps, ledger.baseline, seeds=seeds, best_id=(best or {}).get("id"))
               if view == "trade-off" else plots.experiment_time_split(exps, ledger.baseline, seeds=seeds))
        view_image.value = to_png(fig, dpi=120)
        view_image.layout.display = ""
    for v, b in buttons.items():
        b.button_style = "info" if v == view else ""


class ResearchPanel(SessionBox):
    """Transcript, intervention banner, experiment ledger with its views, best-so-far
    plot, budget, controls and a nudge box for one session. ``panel.close()``
    unsubscribes it from the session."""

    def __init__(self, session: Any, *, max_entries: int = 80, plot: bool = True, **kw: Any) -> None:
        super().__init__(**kw)
        self.session = session
        self._glia_lock = threading.RLock()
        self._ready = False
        self._transcript = Transcript(max_entries=max_entries)
        self._status = "created"
        self._plot = plot
        self._pending: dict[str, dict[str, Any]] = {}
        self._held: dict[str, Any] | None = None
        self._view: str | None = None
        task = getattr(session, "task", None)
        objective = getattr(task, "objective", None)
        self._seeds = list(getattr(task, "seeds", ()) or ())
        # Which score is better is the task's Objective's to say (lower when none is known).
        self.ledger = Ledger(objective=objective if isinstance(objective, Objective) else Objective(),
                             root=getattr(session, "path", None), policy_file=getattr(task, "policy_file", None))

        title = getattr(task, "title", "") or getattr(task, "name", "") or "research session"
        self.title_html = W.HTML(f"<h3 style='margin:4px 0'>Research session — {html.escape(str(title))}</h3>")
        self.session_dir_label = W.Label(str(getattr(session, "path", "")))
        self.session_dir_label.add_class("glia-session-dir")
        self.status_label = W.Label(STATUS_WORDS["created"])
        self.status_label.add_class("glia-status")
        self.start_button = button("Start", "glia-start", "success", "play", "run the study in the background")
        self.pause_button = button("Pause", "glia-pause", "", "pause", "hold the Researcher before its next turn")
        self.resume_button = button("Resume", "glia-resume", "", "forward", "let a paused study go on")
        self.stop_button = button("Stop", "glia-stop", "danger", "stop", "end the study after the current step")
        self.step_button = button("Step mode: off", "glia-step", "", "hand-paper-o",
                                  "hold each experiment before it runs, for you to approve, edit or skip")
        self.pace_button = button("pace: full speed", "glia-pace", "", "clock-o",
                                  "give each Researcher turn at least a few seconds, to follow it as it runs")
        for b, fn in ((self.start_button, self._on_start), (self.pause_button, self._on_pause),
                      (self.resume_button, self._on_resume), (self.stop_button, self._on_stop),
                      (self.step_button, self._on_step_mode), (self.pace_button, self._on_pace)):
            b.on_click(fn)
        self.error_label = W.HTML("")
        self.error_label.add_class("glia-error")
        self.approval_switch = ApprovalSwitch(session, on_error=self._show_error)

        # banners: a waiting intervention, or an experiment held in step mode
        self.banner = _Card(self._approve, self._reject)
        self.banner.box.add_class("glia-banner")
        self.step_meta = W.HTML("")
        self.step_meta.add_class("glia-step-meta")
        self.step_box = SendBox(actions=[("run", "Run it", "success", True), ("skip", "Skip, and tell the Researcher",
                                                                            "warning", True)], rows=2, enter_sends=False)
        self.step_box.add_class("glia-step-box")
        self.step_box.on_action(self._on_step_action)
        self.step_banner = W.VBox([self.step_meta, self.step_box], layout=W.Layout(
            border="2px solid #1f5fa8", padding="6px", margin="3px 0", display="none"))
        self.step_banner.add_class("glia-step-banner")

        self.transcript_view = TranscriptView(css=CSS, layout=W.Layout(width="100%"))
        self.transcript_view.add_class("glia-transcript")
        self.nudge_box = SendBox(placeholder="Nudge the Researcher, e.g. 'look at who waits longest' "
                                 "(Enter sends, Shift+Enter for a new line)", rows=2)
        self.nudge_box.add_class("glia-nudge")
        self.nudge_box.on_action(self._on_nudge)

        self.ledger_html = W.HTML("<i>No experiments yet.</i>", layout=W.Layout(width="100%"))
        self.ledger_html.add_class("glia-ledger")
        self.sort_button = button("sort by score", "glia-sort", tooltip="sort the ledger by score / by order")
        self.sort_button.on_click(self._on_sort)
        self.view_buttons = {v: button(v, f"glia-view-{v.replace(' ', '-')}", tooltip=f"show the {v} view")
                             for v in _VIEWS}
        for v, b in self.view_buttons.items():
            b.on_click(lambda _b, v=v: self.show_view(None if self._view == v else v))
        self.view_html = W.HTML("")
        self.view_html.add_class("glia-view")
        self.view_image = W.Image(format="png", layout=W.Layout(max_width="760px", display="none"))
        self.view_image.add_class("glia-view-image")
        self.best_image = W.Image(format="png", layout=W.Layout(width="100%", max_width="620px"))
        self.best_image.add_class("glia-best-plot")
        self.best_text = W.HTML("")
        self.best_text.add_class("glia-best")
        self.budget_html = W.HTML("")
        self.budget_html.add_class("glia-budget")
        self.budget_bar = W.FloatProgress(value=0.0, min=0.0, max=1.0, description="simulations",
                                          layout=W.Layout(width="340px"))
        self.budget_bar.add_class("glia-budget-bar")

        controls = W.HBox([self.start_button, self.pause_button, self.resume_button, self.stop_button,
                           self.step_button, self.pace_button, self.approval_switch, W.HTML("&nbsp;status:&nbsp;"), self.status_label],
                          layout=W.Layout(align_items="center", flex_flow="row wrap"))
        left = W.VBox([W.HTML("<b>Transcript</b> <span style='color:#777'>(click a tool call or result to open it)"
                              "</span>"), self.transcript_view, self.nudge_box],
                      layout=W.Layout(width="56%", padding="0 8px 0 0"))
        right = W.VBox([W.HTML("<b>Best so far</b>"), self.best_text, self.best_image,
                        W.HTML("<b>Budget used</b>"), self.budget_bar, self.budget_html],
                       layout=W.Layout(width="44%"))
        ledger = W.VBox([W.HBox([W.HTML("<b>Experiments</b>&nbsp;"), self.sort_button,
                                 W.HTML("&nbsp;views:&nbsp;"), *self.view_buttons.values()],
                                layout=W.Layout(align_items="center", flex_flow="row wrap")),
                         self.ledger_html, self.view_html, self.view_image])
        self.children = [self.title_html, W.HBox([W.HTML("workspace:&nbsp;"), self.session_dir_label]),
                         controls, self.error_label, self.banner.box, self.step_banner, W.HBox([left, right]), ledger]
        self.add_class("glia-research-panel")
        self.layout.border = "1px solid #ddd"
        self.layout.padding = "6px"

        # The session replays its journal into _on_event before going live, each record once;
        # nothing is drawn until the replay is folded in.
        with self._glia_lock:
            self._status = session.status
            self._pending = {iv.id: iv.to_dict() for iv in session.pending_interventions()}
        self._unsubscribe = session.subscribe(self._on_event, replay=True)
        with self._glia_lock:
            self._ready = True
            self._render(transcript=True, ledger=True, plot=True)

    # ------------------------------------------------------------------ events (any thread)
    def _on_event(self, ev: Mapping[str, Any]) -> None:
        with self._glia_lock:
            changed = self._fold(ev)
            if self._ready:
                self._render(**changed)

    def _fold(self, ev: Mapping[str, Any]) -> dict[str, bool]:
        """Update the model of the view from one event; says which parts changed."""
        t = ev.get("type")
        if t == "status":  # a status change (not a journal record)
            self._status = str(ev.get("status"))
        elif t == R.Finished.TYPE:
            self._status = str(ev.get("status") or self._status)
            self._held = None
        elif t == R.InterventionQueued.TYPE:
            self._pending[ev.get("id")] = {k: ev.get(k) for k in ("id", "kind", "text", "reason", "trigger")}
        elif t in (R.InterventionApproved.TYPE, R.InterventionEdited.TYPE, R.InterventionRejected.TYPE):
            self._pending.pop(ev.get("id"), None)
        elif t == StepHold.TYPE:
            self._held = dict(ev)
        elif t == StepReleased.TYPE:
            self._held = None
        elif t in (R.ApprovalPolicy.TYPE, R.Resumed.TYPE) and ev.get("approval"):
            self.approval_switch.show(str(ev["approval"]))
        led = self.ledger.add(ev)
        return {"transcript": self._transcript.add(ev), "ledger": led, "plot": led}

    # ------------------------------------------------------------------ rendering (holds the lock)
    def _render(self, transcript: bool = False, ledger: bool = False, plot: bool = False) -> None:
        if transcript:
            self.transcript_view.entries = [{"id": e["id"], "html": e["html"]} for e in self._transcript.entries]
        if ledger:
            self.ledger_html.value = self.ledger.html()
            self.best_text.value = self._best_html()
            if self._view is not None:
                self.show_view(self._view)
        if plot and self._plot:
            self._render_plot()
        self._render_status()
        self._render_budget()
        self._render_banners()

    def _render_banners(self) -> None:
        first = next(iter(self._pending.values()), None)
        if first is None or self.banner.iv is None or self.banner.iv.get("id") != first.get("id"):
            self.banner.show(first)
        held = self._held
        self.step_banner.layout.display = "" if held else "none"
        if held:
            self.step_meta.value = (
                f"<b>&#9995; Step mode: the Researcher wants to run experiment <i>{html.escape(str(held.get('name')))}"
                f"</i>.</b> Its hypothesis is in the box (edit it, then <b>Run it</b>), or write why not and "
                f"<b>Skip</b>. The code change since the last experiment:"
                f"<pre style='font-size:11px;max-height:220px;overflow:auto;background:#f6f6f6'>"
                f"{html.escape(str(held.get('diff') or '(no change)'))}</pre>")
            if self.step_box.value != str(held.get("hypothesis") or ""):
                self.step_box.value = str(held.get("hypothesis") or "")

    def _render_status(self) -> None:
        s = self._status
        self.status_label.value = STATUS_WORDS.get(s, s)
        running = s in ("running", "paused", "waiting_approval", "waiting_step")
        self.start_button.disabled = running
        self.start_button.description = "Start again" if s in ENDED else "Start"
        self.pause_button.disabled = s not in ("running", "waiting_approval", "waiting_step")
        self.resume_button.disabled = s != "paused"
        self.stop_button.disabled = s in ENDED
        on = bool(getattr(self.session, "pause_before_experiment", False))
        self.step_button.description = f"Step mode: {'on' if on else 'off'}"
        self.step_button.button_style = "info" if on else ""

    def _render_budget(self) -> None:
        try:
            b = self.session.budget_used  # the tracker's own lock only, never the session's
        except Exception:  # pragma: no cover - a view must not break on a half-built session
            return
        lim = b.get("limits") or {}

        def part(label: str, used: str, cap: Any, fmt: str) -> str:
            return f"{label} <b>{used}</b>" + ("" if cap is None else f" / {format(cap, fmt)}")

        # A local or unknown model has no price: its calls cost "unpriced", never $0.00.
        state = getattr(self.session, "state", None)
        unpriced = int(getattr(state, "unpriced_calls", 0) or 0)
        dollars = (part("dollars", "unpriced", None, "") + f" ({unpriced} model calls; tokens "
                   f"{int(getattr(state, 'input_tokens', 0)):,} in / "
                   f"{int(getattr(state, 'output_tokens', 0)):,} out)") if unpriced else \
            part("dollars", f"${float(b.get('usd') or 0):.2f}", lim.get("max_usd"), ".2f")
        self.budget_html.value = " · ".join([
            part("simulations", str(b.get("simulations", 0)), lim.get("max_simulations"), "d"),
            dollars,
            part("turns", str(b.get("turns", 0)), lim.get("max_turns"), "d"),
            part("time", f"{float(b.get('wall_s') or 0):.0f} s", lim.get("max_wall_s"), ".0f"),
        ])
        cap = lim.get("max_simulations")
        self.budget_bar.value = min(1.0, float(b.get("simulations", 0)) / cap) if cap else 0.0

    def _best_html(self) -> str:
        best, base = self.ledger.best(), self.ledger.base_score
        if best is None:
            return "<i>No successful experiment yet.</i>" + (f" Baseline {base:.4g}." if base is not None else "")
        gain = self.ledger.gain(best["score"])
        tail = f" ({gain:+.1%} vs the baseline's {base:.4g})" if gain is not None else ""
        return (f"<b>{html.escape(str(best.get('name')))}</b>: {html.escape(self.ledger.metric)} "
                f"<b>{best['score']:.4g}</b>{tail}")

    def _render_plot(self) -> None:
        from glia_nb.plots import research as plots, to_png

        fig = plots.best_so_far(self.ledger.experiments, self.ledger.base_score, objective=self.ledger.objective,
                                metric=self.ledger.metric, seeds=self._seeds)
        self.best_image.value = to_png(fig, dpi=110)

    def show_view(self, view: str | None) -> None:
        """Show one of ``lineage``, ``trade-off``, ``time split`` under the ledger (None hides)."""
        self._view = view
        show_ledger_view(self.ledger, view, self._seeds, self.view_html, self.view_image, self.view_buttons)

    # ------------------------------------------------------------------ controls (kernel thread)
    def _show_error(self, exc: Exception) -> None:
        self.error_label.value = (f"<span style='color:#b00020'>{html.escape(type(exc).__name__)}: "
                                  f"{html.escape(str(exc))}</span>")

    def _call(self, fn, *args: Any) -> bool:
        """Make one session call; show its error instead of raising into the front end."""
        try:
            fn(*args)
        except Exception as exc:
            self._show_error(exc)
            return False
        self.error_label.value = ""
        return True

    def _on_start(self, _b=None) -> None:
        self._call(self.session.start)

    def _on_pause(self, _b=None) -> None:
        self._call(self.session.pause)

    def _on_resume(self, _b=None) -> None:
        self._call(self.session.resume)

    def _on_stop(self, _b=None) -> None:
        self._call(self.session.stop)

    def _on_step_mode(self, _b=None) -> None:
        self._call(lambda: setattr(self.session, "pause_before_experiment",
                                   not getattr(self.session, "pause_before_experiment", False)))
        with self._glia_lock:
            self._render_status()

    def _on_pace(self, _b=None) -> None:
        """Cycle the session's pace: full speed, 5 s and 15 s per Researcher turn."""
        now = float(getattr(self.session, "pace_s", 0.0) or 0.0)
        nxt = next((p for p in PACES if p > now), PACES[0])
        self._call(lambda: setattr(self.session, "pace_s", nxt))
        self.pace_button.description = "pace: full speed" if not nxt else f"pace: {nxt:g} s per turn"

    def _on_sort(self, _b=None) -> None:
        with self._glia_lock:
            self.ledger.sort_by = "order" if self.ledger.sort_by == "score" else "score"
            self.sort_button.description = "sort by order" if self.ledger.sort_by == "score" else "sort by score"
            self.ledger_html.value = self.ledger.html()

    def _on_nudge(self, _action: str, text: str) -> str:
        self.session.nudge(text)  # raises on an empty text: the box keeps it and says why
        self.error_label.value = ""
        return "queued: it reaches the Researcher before its next turn (a receipt follows in the transcript)"

    def _on_step_action(self, action: str, text: str) -> str:
        if action == "run":
            self.session.release_step("run", hypothesis=text)
            return "running the experiment"
        self.session.release_step("skip", note=text)
        return "skipped; the Researcher is told why"

    # ------------------------------------------------------------------ misc
    def transcript_text(self) -> str:
        """The transcript as plain text."""
        with self._glia_lock:
            return self._transcript.text()

    def transcript_html(self) -> str:
        """The transcript as one static HTML block."""
        with self._glia_lock:
            return self._transcript.html()
