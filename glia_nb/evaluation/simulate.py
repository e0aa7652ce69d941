"""The one path from "a scenario, seeds and a stack" to simulation results.

* :func:`seed_list` — which seeds a count or a list means for a scenario.
* :func:`simulate_config` — one seed of a scenario under a stack (router, batch policy,
  autoscaler): a :class:`~sim_core.results.SimResult`.
* :func:`simulate_seeds` — several seeds, in this process or on an executor, with an
  optional progress bar; :func:`simulate_jobs` — any list of runs on an executor.
* :func:`run_seed` / :func:`run_seeds` — the summaries of several seeds, on an executor if
  one is given (the jobs are picklable).
* :func:`aggregate` — the summary over seeds (means, worst seeds, a CI of ``mean_e2e_s``).
* :func:`evaluate_config` — :func:`run_seeds` then :func:`aggregate`.

``glia simulate``, the sandboxed evaluator's worker, sweeps and stack comparisons
(:mod:`glia_nb.evaluation.stack`) and the notebook helpers (:mod:`glia_nb.widgets.progress`)
all simulate through here.

``sim_core`` is imported inside the functions on purpose: the sandbox worker imports this
module before it may load numba, and importing it must stay cheap.
"""
from __future__ import annotations

import math
from concurrent.futures import Executor, as_completed
from typing import Any, Sequence

from glia_nb.progress import progress as progress_bar
from glia_nb.tasks.layers import LAYERS

__all__ = ["seed_list", "simulate_config", "simulate_seeds", "simulate_jobs", "check_stack", "run_seed", "run_seeds",
           "aggregate", "evaluate_config", "WORST_SEED_METRICS"]

# Tail metrics that bounds are checked against run by run: the summary also carries their
# worst seed (``<metric>_worst_seed``), since a mean over seeds can hide a run that breaks them.
WORST_SEED_METRICS = ("p95_slowdown", "p90_ttft_s", "peak_replicas", "capped_ticks")


def seed_list(scenario, seeds: int | Sequence[int]) -> list[int]:
    """The seeds ``seeds`` means: a count takes the scenario's first N (``range(N)`` past
    the scenario's list), a sequence is taken as is."""
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError("seeds must be >= 1")
        return list(scenario.seeds[:seeds]) if seeds <= len(scenario.seeds) else list(range(seeds))
    return [int(s) for s in seeds]


def simulate_config(scenario, seed: int, router: Any = "llq", batch_policy: Any = None,
                    autoscaler: Any = None, *, record_timeline: bool = False, trace=None,
                    share_state=None):
    """One seed of ``scenario`` under a stack; the scenario's autoscale settings apply when
    there is an autoscaler. ``trace`` replaces the scenario's trace for that seed.
    ``share_state``: the sandbox's hook (see :mod:`glia_nb.evaluation.proxy`)."""
    from sim_core import simulate

    return simulate(scenario.cluster, scenario.trace(seed) if trace is None else trace, router,
                    seed=seed, batch_policy=batch_policy, autoscaler=autoscaler,
                    autoscale=getattr(scenario, "autoscale", None) if autoscaler is not None
                    else None, record_timeline=record_timeline, share_state=share_state)


def simulate_seeds(scenario, seeds: int | Sequence[int], router: Any = "llq",
                   batch_policy: Any = None, autoscaler: Any = None, *,
                   record_timeline: bool = False, desc: str | None = None, leave: bool = True,
                   trace=None, on_result=None, start_seed=None,
                   executor: Executor | None = None) -> list:
    """:func:`simulate_config` for each seed, in seed order; a progress bar when ``desc`` is
    given (``leave=False`` clears it at the end); ``on_result(seed, result)`` is called
    after each.  ``start_seed(seed)`` returns the sandbox's ``share_state`` hook for that
    seed (policy files in policy processes).  With ``executor`` (a local pool or a Dask
    cluster's, see :func:`~glia_nb.evaluation.executors.open_executor`) the seeds run there,
    and ``on_result`` is called as each finishes."""
    seeds = seed_list(scenario, seeds)
    check_stack(router, batch_policy, autoscaler)  # a bad spec fails before any bar is drawn
    if executor is not None:
        if trace is not None or start_seed is not None:
            raise ValueError("trace= and start_seed= run in this process only (no executor)")
        jobs = [(scenario, s, router, batch_policy, autoscaler) for s in seeds]
        return simulate_jobs(jobs, executor, record_timeline=record_timeline, desc=desc,
                             unit="seed", leave=leave,
                             on_result=None if on_result is None
                             else (lambda job, res: on_result(job[1], res)))
    out = []
    for seed in (progress_bar(seeds, desc=desc, unit="seed", leave=leave) if desc else seeds):
        res = simulate_config(scenario, seed, router, batch_policy, autoscaler,
                              record_timeline=record_timeline, trace=trace,
                              share_state=start_seed(seed) if start_seed else None)
        if on_result is not None:
            on_result(seed, res)
        out.append(res)
    return out


