"""Shared fixtures for glia_nb tests.

``llm_http``: a respx router that intercepts the HTTP traffic of the real ``anthropic``
and ``openai`` SDK clients at the transport layer. Recent SDKs send through ``httpx2``
/ ``httpcore2``, which respx (built for ``httpx`` / ``httpcore``) does not patch, so a
small respx "mocker" for httpcore2 is registered here; older SDKs on httpx use respx's
own httpcore mocker. Requests that match no route fail the test (no real network).
"""

from __future__ import annotations

import importlib.util

import pytest
import respx
from respx.mocks import HTTPCoreMocker, Mocker


def _sdk_uses_httpx2() -> bool:
    try:
        import openai._base_client as base
    except ImportError:  # pragma: no cover - openai is a hard dependency
        return False
    return hasattr(base, "httpx2")


if importlib.util.find_spec("httpcore2") is not None and "httpcore2" not in Mocker.registry:
    import httpcore2

    class _HTTPCore2Mocker(HTTPCoreMocker):
        """respx's httpcore mocker, pointed at httpcore2's connection classes."""

        name = "httpcore2"
        targets = [
            "httpcore2._sync.connection.HTTPConnection",
            "httpcore2._sync.connection_pool.ConnectionPool",
            "httpcore2._sync.http_proxy.HTTPProxy",
            "httpcore2._async.connection.AsyncHTTPConnection",
            "httpcore2._async.connection_pool.AsyncConnectionPool",
            "httpcore2._async.http_proxy.AsyncHTTPProxy",
        ]
        target_methods = ["handle_request", "handle_async_request"]

        @classmethod
        def from_sync_httpx_response(cls, httpx_response, target, **kwargs):
            return httpcore2.Response(
                status=httpx_response.status_code,
                headers=httpx_response.headers.raw,
                content=httpx_response.stream,
                extensions=httpx_response.extensions,
            )


MOCKER = "httpcore2" if _sdk_uses_httpx2() else "httpcore"


@pytest.fixture
def transport_timeout() -> Exception:
    """An exception that, raised by a mocked route, the SDK sees as a read timeout."""
    if MOCKER == "httpcore2":
        import httpcore2

        return httpcore2.ReadTimeout("simulated read timeout")
    import httpcore

    return httpcore.ReadTimeout("simulated read timeout")


@pytest.fixture
def llm_http():
    """A respx router over the SDKs' transport; unmatched requests raise, and every
    route must be called."""
    with respx.mock(using=MOCKER, assert_all_mocked=True, assert_all_called=True) as router:
        yield router


@pytest.fixture(scope="session")
def dask_scheduler():
    """The address of a two-worker Dask ``LocalCluster`` on 127.0.0.1 (processes, one thread
    each, as docs/dask.md advises), shared by every test that fans out to a cluster."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        yield cluster.scheduler_address
