"""Experiments across the serving stack: concurrency sweeps, stack comparisons, tuning.

(One configuration on a scenario over seeds is :func:`glia_nb.evaluation.simulate.evaluate_config`.)
* :func:`concurrency_sweep` — a closed-loop scenario at several user counts: the P90-TTFT
  versus throughput trade-off curve of the paper's Fig. 6, and the highest throughput that
  keeps P90 TTFT within a bound (:func:`slo_throughput`).
* :func:`tune_autoscaler` — the cheapest setting of an autoscaler (fewest GPU-hours) on a
  grid that meets a p95-slowdown bound: how every stack is compared "at equal constraint".
* :func:`peak_decode_throughput` — a load test: the decode tokens/s one replica sustains when
  saturated, from which :func:`off_the_shelf_autoscaler` sets a threshold autoscaler the way an
  operator would without tuning it (scale out at 70% of the peak).
* :func:`compare_stacks` — the paper's Fig. 4 ladder on ``autoscale-a10``: the standard stack
  (LLQ + arrival order + throughput autoscaler, off the shelf and tuned), then Glia's router,
  batch scheduler and autoscaler added one at a time, plus the autoscaler swapped alone.

Everything here is what ``glia simulate --sweep-users``, ``glia sweep`` and ``glia stack``
print; the notebooks call the same functions.
"""
from __future__ import annotations

import itertools
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from typing import Iterable, Sequence

from workloads import get_scenario

from glia_nb.evaluation.simulate import evaluate_config, seed_list, simulate_config
from glia_nb.progress import progress as _bar

TTFT_LIMIT_S = 1.5          # routing-h100-prefill: P90 TTFT <= 1,500 ms (paper section 5.5)
SLOWDOWN_LIMIT = 5.0        # autoscale-a10: p95 slowdown <= 5x (paper section 5.3)
DEFAULT_SWEEP_USERS = (25, 50, 100, 200, 300, 400)
# Scale out at 70% of a replica's peak: Knative's default target utilisation
# (config-autoscaler ``container-concurrency-target-percentage``), a common production default.
OFF_THE_SHELF_UTILISATION = 0.7
OFF_THE_SHELF = "off-the-shelf"   # compare_stacks' key for the untuned standard stack
CUSTOM = "custom"                 # compare_stacks' key for a stack given by the caller


@dataclass(frozen=True)
class StackConfig:
    """One serving stack: a router, a batch policy and an autoscaler (registry specs)."""

    label: str
    router: str = "llq"
    batch_policy: str = "fifo"
    autoscaler: str | None = None

    def with_autoscaler(self, spec: str) -> "StackConfig":
        return replace(self, autoscaler=spec)


# The autoscaler settings below were chosen by `glia stack --tune --seeds 10` (the grids in
# AUTOSCALER_GRIDS, seeds 0-9, the cheapest setting with p95 slowdown <= 5x in every seed);
# re-run it after changing the scenario or the simulator.
STACKS: dict[str, StackConfig] = {
    "standard": StackConfig("LLQ + arrival order + throughput autoscaler", "llq", "fifo",
                            "throughput:high=650,low=520,cooldown_s=20"),
    "glia-autoscaler": StackConfig("LLQ + arrival order + proportional autoscaler", "llq",
                                   "fifo", "proportional:target=35,down_delay_s=0"),
    "glia-router": StackConfig("HRA+SPF + arrival order + throughput autoscaler", "hra",
                               "fifo", "throughput:high=700,low=560,cooldown_s=20"),
    "glia-router-batch": StackConfig("HRA+SPF + shortest-prefill-first + throughput "
                                     "autoscaler", "hra", "shortest_prefill_first",
                                     "throughput:high=700,low=560,cooldown_s=20"),
    "glia-stack": StackConfig("HRA+SPF + shortest-prefill-first + proportional autoscaler",
                              "hra", "shortest_prefill_first",
                              "proportional:target=60,down_delay_s=0"),
}

# The grids `--tune` searches; every setting in STACKS is a point of them.
AUTOSCALER_GRIDS: dict[str, dict[str, Sequence]] = {
    "throughput": {"high": (600, 650, 680, 700, 850, 900, 950), "low_ratio": (0.7, 0.8),
                   "cooldown_s": (20, 30)},
    "proportional": {"target": (30, 35, 40, 50, 55, 60, 65, 70), "down_delay_s": (0, 30, 60)},
}


