"""``glia sweep`` / ``glia simulate --sweep-users`` and ``glia stack``: the stack figures.

* ``glia simulate --scenario routing-h100-prefill --router R --sweep-users 25,50,... --json``
  prints one router's P90-TTFT-vs-throughput curve (the paper's Fig. 6).
* ``glia sweep --routers hra least_prefill --json`` prints several curves and the points
  where one router meets the TTFT bound at a throughput where another violates it.
* ``glia stack --scenario autoscale-a10 --json`` prints GPU-hours of the standard stack and
  of Glia's layers added one at a time, at equal constraint (p95 slowdown <= 5x); ``--tune``
  first tunes every stack's autoscaler on a grid (minutes).
"""
from __future__ import annotations

import json

from glia_nb.cli.options import add_executor_args
from glia_nb.evaluation.executors import open_executor

TRUSTED_HELP = ("run policy files in the simulating process (fast, no confinement); by default "
                "each runs in a confined policy process (see glia doctor)")


def _users(text: str | None, flag: str) -> list[int]:
    """User counts from ``--users``/``--sweep-users`` text (``flag`` names the option the
    person typed, for the error)."""
    from glia_nb.evaluation.stack import DEFAULT_SWEEP_USERS

    if not text:
        return list(DEFAULT_SWEEP_USERS)
    try:
        users = [int(u) for u in text.split(",") if u.strip()]
    except ValueError:
        raise ValueError(f"{flag} must be comma-separated integers, got {text!r}") from None
    if not users or min(users) < 1:
        raise ValueError(f"{flag} needs user counts >= 1")
    return users


def _print_curve(doc: dict) -> None:
    print(f"scenario {doc['scenario']}  router {doc['router']}  ({doc['seeds']} seeds; "
          f"bound P90 TTFT <= {doc['ttft_limit_s']:g} s)")
    print(f"{'users':>6} {'QPS':>7} {'P90 TTFT s':>11} {'mean TTFT s':>12} {'mean e2e s':>11}")
    for p in doc["points"]:
        flag = "" if p["p90_ttft_s"] <= doc["ttft_limit_s"] else "  violates"
        print(f"{p['users']:>6} {p['throughput_qps']:>7.2f} {p['p90_ttft_s']:>11.3f} "
              f"{p['mean_ttft_s']:>12.3f} {p['mean_e2e_s']:>11.2f}{flag}")
    if doc["slo_qps"] is not None:
        print(f"highest compliant point {doc['max_compliant_qps']:.2f} QPS "
              f"({doc['max_compliant_users']} users); bound crossed at {doc['slo_qps']:.2f} QPS")
    else:
        print("no point meets the bound")


def cmd_sweep_one(args) -> int:
    """``glia simulate --sweep-users``: one router's curve."""
    from glia_nb.evaluation.stack import concurrency_sweep

    with open_executor(getattr(args, "workers", 1), getattr(args, "dask", None)) as ex:
        doc = concurrency_sweep(args.scenario, args.router, _users(args.sweep_users, "--sweep-users"),
                                seeds=args.seeds, duration_s=args.duration,
                                batch_policy=args.batch_policy, executor=ex, progress=True,
                                trusted=args.trusted)
    if args.json:
        print(json.dumps(doc))
    else:
        _print_curve(doc)
    return 0


def cmd_sweep(args) -> int:
    """``glia sweep``: several routers' curves and where the bar is met."""
    from glia_nb.evaluation.stack import concurrency_sweep, sweep_bar

    users = _users(args.users, "--users")
    if args.out and not str(args.out).lower().endswith((".png", ".svg", ".pdf")):
        raise ValueError(f"--out must name a .png, .svg or .pdf file, got {args.out!r}")
    with open_executor(args.workers, args.dask) as ex:
        curves = {r: concurrency_sweep(args.scenario, r, users, seeds=args.seeds, duration_s=args.duration,
                                       limit=args.limit, executor=ex, progress=True,
                                       trusted=args.trusted)
                  for r in args.routers}
    if args.out:
        _save_tradeoff(curves, args.limit, args.out)
    doc = {"scenario": args.scenario, "ttft_limit_s": args.limit, "curves": curves,
           "slo_qps": {r: c["slo_qps"] for r, c in curves.items()},
           "meets_where_other_violates": sweep_bar(curves, args.limit)}
    if args.json:
        print(json.dumps(doc))
        return 0
    for c in curves.values():
        _print_curve(c)
        print()
    if args.out:
        print(f"figure: {args.out}")
    for b in doc["meets_where_other_violates"]:
        print(f"{b['meets']} meets the bound at {b['qps_meets']:.2f} QPS ({b['users_meets']} users, "
              f"P90 TTFT {b['ttft_meets']:.2f} s) where {b['violates']} violates it at "
              f"{b['qps_violates']:.2f} QPS ({b['users_violates']} users, {b['ttft_violates']:.2f} s)")
    return 0


