"""CPU seconds of a routing-a10 simulation with a Python LLQ router: in-process vs sandboxed.

Run: ``python benchmarks/bench_sandbox.py [--seed 0] [--repeat 5]``.  The sandboxed figure
counts both processes: the harness's own CPU time during the simulation plus the policy
process's CPU time after its start-up (it reports its own rusage when it quits).  Each
figure is the least over ``--repeat`` runs (a fresh policy process each), since other work
on the machine only ever adds time; the load average is printed with them.  The floor is
as many bare round trips over the channel the proxy uses (a pair of pipes) as the run made
router calls: in-process plus the floor is the least any one-call-per-event proxy can cost.
The fixed cost of one ``glia study`` experiment (process start, confinement, imports) is
printed separately.
"""
from __future__ import annotations

import argparse
import tempfile
import textwrap
import time
from pathlib import Path

LLQ = textwrap.dedent("""
    import numpy as np

    class LLQ:
        idle_when_queue_empty = True  # as the built-in LLQ: no call while nothing waits

        def reset(self, info, rng):
            pass

        def route(self, view):
            q = view.queue
            if not len(q):
                return ()
            load = (view.num_waiting + view.num_running).astype(np.float64)
            out = []
            for k in q:
                r = int(load.argmin())
                out.append((int(k), r))
                load[r] += 1.0
            return out
""")


def round_trip_floor(n: int) -> float:
    """CPU seconds (both processes) of ``n`` bare round trips over a pair of pipes, shaped
    like routing calls (a 6-byte request, a 21-byte reply of one decision): the least any
    one-call-per-event proxy can cost on this machine.  Both ends share one CPU, as the
    harness and the policy process do while a seed runs (``PolicyProcess._pin``)."""
    import os
    import resource

    from glia_nb.evaluation.proxy import current_cpu

    req_r, req_w = os.pipe()
    rep_r, rep_w = os.pipe()
    mine_cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {current_cpu() or min(mine_cpus)})
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        for _ in range(n):
            os.read(req_r, 1 << 16)
            os.write(rep_w, bytes(21))
        os._exit(0)
    t = time.process_time()
    for _ in range(n):
        os.write(req_w, bytes(6))
        os.read(rep_r, 1 << 16)
    mine = time.process_time() - t
    os.waitpid(pid, 0)
    os.sched_setaffinity(0, mine_cpus)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    for fd in (req_r, req_w, rep_r, rep_w):
        os.close(fd)
    return mine + (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def sandboxed_run(path: Path, sc, trace, seed: int, level: str) -> tuple:
    """One simulation through a fresh policy process: ``(harness CPU, policy CPU, result,
    policy start-up CPU, the isolation it ran under)``."""
    from glia_nb.evaluation.confine import HardLimits
    from glia_nb.evaluation.proxy import PolicyProcess
    from sim_core.facade import cluster_info, simulate

    proc = PolicyProcess(level=level, limits=HardLimits(), deadline=time.monotonic() + 600,
                         log_path=str(path.with_suffix(".log")))
    try:
        proc.load(LLQ, str(path), "LLQ", "router")
        t = time.process_time()
        res = simulate(sc.cluster, trace, proc.for_seed(seed, cluster_info(sc.cluster)),
                       seed=seed, share_state=proc.share_state)
        harness = time.process_time() - t
    finally:
        proc.close()
    start = proc.start_cpu_s or 0.0
    return harness, (proc.cpu_s or 0.0) - start, res, start, proc.isolation


def main() -> None:
    """Print the side-by-side figures."""
    import os

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=5, help="runs of each; the least is shown")
    args = ap.parse_args()
    from glia_nb.evaluation.confine import choose_isolation
    from glia_nb.evaluation.harness import evaluate
    from glia_nb.tasks import get_task
    from sim_core.facade import simulate, warm_up
    from workloads import get_scenario

    load0 = os.getloadavg()[0]
    warm_up()
    sc = get_scenario("routing-a10")
    trace = sc.trace(args.seed)
    reps = max(1, args.repeat)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "llq.py"
        path.write_text(LLQ)
        simulate(sc.cluster, trace, f"{path}:LLQ", seed=args.seed)  # warm caches
        inproc = []
        for _ in range(reps):
            t = time.process_time()
            ref = simulate(sc.cluster, trace, f"{path}:LLQ", seed=args.seed)
            inproc.append(time.process_time() - t)
        level = choose_isolation()
        runs = [sandboxed_run(path, sc, trace, args.seed, level) for _ in range(reps)]
        harness, policy, res, start_cpu, isolation = min(runs, key=lambda r: r[0] + r[1])
        assert res.summary["mean_e2e_s"] == ref.summary["mean_e2e_s"], "sandboxed score differs"
        floor = min(round_trip_floor(ref.router_calls) for _ in range(reps))
        task = get_task("routing-a10").replace(duration_s=1.0, eval_seeds=(args.seed,))
        w = time.perf_counter()
        one = evaluate(f"{path}:LLQ", task)
        fixed = time.perf_counter() - w
    best = min(inproc)
    print(f"routing-a10 seed {args.seed}: {ref.router_calls} router calls, "
          f"mean e2e {ref.summary['mean_e2e_s']:.4f} s (identical in both); least of {reps} "
          f"runs each, load average {load0:.2f} -> {os.getloadavg()[0]:.2f} on "
          f"{os.cpu_count()} CPUs")
    print(f"in-process  CPU {best:7.3f} s")
    print(f"sandboxed   CPU {harness + policy:7.3f} s  (harness {harness:.3f} + policy {policy:.3f}; "
          f"isolation {isolation})  ratio {(harness + policy) / best:.2f}x")
    print(f"floor: {ref.router_calls} bare pipe round trips cost {floor:.3f} s CPU (both "
          f"processes); in-process + floor {best + floor:.3f} s, ratio {(best + floor) / best:.2f}x")
    print(f"policy process start-up CPU {start_cpu:.3f} s (imports, before the first call)")
    print(f"fixed cost of one experiment (1 s trace, wall): {fixed:.2f} s ({one.isolation}, "
          f"{'ok' if one.ok else one.error_kind})")


if __name__ == "__main__":
    main()
