"""Autoscaling: the replica lifecycle, the ``Autoscaler`` protocol and built-in autoscalers.

A replica is *stopped*, *starting* (a cold start of ``cold_start_s``; GPU time is already
paid), *active* (the only state that accepts requests) or *draining* (accepts nothing new,
finishes what it holds, then stops).  Every ``interval_s`` of simulated time the autoscaler
sees :class:`ClusterStats` and returns the number of replicas it wants serving (active +
starting); the simulator starts or drains replicas to match.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from sim_core import state as S
from sim_core.policies import make_policy


@dataclass(frozen=True)
class AutoscaleConfig:
    """Tick interval, cold-start delay and bounds (``initial_replicas=None``: all)."""

    interval_s: float = 10.0
    cold_start_s: float = 60.0
    min_replicas: int = 1
    initial_replicas: int | None = None

    def __post_init__(self) -> None:
        if not self.interval_s > 0 or self.cold_start_s < 0 or self.min_replicas < 1:
            raise ValueError("need interval_s > 0, cold_start_s >= 0 and min_replicas >= 1")


@dataclass(frozen=True)
class ClusterStats:
    """What an autoscaler sees at a tick (per-replica arrays are indexed by replica id)."""

    now: float
    interval_s: float
    state: np.ndarray
    in_flight: np.ndarray
    num_waiting: np.ndarray
    num_running: np.ndarray
    memory_use: np.ndarray
    decode_tokens_per_s: np.ndarray
    global_queue_len: int
    arrivals_per_s: float

    @property
    def num_active(self) -> int:
        return int((self.state == S.R_ACTIVE).sum())

    @property
    def num_starting(self) -> int:
        return int((self.state == S.R_STARTING).sum())

    @property
    def num_draining(self) -> int:
        return int((self.state == S.R_DRAINING).sum())

    @property
    def num_serving(self) -> int:
        """Active plus starting: what ``decide`` is compared against."""
        return self.num_active + self.num_starting


@runtime_checkable
class Autoscaler(Protocol):
    """The autoscaling layer's extension point."""

    def reset(self, info, rng: np.random.Generator) -> None:
        """Called once before a simulation."""

    def decide(self, stats: ClusterStats) -> int:
        """Return the number of replicas that should be serving (active + starting)."""


class FixedAutoscaler:
    """Never changes the replica count."""

    name = "fixed"

    def reset(self, info, rng):
        pass

    def decide(self, stats):
        return stats.num_serving


class ThroughputAutoscaler:
    """The production-style baseline: add an instance when per-instance decode throughput
    exceeds ``high`` tokens/s, remove the least busy one below ``low``; after any change
    wait ``cooldown_s`` before the next."""

    name = "throughput"

    # Defaults tuned on autoscale-a10 (LLQ, arrival order): the cheapest grid setting with
    # p95 slowdown <= 5x in each of seeds 0-9 (`glia stack --tune --seeds 10`; docs/stack.md).
    def __init__(self, high: float = 650.0, low: float = 520.0, cooldown_s: float = 20.0):
        if not 0 <= low < high:
            raise ValueError("need 0 <= low < high")
        self.high, self.low, self.cooldown_s = float(high), float(low), float(cooldown_s)

    def reset(self, info, rng):
        self._last_change = -math.inf

    def decide(self, stats):
        n = stats.num_serving
        active = stats.state == S.R_ACTIVE
        if stats.now - self._last_change < self.cooldown_s or not active.any():
            return n
        per_instance = float(stats.decode_tokens_per_s[active].mean())
        if per_instance > self.high:
            self._last_change = stats.now
            return n + 1
        if per_instance < self.low and n > 1:
            self._last_change = stats.now
            return n - 1
        return n


class ProportionalAutoscaler:
    """A proportional controller on in-flight requests per instance: serve enough replicas
    that each holds about ``target`` requests; scale down only after ``down_delay_s`` of
    wanting fewer (cold starts make flapping expensive)."""

    name = "proportional"

    # Defaults tuned on autoscale-a10 like ThroughputAutoscaler's (see docs/stack.md).
    def __init__(self, target: float = 35.0, down_delay_s: float = 0.0):
        if target <= 0:
            raise ValueError("target must be > 0")
        self.target, self.down_delay_s = float(target), float(down_delay_s)

    def reset(self, info, rng):
        self._want_less_since = None

    def decide(self, stats):
        n = stats.num_serving
        demand = float(stats.in_flight.sum() + stats.global_queue_len)
        want = max(1, math.ceil(demand / self.target))
        if want >= n:
            self._want_less_since = None
            return want
        if self._want_less_since is None:
            self._want_less_since = stats.now
        return want if stats.now - self._want_less_since >= self.down_delay_s else n


AUTOSCALERS: dict[str, type] = {
    "fixed": FixedAutoscaler,
    "throughput": ThroughputAutoscaler,
    "proportional": ProportionalAutoscaler,
}


def make_autoscaler(spec, **params):
    """An autoscaler from a registry name (``"proportional:target=30"``), a
    ``file.py:Class`` spec, a class or an instance."""
    return make_policy(spec, AUTOSCALERS, "autoscaler", **params)