def _save_tradeoff(curves: dict, limit: float, path: str) -> None:
    """Draw the curves (:func:`glia_nb.plots.stack.ttft_tradeoff`) into ``path``."""
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")  # a command draws to a file, never to a window
    import matplotlib.pyplot as plt

    from glia_nb.plots.stack import ttft_tradeoff

    ax = ttft_tradeoff(curves, limit)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    ax.figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(ax.figure)


def cmd_stack(args) -> int:
    """``glia stack``: GPU-hours per stack at equal constraint."""
    from glia_nb.evaluation.stack import OFF_THE_SHELF, STACKS, compare_stacks

    known = [OFF_THE_SHELF, *STACKS]
    custom = _custom_stack(args)
    stacks = args.stacks.split(",") if args.stacks else (["standard"] if custom else known)
    unknown = [s for s in stacks if s not in known]
    if unknown:
        raise ValueError(f"unknown stack {unknown[0]!r}; known: {', '.join(known)}")
    with open_executor(args.workers, args.dask) as ex:
        doc = compare_stacks(args.scenario, seeds=args.seeds, duration_s=args.duration,
                             tune=args.tune, stacks=stacks, executor=ex, custom=custom,
                             trusted=args.trusted,
                             progress=True)  # on stderr, also when it is not a terminal
    if args.json:
        print(json.dumps(doc))
        return 0
    print(f"scenario {doc['scenario']}  seeds {doc['seeds']}  bound p95 slowdown <= "
          f"{doc['slowdown_limit']:g}x in every seed"
          + ("  (autoscalers tuned)" if doc["tuned"] else ""))
    ots = doc.get("off_the_shelf")
    if ots:
        print(f"load test: a saturated replica under the standard stack sustains "
              f"{ots['peak_decode_tokens_per_s']:.0f} decode tokens/s; off the shelf = scale out "
              f"at {ots['utilisation']:.0%} of that ({ots['autoscaler']})")
    print("busy / start / drain: shares of the GPU-hours spent running iterations / in cold "
          "starts / draining (busy includes the draining replicas' iterations)")
    print(f"{'stack':<18} {'GPU-h':>7} {'vs std':>7} {'vs ots':>7} {'busy':>5} {'start':>5} "
          f"{'drain':>5} {'replicas':>8} {'peak':>4} {'p95 sd':>7} {'worst':>6} {'e2e s':>6}  "
          "autoscaler")
    for key, r in doc["stacks"].items():
        vs = [r[k] for k in ("gpu_hours_vs_standard", "gpu_hours_vs_off_the_shelf")]
        vs = [f"{v:>+7.1%}" if v is not None else f"{'-':>7}" for v in vs]
        flag = ("" if r["meets_constraint"] else "  VIOLATES") + \
            ("  CAPPED" if r["capped_ticks"] else "")
        busy, start, drain = (r[k] / r["gpu_hours"] for k in
                              ("busy_gpu_hours", "starting_gpu_hours", "draining_gpu_hours"))
        print(f"{key:<18} {r['gpu_hours']:>7.2f} {vs[0]} {vs[1]} {busy:>5.0%} {start:>5.0%} "
              f"{drain:>5.0%} "
              f"{r['mean_replicas']:>8.2f} {r['peak_replicas']:>4d} {r['p95_slowdown']:>7.2f} "
              f"{r['p95_slowdown_worst_seed']:>6.2f} {r['mean_e2e_s']:>6.1f}  "
              f"{r['autoscaler']}{flag}")
    if doc["capped_stacks"]:
        print(f"CAPPED: {', '.join(doc['capped_stacks'])} asked for more than the pool's "
              f"{doc['pool_replicas']} replicas; their GPU-hours measure the cap, not the "
              "autoscaler (give the scenario a larger pool, e.g. "
              "workloads.scenarios.autoscale_a10_scenario(max_replicas=N))")
    for suffix, base in (("", "the tuned standard stack"),
                         ("_vs_off_the_shelf", "the off-the-shelf standard stack")):
        for k, label in (("autoscaler_alone_reduction", "autoscaler alone"),
                         ("whole_stack_reduction", "whole stack")):
            if doc.get(k + suffix) is not None:
                print(f"{label}: {doc[k + suffix]:.1%} fewer GPU-hours than {base}")
    for key, r in doc["stacks"].items():
        if "tuning" in r:
            _print_tuning(key, r["tuning"])
    return 0


