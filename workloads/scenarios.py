"""Named experiment presets: a cluster, a workload recipe, a duration and the seeds to run.

A :class:`WorkloadSpec` is a recipe, not data: ``spec.trace(duration_s, seed)`` draws a new
:class:`~workloads.trace.Trace` for every seed.  A :class:`Scenario` binds a recipe to a
cluster; :data:`SCENARIOS` holds the presets and :func:`get_scenario` looks one up.

Adding a preset means adding one ``Scenario(...)`` to ``_PRESETS`` below.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Callable, Mapping, Union

import numpy as np

from sim_core.config import ClusterConfig, ReplicaConfig
from workloads.arrivals import ArrivalSpec
from workloads.sharegpt import sample_sharegpt
from workloads.trace import Trace

LengthSampler = Callable[[int, np.random.Generator], "tuple[np.ndarray, np.ndarray]"]


def _sharegpt_inflated(n: int, rng: np.random.Generator):
    return sample_sharegpt(n, rng, inflate=True)


def _sharegpt_plain(n: int, rng: np.random.Generator):
    return sample_sharegpt(n, rng, inflate=False)


def _azure_code(n: int, rng: np.random.Generator):
    from workloads.azure_code import sample_code_lengths

    return sample_code_lengths(n, rng)


LENGTHS: Mapping[str, LengthSampler] = MappingProxyType({
    "sharegpt-inflated": _sharegpt_inflated,
    "sharegpt": _sharegpt_plain,
    "azure-code": _azure_code,
})

# Closed-loop pool sizing: a user cannot complete a request faster than this (one short
# iteration); see WorkloadSpec.pool_size.
MIN_CYCLE_S = 0.1


@dataclass(frozen=True)
class WorkloadSpec:
    """How to draw a trace: request lengths plus an open-loop arrival process or a closed loop.

    * ``lengths`` — a key of :data:`LENGTHS` (``"sharegpt-inflated"``: the paper's
      workload; ``"sharegpt"``: raw ShareGPT, both with the 42-token system prompt;
      ``"azure-code"``: prefill-heavy code-assistant lengths, :mod:`workloads.azure_code`) or a
      callable ``(n, rng) -> (prompt_tokens, decode_tokens)``.
    * ``arrival`` — the open-loop arrival process (ignored when ``closed_loop_users > 0``).
    * ``closed_loop_users``, ``think_time_s`` — a closed loop of that many users.
    * ``pool_size`` — closed loop only: how many request lengths to draw; ``None`` uses the
      rule of :meth:`pool_size_for`.
    """

    lengths: Union[str, LengthSampler] = "sharegpt-inflated"
    arrival: ArrivalSpec = field(default_factory=ArrivalSpec)
    closed_loop_users: int = 0
    think_time_s: float = 0.0
    pool_size: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.lengths, str):
            if self.lengths not in LENGTHS:
                raise ValueError(f"unknown length distribution {self.lengths!r}; choose one of "
                                 f"{sorted(LENGTHS)} or pass a callable (n, rng) -> (prompt, decode)")
        elif not callable(self.lengths):
            raise ValueError(f"lengths must be a name or a callable, got {self.lengths!r}")
        if not isinstance(self.arrival, ArrivalSpec):
            raise ValueError(f"arrival must be an ArrivalSpec, got {self.arrival!r}")
        if isinstance(self.closed_loop_users, bool) or not isinstance(self.closed_loop_users, int) \
                or self.closed_loop_users < 0:
            raise ValueError(f"closed_loop_users must be an integer >= 0, got {self.closed_loop_users!r}")
        if not (math.isfinite(self.think_time_s) and self.think_time_s >= 0):
            raise ValueError(f"think_time_s must be finite and >= 0, got {self.think_time_s}")
        if self.pool_size is not None and self.pool_size < max(1, self.closed_loop_users):
            raise ValueError(f"pool_size must be at least closed_loop_users "
                             f"({self.closed_loop_users}), got {self.pool_size}")

    @property
    def sampler(self) -> LengthSampler:
        """The length sampler ``(n, rng) -> (prompt_tokens, decode_tokens)``."""
        return LENGTHS[self.lengths] if isinstance(self.lengths, str) else self.lengths

    def pool_size_for(self, duration_s: float) -> int:
        """Closed loop: the number of request lengths drawn for ``duration_s`` seconds.

        Unless ``pool_size`` is set: ``users + ceil(users * duration_s / (think_time_s +
        0.1 s))``, i.e. every user completing a request every 0.1 s plus think time, far
        faster than any modelled GPU serves a request.  The simulator stops generating
        arrivals when the pool runs out or after ``duration_s``, whichever comes first.
        """
        if self.pool_size is not None:
            return int(self.pool_size)
        users = self.closed_loop_users
        return users + math.ceil(users * duration_s / (self.think_time_s + MIN_CYCLE_S))

    def describe(self) -> str:
        """A one-line human-readable summary."""
        name = self.lengths if isinstance(self.lengths, str) else getattr(
            self.lengths, "__name__", "custom lengths")
        if self.closed_loop_users:
            return (f"{name}, closed loop of {self.closed_loop_users} users, "
                    f"think time {self.think_time_s:g} s")
        return f"{name}, {self.arrival.describe()}"

    def trace(self, duration_s: float, seed: int) -> Trace:
        """Draw the trace of one seed.

        ``np.random.default_rng(seed)`` spawns two independent streams, one for arrival
        times and one for lengths.  With the built-in ShareGPT samplers this means that
        changing only the arrival process keeps the lengths of the same seed, request by
        request, as far as both traces go.
        """
        if not (math.isfinite(duration_s) and duration_s > 0):
            raise ValueError(f"duration_s must be finite and > 0, got {duration_s}")
        arrival_rng, length_rng = np.random.default_rng(seed).spawn(2)
        if self.closed_loop_users:
            n = self.pool_size_for(duration_s)
            prompt, decode = self.sampler(n, length_rng)
            return Trace.closed_loop(prompt, decode, self.closed_loop_users,
                                     think_time_s=self.think_time_s, duration_s=duration_s)
        arrived = self.arrival.draw(duration_s, arrival_rng)
        prompt, decode = self.sampler(len(arrived), length_rng)
        return Trace(arrived, prompt, decode, duration_s=duration_s)


@dataclass(frozen=True)
class Scenario:
    """A named experiment setting: cluster, workload recipe, trace duration and seeds.

    ``autoscale`` (an :class:`sim_core.autoscale.AutoscaleConfig`) is set for scenarios
    whose pool is resized by an autoscaler; ``cluster.num_replicas`` is then its maximum."""

    name: str
    description: str
    cluster: ClusterConfig
    workload: WorkloadSpec
    duration_s: float
    seeds: tuple[int, ...] = tuple(range(10))
    autoscale: object | None = None  # sim_core.autoscale.AutoscaleConfig for autoscaled pools

    def __post_init__(self) -> None:
        if not (math.isfinite(self.duration_s) and self.duration_s > 0):
            raise ValueError(f"duration_s must be finite and > 0, got {self.duration_s}")
        seeds = tuple(int(s) for s in self.seeds)
        if not seeds:
            raise ValueError("a scenario needs at least one seed")
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct, got {seeds}")
        object.__setattr__(self, "seeds", seeds)

    def trace(self, seed: int) -> Trace:
        """The trace of ``seed`` (any integer, not only one of :attr:`seeds`)."""
        return self.workload.trace(self.duration_s, seed)

    def replace(self, **changes) -> "Scenario":
        """A copy with some fields changed (e.g. ``seeds=(0, 1)``, ``duration_s=100``)."""
        return replace(self, **changes)


class UnknownScenarioError(KeyError):
    """No preset of that name; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0]) if self.args else ""


