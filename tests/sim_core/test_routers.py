"""Built-in routers, the read-only view and decision validation."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from sim_core import simulate
from sim_core.config import ClusterConfig
from sim_core.facade import RoutingError
from sim_core.routers import ROUTERS, RouterLoadError, make_router
from tests.conftest import make_trace


def run(router, trace, replicas=2, table=None, **rc):
    from tests.conftest import linear_table
    cl = ClusterConfig(num_replicas=replicas).with_replica(**rc)
    return simulate(cl, trace, router, latency=table or linear_table())


def test_round_robin_cycles():
    df = run("round_robin", make_trace([0, 0.1, 0.2, 0.3], [5] * 4, [1] * 4), replicas=3).requests
    assert df.replica.tolist() == [0, 1, 2, 0]


def test_llq_and_lor_pick_least_loaded():
    tr = make_trace([0, 0, 0], [50, 50, 50], [50, 50, 50])
    assert run("llq", tr).requests.replica.tolist() == [0, 1, 0]
    # LOR counts only waiting requests: request 0 already runs (holds memory) when 1
    # arrives, so both replicas look idle and the lowest id wins.
    assert run("lor", tr).requests.replica.tolist()[:2] == [0, 0]


def test_hra_holds_requests_without_headroom():
    # Pool of 16 blocks of 16: a 100-token prompt expects 100 * 1.6 = 160 tokens = 10 blocks;
    # the first holds 7, so 7 + 10 > 16 and the second waits in the global queue.
    tr = make_trace([0, 0], [100, 100], [5, 5])
    df = run("hra", tr, replicas=1, num_blocks=16).requests
    assert df.global_queue_s.iloc[1] > 0 and df.restarts.sum() == 0
    assert df.routed_at.iloc[1] == pytest.approx(df.completed_at.iloc[0])


def test_hra_serves_shortest_prompt_first():
    class Recorder:
        """HRA that records the order in which it routes."""
        def __init__(self):
            self.inner, self.order = make_router("hra"), []

        def reset(self, info, rng):
            self.inner.reset(info, rng)

        def route(self, view):
            out = list(self.inner.route(view))
            self.order += [q for q, _ in out]
            return out

    rec = Recorder()
    # Request 0 (300 tokens) takes 19 of 40 blocks; request 1 (300, expecting 30 blocks)
    # must wait, while the short 2 and 3 that arrive after it fit and go first.
    tr = make_trace([0, 0.001, 0.002, 0.003], [300, 300, 20, 50], [5, 5, 5, 5])
    run(rec, tr, replicas=1, num_blocks=40)
    assert rec.order[0] == 0 and rec.order[1:] == [2, 3, 1]


def test_view_is_read_only_and_has_no_decode_lengths():
    seen = {"arrays": []}

    class Peek:
        def reset(self, info, rng):
            pass

        def route(self, view):
            seen["attrs"] = set(dir(view))
            with pytest.raises(ValueError):
                view.prompt_tokens[0] = 1
            with pytest.raises(ValueError):
                view.num_running[0] = 1
            # Every array reachable from the view, private slots and .base chains included.
            for name in type(view).__slots__:
                a = getattr(view, name)
                while isinstance(a, np.ndarray):
                    seen["arrays"].append(a)
                    a = a.base
            return [(int(q), 0) for q in view.queue]

    res = run(Peek(), make_trace([0], [5], [7]))
    assert not any("decode" in a for a in seen["attrs"])
    assert seen["arrays"] and not any(np.shares_memory(a, hidden) for a in seen["arrays"]
                                      for hidden in (res.state.rh, res.state.ph, res.state.pf,
                                                     res.state.ru))


@pytest.mark.parametrize("bad,match", [
    (lambda v: [(int(v.queue[0]), 7)], "does not exist"),
    (lambda v: [(int(v.queue[0]), 0), (int(v.queue[0]), 1)], "twice"),
    (lambda v: [(99, 0)], "not in the global queue"),
    (lambda v: [("x", 0)], "pair of ints"),
    (lambda v: 1 / 0, "ZeroDivisionError"),
    (lambda v: [(int(v.queue[0]), 0)] * 5, "more decisions than there are requests"),
])
def test_invalid_decisions_raise_clear_errors(bad, match):
    class Bad:
        def reset(self, info, rng):
            pass

        def route(self, view):
            return bad(view) if len(view.queue) else ()

    with pytest.raises(RoutingError, match=match):
        run(Bad(), make_trace([0, 0], [5, 5], [3, 3]))


def test_router_that_never_routes_is_reported():
    class Hoarder:
        def reset(self, info, rng):
            pass

        def route(self, view):
            return ()

    with pytest.raises(RoutingError, match="left 1 requests"):
        run(Hoarder(), make_trace([0], [5], [3]))


def test_make_router_specs(tmp_path):
    assert set(ROUTERS) >= {"round_robin", "random", "lor", "llq", "least_blocks", "hra"}
    r = make_router("hra:decode_growth=0.25,safety_fraction=0.05")
    assert (r.decode_growth, r.safety_fraction) == (0.25, 0.05)
    f = tmp_path / "mine.py"
    f.write_text("class Mine:\n    def reset(self, info, rng): pass\n"
                 "    def route(self, view): return [(int(q), 0) for q in view.queue]\n")
    assert type(make_router(f"{f}:Mine")).__name__ == "Mine"
    with pytest.raises(RouterLoadError, match="unknown router"):
        make_router("nope")
    with pytest.raises(RouterLoadError, match="no class 'Other'.*Mine"):
        make_router(f"{f}:Other")
    (tmp_path / "broken.py").write_text("def oops(:\n")
    with pytest.raises(RouterLoadError, match="does not import: SyntaxError"):
        make_router(f"{tmp_path / 'broken.py'}:X")
    with pytest.raises(RouterLoadError, match="does not exist"):
        make_router(f"{tmp_path / 'missing.py'}:X")


def test_trace_that_cannot_fit_is_rejected():
    with pytest.raises(ValueError, match="KV blocks"):
        run("llq", make_trace([0], [500], [500]), num_blocks=10)


def _route_reference(q, prompt_tokens, growth, shortest_first, bs, safety, num_blocks,
                     allocated, waiting_prompt, num_waiting, num_running, accepting):
    """HRA's decision written plainly with numpy (the compiled version must agree)."""
    prompts = prompt_tokens[q]
    if shortest_first:
        order = np.lexsort((q, prompts))
        q, prompts = q[order], prompts[order]
    need = np.ceil(prompts * growth / bs)
    cap = num_blocks.astype(float)
    projected = allocated + np.ceil(waiting_prompt * growth / bs)
    min_free = np.floor(safety * cap)
    queue_len = (num_waiting + num_running).astype(float)
    out = []
    for k in range(len(q)):
        ok = (cap - projected - need[k] >= min_free) | ((projected == 0) & (queue_len == 0))
        ok &= accepting
        if not ok.any():
            break
        r = min(np.flatnonzero(ok), key=lambda i: (projected[i], queue_len[i], i))
        out.append((int(q[k]), int(r)))
        projected[r] += need[k]
        queue_len[r] += 1
    return out


@given(st.data())
@settings(max_examples=300, deadline=None)
def test_compiled_headroom_routing_matches_reference(data):
    from sim_core.routers import _headroom_route

    R = data.draw(st.integers(1, 5))
    n_req = data.draw(st.integers(1, 30))
    ints = lambda lo, hi, size: np.array(data.draw(  # noqa: E731
        st.lists(st.integers(lo, hi), min_size=size, max_size=size)), np.int64)
    prompt_tokens = ints(1, 400, n_req)
    q = np.array(data.draw(st.permutations(range(n_req)))[:data.draw(st.integers(1, n_req))],
                 np.int64)
    args = (q, prompt_tokens, data.draw(st.sampled_from([1.0, 1.6, 2.5])), data.draw(st.booleans()),
            16, data.draw(st.sampled_from([0.0, 0.03, 0.2])), ints(20, 80, R), ints(0, 60, R),
            ints(0, 300, R), ints(0, 3, R), ints(0, 3, R),
            np.array(data.draw(st.lists(st.booleans(), min_size=R, max_size=R))))
    ids, picks = _headroom_route(*args)
    assert list(zip(ids.tolist(), picks.tolist())) == _route_reference(*args)
