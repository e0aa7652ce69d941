"""Jupyter widgets over sessions and simulation results (ipywidgets 8).

* :class:`ResearchPanel` — live transcript, experiment ledger, best-so-far plot, budget,
  start / pause / resume / stop and a nudge box for a :class:`~glia_nb.research.session.session.Session`.
* :class:`SupervisorInbox` — the Supervisor's pending interventions (approve, edit,
  reject) and the auto ↔ manual approval switch (the research panel also shows a waiting
  intervention as a banner, and has the switch, step mode and pace controls).
* :class:`ReplayPanel` — ``ReplayPanel(journal_path)`` (a ``journal.jsonl`` or the session
  folder holding it): a finished session replayed with a scrubber (a slider over the
  journal's records, ◀ / ▶ one record at a time); the transcript, ledger, best-so-far plot
  and the ledger's views show the study as it stood after the chosen record. Needs only
  the journal (and the experiment folders beside it for code diffs); ``panel.position``
  and ``panel.step(±1)`` drive it from code. Made for case-study notebooks.
* :class:`SendBox` — a text box whose buttons carry the typed text with the click
  (custom comm messages): what a person typed arrives whole even while a cell awaits a
  running session under ipykernel 7.
* :class:`RequestBreakdown` — per-request restart and queueing plots of one or two results.
* :func:`progress`, :func:`simulate_seeds`, :func:`compare_routers`, :func:`track_session`,
  :func:`wait_async` — progress bars and helpers for long work (``tqdm.auto``).

The widget classes are imported on first use, so ``import glia_nb.widgets`` is cheap.
"""
from __future__ import annotations

from importlib import import_module

# Eager (stdlib-only at import): binding these names here keeps ``widgets.progress`` the
# function rather than the submodule of the same name.
from glia_nb.widgets.progress import (compare_routers, progress, simulate_seeds, summary_table,
                                      track_session, wait_async)

__all__ = ["ResearchPanel", "SupervisorInbox", "RequestBreakdown", "ReplayPanel", "SendBox", "progress", "simulate_seeds",
           "compare_routers", "summary_table", "track_session", "wait_async"]

_WHERE = {
    "ResearchPanel": "research_panel", "SupervisorInbox": "inbox", "RequestBreakdown": "breakdown",
    "ReplayPanel": "replay", "SendBox": "sendbox",
}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f"glia_nb.widgets.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'glia_nb.widgets' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_WHERE))
