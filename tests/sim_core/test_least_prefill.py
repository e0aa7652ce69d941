"""The TTFT-aware router (least outstanding prefill tokens), worked by hand."""
from sim_core import simulate
from sim_core.config import ClusterConfig
from sim_core.routers import ROUTERS, LeastOutstandingPrefill, make_router
from tests.conftest import make_trace


def test_registered():
    assert ROUTERS["least_prefill"] is LeastOutstandingPrefill
    assert make_router("least_prefill").name == "least_prefill"


def test_places_on_least_outstanding_prefill_where_llq_ties(table):
    # A (1,000 tokens) starts prefilling on replica 0; B and C (10 tokens) arrive while it
    # does.  Both replicas then hold one request, so LLQ sends C to replica 0 (lowest id)
    # behind A's long prefill; least_prefill sees 1,000 vs 10 tokens and picks replica 1.
    tr = make_trace([0.0, 0.001, 0.002], [1000, 10, 10], [2, 2, 2])
    cl = ClusterConfig(num_replicas=2)
    lp = simulate(cl, tr, "least_prefill", latency=table).requests
    llq = simulate(cl, tr, "llq", latency=table).requests
    assert lp.replica.tolist() == [0, 1, 1]
    assert llq.replica.tolist() == [0, 1, 0]
    assert lp.ttft_s.iloc[2] < llq.ttft_s.iloc[2]


def test_counts_unprocessed_prompt_of_running_requests(table):
    # Chunks of 64 tokens (74 ms): at t=0.2 both replicas are mid-prefill, replica 0 owing
    # 1,000 - 192 tokens and replica 1 owing 500 - 192.  Counting what is still to prefill,
    # the newcomer goes to replica 1; LLQ (one request each) picks replica 0.
    cl = ClusterConfig(num_replicas=2).with_replica(chunk_size=64)
    tr = make_trace([0.0, 0.0, 0.2], [1000, 500, 600], [1, 1, 1])
    assert simulate(cl, tr, "least_prefill", latency=table).requests.replica.tolist() == [0, 1, 1]
    assert simulate(cl, tr, "llq", latency=table).requests.replica.tolist() == [0, 1, 0]
