"""``ResearchPanel(session)``: a live view of a research session with its controls.

A thin view: every button makes one call on the :class:`~glia_nb.research.session.session.Session`; what
the view shows is folded from the session's events (journal records), which arrive on the
session's worker thread. From that thread the panel only sets simple traits (HTML values,
image bytes, labels, button states), never ``with output:``. The panel never calls the
session while it holds its own lock, so it cannot deadlock with the session's lock.

    panel = ResearchPanel(session)
    panel                      # display it; then session.start() or the Start button
"""
from __future__ import annotations

import html
import math
import threading
from typing import Any, Mapping

import ipywidgets as W

from glia_nb.research import records as R
from glia_nb.research.fold import fold, new_state
from glia_nb.research.records import ENDED
from glia_nb.tasks.objective import Objective
from glia_nb.widgets._base import SessionBox
from glia_nb.widgets.transcript import Transcript

__all__ = ["ResearchPanel"]

_LEDGER_COLUMNS = ("#", "name", "score", "gain vs baseline", "restarted", "p90 TTFT s", "seeds", "note")
_TRANSCRIPT_TYPES = frozenset({
    *(cls.TYPE for cls in (R.UserMessage, R.Assistant, R.ToolResultRecord, R.Baseline, R.Experiment,
                           R.SupervisorReview, R.InterventionQueued, R.InterventionApproved,
                           R.InterventionEdited, R.InterventionRejected, R.Nudge, R.ApprovalPolicy,
                           R.BudgetExhausted, R.Error, R.Finished)),
    *R.CONTROL_TYPES,
})


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _button(description: str, cls: str, style: str = "", icon: str = "", tooltip: str = "") -> W.Button:
    b = W.Button(description=description, button_style=style, icon=icon, tooltip=tooltip,
                 layout=W.Layout(width="auto"))
    b.add_class(cls)
    return b


