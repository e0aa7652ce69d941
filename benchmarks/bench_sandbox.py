"""CPU seconds of a routing-a10 simulation with a Python LLQ router: in-process vs sandboxed.

Run: ``python benchmarks/bench_sandbox.py [--seed 0]``.  The sandboxed figure counts both
processes: the harness's own CPU time during the simulation plus the policy process's CPU
time after its start-up (it reports its own rusage when it quits).  The fixed cost of one
``glia study`` experiment (process start, confinement, imports) is printed separately.
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
    """CPU seconds (both processes) of ``n`` bare 2-byte round trips over a Unix socket pair:
    the least any one-call-per-event proxy can cost on this machine."""
    import os
    import resource
    import socket

    a, b = socket.socketpair()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        for _ in range(n):
            os.read(b.fileno(), 64)
            os.write(b.fileno(), b"D")
        os._exit(0)
    t = time.process_time()
    for _ in range(n):
        os.write(a.fileno(), b"R\x00")
        os.read(a.fileno(), 64)
    mine = time.process_time() - t
    os.waitpid(pid, 0)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine + (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def main() -> None:
    """Print the side-by-side figures."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from glia_nb.evaluation.confine import HardLimits, choose_isolation
    from glia_nb.evaluation.harness import evaluate
    from glia_nb.evaluation.proxy import PolicyProcess
    from glia_nb.tasks import get_task
    from sim_core.facade import cluster_info, simulate, warm_up
    from workloads import get_scenario

    warm_up()
    sc = get_scenario("routing-a10")
    trace = sc.trace(args.seed)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "llq.py"
        path.write_text(LLQ)
        simulate(sc.cluster, trace, f"{path}:LLQ", seed=args.seed)  # warm caches
        t = time.process_time()
        ref = simulate(sc.cluster, trace, f"{path}:LLQ", seed=args.seed)
        inproc = time.process_time() - t
        level = choose_isolation()
        w = time.perf_counter()
        proc = PolicyProcess(level=level, limits=HardLimits(), deadline=time.monotonic() + 600,
                             log_path=str(Path(d) / "log.txt"))
        proc.load(LLQ, str(path), "LLQ", "router")
        t = time.process_time()
        res = simulate(sc.cluster, trace, proc.for_seed(args.seed, cluster_info(sc.cluster)),
                       seed=args.seed, share_state=proc.share_state)
        harness = time.process_time() - t
        proc.close()
        start_wall = time.perf_counter() - w
        policy = (proc.cpu_s or 0.0) - proc.start_cpu_s
        assert res.summary["mean_e2e_s"] == ref.summary["mean_e2e_s"], "sandboxed score differs"
        task = get_task("routing-a10").replace(duration_s=1.0, eval_seeds=(args.seed,))
        w = time.perf_counter()
        one = evaluate(f"{path}:LLQ", task)
        fixed = time.perf_counter() - w
    print(f"routing-a10 seed {args.seed}: {ref.router_calls} router calls, "
          f"mean e2e {ref.summary['mean_e2e_s']:.4f} s (identical in both)")
    print(f"in-process  CPU {inproc:7.3f} s")
    print(f"sandboxed   CPU {harness + policy:7.3f} s  (harness {harness:.3f} + policy {policy:.3f}; "
          f"isolation {level})  ratio {(harness + policy) / inproc:.2f}x")
    print(f"floor: {ref.router_calls} bare socket round trips cost "
          f"{round_trip_floor(ref.router_calls):.3f} s CPU (both processes)")
    print(f"policy process start-up CPU {proc.start_cpu_s:.3f} s (imports, before the first call)")
    print(f"fixed cost of one experiment (1 s trace, wall): {fixed:.2f} s ({one.isolation}, "
          f"{'ok' if one.ok else one.error_kind})")


if __name__ == "__main__":
    main()
