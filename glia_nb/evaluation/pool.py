"""A local process pool that replaces itself when one of its workers dies.

Pool workers only simulate (trusted code), but a worker can still die: killed by the
out-of-memory killer, or, at isolation level ``"process"``, by a candidate that signals its
parent through ``ctypes``.  A plain :class:`~concurrent.futures.ProcessPoolExecutor` is then
broken for good; :class:`RebuildingProcessPool` starts a fresh one, so the session and every
later experiment go on (:func:`glia_nb.evaluation.harness.evaluate` calls :meth:`rebuild`).
"""
from __future__ import annotations

import threading
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool


class RebuildingProcessPool(Executor):
    """A :class:`ProcessPoolExecutor` (same arguments) that rebuilds itself when broken."""

    def __init__(self, max_workers: int | None = None, **kwargs):
        self._kwargs = dict(kwargs, max_workers=max_workers)
        self._lock = threading.Lock()
        self._pool = ProcessPoolExecutor(**self._kwargs)
        self.rebuilds = 0

    def submit(self, fn, /, *args, **kwargs) -> Future:
        """Submit to the current pool; a broken one is replaced first."""
        with self._lock:
            pool = self._pool
        try:
            return pool.submit(fn, *args, **kwargs)
        except BrokenProcessPool:
            self.rebuild(pool)
            with self._lock:
                return self._pool.submit(fn, *args, **kwargs)

    def rebuild(self, broken: ProcessPoolExecutor | None = None) -> None:
        """Replace the pool (only if it is still ``broken``, when given)."""
        with self._lock:
            if broken is not None and self._pool is not broken:
                return  # another thread already rebuilt it
            old, self._pool = self._pool, ProcessPoolExecutor(**self._kwargs)
            self.rebuilds += 1
        old.shutdown(wait=False, cancel_futures=True)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Shut the current pool down."""
        with self._lock:
            pool = self._pool
        pool.shutdown(wait=wait, cancel_futures=cancel_futures)


__all__ = ["RebuildingProcessPool"]
