"""Replica lifecycle under autoscaling: cold starts, draining and GPU-hours, worked by hand."""
import pytest

from sim_core import simulate
from sim_core.autoscale import (AUTOSCALERS, AutoscaleConfig, ProportionalAutoscaler,
                                make_autoscaler)
from sim_core.config import ClusterConfig
from sim_core.facade import RoutingError
from tests.conftest import linear_table, make_trace

A = pytest.approx


class Script:
    """Wants plan[k] replicas at the k-th tick (the last value afterwards)."""

    def __init__(self, plan):
        self.plan, self.k, self.seen = list(plan), 0, []

    def reset(self, info, rng):
        pass

    def decide(self, stats):
        self.seen.append((stats.now, stats.num_active, stats.num_starting))
        want = self.plan[min(self.k, len(self.plan) - 1)]
        self.k += 1
        return want


def test_cold_start_then_new_replica_takes_requests():
    # One replica serving; at the first tick (t=0.1) we ask for two: replica 1 is ready at
    # 0.6.  Requests of 300 tokens take 0.31 s each: LLQ puts the 0.65 s arrival on the
    # idle new replica, while the earlier ones all had to go to replica 0.
    tr = make_trace([0.0, 0.2, 0.4, 0.65], [300] * 4, [1] * 4)
    res = simulate(ClusterConfig(num_replicas=2), tr, "llq", latency=linear_table(),
                   autoscaler=Script([2]), autoscale=AutoscaleConfig(
                       interval_s=0.1, cold_start_s=0.5, initial_replicas=1))
    df = res.requests
    assert df.replica.tolist() == [0, 0, 0, 1]
    end = df.completed_at.max()
    assert res.gpu_hours == A((end + (end - 0.1)) / 3600)
    assert res.summary["starting_gpu_hours"] == A(0.5 / 3600)     # 0.1 -> 0.6
    assert res.summary["draining_gpu_hours"] == 0.0


def test_drain_finishes_work_then_stops_and_stops_paying():
    # Two replicas; at t=0.1 we ask for one.  Replica 1 (least busy: empty) stops at once;
    # requests keep flowing to replica 0 only.
    tr = make_trace([0.0, 0.3, 0.6], [100] * 3, [2] * 3)
    res = simulate(ClusterConfig(num_replicas=2), tr, "round_robin", latency=linear_table(),
                   autoscaler=Script([1]), autoscale=AutoscaleConfig(interval_s=0.1))
    df = res.requests
    assert df.replica.tolist() == [0, 0, 0]
    end = df.completed_at.max()
    assert res.gpu_hours == A((end + 0.1) / 3600)
    assert res.lifecycle_gpu_hours == {"starting_gpu_hours": 0.0, "draining_gpu_hours": 0.0}


def test_draining_replica_completes_its_requests():
    # Replica 1 holds a long request when it is told to drain: it finishes it, then stops.
    tr = make_trace([0.0, 0.0], [100, 100], [50, 50])
    res = simulate(ClusterConfig(num_replicas=2), tr, "round_robin", latency=linear_table(),
                   autoscaler=Script([1]), autoscale=AutoscaleConfig(interval_s=0.2))
    df = res.requests.set_index("request_id")
    assert df.loc[1, "replica"] == 1 and df.loc[1, "completed_at"] > 0.2
    end = float(res.state.sf[0])
    stop_1 = df.loc[1, "completed_at"]
    assert res.gpu_hours == A((end + stop_1) / 3600)
    # Both replicas iterate without a gap from t=0 until their request completes.
    assert stop_1 == A(0.110 + 49 * 0.011)
    assert res.summary["busy_gpu_hours"] == A(2 * stop_1 / 3600)
    assert res.summary["draining_gpu_hours"] == A((stop_1 - 0.2) / 3600)