def h100_prefill_cluster(num_replicas: int = 4, tp: int = 2) -> ClusterConfig:
    """Llama-3.3-70B FP8 on H100s, ``num_replicas`` x TP ``tp`` (default 4 x TP2 = 8 GPUs).

    The KV pool comes from :func:`sim_core.config.kv_blocks_from_memory` for an H100 80 GB,
    70.6 B parameters in FP8, BF16 KV cache (vLLM's default ``kv_cache_dtype=auto``), 80
    layers, 8 KV heads of dimension 128, 90% memory utilisation: 13,999 blocks of 16 tokens
    per TP2 replica."""
    from sim_core.config import kv_blocks_from_memory

    blocks = kv_blocks_from_memory(gpu_memory_gb=80, num_params_b=70.6, num_layers=80,
                                   num_kv_heads=8, head_dim=128, tp=tp, weight_dtype="fp8",
                                   kv_dtype="fp16", memory_utilization=0.9)
    return ClusterConfig(num_replicas=num_replicas, replica=ReplicaConfig(
        gpu="h100", model="llama-3.3-70b-fp8", tp=tp, num_blocks=blocks))


def h100_prefill_scenario(num_replicas: int = 4, tp: int = 2, users: int = 200,
                          duration_s: float = 300.0, think_time_s: float = 0.0) -> Scenario:
    """The paper's §5.5 adaptation setting: prefill-heavy code-assistant requests
    (prompt:decode about 70) from a closed loop of ``users`` on Llama-3.3-70B FP8 / H100."""
    cluster = h100_prefill_cluster(num_replicas, tp)
    return Scenario(
        name="routing-h100-prefill",
        description=(f"Prefill-heavy adaptation (paper section 5.5): {num_replicas} replicas of "
                     f"Llama-3.3-70B FP8 on H100 (TP{tp}, {num_replicas * tp} GPUs, "
                     f"{cluster.replica.num_blocks:,} KV blocks of 16 tokens each from "
                     "kv_blocks_from_memory), Sarathi chunk 8,192; code-assistant lengths from "
                     "the Azure LLM inference trace 2023 (code) as characterised by Splitwise "
                     "(median prompt 1,500, median output 13; prompt:decode about 70); a "
                     f"closed loop of {users} users, think time {think_time_s:g} s, "
                     f"{duration_s:g} s."),
        cluster=cluster,
        # Pool: room for 10 requests per GPU-second, several times what the cluster serves
        # (about 26 QPS on 8 GPUs), instead of the generic 0.1-s-cycle rule's 600,000.
        workload=WorkloadSpec(lengths="azure-code", closed_loop_users=users,
                              think_time_s=think_time_s,
                              pool_size=users + math.ceil(10 * num_replicas * tp * duration_s)),
        duration_s=duration_s, seeds=tuple(range(10)))


