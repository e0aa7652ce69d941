"""Command-line options shared by several ``glia`` commands."""
from __future__ import annotations

from glia_nb.evaluation.executors import DASK_ENV


def add_executor_args(parser, workers: int = 1) -> None:
    """``--workers N`` (local processes) and ``--dask ADDRESS`` (a Dask scheduler; default
    ``$GLIA_DASK``): where a command's simulations fan out (:func:`open_executor`)."""
    parser.add_argument("--workers", type=int, default=workers,
                        help=f"local processes for simulations (default {workers})")
    parser.add_argument("--dask", metavar="ADDRESS",
                        help=f"run simulations on a Dask cluster, e.g. tcp://10.0.0.5:8786 "
                             f"(default ${DASK_ENV}; docs/dask.md)")
