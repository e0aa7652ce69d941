"""Figures (matplotlib), views only: nothing in the library imports this package.

* :mod:`glia_nb.plots.requests` — where requests' time went (re-exported here, so
  ``from glia_nb import plots; plots.side_by_side(...)`` reads as before);
* :mod:`glia_nb.plots.stack` — the stack studies (batch policy, autoscaler, H100);
* :mod:`glia_nb.plots.baselines` — the search-baseline comparison.
"""
from glia_nb.plots.requests import *  # noqa: F401,F403
from glia_nb.plots.requests import __all__