def simulate_jobs(jobs: Sequence[tuple], executor: Executor, *, record_timeline: bool = False,
                  desc: str | None = None, unit: str = "run", leave: bool = True,
                  on_result=None) -> list:
    """:func:`simulate_config` of each job ``(scenario, seed, router, batch_policy,
    autoscaler)`` on ``executor``; the results in job order.  A progress bar (when ``desc``
    is given) advances as runs finish, in whatever order they finish;
    ``on_result(job, result)`` is called then."""
    futures = {executor.submit(simulate_config, *job, record_timeline=record_timeline): i
               for i, job in enumerate(jobs)}
    out: list = [None] * len(jobs)
    done = as_completed(futures)
    for fut in (progress_bar(done, desc=desc, total=len(jobs), unit=unit, leave=leave)
                if desc else done):
        i = futures[fut]
        out[i] = fut.result()
        if on_result is not None:
            on_result(jobs[i], out[i])
    return out


def check_stack(router: Any = "llq", batch_policy: Any = None, autoscaler: Any = None) -> None:
    """Build each part of a stack once, so that a bad spec raises its
    :class:`~sim_core.policies.PolicyLoadError` before anything is simulated."""
    for layer, spec in (("router", router), ("batch_policy", batch_policy),
                        ("autoscaler", autoscaler)):
        if isinstance(spec, str):
            LAYERS[layer].maker()(spec)


def run_seed(args: tuple) -> dict:
    """One simulation's summary (a picklable job: scenario, seed, router, batch policy,
    autoscaler)."""
    return dict(simulate_config(*args).summary)


def run_seeds(scenario, seeds: int | Sequence[int], router: Any = "llq",
              batch_policy: Any = None, autoscaler: Any = None, *,
              executor: Executor | None = None) -> list[dict]:
    """The summary of each seed, in seed order (on ``executor`` when given)."""
    jobs = [(scenario, s, router, batch_policy, autoscaler) for s in seed_list(scenario, seeds)]
    if executor is None:
        return [run_seed(j) for j in jobs]
    return list(executor.map(run_seed, jobs))


def aggregate(per_seed: list[dict], confidence: float = 0.90) -> dict:
    """Summary over seeds: the mean of every numeric per-seed metric, the worst seed of each
    of :data:`WORST_SEED_METRICS` present, and a bootstrap CI of ``mean_e2e_s`` (as
    :func:`sim_core.results.summarize_seeds` computes it)."""
    from sim_core.results import bootstrap_ci

    if not per_seed:
        return {}
    keys = [k for k, v in per_seed[0].items() if isinstance(v, (int, float))
            and not isinstance(v, bool) and k != "seed"]
    out: dict[str, Any] = {}
    for k in keys:
        vals = [float(s[k]) for s in per_seed if k in s]
        out[k] = math.fsum(vals) / len(vals) if vals else float("nan")
        if k in WORST_SEED_METRICS and vals:
            out[f"{k}_worst_seed"] = max(vals)
    if "mean_e2e_s" in out:
        lo, hi = bootstrap_ci([s["mean_e2e_s"] for s in per_seed], confidence)
        out["mean_e2e_ci90_s"] = [lo, hi]
    out["num_seeds"] = len(per_seed)
    out["seeds"] = [s.get("seed") for s in per_seed]
    return out


def evaluate_config(scenario, *, router: Any = "llq", batch_policy: Any = None,
                    autoscaler: Any = None, seeds: int | Sequence[int] = 3, duration_s=None,
                    executor: Executor | None = None) -> dict:
    """Aggregate summary (see :func:`aggregate`) of one stack on ``scenario`` (a preset name
    or a Scenario) over ``seeds``, with the per-seed summaries under ``"per_seed"``."""
    from workloads import get_scenario

    sc = get_scenario(scenario, duration_s=duration_s)
    if autoscaler is not None and sc.autoscale is None:
        from sim_core.autoscale import AutoscaleConfig

        sc = sc.replace(autoscale=AutoscaleConfig())
    per_seed = run_seeds(sc, seeds, router, batch_policy, autoscaler, executor=executor)
    out = aggregate(per_seed)
    out["per_seed"] = per_seed
    return out
