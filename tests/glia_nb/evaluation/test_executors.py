"""open_executor: local pool, in-process, a Dask cluster by address, and plain errors."""
from __future__ import annotations

import socket
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

from glia_nb.evaluation.executors import DASK_ENV, ExecutorError, dask_address, open_executor


def _square(x):
    return x * x


def test_one_worker_runs_in_process_and_more_get_a_pool(monkeypatch):
    monkeypatch.delenv(DASK_ENV, raising=False)
    with open_executor(1) as ex:
        assert ex is None
    with open_executor(2) as ex:
        assert isinstance(ex, ProcessPoolExecutor)
        assert list(ex.map(_square, [1, 2, 3])) == [1, 4, 9]


def test_bad_input_is_one_line(monkeypatch):
    monkeypatch.delenv(DASK_ENV, raising=False)
    with pytest.raises(ExecutorError, match="workers must be >= 1"):
        with open_executor(0):
            pass
    with pytest.raises(ExecutorError, match="not a Dask scheduler address: 'localhost'"):
        dask_address("localhost")
    monkeypatch.setenv(DASK_ENV, "tcp://127.0.0.1:8786")
    assert dask_address() == "tcp://127.0.0.1:8786"
    assert dask_address("tcp://10.1.2.3:9000") == "tcp://10.1.2.3:9000"


def test_unreachable_scheduler_fails_within_seconds(monkeypatch):
    monkeypatch.delenv(DASK_ENV, raising=False)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr("glia_nb.evaluation.executors.CONNECT_TIMEOUT_S", 2.0)
    t0 = time.monotonic()
    with pytest.raises(ExecutorError, match=f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}"):
        with open_executor(2, dask=f"tcp://127.0.0.1:{port}"):
            pass
    assert time.monotonic() - t0 < 30


def test_a_cluster_by_address_runs_the_jobs(monkeypatch):
    distributed = pytest.importorskip("distributed")
    monkeypatch.delenv(DASK_ENV, raising=False)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        monkeypatch.setenv(DASK_ENV, cluster.scheduler_address)
        with open_executor(4) as ex:
            assert not isinstance(ex, ProcessPoolExecutor)
            assert list(ex.map(_square, [2, 3])) == [4, 9]
