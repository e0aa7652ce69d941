"""Jupyter widgets over sessions and simulation results (ipywidgets 8).

* :class:`ResearchPanel` — live transcript, experiment ledger, best-so-far plot, budget,
  start / pause / resume / stop and a nudge box for a :class:`~glia_nb.research.session.session.Session`.
* :class:`SupervisorInbox` — the Supervisor's pending interventions (approve, edit,
  reject) and the auto ↔ manual approval switch.
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

__all__ = ["ResearchPanel", "SupervisorInbox", "RequestBreakdown", "progress", "simulate_seeds",
           "compare_routers", "summary_table", "track_session", "wait_async"]

_WHERE = {
    "ResearchPanel": "research_panel", "SupervisorInbox": "inbox", "RequestBreakdown": "breakdown",
}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f"glia_nb.widgets.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'glia_nb.widgets' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_WHERE))