def _custom_stack(args):
    """The standard stack with the layers given by ``--router``/``--batch-policy``/
    ``--autoscaler`` swapped in, or None when none is given."""
    from dataclasses import replace

    from glia_nb.evaluation.stack import STACKS

    given = {k: v for k, v in (("router", args.router), ("batch_policy", args.batch_policy),
                               ("autoscaler", args.autoscaler)) if v}
    if not given:
        return None
    label = "standard stack with " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in given.items())
    return replace(STACKS["standard"], label=label, **given)


def _print_tuning(key: str, tuning: dict) -> None:
    """Every grid setting a stack's tuning tried, cheapest first; * marks the one chosen."""
    best = (tuning["best"] or {}).get("autoscaler")
    print(f"\ntuning {key} ({tuning['family']}; worst-seed p95 slowdown <= {tuning['limit']:g}x)")
    for row in sorted(tuning["grid"], key=lambda r: r["gpu_hours"]):
        mark = "*" if row["autoscaler"] == best else " "
        flag = "" if row["feasible"] else \
            "  capped" if row["p95_slowdown_worst_seed"] <= tuning["limit"] else "  violates"
        print(f" {mark} {row['autoscaler']:<48} {row['gpu_hours']:>6.2f} GPU-h  worst p95 "
              f"{row['p95_slowdown_worst_seed']:>6.2f}{flag}")


def register(sub) -> None:
    """Add ``sweep`` and ``stack`` to the ``glia`` parser."""
    w = sub.add_parser("sweep", help="P90 TTFT vs throughput over closed-loop concurrency "
                       "for several routers (the paper's Fig. 6)")
    w.add_argument("--scenario", default="routing-h100-prefill")
    w.add_argument("--routers", nargs="+", default=["hra", "least_prefill"],
                   help="registry names or path/to/file.py:Class (sandboxed unless --trusted)")
    w.add_argument("--users", help="comma-separated user counts (default 25,50,100,200,300,400)")
    w.add_argument("--seeds", type=int, default=3)
    w.add_argument("--duration", type=float, help="override the scenario's duration (s)")
    w.add_argument("--limit", type=float, default=1.5, help="P90 TTFT bound (s)")
    add_executor_args(w)
    w.add_argument("--trusted", action="store_true", help=TRUSTED_HELP)
    w.add_argument("--out", metavar="FILE.png", help="also draw the curves into this figure "
                   "(.png, .svg or .pdf)")
    w.add_argument("--json", action="store_true")
    w.set_defaults(func=cmd_sweep)

    s = sub.add_parser("stack", help="GPU-hours of the standard and Glia-optimised stacks at "
                       "equal constraint (the paper's Fig. 4)")
    s.add_argument("--scenario", default="autoscale-a10")
    s.add_argument("--seeds", type=int, default=3)
    s.add_argument("--duration", type=float, help="override the scenario's duration (s)")
    s.add_argument("--stacks", help="comma-separated subset of: off-the-shelf, standard, "
                   "glia-autoscaler, glia-router, glia-router-batch, glia-stack")
    s.add_argument("--tune", action="store_true", help="tune each stack's autoscaler first")
    s.add_argument("--router", help="add a 'custom' row: the standard stack with this router "
                   "(registry name or path/to/file.py:Class); without --stacks it is compared "
                   "with the standard stack only")
    s.add_argument("--batch-policy", help="the custom row's batch policy (name or file.py:Name)")
    s.add_argument("--autoscaler", help="the custom row's autoscaler (name or file.py:Class)")
    s.add_argument("--trusted", action="store_true", help=TRUSTED_HELP)
    add_executor_args(s)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_stack)