def test_cancelled_start_and_undrain_count_only_the_time_spent():
    # A start asked for at t=0.1 and cancelled at 0.2 paid 0.1 s of cold start.
    tr = make_trace([0.0], [100], [50])
    res = simulate(ClusterConfig(num_replicas=2), tr, "llq", latency=linear_table(),
                   autoscaler=Script([2, 1]), autoscale=AutoscaleConfig(
                       interval_s=0.1, cold_start_s=0.5, initial_replicas=1))
    assert res.summary["starting_gpu_hours"] == A(0.1 / 3600)
    assert res.gpu_hours == A((float(res.state.sf[0]) + 0.1) / 3600)
    # Told to drain at t=0.4 and back at 0.6: 0.2 s of draining, and the replica, warm,
    # serves on (its request ends at 0.649 s, after the un-drain).
    tr = make_trace([0.0, 0.0], [100, 100], [50, 50])
    res = simulate(ClusterConfig(num_replicas=2), tr, "round_robin", latency=linear_table(),
                   autoscaler=Script([2, 1, 2]), autoscale=AutoscaleConfig(interval_s=0.2))
    assert res.summary["draining_gpu_hours"] == A(0.2 / 3600)
    assert res.summary["starting_gpu_hours"] == 0.0
    end = float(res.state.sf[0])
    assert res.gpu_hours == A(2 * end / 3600)


def test_capped_ticks_and_peak_replicas_report_whether_the_pool_was_big_enough():
    # Asking for 5 of a pool of 3 is clipped once; the pool peaks at 3 paid replicas (two
    # cold starts at 0.1), then the 0.2 tick cancels one start and the 0.3 tick starts it
    # again.  The run lasts until that start ends (0.8 s), so ticks fall at 0.1, ..., 0.8.
    tr = make_trace([0.0], [100], [50])
    cfg = AutoscaleConfig(interval_s=0.1, cold_start_s=0.5, initial_replicas=1)
    res = simulate(ClusterConfig(num_replicas=3), tr, "llq", latency=linear_table(),
                   autoscaler=Script([5, 2, 3]), autoscale=cfg)
    s = res.summary
    assert (s["ticks"], s["capped_ticks"], s["peak_replicas"]) == (8, 1, 3)
    res = simulate(ClusterConfig(num_replicas=3), tr, "llq", latency=linear_table(),
                   autoscaler=Script([2, 1]), autoscale=cfg)
    assert (res.summary["capped_ticks"], res.summary["peak_replicas"]) == (0, 2)
    # Without an autoscaler there is nothing to report.
    res = simulate(ClusterConfig(num_replicas=3), tr, "llq", latency=linear_table())
    assert "capped_ticks" not in res.summary


def test_routing_to_a_stopped_replica_is_an_error():
    class ToOne:
        def reset(self, info, rng):
            pass

        def route(self, view):
            return [(int(q), 1) for q in view.queue]

    with pytest.raises(RoutingError, match="does not accept"):
        simulate(ClusterConfig(num_replicas=2), make_trace([0.5], [10], [1]), ToOne(),
                 latency=linear_table(), autoscaler=Script([1]),
                 autoscale=AutoscaleConfig(interval_s=0.1, initial_replicas=1))


def test_builtin_autoscalers_and_slowdown():
    from workloads import get_scenario
    sc = get_scenario("routing-a10")
    tr = sc.workload.trace(300.0, 0)
    cl = ClusterConfig(num_replicas=6, replica=sc.cluster.replica)
    out = {}
    for name in ("fixed", "throughput", "proportional"):
        res = simulate(cl, tr, "llq", autoscaler=name,
                       autoscale=AutoscaleConfig(interval_s=10, cold_start_s=30,
                                                 initial_replicas=2))
        s = res.summary
        assert s["p95_slowdown"] >= 1.0 and s["mean_slowdown"] >= 1.0
        assert 0 < s["mean_replicas"] <= 6
        out[name] = s
    assert out["fixed"]["mean_replicas"] == A(2.0)
    assert set(AUTOSCALERS) == {"fixed", "throughput", "proportional"}
    assert isinstance(make_autoscaler("proportional:target=25"), ProportionalAutoscaler)
    assert make_autoscaler("throughput:high=900,low=100").high == 900


def test_slowdown_is_one_alone():
    res = simulate(ClusterConfig(num_replicas=1), make_trace([0.0], [100], [3]), "llq",
                   latency=linear_table(), autoscaler="fixed")
    assert res.slowdown.iloc[0] == A(1.0)
