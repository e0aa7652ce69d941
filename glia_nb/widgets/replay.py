"""``ReplayPanel(journal_path)``: walk through a finished session's journal with a scrubber.

For a case-study reader: a slider over the journal's records (and ◀ / ▶ buttons, one
record at a time) rebuilds the transcript, the experiment ledger, the best-so-far plot
and the ledger's views (lineage, trade-off, time split) as they stood after that record.
It needs no session, no kernel-side study and no API key: only the ``journal.jsonl`` (and,
for code diffs, the experiment folders beside it).

    from glia_nb.widgets import ReplayPanel
    ReplayPanel("runs/routing-a10-…/journal.jsonl")         # or the session's folder
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import ipywidgets as W

from glia_nb.research.journal import read_journal
from glia_nb.tasks.objective import Objective
from glia_nb.widgets.ledger import Ledger
from glia_nb.widgets.research_panel import button, show_ledger_view
from glia_nb.widgets.sendbox import TranscriptView
from glia_nb.widgets.transcript import CSS, Transcript

__all__ = ["ReplayPanel"]


def _describe(rec: dict[str, Any]) -> str:
    t = rec.get("type", "?")
    extra = rec.get("name") or rec.get("kind") or rec.get("status") or rec.get("source") or ""
    return f"{t}{' · ' + str(extra) if extra else ''}"


class ReplayPanel(W.VBox):
    """A journal, replayed up to the record chosen on the slider (``panel.position``)."""

    def __init__(self, journal_path: str | Path, *, position: int | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        path = Path(journal_path)
        if path.is_dir():
            path = path / "journal.jsonl"
        self.journal_path = path
        self.header, self.records = read_journal(path)
        task = self.header.get("task") or {}
        objective = task.get("objective") if isinstance(task.get("objective"), dict) else {}
        self._objective = Objective(name=objective.get("name", "score"), direction=objective.get("direction", "min"))
        self._lower, self._metric = self._objective.lower_is_better, self._objective.name
        seeds = task.get("eval_seeds") or list(range(int(task.get("num_eval_seeds") or 0)))
        self._seeds = list(seeds)
        self._policy_file = task.get("policy_file")
        self._view: str | None = None
        n = len(self.records)

        title = task.get("title") or self.header.get("task_name") or "research session"
        self.title_html = W.HTML(f"<h3 style='margin:4px 0'>Replay — {html.escape(str(title))}</h3>"
                                 f"<div style='color:#555'>{n} journal records from "
                                 f"<code>{html.escape(str(path))}</code>. Drag the slider or step with ◀ ▶ to see "
                                 f"the study as it stood after each record.</div>")
        self.slider = W.IntSlider(value=n if position is None else max(0, min(n, position)), min=0, max=n,
                                  description="record", continuous_update=False, layout=W.Layout(width="60%"))
        self.slider.add_class("glia-replay-slider")
        self.prev_button = button("◀", "glia-replay-prev", tooltip="one record back")
        self.next_button = button("▶", "glia-replay-next", tooltip="one record on")
        self.prev_button.on_click(lambda _b: self.step(-1))
        self.next_button.on_click(lambda _b: self.step(+1))
        self.where_label = W.Label("")
        self.where_label.add_class("glia-replay-where")
        self.transcript_view = TranscriptView(css=CSS, layout=W.Layout(width="100%"))
        self.transcript_view.add_class("glia-transcript")
        self.ledger_html = W.HTML("")
        self.ledger_html.add_class("glia-ledger")
        self.best_image = W.Image(format="png", layout=W.Layout(width="100%", max_width="620px"))
        self.best_image.add_class("glia-best-plot")
        self.view_buttons = {v: button(v, f"glia-view-{v.replace(' ', '-')}") for v in ("lineage", "trade-off",
                                                                                         "time split")}
        for v, b in self.view_buttons.items():
            b.on_click(lambda _b, v=v: self.show_view(None if self._view == v else v))
        self.view_html = W.HTML("")
        self.view_html.add_class("glia-view")
        self.view_image = W.Image(format="png", layout=W.Layout(max_width="760px", display="none"))
        self.slider.observe(lambda ch: self._render(), names="value")

        self.children = [
            self.title_html,
            W.HBox([self.prev_button, self.slider, self.next_button, self.where_label],
                   layout=W.Layout(align_items="center")),
            W.HBox([W.VBox([W.HTML("<b>Transcript</b>"), self.transcript_view], layout=W.Layout(width="56%")),
                    W.VBox([W.HTML("<b>Best so far</b>"), self.best_image], layout=W.Layout(width="44%"))]),
            W.HBox([W.HTML("<b>Experiments</b>&nbsp;views:&nbsp;"), *self.view_buttons.values()],
                   layout=W.Layout(align_items="center")),
            self.ledger_html, self.view_html, self.view_image,
        ]
        self.add_class("glia-replay-panel")
        self.layout.border = "1px solid #ddd"
        self.layout.padding = "6px"
        self._render()

    @property
    def position(self) -> int:
        """How many records are replayed (0 … len(records))."""
        return int(self.slider.value)

    def step(self, delta: int) -> None:
        """Move the scrubber ``delta`` records (clamped)."""
        self.slider.value = max(0, min(self.slider.max, self.slider.value + delta))

    def _fold(self) -> tuple[Transcript, Ledger]:
        tx = Transcript()
        ledger = Ledger(objective=self._objective, root=self.journal_path.parent, policy_file=self._policy_file)
        for rec in self.records[:self.position]:
            tx.add(rec)
            ledger.add(rec)
        return tx, ledger

    def _render(self) -> None:
        from glia_nb.plots import research as plots, to_png

        self._tx, self._ledger = self._fold()
        k = self.position
        last = self.records[k - 1] if k else None
        self.where_label.value = (f"{k} / {len(self.records)}" + (f" — {_describe(last)}" if last else "")
                                  + (f" · {last.get('wall_s'):.0f} s into the study" if last and isinstance(
                                      last.get("wall_s"), (int, float)) else ""))
        self.transcript_view.entries = [{"id": e["id"], "html": e["html"]} for e in self._tx.entries]
        self.ledger_html.value = self._ledger.html()
        fig = plots.best_so_far(self._ledger.experiments, self._ledger.base_score, objective=self._objective,
                                metric=self._metric, seeds=self._seeds)
        self.best_image.value = to_png(fig, dpi=110)
        self.prev_button.disabled, self.next_button.disabled = k == 0, k == len(self.records)
        self.show_view(self._view)

    def show_view(self, view: str | None) -> None:
        """Show ``lineage``, ``trade-off`` or ``time split`` under the ledger (None hides)."""
        self._view = view
        show_ledger_view(self._ledger, view, self._seeds, self.view_html, self.view_image, self.view_buttons)

    def transcript_text(self) -> str:
        """The replayed transcript (up to the slider) as plain text."""
        return self._tx.text()
