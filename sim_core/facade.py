"""The Python facade: validate, allocate, run the event loop, wrap the result."""
from __future__ import annotations

import math
import time

import numpy as np

from sim_core import state as S
from sim_core.config import ClusterConfig
from sim_core.engine import advance, advance_lazy
from sim_core.fastforward import ff_lazy
from sim_core.latency import LatencyTable, load_latency_table
from sim_core.results import SimResult
from sim_core.routers import make_router, router_name
from sim_core.twins import TWIN_NONE, install_key, install_twin, twin_code
from sim_core.view import ClusterInfo, ClusterView


_EVENTS = {S.EV_ARRIVAL: "arrival", S.EV_COMPLETION: "completion", S.EV_READY: "ready"}


class RoutingError(RuntimeError):
    """The router returned an invalid decision or raised."""


_ERRORS = {
    S.ERR_BAD_REPLICA: "routed request {q} to replica {r}, which does not exist (replicas 0..{R1})",
    S.ERR_NOT_QUEUED: "routed request {q}, which is not in the global queue (not arrived, "
                      "already routed or unknown)",
    S.ERR_DUPLICATE: "routed request {q} twice in one decision",
    S.ERR_NOT_ACCEPTING: "routed request {q} to replica {r}, which does not accept requests "
                         "(stopped, starting or draining; see view.accepting)",
}


_INTS = (int, np.integer)


def _pairs(decisions):
    """Iterate a router's decisions (``None`` / empty: none)."""
    if decisions is None:
        return ()
    if isinstance(decisions, np.ndarray) and decisions.size == 0:
        return ()
    return decisions


def cluster_info(cluster: ClusterConfig) -> ClusterInfo:
    """The static facts a router's ``reset`` receives."""
    rc = cluster.replica
    return ClusterInfo(num_replicas=cluster.num_replicas, num_blocks=rc.num_blocks,
                       block_size=rc.block_size, watermark_blocks=rc.watermark_blocks,
                       batch_cap=rc.batch_cap, chunk_size=rc.chunk_size, scheduler=rc.scheduler,
                       gpu=rc.gpu, model=rc.model, tp=rc.tp)


def _check_trace(cluster: ClusterConfig, trace) -> tuple:
    prompt = np.asarray(trace.prompt_tokens, dtype=np.int64)
    decode = np.asarray(trace.decode_tokens, dtype=np.int64)
    arrived = np.asarray(trace.arrived_at, dtype=np.float64)
    if not (len(prompt) == len(decode) == len(arrived)):
        raise ValueError("trace columns have different lengths")
    if len(prompt) and (prompt.min() < 1 or decode.min() < 1):
        raise ValueError("every request needs at least one prompt and one decode token")
    rc = cluster.replica
    if len(prompt):
        # A pre-empted request may re-prefill up to prompt + decode - 1 tokens; it must fit
        # an empty replica, or it could never be admitted again.
        worst = int((prompt + decode).max())
        blocks = math.ceil(worst / rc.block_size)
        if blocks + rc.watermark_blocks > rc.num_blocks:
            raise ValueError(f"a request of {worst} tokens needs {blocks} KV blocks plus the "
                             f"{rc.watermark_blocks}-block watermark, more than the "
                             f"{rc.num_blocks}-block pool of one replica")
    users = int(getattr(trace, "closed_loop_users", 0) or 0)
    if users == 0 and len(arrived) and (np.isnan(arrived).any() or np.any(np.diff(arrived) < 0)):
        raise ValueError("open-loop arrival times must be known and non-decreasing")
    return arrived, prompt, decode, users


