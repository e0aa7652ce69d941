"""Where simulations fan out: in this process, a local process pool, or a Dask cluster.

Every command and helper that runs many simulations takes the same two settings — a number of
local worker processes and, optionally, the address of a Dask scheduler (``--dask
tcp://host:8786`` on the command line, or the ``GLIA_DASK`` environment variable) — and gets
its executor from :func:`open_executor`, so a cluster is used the same way everywhere.

What travels to a Dask worker is a job's arguments: a scenario's recipe (not its trace: the
worker draws the trace from the seed with its own copy of ``workloads``), the policy spec or
the candidate's source code, and the limits. Workers need glia-nb installed at the same
version; an untrusted candidate is confined on the worker exactly as on this machine, since
the job itself starts the confined policy process there.
"""
from __future__ import annotations

import os
import re
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Iterator

DASK_ENV = "GLIA_DASK"
CONNECT_TIMEOUT_S = 10.0
_ADDRESS = re.compile(r"^(tcp|tls|inproc|ucx|ws|wss)://[^\s/]+(:\d+)?/?$")


class ExecutorError(RuntimeError):
    """The requested executor cannot be had (bad address, unreachable scheduler, no dask)."""


def dask_address(explicit: str | None = None) -> str | None:
    """The scheduler address to use: ``explicit``, else ``$GLIA_DASK``, else None.
    Raises :class:`ExecutorError` for an address that is not ``scheme://host[:port]``."""
    address = (explicit or os.environ.get(DASK_ENV) or "").strip() or None
    if address is not None and not _ADDRESS.match(address):
        raise ExecutorError(f"not a Dask scheduler address: {address!r} "
                            "(expected e.g. tcp://10.0.0.5:8786)")
    return address


@contextmanager
def open_executor(workers: int = 1, dask: str | None = None) -> Iterator[Executor | None]:
    """An executor for the duration of a ``with`` block.

    With a Dask address (``dask`` or ``$GLIA_DASK``): the cluster's executor
    (``distributed.Client(address).get_executor()``); ``workers`` is then ignored. Otherwise
    a local process pool of ``workers`` processes, or None (run in this process) when
    ``workers <= 1``. Raises :class:`ExecutorError` with a one-line reason when the cluster
    cannot be reached within ``CONNECT_TIMEOUT_S``."""
    if workers < 1:
        raise ExecutorError(f"workers must be >= 1, got {workers}")
    address = dask_address(dask)
    if address is None:
        if workers == 1:
            yield None
            return
        pool = ProcessPoolExecutor(workers)
        try:
            yield pool
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return
    try:
        # Lazy: dask is an optional extra, and importing it costs a second.
        from distributed import Client
    except ImportError:
        raise ExecutorError("a Dask cluster needs the dask extra: "
                            "python3 -m pip install 'glia-nb[dask]'") from None
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ExecutorError(f"cannot reach the Dask scheduler at {address} within "
                            f"{CONNECT_TIMEOUT_S:g} s ({type(exc).__name__})") from None
    try:
        yield client.get_executor()
    finally:
        client.close()


__all__ = ["open_executor", "dask_address", "ExecutorError", "DASK_ENV"]