class ResearchPanel(SessionBox):
    """Transcript, experiment ledger, best-so-far plot, budget, controls and a nudge box
    for one session. ``panel.close()`` unsubscribes it from the session."""

    def __init__(self, session: Any, *, max_entries: int = 80, plot: bool = True, **kw: Any) -> None:
        super().__init__(**kw)
        self.session = session
        self._glia_lock = threading.RLock()
        self._ready = False
        self._transcript = Transcript(max_entries=max_entries)
        self._status = "created"
        self._plot = plot
        task = getattr(session, "task", None)
        objective = getattr(task, "objective", None)
        # Which score is better is the task's Objective's to say (lower when none is known).
        self._objective = objective if isinstance(objective, Objective) else Objective()
        # The view's model is the journal's fold, the same one the session keeps.
        self._state = new_state(lower_is_better=self._objective.lower_is_better)
        self._metric = getattr(objective, "name", "score")

        title = getattr(task, "title", "") or getattr(task, "name", "") or "research session"
        self.title_html = W.HTML(f"<h3 style='margin:4px 0'>Research session — {html.escape(str(title))}</h3>")
        self.session_dir_label = W.Label(str(getattr(session, "path", "")))
        self.session_dir_label.add_class("glia-session-dir")
        self.status_label = W.Label("created")
        self.status_label.add_class("glia-status")
        self.start_button = _button("Start", "glia-start", "success", "play", "run the study in the background")
        self.pause_button = _button("Pause", "glia-pause", "", "pause", "hold the Researcher before its next turn")
        self.resume_button = _button("Resume", "glia-resume", "", "forward", "let a paused study go on")
        self.stop_button = _button("Stop", "glia-stop", "danger", "stop", "end the study after the current step")
        for b, fn in ((self.start_button, self._on_start), (self.pause_button, self._on_pause),
                      (self.resume_button, self._on_resume), (self.stop_button, self._on_stop)):
            b.on_click(fn)
        self.error_label = W.HTML("")
        self.error_label.add_class("glia-error")

        self.transcript_html = W.HTML(self._transcript.html(), layout=W.Layout(width="100%"))
        self.transcript_html.add_class("glia-transcript")
        self.ledger_html = W.HTML("<i>No experiments yet.</i>", layout=W.Layout(width="100%"))
        self.ledger_html.add_class("glia-ledger")
        self.best_image = W.Image(format="png", layout=W.Layout(width="100%", max_width="620px"))
        self.best_image.add_class("glia-best-plot")
        self.best_text = W.HTML("")
        self.best_text.add_class("glia-best")
        self.budget_html = W.HTML("")
        self.budget_html.add_class("glia-budget")
        self.budget_bar = W.FloatProgress(value=0.0, min=0.0, max=1.0, description="simulations",
                                          layout=W.Layout(width="340px"))
        self.budget_bar.add_class("glia-budget-bar")

        self.nudge_text = W.Textarea(placeholder="Nudge the Researcher, e.g. 'look at who waits longest'…",
                                     layout=W.Layout(flex="1 1 auto", width="auto", height="60px"))
        self.nudge_text.add_class("glia-nudge-text")
        self.send_button = _button("Send", "glia-nudge-send", "primary", "paper-plane",
                                   "deliver this message to the Researcher before its next turn")
        self.send_button.layout.min_width = "90px"
        self.send_button.disabled = True
        self.send_button.on_click(self._on_send)
        self.nudge_text.observe(self._on_nudge_typed, names="value")

        controls = W.HBox([self.start_button, self.pause_button, self.resume_button, self.stop_button,
                           W.HTML("&nbsp;status:&nbsp;"), self.status_label],
                          layout=W.Layout(align_items="center", flex_flow="row wrap"))
        left = W.VBox([W.HTML("<b>Transcript</b>"), self.transcript_html,
                       W.HBox([self.nudge_text, self.send_button], layout=W.Layout(align_items="flex-end", width="100%"))],
                      layout=W.Layout(width="56%", padding="0 8px 0 0"))
        right = W.VBox([W.HTML("<b>Best so far</b>"), self.best_text, self.best_image,
                        W.HTML("<b>Budget used</b>"), self.budget_bar, self.budget_html],
                       layout=W.Layout(width="44%"))
        ledger = W.VBox([W.HTML("<b>Experiments</b>"), self.ledger_html])
        self.children = [self.title_html, W.HBox([W.HTML("workspace:&nbsp;"), self.session_dir_label]),
                         controls, self.error_label, W.HBox([left, right]), ledger]
        self.add_class("glia-research-panel")
        self.layout.border = "1px solid #ddd"
        self.layout.padding = "6px"

        # The session replays its journal into _on_event before going live, each record once;
        # nothing is drawn until the replay is folded in.
        with self._glia_lock:
            self._status = session.status
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
        changed = {"transcript": False, "ledger": False, "plot": False}
        if t == "status":
            self._status = str(ev.get("status"))
        elif t == "finished":
            self._status = str(ev.get("status") or self._status)
        if ev.get("seq") is not None:  # a journal record (status events have no seq)
            fold(self._state, ev)
        if t in (R.Experiment.TYPE, R.Baseline.TYPE):
            changed["ledger"] = changed["plot"] = True
        if t in _TRANSCRIPT_TYPES:
            changed["transcript"] = self._transcript.add(ev)
        return changed

    # ------------------------------------------------------------------ rendering (holds the lock)
    def _render(self, transcript: bool = False, ledger: bool = False, plot: bool = False) -> None:
        if transcript:
            self.transcript_html.value = self._transcript.html()
        if ledger:
            self.ledger_html.value = self._ledger_html()
            self.best_text.value = self._best_html()
        if plot and self._plot:
            self._render_plot()
        self._render_status()
        self._render_budget()

    def _render_status(self) -> None:
        s = self._status
        self.status_label.value = s
        running = s in ("running", "paused", "waiting_approval")
        self.start_button.disabled = running
        self.start_button.description = "Start" if s == "created" else "Start again"
        self.pause_button.disabled = s not in ("running", "waiting_approval")
        self.resume_button.disabled = s != "paused"
        self.stop_button.disabled = s in ENDED

    def _render_budget(self) -> None:
        try:
            b = self.session.budget_used  # the tracker's own lock only, never the session's
        except Exception:  # pragma: no cover - a view must not break on a half-built session
            return
        lim = b.get("limits") or {}

        def part(label: str, used: str, cap: Any, fmt: str) -> str:
            return f"{label} <b>{used}</b>" + ("" if cap is None else f" / {format(cap, fmt)}")

        self.budget_html.value = " · ".join([
            part("simulations", str(b.get("simulations", 0)), lim.get("max_simulations"), "d"),
            part("dollars", f"${float(b.get('usd') or 0):.2f}", lim.get("max_usd"), ".2f"),
            part("turns", str(b.get("turns", 0)), lim.get("max_turns"), "d"),
            part("time", f"{float(b.get('wall_s') or 0):.0f} s", lim.get("max_wall_s"), ".0f"),
        ])
        cap = lim.get("max_simulations")
        self.budget_bar.value = min(1.0, float(b.get("simulations", 0)) / cap) if cap else 0.0

    def _scores(self) -> tuple[list[dict[str, Any]], float | None]:
        base = _num((self._baseline or {}).get("score"))
        return self._experiments, base

    @property
    def _experiments(self) -> list[dict[str, Any]]:
        return self._state.experiments

    @property
    def _baseline(self) -> dict[str, Any] | None:
        return self._state.baseline

    def _best(self) -> dict[str, Any] | None:
        return self._state.best_experiment()

    def _best_html(self) -> str:
        best, base = self._best(), _num((self._baseline or {}).get("score"))
        if best is None:
            return "<i>No successful experiment yet.</i>" + (f" Baseline {base:.4g}." if base is not None else "")
        gain = ""
        rel = self._objective.improvement(best["score"], base)
        if rel is not None:
            gain = f" ({rel:+.1%} vs baseline {base:.4g})"
        return (f"<b>{html.escape(str(best.get('name')))}</b>: {html.escape(self._metric)} "
                f"<b>{best['score']:.4g}</b>{gain}")

    def _ledger_html(self) -> str:
        import pandas as pd

        def f(v: float | None, spec: str) -> str:
            return "" if v is None else format(v, spec)

        rows = []
        base = _num((self._baseline or {}).get("score"))
        best = self._best()
        if self._baseline is not None:
            m = self._baseline.get("metrics") or {}
            rows.append(["0", "baseline", f(base, ".4g"), "", f(_num(m.get("restart_fraction")), ".1%"),
                         f(_num(m.get("p90_ttft_s")), ".3g"), str(self._baseline.get("seeds", self._baseline.get("simulations", ""))), ""])
        for e in self._experiments:
            s, m = _num(e.get("score")), e.get("metrics") or {}
            vs = self._objective.improvement(s, base)
            note = ("failed: " + str(e.get("error") or "")[:60] if s is None
                    else "★ best" if best and e.get("id") == best.get("id") else "")
            rows.append([str(e.get("id", "")), str(e.get("name", "")), f(s, ".4g") or "—", f(vs, "+.1%"),
                         f(_num(m.get("restart_fraction")), ".1%"), f(_num(m.get("p90_ttft_s")), ".3g"),
                         str(e.get("seeds", e.get("simulations", ""))), note])
        if not rows:
            return "<i>No experiments yet.</i>"
        table = pd.DataFrame(rows, columns=list(_LEDGER_COLUMNS)).to_html(
            index=False, escape=True, border=0, classes="glia-ledger-table")
        css = ("<style>.glia-ledger-table td,.glia-ledger-table th{padding:1px 8px;text-align:right}"
               ".glia-ledger-table td:nth-child(2),.glia-ledger-table th:nth-child(2),"
               ".glia-ledger-table td:last-child{text-align:left}</style>")
        return f"{css}<div style='max-height:260px;overflow-y:auto;font-size:12px'>{table}</div>"

    def _render_plot(self) -> None:
        from glia_nb.plots import requests as plots

        experiments, base = self._scores()
        fig = plots.best_so_far(experiments, base, objective=self._objective)
        fig.axes[0].set_ylabel(self._metric)
        self.best_image.value = plots.to_png(fig, dpi=80)

    # ------------------------------------------------------------------ controls (kernel thread)
    def _call(self, fn, *args: Any) -> bool:
        """Make one session call; show its error instead of raising into the front end."""
        try:
            fn(*args)
        except Exception as exc:
            self.error_label.value = f"<span style='color:#b00020'>{html.escape(type(exc).__name__)}: " \
                                     f"{html.escape(str(exc))}</span>"
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

    def _on_send(self, _b=None) -> None:
        if self._call(self.session.nudge, self.nudge_text.value):
            self.nudge_text.value = ""

    def _on_nudge_typed(self, change: Mapping[str, Any]) -> None:
        self.send_button.disabled = not str(change["new"]).strip()

    # ------------------------------------------------------------------ misc
    def transcript_text(self) -> str:
        """The transcript as plain text."""
        with self._glia_lock:
            return self._transcript.text()
