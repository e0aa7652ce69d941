"""``RequestBreakdown(result, other=None, labels=...)``: where each request's time went.

Shows one of the figures of :mod:`glia_nb.plots.requests` (stacked time components sorted by e2e or
binned by prompt length, restart counts, memory timelines per replica) as a PNG image
widget, for one result or two side by side; a Dropdown switches the view. Images are
rendered once per view and cached.

    RequestBreakdown(llq_result, new_result, labels=("LLQ", "discovered"))
"""
from __future__ import annotations

import html
from typing import Any, Sequence

import ipywidgets as W

from glia_nb.plots import requests as plots

__all__ = ["RequestBreakdown", "VIEW_NOTES"]

VIEW_NOTES = {
    "e2e": "Requests sorted by end-to-end latency, in groups of equal size; each bar splits the group's "
           "mean latency into time in the global queue, the replica queue, prefill, decode and time lost "
           "to restarts (work redone after a pre-emption).",
    "prompt": "The same split, binned by prompt length: long prompts need many KV blocks, so they are the "
              "ones that wait for memory or get pre-empted.",
    "memory": "KV-cache memory use per replica over time (shaded: the peak in each time bin, line: the mean): "
              "a replica pinned near 100% pre-empts its youngest request whenever a running one needs a block.",
    "restarts": "How many times requests were restarted, and the e2e latency of restarted requests against "
                "those never restarted.",
}


def _summary_row(label: str, res: Any) -> str:
    req = plots._requests(res)
    n = len(req)
    if not n:
        return f"<tr><td>{html.escape(label)}</td><td colspan='5'>no completed requests</td></tr>"
    cells = [f"{n:,}", f"{req['e2e_s'].mean():.2f}", f"{req['e2e_s'].quantile(0.9):.2f}",
             f"{(req['restarts'] > 0).mean():.1%}", f"{req['lost_to_restarts_s'].mean():.2f}"]
    return f"<tr><td><b>{html.escape(label)}</b></td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


class RequestBreakdown(W.VBox):
    """Per-request restart and queueing breakdown of one or two simulation results."""

    def __init__(self, result: Any, other: Any = None, labels: Sequence[str] | None = None, *,
                 view: str = "e2e", dpi: int = 150, **kw: Any) -> None:
        super().__init__(**kw)
        self.results = [result] + ([other] if other is not None else [])
        if labels is None:
            labels = [str(getattr(r, "router", f"policy {i + 1}")) for i, r in enumerate(self.results)]
        self.labels = [str(x) for x in labels][: len(self.results)]
        if len(self.labels) != len(self.results):
            raise ValueError("give one label per result")
        if view not in plots.VIEWS:
            raise ValueError(f"unknown view {view!r}; known: {', '.join(plots.VIEWS)}")
        self.dpi = dpi
        self._cache: dict[str, bytes] = {}
        self.view_dropdown = W.Dropdown(options=[(title, key) for key, (title, _) in plots.VIEWS.items()],
                                        value=view, description="view:")
        self.view_dropdown.add_class("glia-breakdown-view")
        self.image = W.Image(format="png", layout=W.Layout(width="100%", max_width="1100px"))
        self.image.add_class("glia-breakdown-image")
        self.note_html = W.HTML("")
        self.note_html.add_class("glia-breakdown-note")
        header = ("<tr><th></th><th>requests</th><th>mean e2e s</th><th>p90 e2e s</th><th>restarted</th>"
                  "<th>mean lost to restarts s</th></tr>")
        rows = "".join(_summary_row(lab, r) for lab, r in zip(self.labels, self.results))
        self.summary_html = W.HTML("<style>.glia-bd-summary td,.glia-bd-summary th{padding:1px 10px;text-align:right}"
                                   "</style><table class='glia-bd-summary' style='font-size:12px'>"
                                   f"{header}{rows}</table>")
        self.summary_html.add_class("glia-breakdown-summary")
        self.view_dropdown.observe(self._on_view, names="value")
        seeds = sorted({getattr(r, "seed", None) for r in self.results} - {None})
        on = (f" — seed {', '.join(map(str, seeds))}: one run of each policy on the same trace, not a mean over "
              "seeds" if seeds else "")
        self.children = [W.HTML(f"<h4 style='margin:4px 0'>Where the time went{html.escape(on)}</h4>"), self.summary_html,
                         self.view_dropdown, self.note_html, self.image]
        self.add_class("glia-breakdown")
        self.show(view)

    def figure(self, view: str | None = None):
        """The matplotlib figure of a view (the current one by default)."""
        return plots.side_by_side(view or self.view_dropdown.value, self.results, self.labels)

    def show(self, view: str) -> None:
        """Render ``view`` (cached) into the image."""
        if view not in self._cache:
            self._cache[view] = plots.to_png(self.figure(view), dpi=self.dpi)
        self.image.value = self._cache[view]
        self.note_html.value = f"<span style='color:#555;font-size:12px'>{html.escape(VIEW_NOTES[view])}</span>"
        if self.view_dropdown.value != view:
            self.view_dropdown.value = view

    def _on_view(self, change) -> None:
        self.show(change["new"])