# ----------------------------------------------------------------------------- sweep
def slo_throughput(points: Sequence[dict], limit: float = TTFT_LIMIT_S,
                   metric: str = "p90_ttft_s") -> dict:
    """The highest throughput on a curve (points in increasing load) whose ``metric`` stays
    within ``limit``: the best compliant point, and the throughput where the curve crosses
    the limit (linear interpolation between the last compliant and the next point)."""
    best = None
    crossing = None
    for i, p in enumerate(points):
        if p[metric] <= limit:
            if best is None or p["throughput_qps"] > best["throughput_qps"]:
                best = p
            nxt = points[i + 1] if i + 1 < len(points) else None
            if nxt is not None and nxt[metric] > limit:
                f = (limit - p[metric]) / (nxt[metric] - p[metric])
                crossing = p["throughput_qps"] + f * (nxt["throughput_qps"] - p["throughput_qps"])
    if best is not None and crossing is None:
        crossing = best["throughput_qps"]  # compliant to the end of the sweep (or never after)
    return {"max_compliant_qps": best["throughput_qps"] if best else None,
            "max_compliant_users": best.get("users") if best else None,
            "slo_qps": crossing}


def concurrency_sweep(scenario="routing-h100-prefill", router="llq", users=DEFAULT_SWEEP_USERS,
                      *, seeds=3, duration_s=None, batch_policy=None, limit=TTFT_LIMIT_S,
                      executor: Executor | None = None, progress: bool = False,
                      trusted: bool = False) -> dict:
    """Run a closed-loop scenario at each user count; one point per count (means over seeds).
    ``progress`` shows a bar over the user counts; policy files run sandboxed unless
    ``trusted``."""
    keys = ("throughput_qps", "p90_ttft_s", "mean_ttft_s", "mean_e2e_s", "p90_e2e_s",
            "restart_fraction", "num_requests")
    points = []
    if progress:
        from glia_nb.progress import progress as _bar

        users = _bar(list(users), desc=f"{router} on {scenario}", unit="load")
    for u in users:
        agg = evaluate_config(get_scenario(scenario, duration_s=duration_s, users=int(u)),
                              router=router, batch_policy=batch_policy, seeds=seeds,
                              executor=executor, trusted=trusted)
        points.append({"users": int(u), **{k: agg.get(k) for k in keys},
                       "p90_ttft_per_seed": [s["p90_ttft_s"] for s in agg["per_seed"]]})
    name = scenario if isinstance(scenario, str) else scenario.name
    return {"scenario": name, "router": str(router), "ttft_limit_s": limit,
            "seeds": len(seed_list(get_scenario(scenario), seeds)),
            "points": points, **slo_throughput(points, limit)}


def sweep_bar(curves: dict[str, dict], limit: float = TTFT_LIMIT_S,
              qps_tolerance: float = 0.01) -> list[dict]:
    """Points where one router meets the TTFT bound at a throughput at least that of a point
    where another violates it (within ``qps_tolerance``, relative: closed-loop throughput
    saturates, so two routers at the same load serve the same QPS up to noise):
    ``{"meets": A, "violates": B, "users_meets", "users_violates", "qps_meets",
    "qps_violates", "ttft_meets", "ttft_violates"}`` per pair (the paper's Fig. 6)."""
    out = []
    for a, b in itertools.permutations(curves, 2):
        for pa in curves[a]["points"]:
            if pa["p90_ttft_s"] > limit:
                continue
            for pb in curves[b]["points"]:
                if pb["p90_ttft_s"] > limit and \
                        pb["throughput_qps"] <= pa["throughput_qps"] * (1 + qps_tolerance):
                    out.append({"meets": a, "violates": b, "users_meets": pa["users"],
                                "users_violates": pb["users"],
                                "qps_meets": pa["throughput_qps"],
                                "qps_violates": pb["throughput_qps"],
                                "ttft_meets": pa["p90_ttft_s"], "ttft_violates": pb["p90_ttft_s"]})
    return out


# ----------------------------------------------------------------------------- autoscaling
def grid_specs(name: str, grid: dict[str, Sequence] | None = None) -> list[str]:
    """Autoscaler specs (``"throughput:high=500,low=300,cooldown_s=60"``) over a grid;
    ``low_ratio`` sets ``low = low_ratio * high``."""
    grid = dict(grid or AUTOSCALER_GRIDS[name])
    names = list(grid)
    specs = []
    for values in itertools.product(*(grid[k] for k in names)):
        params = dict(zip(names, values))
        if "low_ratio" in params:
            params["low"] = round(params.pop("low_ratio") * params["high"], 3)
        specs.append(name + ":" + ",".join(f"{k}={v:g}" for k, v in params.items()))
    return specs