def simulate(cluster: ClusterConfig, trace, router="llq", *, latency: LatencyTable | None = None,
             seed: int = 0, record_timeline: bool = True, queue_key=None, autoscaler=None,
             autoscale=None, batch_policy=None, fast_forward: bool = True,
             compiled_router: bool = True, share_state=None) -> SimResult:
    """Simulate ``trace`` on ``cluster`` with ``router`` and return a :class:`SimResult`.

    ``trace`` is a :class:`workloads.Trace` (or anything with ``arrived_at``,
    ``prompt_tokens``, ``decode_tokens`` and, for closed loops, ``closed_loop_users``,
    ``think_time_s``, ``duration_s``).  ``router`` is a registry name, a
    ``file.py:Class`` spec, a class or an instance.  ``latency`` defaults to the shipped
    table for the replica's (gpu, model, tp).  ``queue_key``, if given, orders each
    replica's waiting queue: a function ``(prompt_tokens, arrived_at) -> key`` evaluated
    when a request is routed (smaller first); pre-empted requests still go to the front.
    ``autoscaler`` (a name such as ``"proportional"``, a ``file.py:Class`` spec or an
    instance) resizes the cluster every ``autoscale.interval_s``; ``cluster.num_replicas``
    is then the largest size (see :mod:`sim_core.autoscale`).
    ``batch_policy`` (a name such as ``"shortest_prefill_first"``, a ``file.py:Name``
    spec, an instance or a key function; see :mod:`sim_core.batch_policies`) sets
    ``queue_key`` from the batch-scheduler layer.

    Two switches trade nothing but speed (the results are identical either way):
    ``fast_forward`` runs decode-only stretches without per-request bookkeeping at every
    iteration (:mod:`sim_core.fastforward`) and skips calls of a built-in router while the
    global queue is empty; ``compiled_router`` decides a built-in router picked by name
    inside the engine (:mod:`sim_core.twins`; with a batch policy only if it is a built-in
    one with a compiled key, not with a ``queue_key`` function).
    ``fast_forward=False, compiled_router=False`` is the step-by-step engine.
    ``share_state``, if given, is called with the freshly allocated state before anything
    runs (the sandbox moves the visible arrays into shared memory there).
    """
    if batch_policy is not None:
        from sim_core.batch_policies import make_batch_policy, queue_key_of

        batch_policy = make_batch_policy(batch_policy)
        queue_key = queue_key_of(batch_policy)
    arrived, prompt, decode, users = _check_trace(cluster, trace)
    rc = cluster.replica
    by_name = isinstance(router, str)
    router = make_router(router)
    info = cluster_info(cluster)
    router.reset(info, np.random.default_rng(seed))
    table = latency if latency is not None else load_latency_table(rc.gpu, rc.model, rc.tp)
    blob = table.pack()
    duration = getattr(trace, "duration_s", None)
    st = S.allocate(
        arrived_at=arrived, prompt=prompt, decode=decode, num_replicas=cluster.num_replicas,
        num_blocks=rc.num_blocks, block_size=rc.block_size, watermark=rc.watermark_blocks,
        chunk=rc.chunk_size, batch_cap=rc.batch_cap, scheduler=rc.scheduler,
        closed_loop_users=users, think_time_s=float(getattr(trace, "think_time_s", 0.0) or 0.0),
        arrival_limit_s=float(duration) if duration is not None else np.inf,
        record_timeline=record_timeline,
        queue_policy=S.QUEUE_BY_KEY if queue_key is not None else S.QUEUE_FIFO,
        fast_forward=fast_forward)
    if compiled_router and by_name and twin_code(router) != TWIN_NONE and (
            queue_key is None or (batch_policy is not None
                                  and install_key(st.si, st.sf, batch_policy))):
        install_twin(st.si, st.sf, router)
    # A router may promise (on its own class, not inherited) that it routes nothing and
    # changes nothing when the global queue is empty; those calls are then skipped.
    st.si[S.S_SKIP_EMPTY] = int(fast_forward and bool(
        type(router).__dict__.get("idle_when_queue_empty", False)))
    if share_state is not None:
        share_state(st)
    scaler = None
    if autoscaler is not None:
        from sim_core.autoscale import AutoscaleConfig, Scaler, make_autoscaler

        autoscaler = make_autoscaler(autoscaler)
        autoscaler.reset(info, np.random.default_rng([seed, 1]))
        scaler = Scaler(st, autoscaler, autoscale or AutoscaleConfig())
    view = ClusterView(st, info)
    step = advance_lazy if ff_lazy(st.si) else advance
    args = st.engine_args()
    # One decision per request at most (per replica when there are more replicas): writing
    # past that is the IndexError that says so below.  (qbuf may be wider: sim_core.state.)
    cap = max(len(arrived), cluster.num_replicas, 1)
    dec_req, dec_rep = st.dec_req[:cap], st.dec_rep[:cap]
    rf, sf = st.rf, st.sf
    n = 0
    calls = 0
    route = router.route
    cpu0, wall0 = time.process_time(), time.perf_counter()
    while True:
        ev = step(*args, blob, n)
        if ev < 0:
            k = int(st.si[S.S_ERROR])
            raise RoutingError(f"{router_name(router)}: " + _ERRORS[ev].format(
                q=int(dec_req[k]), r=int(dec_rep[k]), R1=cluster.num_replicas - 1)
                + f" at t={sf[S.SF_NOW]:.3f}s")
        if ev == S.EV_END:
            break
        if ev == S.EV_TICK:
            scaler.tick(float(sf[S.SF_NOW]))
            n = 0
            continue
        view.event = _EVENTS[ev]
        calls += 1
        try:
            decisions = route(view)
            n = 0
            for q, r in _pairs(decisions):
                if not (isinstance(q, _INTS) and isinstance(r, _INTS)) or \
                        isinstance(q, bool) or isinstance(r, bool):
                    raise TypeError(f"({q!r}, {r!r}) is not a pair of integers")
                dec_req[n] = q
                dec_rep[n] = r
                n += 1
                if queue_key is not None:
                    rf[S.F_QKEY, q] = queue_key(int(st.rv[S.V_PROMPT, q]), float(rf[S.F_ARRIVAL, q]))
        except IndexError as exc:
            if n >= cap:
                raise RoutingError(f"{router_name(router)} returned more decisions than there "
                                   f"are requests") from exc
            raise RoutingError(f"{router_name(router)} raised IndexError: {exc} "
                               f"at t={sf[S.SF_NOW]:.3f}s") from exc
        except (TypeError, ValueError) as exc:
            raise RoutingError(f"{router_name(router)}: a decision must be a pair of ints "
                               f"(request_id, replica); got an error: {exc}") from exc
        except RoutingError:
            raise
        except Exception as exc:
            raise RoutingError(f"{router_name(router)} raised {type(exc).__name__}: {exc} "
                               f"at t={sf[S.SF_NOW]:.3f}s") from exc
    cpu_s, wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
    calls += int(st.si[S.S_TWIN_CALLS])
    arrived_n = int(st.si[S.S_NEXT_ARRIVAL])
    if int(st.si[S.S_GQ_LEN]) > 0:
        raise RoutingError(f"{router_name(router)} left {int(st.si[S.S_GQ_LEN])} requests in "
                           "the global queue while every replica was idle; a router must "
                           "eventually route every request")
    if int(st.si[S.S_NUM_DONE]) != arrived_n:  # pragma: no cover - an engine bug
        raise RuntimeError(f"simulation stalled: {int(st.si[S.S_NUM_DONE])} of {arrived_n} "
                           "arrived requests completed")
    return SimResult(cluster=cluster, state=st, router=router_name(router), seed=seed,
                     latency_name=f"{table.gpu}/{table.model}/tp{table.tp}", cpu_s=cpu_s,
                     wall_s=wall_s, router_calls=calls, latency=table,
                     autoscaler=router_name(autoscaler) if autoscaler is not None else None,
                     autoscale_report=scaler.report() if scaler is not None else None)


def warm_up() -> None:
    """Load the compiled engine (from numba's on-disk cache, or compile it) with a
    one-request simulation, so that later timings measure simulation only."""
    from types import SimpleNamespace

    from sim_core.latency import LatencyTable

    z = np.zeros((2, 2))
    table = LatencyTable(gpu="warm-up", model="warm-up", tp=1, provenance="warm-up",
                         tokens=[1.0, 2.0], token_ms=[1.0, 2.0], prefill_kv=[1.0, 2.0],
                         prefill_chunk=[1.0, 2.0], prefill_ms=z, decode_n=[1.0, 2.0],
                         decode_kv=[1.0, 2.0], decode_ms=z)
    trace = SimpleNamespace(arrived_at=np.zeros(1), prompt_tokens=np.ones(1, np.int64),
                            decode_tokens=np.ones(1, np.int64))
    # Both entry points of the engine: with a timeline its stretches are eager, without it
    # (and a compiled router that reads no progress) lazy (sim_core.engine.advance_lazy).
    for timeline in (False, True):
        simulate(ClusterConfig(num_replicas=1), trace, "llq", latency=table,
                 record_timeline=timeline)
