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
* :func:`sandboxed_policies` — every ``file.py:Class`` policy of a stack swapped for a
  confined policy process (untrusted code); :func:`is_policy_file` says which specs are files.

Policy files are untrusted on the command line: :func:`run_seed` / :func:`run_seeds` /
:func:`evaluate_config` (``glia simulate``, ``glia sweep``, ``glia stack``) run them
sandboxed unless ``trusted=True`` (``--trusted``).  :func:`simulate_config`,
:func:`simulate_seeds` and :func:`simulate_jobs` (the notebook helpers) run whatever spec
they are given in-process: there it is the person's own code.  Registry names, classes and
instances are trusted code and run in-process everywhere.

``glia simulate``, the sandboxed evaluator's worker, sweeps and stack comparisons
(:mod:`glia_nb.evaluation.stack`) and the notebook helpers (:mod:`glia_nb.widgets.progress`)
all simulate through here.

``sim_core`` is imported inside the functions on purpose: the sandbox worker imports this
module before it may load numba, and importing it must stay cheap.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from concurrent.futures import Executor, as_completed
from typing import Any, Sequence

from glia_nb.progress import progress as progress_bar
from glia_nb.tasks.layers import LAYERS

__all__ = ["seed_list", "simulate_config", "simulate_seeds", "simulate_jobs", "check_stack", "run_seed",
           "run_seeds", "aggregate", "evaluate_config", "WORST_SEED_METRICS", "is_policy_file",
           "sandboxed_policies"]

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
    try:
        for fut in (progress_bar(done, desc=desc, total=len(jobs), unit=unit, leave=leave)
                    if desc else done):
            i = futures[fut]
            out[i] = fut.result()
            if on_result is not None:
                on_result(jobs[i], out[i])
    except BaseException:
        for fut in futures:  # one run failed (or Ctrl-C): the rest are not wanted
            fut.cancel()
        raise
    return out


def check_stack(router: Any = "llq", batch_policy: Any = None, autoscaler: Any = None) -> None:
    """Build each part of a stack once, so that a bad spec raises its
    :class:`~sim_core.policies.PolicyLoadError` before anything is simulated."""
    for layer, spec in (("router", router), ("batch_policy", batch_policy),
                        ("autoscaler", autoscaler)):
        if isinstance(spec, str):
            LAYERS[layer].maker()(spec)


def is_policy_file(spec) -> bool:
    """True for a ``path/to/file.py:Name`` spec (untrusted code), False for registry names,
    classes and instances."""
    from sim_core.policies import split_file_spec

    return isinstance(spec, str) and split_file_spec(spec) is not None


@contextlib.contextmanager
def sandboxed_policies(specs: dict, cluster, *, wall_s: float = 3600.0, log_dir=None):
    """Yield ``(policies, start_seed)``: ``specs`` (``{"router": ..., "batch_policy": ...,
    "autoscaler": ...}``) with each policy file replaced by a confined policy process, and
    ``start_seed(seed)`` returning the ``share_state`` hook of that seed's simulation (None
    when nothing is sandboxed).  Every process is killed on exit."""
    from pathlib import Path

    from glia_nb.evaluation.confine import HardLimits, choose_isolation
    from glia_nb.evaluation.proxy import PolicyProcess, share_with
    from sim_core.facade import cluster_info
    from sim_core.routers import RouterLoadError

    procs, out = [], dict(specs)
    try:
        level = None
        for layer, spec in specs.items():
            if not is_policy_file(spec):
                continue
            level = level or choose_isolation()
            head, _, name = str(spec).rpartition(":")
            try:
                source = Path(head).read_bytes().decode("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise RouterLoadError(f"policy file {head} cannot be read as UTF-8 text: {exc}") from exc
            log = Path(log_dir) / f"policy_{layer}.log" if log_dir else Path(os.devnull)
            p = PolicyProcess(level=level, limits=HardLimits(cpu_s=int(wall_s) + 30),
                              deadline=time.monotonic() + wall_s, log_path=str(log))
            procs.append(p)
            p.load(source, head, name, layer)
            out[layer] = p

        def start_seed(seed: int):
            if not procs:
                return None
            for p in procs:
                p.for_seed(seed, cluster_info(cluster))
            return share_with(procs)
        yield out, start_seed
    finally:
        for p in procs:
            p.close()


def run_seed(args: tuple) -> dict:
    """One simulation's summary (a picklable job: scenario, seed, router, batch policy,
    autoscaler and, optionally, ``trusted``).  Unless trusted, policy files run in confined
    policy processes that this job starts and kills (on whatever worker runs it)."""
    scenario, seed, router, batch_policy, autoscaler, *rest = args
    specs = {"router": router, "batch_policy": batch_policy, "autoscaler": autoscaler}
    if (rest and rest[0]) or not any(is_policy_file(s) for s in specs.values()):
        return dict(simulate_config(scenario, seed, **specs).summary)
    with sandboxed_policies(specs, scenario.cluster) as (policies, start_seed):
        return dict(simulate_config(scenario, seed, **policies,
                                    share_state=start_seed(seed)).summary)


def run_seeds(scenario, seeds: int | Sequence[int], router: Any = "llq",
              batch_policy: Any = None, autoscaler: Any = None, *,
              executor: Executor | None = None, trusted: bool = False) -> list[dict]:
    """The summary of each seed, in seed order (on ``executor`` when given); policy files
    run sandboxed unless ``trusted``."""
    jobs = [(scenario, s, router, batch_policy, autoscaler, trusted)
            for s in seed_list(scenario, seeds)]
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
                    executor: Executor | None = None, trusted: bool = False) -> dict:
    """Aggregate summary (see :func:`aggregate`) of one stack on ``scenario`` (a preset name
    or a Scenario) over ``seeds``, with the per-seed summaries under ``"per_seed"``.
    Policy files run sandboxed unless ``trusted``."""
    from workloads import get_scenario

    sc = get_scenario(scenario, duration_s=duration_s)
    if autoscaler is not None and sc.autoscale is None:
        from sim_core.autoscale import AutoscaleConfig

        sc = sc.replace(autoscale=AutoscaleConfig())
    per_seed = run_seeds(sc, seeds, router, batch_policy, autoscaler, executor=executor,
                         trusted=trusted)
    out = aggregate(per_seed)
    out["per_seed"] = per_seed
    return out