def tune_autoscaler(scenario="autoscale-a10", stack: StackConfig = STACKS["standard"], *,
                    family: str | None = None, grid=None, seeds=3, duration_s=None,
                    limit: float = SLOWDOWN_LIMIT, executor: Executor | None = None,
                    progress: bool = False, trusted: bool = False) -> dict:
    """Evaluate every grid setting of the stack's autoscaler family and return the cheapest
    one (fewest mean GPU-hours) whose p95 slowdown is within ``limit`` in every seed and
    which never asked for more replicas than the pool holds (``capped_ticks``).
    ``progress`` shows a bar over the grid (stderr in a terminal, a widget in Jupyter);
    the stack's policy files run sandboxed unless ``trusted``."""
    return _tune(scenario, stack, family=family, grid=grid, seeds=seeds, duration_s=duration_s,
                 limit=limit, executor=executor, progress=progress, trusted=trusted)[0]


def _tune(scenario, stack, *, family, grid, seeds, duration_s, limit, executor, progress,
          trusted=False):
    """:func:`tune_autoscaler`'s document and the aggregate of each setting it evaluated."""
    family = family or (stack.autoscaler or "throughput").split(":")[0]
    rows, aggregates = [], {}
    specs = grid_specs(family, grid)
    if progress:
        specs = _bar(specs, desc=f"tuning {family} for {stack.label}", unit="setting",
                     leave=False)
    for spec in specs:
        agg = evaluate_config(scenario, router=stack.router, batch_policy=stack.batch_policy,
                              autoscaler=spec, seeds=seeds, duration_s=duration_s,
                              executor=executor, trusted=trusted)
        aggregates[spec] = agg
        worst = agg["p95_slowdown_worst_seed"]
        capped = int(agg["capped_ticks_worst_seed"])
        rows.append({"autoscaler": spec, "gpu_hours": agg["gpu_hours"],
                     "p95_slowdown": agg["p95_slowdown"], "p95_slowdown_worst_seed": worst,
                     "mean_e2e_s": agg["mean_e2e_s"], "capped_ticks": capped,
                     # A setting the pool cap held back is not the policy it names.
                     "feasible": worst <= limit and capped == 0})
    feasible = [r for r in rows if r["feasible"]]
    best = min(feasible, key=lambda r: r["gpu_hours"]) if feasible else None
    doc = {"stack": stack.label, "family": family, "limit": limit, "best": best, "grid": rows}
    return doc, aggregates


class _DecodeThroughputProbe:
    """Keeps the pool as it is and records, at every tick, the per-instance decode
    throughput a threshold autoscaler would read and whether every replica had work queued."""

    name = "decode-probe"

    def reset(self, info, rng):
        from sim_core.state import R_ACTIVE

        self._active_state = R_ACTIVE
        self.samples: list[tuple[float, float, bool]] = []

    def decide(self, stats):
        active = stats.state == self._active_state
        saturated = stats.global_queue_len > 0 or bool((stats.num_waiting[active] > 0).all())
        self.samples.append((stats.now, float(stats.decode_tokens_per_s[active].mean()),
                             saturated))
        return stats.num_serving


