"""Progress bars for long work: seed batches, router sweeps and running sessions.

Built on ``tqdm.auto``: a widget bar in Jupyter, a text bar on stderr in a terminal or
under pytest. ``GLIA_PROGRESS=0`` in the environment turns the bars off (CI logs).

    from glia_nb.widgets import simulate_seeds, compare_routers
    results = simulate_seeds(scenario, "llq", seeds=[0, 1, 2])
    runs, table = compare_routers(scenario, {"RR": "rr", "LLQ": "llq"}, seeds=[0, 1])
    runs, table = compare_routers(scenario, routers, seeds, dask="tcp://10.0.0.5:8786")
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Mapping, Sequence

from glia_nb.evaluation.executors import open_executor
from glia_nb.evaluation.simulate import simulate_config, simulate_jobs
from glia_nb.evaluation.simulate import simulate_seeds as run_simulations
from glia_nb.progress import progress

__all__ = ["progress", "simulate_seeds", "compare_routers", "summary_table", "track_session", "wait_async"]


def simulate_seeds(scenario: Any, router: Any, seeds: Sequence[int], *, desc: str | None = None,
                   record_timeline: bool = True, workers: int = 1, dask: str | None = None,
                   **simulate_kw: Any) -> list[Any]:
    """Simulate ``router`` on ``scenario.trace(seed)`` for each seed, with a progress bar.

    ``router`` is anything :func:`sim_core.simulate` accepts (a registry name such as
    ``"llq"``, a ``file.py:Class`` spec, a class); an instance is not shared between seeds
    unless you pass one. ``workers > 1`` runs the seeds in a local process pool, and ``dask``
    (or ``$GLIA_DASK``) on a Dask cluster by address, e.g. ``"tcp://10.0.0.5:8786"``
    (docs/dask.md: a class or a file spec must be importable or readable on the workers).
    Returns the ``SimResult`` objects in seed order."""
    name = desc or f"{router if isinstance(router, str) else type(router).__name__}"
    with open_executor(workers, dask) as executor:
        return run_simulations(scenario, list(seeds), router, record_timeline=record_timeline,
                               desc=name, executor=executor, **simulate_kw)


_SUMMARY_COLUMNS = ("mean_e2e_s", "p90_e2e_s", "p99_e2e_s", "mean_ttft_s", "p90_ttft_s",
                    "restart_fraction", "mean_replica_queue_s", "mean_global_queue_s",
                    "mean_lost_to_restarts_s", "throughput_qps")


def summary_table(runs: Mapping[str, Sequence[Any]], *, per_seed: bool = False,
                  columns: Sequence[str] = _SUMMARY_COLUMNS):
    """A DataFrame of ``SimResult.summary`` metrics: one row per (router, seed) when
    ``per_seed``, else the mean over seeds per router (index = router label)."""
    import pandas as pd

    rows = []
    for label, results in runs.items():
        for r in results:
            s = r.summary
            rows.append({"router": label, "seed": s.get("seed", getattr(r, "seed", None)),
                         **{c: s.get(c) for c in columns}})
    df = pd.DataFrame(rows)
    if per_seed or df.empty:
        return df
    agg = df.drop(columns="seed").groupby("router", sort=False).mean()
    agg.insert(0, "seeds", df.groupby("router", sort=False)["seed"].count())
    return agg


def compare_routers(scenario: Any, routers: Mapping[str, Any], seeds: Sequence[int], *,
                    record_timeline: bool = True, batch_policy: Any = None,
                    autoscaler: Any = None, workers: int = 1, dask: str | None = None):
    """Simulate each router (label -> spec) on the same seeds with one bar over all runs,
    in this process, a pool of ``workers`` processes or on the Dask cluster at ``dask`` (or
    ``$GLIA_DASK``), as :func:`simulate_seeds`.  Returns ``(runs, table)``: ``runs[label]``
    is the list of results in seed order and ``table`` the mean over seeds per router (see
    :func:`summary_table`)."""
    labels = [(label, seed) for label in routers for seed in seeds]
    jobs = [(scenario, seed, routers[label], batch_policy, autoscaler) for label, seed in labels]
    runs: dict[str, list[Any]] = {label: [] for label in routers}
    with open_executor(workers, dask) as executor:
        if executor is not None:
            results = simulate_jobs(jobs, executor, record_timeline=record_timeline,
                                    desc="simulating", unit="run")
        else:
            results = []
            bar = progress(list(zip(labels, jobs)), desc="simulating", unit="run")
            for (label, seed), job in bar:
                if hasattr(bar, "set_postfix_str"):
                    bar.set_postfix_str(f"{label} seed {seed}", refresh=False)
                results.append(simulate_config(*job, record_timeline=record_timeline))
    for (label, _seed), res in zip(labels, results):
        runs[label].append(res)
    return runs, summary_table(runs)


def track_session(session: Any, desc: str = "experiments") -> Callable[[], None]:
    """A progress bar of a session's simulations against its budget, advanced from the
    session's events (works in a terminal too). Returns a function that closes the bar
    and unsubscribes; the bar also closes when the session ends."""
    limit = (session.budget_used.get("limits") or {}).get("max_simulations")
    bar = progress(None, desc=desc, total=limit, unit="sim")
    state = {"closed": False}

    def close() -> None:
        if not state["closed"]:
            state["closed"] = True
            unsubscribe()
            bar.close()

    def on_event(ev: Mapping[str, Any]) -> None:
        t = ev.get("type")
        if t == "experiment":
            bar.update(1)  # one simulation per experiment (the budget's unit)
            if ev.get("score") is not None:
                bar.set_postfix_str(f"{ev.get('name', '')}: {float(ev['score']):.4g}", refresh=False)
        elif t == "status" and ev.get("status") in ("stopped", "finished", "failed"):
            close()

    unsubscribe = session.subscribe(on_event)
    return close


async def wait_async(session: Any, timeout: float | None = None, poll_s: float = 0.5) -> bool:
    """Wait for a started session without blocking the kernel: ``await wait_async(session)``
    in a cell keeps widget clicks (nudges, approvals) flowing while it waits (ipykernel ≥
    7.4 dispatches comm messages during an awaiting cell). True if the session ended."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while not session.wait(timeout=0):
        if deadline is not None and time.monotonic() >= deadline:
            return False
        await asyncio.sleep(poll_s)
    return True
