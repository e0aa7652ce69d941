"""The ``glia`` command line: simulate, study, report, compare, publish.

Every subcommand ends bad input with a one-line ``glia: error: ...`` and exit status 2,
never a traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from glia_nb.cli.latency import register as register_latency


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def _print_table(rows: list[dict], cols: list[tuple[str, str, str]]) -> None:
    """Print rows as an aligned text table; cols = (key, header, format)."""
    cells = [[h for _, h, _ in cols]] + [[format(r[k], f) if r.get(k) is not None else "-"
                                          for k, _, f in cols] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(cols))]
    for i, row in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
        if i == 0:
            print("  ".join("-" * w for w in widths))


# ------------------------------------------------------------------------ simulate
def run_simulations(scenario_name: str, router: str, seeds: int | list[int], *, out=None,
                    trace_csv=None, duration_s=None, progress: bool = False,
                    batch_policy=None, autoscaler=None, users=None, trusted: bool = False) -> dict:
    """Run a router (with an optional batch policy and autoscaler) on a scenario over seeds
    and return the CLI's JSON document.  Policy files run in confined policy processes
    unless ``trusted`` (see ``glia doctor``)."""
    # Imported here for start-up time: `glia --help` must not load numba and pandas.
    from sim_core.facade import warm_up
    from sim_core.results import summarize_seeds
    from workloads import Trace, get_scenario

    from glia_nb.evaluation.simulate import aggregate, simulate_seeds

    scenario = get_scenario(scenario_name, duration_s=duration_s, users=users)
    if isinstance(seeds, int) and seeds < 1:
        raise CLIError("--seeds must be >= 1")
    warm_up()  # cpu_s/wall_s then time the simulations, not the loading of compiled code
    specs = {"router": router, "batch_policy": batch_policy, "autoscaler": autoscaler}
    with contextlib.ExitStack() as stack:
        policies, start_seed = specs, None
        if not trusted:
            from glia_nb.evaluation.simulate import sandboxed_policies

            policies, start_seed = stack.enter_context(sandboxed_policies(specs, scenario.cluster))
        results = simulate_seeds(
            scenario, seeds, policies["router"], policies["batch_policy"], policies["autoscaler"],
            record_timeline=True, desc=f"{router} on {scenario_name}" if progress else None,
            leave=False, trace=Trace.from_csv(trace_csv) if trace_csv else None,
            on_result=(lambda seed, res: res.write_artifacts(Path(out) / f"seed{seed}"))
            if out else None, start_seed=start_seed)
    agg = summarize_seeds(results)
    keys = ("num_requests", "mean_e2e_s", "p50_e2e_s", "p90_e2e_s", "p99_e2e_s", "mean_ttft_s",
            "p90_ttft_s", "restart_fraction", "preemptions", "tokens_recomputed", "iterations",
            "busy_gpu_hours", "throughput_qps", "cpu_s", "wall_s")
    extra = ("gpu_hours", "starting_gpu_hours", "draining_gpu_hours", "mean_replicas",
             "p95_slowdown", "mean_slowdown")
    keys = keys + tuple(k for k in extra if autoscaler and k in agg["seeds"][0])
    doc_extra = {"batch_policy": batch_policy or "fifo"}
    if users:
        doc_extra["users"] = int(users)
    if autoscaler:
        over_seeds = aggregate(agg["seeds"])
        doc_extra["autoscaler"] = autoscaler
        for k in (*extra, "busy_gpu_hours", "p95_slowdown_worst_seed", "peak_replicas_worst_seed",
                  "capped_ticks_worst_seed"):
            doc_extra[k] = over_seeds[k]
    return {
        "scenario": scenario_name,
        "router": router,
        **doc_extra,
        "seeds": [{"seed": s["seed"], **{k: s[k] for k in keys}} for s in agg["seeds"]],
        "mean_e2e_s": agg["mean_e2e_s"],
        "mean_e2e_ci90_s": agg["mean_e2e_ci90_s"],
        "restart_fraction": agg["restart_fraction"],
    }


def _cmd_simulate(args) -> int:
    if args.sweep_users:
        from glia_nb.cli.stack import cmd_sweep_one
        return cmd_sweep_one(args)
    if args.duration is not None and not args.duration > 0:
        raise CLIError("--duration must be > 0 seconds")
    if args.users is not None and args.users < 1:
        raise CLIError("--users must be >= 1")
    if args.trace and args.seeds > 1:
        raise CLIError("--trace replays one trace: use --seeds 1 (seeds only change the "
                       "scenario's generated traces)")
    doc = run_simulations(args.scenario, args.router, args.seeds, out=args.out,
                          trace_csv=args.trace, duration_s=args.duration,
                          progress=True,  # on stderr, also when it is not a terminal
                          batch_policy=args.batch_policy, autoscaler=args.autoscaler,
                          users=args.users, trusted=args.trusted)
    if args.json:
        from glia_nb.research.journal import to_jsonable  # NaN/inf become null

        print(json.dumps(to_jsonable(doc), allow_nan=False))
        return 0
    print(f"scenario {doc['scenario']}  router {doc['router']}")
    _print_table(doc["seeds"], [("seed", "seed", "d"), ("num_requests", "requests", "d"),
                                ("mean_e2e_s", "mean e2e s", ".2f"), ("p90_e2e_s", "p90 e2e s", ".2f"),
                                ("p99_e2e_s", "p99 e2e s", ".2f"), ("mean_ttft_s", "mean TTFT s", ".2f"),
                                ("restart_fraction", "restarted", ".3f"), ("cpu_s", "cpu s", ".3f")])
    lo, hi = doc["mean_e2e_ci90_s"]
    print(f"mean e2e {doc['mean_e2e_s']:.2f} s  (90% CI {lo:.2f} .. {hi:.2f})  "
          f"restarted {doc['restart_fraction']:.1%}")
    if doc.get("autoscaler"):
        gh = doc["gpu_hours"]
        start, drain = doc["starting_gpu_hours"] / gh, doc["draining_gpu_hours"] / gh
        print(f"autoscaler {doc['autoscaler']}: {gh:.2f} GPU-hours (cold starts {start:.0%}, "
              f"draining {drain:.0%}), {doc['mean_replicas']:.2f} replicas on average "
              f"({doc['peak_replicas_worst_seed']:.0f} at the peak), p95 slowdown "
              f"{doc['p95_slowdown']:.2f}x")
        if doc["capped_ticks_worst_seed"]:
            print(f"CAPPED: the autoscaler asked for more replicas than the pool holds at up to "
                  f"{doc['capped_ticks_worst_seed']:.0f} ticks per seed; the GPU-hours measure "
                  "the pool's size, not the autoscaler")
    if args.out:
        print(f"artifacts in {args.out}")
    return 0


def _cmd_scenarios(args) -> int:
    from workloads import SCENARIOS

    for name, sc in SCENARIOS.items():
        print(f"{name:24s} {sc.description}")
    return 0


# Every name sim_core.batch_policies.BATCH_POLICIES accepts (tests/glia_nb/cli checks it).
BATCH_POLICY_HELP = ("replica waiting-queue order: fifo (default; alias arrival), shortest_prefill_first "
                     "(alias spf), aged_spf:seconds_per_token=X or file.py:Name")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="glia", description="glia-nb: an AI research team for "
                                "LLM-serving control algorithms, and the simulator it uses.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("simulate", help="run a router on a scenario over seeds")
    s.add_argument("--scenario", default="routing-a10")
    s.add_argument("--router", default="llq",
                   help="registry name (round_robin, random, lor, llq, least_blocks, hra; "
                        "parameters as hra:decode_growth=0.5) or path/to/file.py:ClassName")
    s.add_argument("--seeds", type=int, default=3, help="number of seeds (the scenario's first N)")
    s.add_argument("--trace", help="replay a CSV trace (arrived_at,num_prefill_tokens,num_decode_tokens)")
    s.add_argument("--duration", type=float, help="override the scenario's duration (s)")
    s.add_argument("--out", help="write per-seed artifacts (request_metrics.csv, gs_log.csv, ...)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument("--batch-policy", help=BATCH_POLICY_HELP)
    s.add_argument("--autoscaler", help="throughput, proportional, fixed (parameters as "
                   "proportional:target=30) or file.py:Class; the scenario's pool is the maximum")
    s.add_argument("--users", type=int, help="closed-loop scenarios: number of users")
    s.add_argument("--trusted", action="store_true", help="run policy files in this process "
                   "(fast, no confinement); by default they run sandboxed (see glia doctor)")
    s.add_argument("--sweep-users", help="closed-loop scenarios: comma-separated user counts; "
                   "prints the P90-TTFT-vs-throughput curve instead")
    s.set_defaults(func=_cmd_simulate)

    sc = sub.add_parser("scenarios", help="list the scenario presets")
    sc.set_defaults(func=_cmd_scenarios)

    _register_research_commands(sub)
    _register_stack_commands(sub)
    register_latency(sub)
    from glia_nb.cli.publish import register as register_publish
    register_publish(sub)
    from glia_nb.cli.trust import register as register_trust
    register_trust(sub)
    return p


def _register_stack_commands(sub) -> None:
    """``glia sweep`` and ``glia stack`` live in cli_stack."""
    from glia_nb.cli.stack import register
    register(sub)


def _register_research_commands(sub) -> None:
    """The study/report/compare subcommands live in cli/research.py and cli/compare.py."""
    from glia_nb.cli.research import register
    register(sub)


def main(argv=None) -> int:
    """Entry point of the ``glia`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        print("glia: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one line for the user, never a traceback wall
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, KeyError) and msg.startswith(("'", '"')):
            msg = msg.strip("'\"")
        print(f"glia: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
