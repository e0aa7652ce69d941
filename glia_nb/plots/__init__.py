"""Figures (matplotlib), views only: nothing in the library imports this package.

* :mod:`glia_nb.plots.requests` — where requests' time went (re-exported here, so
  ``from glia_nb import plots; plots.side_by_side(...)`` reads as before);
* :mod:`glia_nb.plots.research` — a research session: best so far, the trade-off
  scatter, and where each experiment's requests spent their time (re-exported here);
* :mod:`glia_nb.plots.stack` — the stack studies (batch policy, autoscaler, H100);
* :mod:`glia_nb.plots.baselines` — the search-baseline comparison.
"""
from glia_nb.plots.requests import *  # noqa: F401,F403
from glia_nb.plots.requests import __all__ as _requests_all
from glia_nb.plots.research import *  # noqa: F401,F403
from glia_nb.plots.research import __all__ as _research_all

__all__ = [*_requests_all, *_research_all]