def autoscale_a10_scenario(max_replicas: int = 32, period_s: float = 900.0,
                           duration_s: float = 1800.0, cold_start_s: float = 60.0,
                           interval_s: float = 10.0, initial_replicas: int = 4) -> Scenario:
    """The paper's section 5.3 autoscaling workload: QPS varying sinusoidally between 7.5
    and 22.5 on a pool of up to ``max_replicas`` A10 replicas of Llama-3-8B."""
    from sim_core.autoscale import AutoscaleConfig

    return Scenario(
        name="autoscale-a10",
        description=(f"Autoscaling (paper section 5.3): a pool of up to {max_replicas} A10 "
                     "replicas of Llama-3-8B (as routing-a10), ShareGPT with the 10x-inflated "
                     "5% tails, Poisson arrivals whose rate follows a sinusoid from 7.5 to "
                     f"22.5 QPS (period {period_s:g} s) for {duration_s:g} s; replicas take "
                     f"{cold_start_s:g} s to start, the autoscaler decides every "
                     f"{interval_s:g} s, {initial_replicas} replicas serve at t=0."),
        cluster=ClusterConfig(num_replicas=max_replicas, replica=ReplicaConfig()),
        workload=WorkloadSpec(lengths="sharegpt-inflated", arrival=ArrivalSpec(
            kind="sinusoidal", qps_min=7.5, qps_max=22.5, period_s=period_s)),
        duration_s=duration_s, seeds=tuple(range(10)),
        autoscale=AutoscaleConfig(interval_s=interval_s, cold_start_s=cold_start_s,
                                  min_replicas=1, initial_replicas=initial_replicas))


_PRESETS = (
    Scenario(
        name="routing-a10",
        description=("The paper's routing study: 4 A10 replicas of Llama-3-8B (2,240 KV blocks "
                     "of 16 tokens, Sarathi chunked prefill with chunk 8,192, batch cap 128), "
                     "ShareGPT with 5% of prompts and 5% of decodes inflated 10x, log-normal "
                     "arrivals (sigma=2) at 7.5 QPS for 1,000 s, ten seeds."),
        cluster=ClusterConfig(num_replicas=4, replica=ReplicaConfig()),
        workload=WorkloadSpec(lengths="sharegpt-inflated",
                              arrival=ArrivalSpec(kind="lognormal", qps=7.5, sigma=2.0)),
        duration_s=1000.0,
        seeds=tuple(range(10)),
    ),
    h100_prefill_scenario(),
    autoscale_a10_scenario(),
)

SCENARIOS: Mapping[str, Scenario] = MappingProxyType({s.name: s for s in _PRESETS})


def get_scenario(name_or_scenario: "str | Scenario", *, duration_s: float | None = None,
                 users: int | None = None) -> Scenario:
    """The preset called ``name`` (or a :class:`Scenario` as is), optionally with another
    ``duration_s`` or, for a closed loop, another number of ``users`` (the request pool grows
    with them). Raises :class:`UnknownScenarioError` listing the known names."""
    if isinstance(name_or_scenario, Scenario):
        sc = name_or_scenario
    else:
        try:
            sc = SCENARIOS[name_or_scenario]
        except KeyError:
            raise UnknownScenarioError(f"unknown scenario {name_or_scenario!r}; known scenarios: "
                                       f"{', '.join(sorted(SCENARIOS))}") from None
    if duration_s is not None:
        if not (math.isfinite(duration_s) and duration_s > 0):
            raise ValueError(f"duration_s must be finite and > 0, got {duration_s}")
        wl = sc.workload
        if wl.closed_loop_users and wl.pool_size is not None:
            rate = (wl.pool_size - wl.closed_loop_users) / sc.duration_s
            wl = replace(wl, pool_size=wl.closed_loop_users + math.ceil(rate * duration_s))
        sc = sc.replace(duration_s=float(duration_s), workload=wl)
    if users is not None:
        wl = sc.workload
        if not wl.closed_loop_users:
            raise ValueError(f"scenario {sc.name} is not a closed loop; it has no users to vary")
        if int(users) < 1:
            raise ValueError(f"users must be >= 1, got {users}")
        pool = None if wl.pool_size is None else wl.pool_size - wl.closed_loop_users + int(users)
        desc = sc.description.replace(f"closed loop of {wl.closed_loop_users} users",
                                      f"closed loop of {int(users)} users")
        sc = sc.replace(workload=replace(wl, closed_loop_users=int(users), pool_size=pool),
                        description=desc)
    return sc
