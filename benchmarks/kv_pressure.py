"""How full the KV pools are when a router holds requests back, at a steady load.

    python benchmarks/kv_pressure.py [--qps 15] [--replicas 7] [--duration 600] [--seeds 2]

For each router (HRA and LLQ, both with shortest-prefill-first queues) on the autoscale-a10
workload at a constant Poisson rate: the share of routing calls after the first 120 s at which
requests stayed in the global queue, the mean KV-pool use across replicas at those calls and
overall, and the busy GPU-hours.  If the pools are nearly full whenever requests are held, the
router is not leaving memory unused: a fixed pool then serves only as many requests as fit,
and what GPU-hours a stack can save comes from doing each request's work in less GPU time.

Then, on autoscale-a10 itself (``--stack-seeds``, default 3), each stack's batch iterations
against ``sim_core.ideal.min_iterations``: the fewest iterations any schedule could use given
the KV pool's size.  An iteration costs at least the weight read (about 29 ms on the A10
table), so iterations above the bound are GPU time no autoscaler can recover.
"""
from __future__ import annotations

import argparse

import numpy as np

from sim_core import simulate
from sim_core.config import ClusterConfig, ReplicaConfig
from sim_core.routers import make_router
from workloads.arrivals import ArrivalSpec
from workloads.scenarios import WorkloadSpec

WARM_UP_S = 120.0


class KvProbe:
    """Wraps a router and samples KV-pool use at every call after the warm-up."""

    def __init__(self, router):
        self.router = router
        self.samples: list[tuple[bool, float]] = []

    def reset(self, info, rng):
        if hasattr(self.router, "reset"):
            self.router.reset(info, rng)

    def route(self, view):
        out = list(self.router.route(view))
        if view.now > WARM_UP_S:
            use = float((view.allocated_blocks / view.num_blocks).mean())
            self.samples.append((len(view.queue) > len(out), use))
        return out


def measure(router: str, qps: float, replicas: int, duration: float, seed: int) -> dict:
    """One run's figures (see the module docstring)."""
    wl = WorkloadSpec(lengths="sharegpt-inflated", arrival=ArrivalSpec(kind="poisson", qps=qps))
    probe = KvProbe(make_router(router))
    res = simulate(ClusterConfig(num_replicas=replicas, replica=ReplicaConfig()),
                   wl.trace(duration, seed), probe, seed=seed, batch_policy="spf",
                   record_timeline=False)
    held = np.array([h for h, _ in probe.samples], bool)
    use = np.array([u for _, u in probe.samples])
    return {"held_share": float(held.mean()) if len(held) else 0.0,
            "kv_use_when_held": float(use[held].mean()) if held.any() else float("nan"),
            "kv_use": float(use.mean()) if len(use) else float("nan"),
            "busy_gpu_hours": res.summary["busy_gpu_hours"],
            "restart_fraction": res.summary["restart_fraction"]}


def stack_iterations(stack: str, seed: int, duration: float | None = None) -> dict:
    """A stack of ``glia_nb.evaluation.stack.STACKS`` on autoscale-a10: its iterations and the bound."""
    from glia_nb.evaluation.simulate import simulate_config
    from glia_nb.evaluation.stack import STACKS
    from workloads import get_scenario
    from sim_core.ideal import min_iterations

    sc = get_scenario("autoscale-a10", duration_s=duration)
    st = STACKS[stack]
    res = simulate_config(sc, seed, st.router, st.batch_policy, st.autoscaler)
    rc, req = sc.cluster.replica, res.requests
    return {"iterations": res.summary["iterations"],
            "bound": min_iterations(req.prompt_tokens.to_numpy(), req.decode_tokens.to_numpy(),
                                    rc.num_blocks, rc.block_size),
            "busy_gpu_hours": res.summary["busy_gpu_hours"]}


def _mean(values) -> float:
    vals = [v for v in values if not np.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--qps", type=float, default=15.0)
    ap.add_argument("--replicas", type=int, default=7)
    ap.add_argument("--duration", type=float, default=600.0)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--stack-seeds", type=int, default=3)
    args = ap.parse_args()
    print(f"{args.replicas} A10 replicas, Poisson {args.qps:g} QPS, {args.duration:g} s, "
          f"seeds 0-{args.seeds - 1}, shortest-prefill-first queues")
    print("| router | calls holding requests | KV use when holding | KV use | busy GPU-h | restarted |")
    print("|---|---|---|---|---|---|")
    for router in ("hra", "llq"):
        rows = [measure(router, args.qps, args.replicas, args.duration, s)
                for s in range(args.seeds)]
        m = {k: _mean(r[k] for r in rows) for k in rows[0]}
        when_held = "—" if np.isnan(m["kv_use_when_held"]) else f"{m['kv_use_when_held']:.1%}"
        print(f"| {router} | {m['held_share']:.0%} | {when_held} | "
              f"{m['kv_use']:.1%} | {m['busy_gpu_hours']:.3f} | {m['restart_fraction']:.1%} |")
    print(f"\nautoscale-a10, seeds 0-{args.stack_seeds - 1} (means per seed): iterations against "
          "the KV-capacity bound")
    print("| stack | iterations | bound | above bound | busy GPU-h |")
    print("|---|---|---|---|---|")
    for stack in ("standard", "glia-stack"):
        rows = [stack_iterations(stack, s) for s in range(args.stack_seeds)]
        m = {k: _mean(r[k] for r in rows) for k in rows[0]}
        print(f"| {stack} | {m['iterations']:,.0f} | {m['bound']:,.0f} | "
              f"{m['iterations'] / m['bound'] - 1:+.0%} | {m['busy_gpu_hours']:.3f} |")


if __name__ == "__main__":
    main()