def peak_decode_throughput(scenario="autoscale-a10", *, router="llq", batch_policy=None,
                           replicas: int = 4, qps_per_replica: float = 3.0,
                           duration_s: float = 900.0, warmup_s: float = 120.0,
                           seeds: Sequence[int] = (0, 1, 2)) -> dict:
    """A load test: the decode tokens/s per replica that ``replicas`` fixed replicas sustain
    when saturated by the scenario's request lengths at ``qps_per_replica`` Poisson arrivals.

    The figure is read as a threshold autoscaler reads it (every tick of the scenario's
    autoscale interval), averaged over the ticks in ``[warmup_s, duration_s]`` at which every
    replica had requests waiting (before the KV pools fill, a replica decodes faster than it
    can sustain).  Raises ``ValueError`` when fewer than half of those ticks were saturated."""
    from sim_core.autoscale import AutoscaleConfig
    from workloads.arrivals import ArrivalSpec

    if not 0 <= warmup_s < duration_s or replicas < 1 or qps_per_replica <= 0:
        raise ValueError("need 0 <= warmup_s < duration_s, replicas >= 1, qps_per_replica > 0")
    sc = get_scenario(scenario)
    load = sc.replace(
        cluster=replace(sc.cluster, num_replicas=replicas), duration_s=float(duration_s),
        workload=replace(sc.workload, closed_loop_users=0, pool_size=None,
                         arrival=ArrivalSpec(kind="poisson", qps=qps_per_replica * replicas)),
        autoscale=replace(sc.autoscale or AutoscaleConfig(), initial_replicas=replicas,
                          cold_start_s=0.0))
    per_seed = []
    for seed in seeds:
        probe = _DecodeThroughputProbe()
        simulate_config(load, seed, router, batch_policy, probe)
        window = [(tps, sat) for t, tps, sat in probe.samples if warmup_s <= t <= duration_s]
        saturated = [tps for tps, sat in window if sat]
        if len(saturated) < max(1, 0.5 * len(window)):
            raise ValueError(f"the pool was saturated at only {len(saturated)} of "
                             f"{len(window)} ticks at {qps_per_replica:g} QPS per replica "
                             f"(seed {seed}); raise qps_per_replica or duration_s")
        per_seed.append(sum(saturated) / len(saturated))
    return {"tokens_per_s": sum(per_seed) / len(per_seed), "per_seed": per_seed,
            "router": str(router), "batch_policy": batch_policy, "replicas": replicas,
            "qps_per_replica": qps_per_replica}


def off_the_shelf_autoscaler(peak_tokens_per_s: float,
                             utilisation: float = OFF_THE_SHELF_UTILISATION, *,
                             low_ratio: float = 0.8, cooldown_s: float = 20.0) -> str:
    """A throughput autoscaler set without tuning: scale out at ``utilisation`` of a replica's
    peak decode throughput, scale in below ``low_ratio`` of that; ``low_ratio`` and
    ``cooldown_s`` default to the tuned standard stack's, so only the scale-out point differs."""
    if not 0 < utilisation <= 1 or not 0 <= low_ratio < 1 or peak_tokens_per_s <= 0:
        raise ValueError("need 0 < utilisation <= 1, 0 <= low_ratio < 1 and a positive peak")
    high = utilisation * peak_tokens_per_s
    return f"throughput:high={high:.0f},low={low_ratio * high:.0f},cooldown_s={cooldown_s:g}"


def _off_the_shelf_stack(scenario) -> tuple[StackConfig, dict]:
    """The standard stack with :func:`off_the_shelf_autoscaler` set from its own load test."""
    std = STACKS["standard"]
    peak = peak_decode_throughput(scenario, router=std.router, batch_policy=std.batch_policy)
    spec = off_the_shelf_autoscaler(peak["tokens_per_s"])
    label = f"{std.label}, off the shelf ({OFF_THE_SHELF_UTILISATION:.0%} of peak)"
    return replace(std, label=label, autoscaler=spec), peak