class Scaler:
    """Applies an autoscaler's decisions to the simulator state at each tick."""

    def __init__(self, st: S.SimState, autoscaler, cfg: AutoscaleConfig):
        self.st, self.autoscaler, self.cfg = st, autoscaler, cfg
        R = st.pi.shape[1]
        self._last_gen = np.zeros(R, np.int64)
        self._last_arrivals = 0
        self._last_t = 0.0
        init = R if cfg.initial_replicas is None else int(cfg.initial_replicas)
        if not 1 <= init <= R:
            raise ValueError(f"initial_replicas must be in 1..{R}")
        st.pi[S.P_STATE, init:] = S.R_STOPPED
        st.si[S.S_NUM_ACCEPTING] = init
        st.sf[S.SF_NEXT_TICK] = cfg.interval_s
        # Whether the pool was big enough: ticks at which the autoscaler asked for more
        # replicas than the pool holds (its GPU-hours then measure the cap, not the policy),
        # and the most replicas paid for at once.
        self.ticks = 0
        self.capped_ticks = 0
        self.peak_replicas = init

    def report(self) -> dict:
        """Tick counts and the peak number of paid replicas (a pool-size check)."""
        return {"ticks": self.ticks, "capped_ticks": self.capped_ticks,
                "peak_replicas": self.peak_replicas}

    def stats(self, now: float) -> ClusterStats:
        st = self.st
        pi = st.pi
        dt = max(now - self._last_t, 1e-9)
        gen = pi[S.P_GEN_TOKENS].copy()
        arrived = int(st.si[S.S_NEXT_ARRIVAL])
        out = ClusterStats(
            now=now, interval_s=self.cfg.interval_s, state=pi[S.P_STATE].copy(),
            in_flight=pi[S.P_WAITING] + pi[S.P_RUNNING], num_waiting=pi[S.P_WAITING].copy(),
            num_running=pi[S.P_RUNNING].copy(),
            memory_use=pi[S.P_ALLOC] / pi[S.P_NUM_BLOCKS],
            decode_tokens_per_s=(gen - self._last_gen) / dt,
            global_queue_len=int(st.si[S.S_GQ_LEN]),
            arrivals_per_s=(arrived - self._last_arrivals) / dt)
        self._last_gen, self._last_arrivals, self._last_t = gen, arrived, now
        return out

    def tick(self, now: float) -> None:
        """One autoscaler decision, applied; schedules the next tick."""
        from sim_core.engine import stop_replica

        stats = self.stats(now)
        st, pi, pf = self.st, self.st.pi, self.st.pf
        R = pi.shape[1]
        asked = int(self.autoscaler.decide(stats))
        self.ticks += 1
        self.capped_ticks += int(asked > R)
        want = int(min(R, max(self.cfg.min_replicas, asked)))
        state = pi[S.P_STATE]
        serving = int(((state == S.R_ACTIVE) | (state == S.R_STARTING)).sum())
        while want > serving:
            draining = np.flatnonzero(state == S.R_DRAINING)
            if len(draining):  # un-drain: it is warm and already paid for
                state[draining[0]] = S.R_ACTIVE
                pf[S.PF_DRAIN_TIME, draining[0]] += now - pf[S.PF_DRAIN_SINCE, draining[0]]
                st.si[S.S_NUM_ACCEPTING] += 1
            else:
                r = int(np.flatnonzero(state == S.R_STOPPED)[0])
                state[r] = S.R_STARTING
                pf[S.PF_UP_SINCE, r] = now
                pf[S.PF_READY_AT, r] = now + self.cfg.cold_start_s
                st.sf[S.SF_NEXT_READY] = min(st.sf[S.SF_NEXT_READY], now + self.cfg.cold_start_s)
            serving += 1
        while want < serving:
            starting = np.flatnonzero(state == S.R_STARTING)
            if len(starting):  # cancel the most recent start first
                r = int(starting[np.argmax(pf[S.PF_READY_AT, starting])])
                stop_replica(pi, pf, r, now)
                rest = pf[S.PF_READY_AT][state == S.R_STARTING]
                st.sf[S.SF_NEXT_READY] = rest.min() if len(rest) else np.inf
            else:
                active = np.flatnonzero(state == S.R_ACTIVE)
                load = (pi[S.P_WAITING] + pi[S.P_RUNNING])[active]
                r = int(active[np.argmin(load)])  # the least busy (lowest id on ties)
                state[r] = S.R_DRAINING
                pf[S.PF_DRAIN_SINCE, r] = now
                st.si[S.S_NUM_ACCEPTING] -= 1
                if pi[S.P_WAITING, r] == 0 and pi[S.P_RUNNING, r] == 0 and pi[S.P_BUSY, r] == 0:
                    stop_replica(pi, pf, r, now)
            serving -= 1
        # Replicas start only here, so the peak over ticks is the peak over the run.
        self.peak_replicas = max(self.peak_replicas, int((state != S.R_STOPPED).sum()))
        st.sf[S.SF_NEXT_TICK] = now + self.cfg.interval_s
