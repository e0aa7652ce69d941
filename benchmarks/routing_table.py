"""Print the README's routing-a10 results table by running the CLI for each router.

    python benchmarks/routing_table.py [--seeds 10]

Each row comes from ``glia simulate --scenario routing-a10 --router R --seeds N --json``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

ROUTERS = ["round_robin", "lor", "llq", "least_blocks", "hra"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--scenario", default="routing-a10")
    args = ap.parse_args()
    rows = []
    for r in ROUTERS:
        cmd = ["glia", "simulate", "--scenario", args.scenario, "--router", r,
               "--seeds", str(args.seeds), "--json"]
        rows.append(json.loads(subprocess.run(cmd, check=True, capture_output=True,
                                              text=True).stdout))
    llq = next(d for d in rows if d["router"] == "llq")["mean_e2e_s"]
    print(f"`glia simulate --scenario {args.scenario} --router R --seeds {args.seeds} --json`\n")
    print("| router | mean e2e (s) | 90% CI (s) | p90 e2e (s) | mean TTFT (s) | restarted | LLQ / router |")
    print("|---|---|---|---|---|---|---|")
    for d in rows:
        seeds = d["seeds"]
        p90 = sum(s["p90_e2e_s"] for s in seeds) / len(seeds)
        ttft = sum(s["mean_ttft_s"] for s in seeds) / len(seeds)
        lo, hi = d["mean_e2e_ci90_s"]
        print(f"| {d['router']} | {d['mean_e2e_s']:.2f} | {lo:.2f}–{hi:.2f} | {p90:.2f} | "
              f"{ttft:.2f} | {d['restart_fraction']:.1%} | {llq / d['mean_e2e_s']:.2f}× |")


if __name__ == "__main__":
    sys.exit(main())