def compare_stacks(scenario="autoscale-a10", *, seeds=3, duration_s=None, tune: bool = False,
                   stacks: Iterable[str] = (OFF_THE_SHELF, *STACKS),
                   limit: float = SLOWDOWN_LIMIT, executor: Executor | None = None,
                   progress: bool = False, custom: StackConfig | None = None,
                   trusted: bool = False) -> dict:
    """GPU-hours of each stack at equal constraint (p95 slowdown <= ``limit`` in every seed).

    Without ``tune`` each stack uses its autoscaler as listed in :data:`STACKS`; with
    ``tune`` each stack's autoscaler is first tuned on :data:`AUTOSCALER_GRIDS`.  The key
    :data:`OFF_THE_SHELF` is the standard stack with its thresholds set from a load test
    (:func:`off_the_shelf_autoscaler`), never tuned: the paper's baseline.  Each row
    also has ``peak_replicas`` and ``capped_ticks`` (worst seed); ``capped_stacks`` names
    the stacks whose autoscaler asked for more replicas than the pool holds.
    ``progress`` shows a bar over the stacks (and over each tuning grid).  ``custom`` (say,
    the standard stack with your own router file) is compared too, under the key
    :data:`CUSTOM`; with ``tune`` its autoscaler is tuned when it is a family of
    :data:`AUTOSCALER_GRIDS`.  Policy files run sandboxed unless ``trusted``."""
    rows = {}
    keys = list(stacks) + ([CUSTOM] if custom is not None else [])
    peak = None
    if progress:
        keys = _bar(keys, desc="stacks", unit="stack")
    for key in keys:
        if key == OFF_THE_SHELF:
            st, peak = _off_the_shelf_stack(scenario)
        else:
            st = custom if key == CUSTOM else STACKS[key]
        tuning, agg = None, None
        family = (st.autoscaler or "throughput").split(":")[0]
        if tune and key != OFF_THE_SHELF and family in AUTOSCALER_GRIDS:
            tuning, tried = _tune(scenario, st, family=None, grid=None, seeds=seeds,
                                  duration_s=duration_s, limit=limit, executor=executor,
                                  progress=progress, trusted=trusted)
            if tuning["best"] is not None:
                st = st.with_autoscaler(tuning["best"]["autoscaler"])
                agg = tried[st.autoscaler]  # already simulated on these seeds
        if agg is None:
            agg = evaluate_config(scenario, router=st.router, batch_policy=st.batch_policy,
                                  autoscaler=st.autoscaler, seeds=seeds, duration_s=duration_s,
                                  executor=executor, trusted=trusted)
        rows[key] = {"label": st.label, "router": st.router, "batch_policy": st.batch_policy,
                     "autoscaler": st.autoscaler, "gpu_hours": agg["gpu_hours"],
                     "busy_gpu_hours": agg["busy_gpu_hours"],
                     "starting_gpu_hours": agg["starting_gpu_hours"],
                     "draining_gpu_hours": agg["draining_gpu_hours"],
                     "mean_replicas": agg["mean_replicas"], "p95_slowdown": agg["p95_slowdown"],
                     "p95_slowdown_worst_seed": agg["p95_slowdown_worst_seed"],
                     "mean_slowdown": agg["mean_slowdown"], "mean_e2e_s": agg["mean_e2e_s"],
                     "meets_constraint": agg["p95_slowdown_worst_seed"] <= limit,
                     "peak_replicas": int(agg["peak_replicas_worst_seed"]),
                     "capped_ticks": int(agg["capped_ticks_worst_seed"]),
                     "per_seed_gpu_hours": [s["gpu_hours"] for s in agg["per_seed"]],
                     "per_seed_p95_slowdown": [s["p95_slowdown"] for s in agg["per_seed"]]}
        if tuning is not None:
            rows[key]["tuning"] = tuning
    # (baseline row, each row's relative change against it, suffix of the headline keys)
    bases = (("standard", "gpu_hours_vs_standard", ""),
             (OFF_THE_SHELF, "gpu_hours_vs_off_the_shelf", "_vs_off_the_shelf"))
    for base_key, vs, _ in bases:
        base = rows.get(base_key, {}).get("gpu_hours")
        for r in rows.values():
            r[vs] = (r["gpu_hours"] / base - 1.0) if base else None
    name = scenario if isinstance(scenario, str) else scenario.name
    sc = get_scenario(scenario)
    doc = {"scenario": name, "seeds": seed_list(sc, seeds), "slowdown_limit": limit,
           "tuned": tune, "pool_replicas": sc.cluster.num_replicas, "stacks": rows,
           "capped_stacks": [k for k, r in rows.items() if r["capped_ticks"]]}
    if peak is not None:
        doc["off_the_shelf"] = {"utilisation": OFF_THE_SHELF_UTILISATION,
                                "peak_decode_tokens_per_s": peak["tokens_per_s"],
                                "load_test": peak, "autoscaler": rows[OFF_THE_SHELF]["autoscaler"]}
    for base_key, vs, suffix in bases:
        for key, headline in (("glia-autoscaler", "autoscaler_alone_reduction"),
                              ("glia-stack", "whole_stack_reduction")):
            if base_key in rows and key in rows:
                doc[headline + suffix] = -rows[key][vs]
    return doc


__all__ = ["StackConfig", "STACKS", "AUTOSCALER_GRIDS", "TTFT_LIMIT_S", "SLOWDOWN_LIMIT",
           "DEFAULT_SWEEP_USERS", "concurrency_sweep",
           "slo_throughput", "sweep_bar", "grid_specs", "tune_autoscaler", "compare_stacks",
           "peak_decode_throughput", "off_the_shelf_autoscaler",
           "OFF_THE_SHELF", "OFF_THE_SHELF_UTILISATION", "CUSTOM"]
