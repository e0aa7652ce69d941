"""Search baselines side by side with Glia: LLM-as-is sampling, FunSearch, Evolution of
Heuristics and OpenEvolve, on one evaluator and one budget (``glia compare``).

* :mod:`~glia_nb.baselines.common`: the shared evaluator, the per-run budget ledger
  (simulations, model calls, dollars) and candidate extraction.
* :mod:`~glia_nb.baselines.prompts`: the detailed problem statement every method starts from.
* :mod:`~glia_nb.baselines.as_is`, :mod:`~glia_nb.baselines.funsearch`,
  :mod:`~glia_nb.baselines.eoh`, :mod:`~glia_nb.baselines.openevolve_runner`: the methods
  (each a ``run(ctx, **params)`` function).
* :mod:`~glia_nb.baselines.glia_methods`: Glia SCG / MCG-Par4 / MCG-Seq and the fixed
  routers under the same budget.
* :mod:`~glia_nb.baselines.compare`: the harness and the ``glia compare`` command;
  :mod:`~glia_nb.plots.baselines`: its figures and tables.

Importing this package imports no simulator, model SDK or plotting library.
"""
from __future__ import annotations

from importlib import import_module

__all__ = ["METHODS", "run_compare"]


def __getattr__(name: str):
    # Lazy, so that importing the package stays cheap (no SDKs, no simulator).
    if name in __all__:
        return getattr(import_module("glia_nb.baselines.compare"), name)
    raise AttributeError(f"module 'glia_nb.baselines' has no attribute {name!r}")
