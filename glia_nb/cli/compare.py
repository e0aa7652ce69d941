"""``glia compare``: every design method on the same evaluator and budget, then the figures.

The comparison itself (:func:`glia_nb.baselines.compare.run_compare`) writes data and tables;
this command draws the figures (:func:`glia_nb.plots.baselines.draw_comparison`) and prints
the table.
"""
from __future__ import annotations

import json
import signal
from pathlib import Path

from glia_nb.cli.options import add_executor_args
from glia_nb.baselines.methods import METHODS, parse_budgets, parse_methods

__all__ = ["register_compare", "cmd_compare", "add_task_size_args", "sized_task"]


def register_compare(sub) -> None:
    """Add ``glia compare`` to the ``glia`` parser."""
    c = sub.add_parser("compare", help="compare design methods (LLM as-is, FunSearch, EoH, "
                       "OpenEvolve, Glia, fixed routers) on the same evaluator and budget")
    c.add_argument("task", nargs="?", default="routing-a10")
    c.add_argument("--methods", default="all", help=f"comma list of {','.join(METHODS)} (default all)")
    c.add_argument("--budget-sims", default="15",
                   help="simulations per run (one = a benchmark run over the eval seeds); "
                        "several as 15,100")
    c.add_argument("--runs", type=int, default=3, help="independent runs per method (default 3)")
    c.add_argument("--model", help="LLM for the search baselines: anthropic:MODEL, openai:MODEL "
                   "or openai-compatible:URL:MODEL (default $GLIA_MODEL)")
    c.add_argument("--glia-researcher", help="Glia's researcher (default: --model, else offline)")
    c.add_argument("--budget-usd", type=float, help="dollar cap per run")
    add_executor_args(c, workers=2)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", help="output folder (default $GLIA_RUNS or glia_runs/ at the repository root, "
                   "then compare-<task>-<time>)")
    add_task_size_args(c)
    c.add_argument("--max-tokens", type=int, help="cap on one model reply (small local models ramble)")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.set_defaults(func=cmd_compare)


def add_task_size_args(p) -> None:
    """``--duration`` and ``--eval-seeds``: a smaller task for quick checks (see
    :func:`sized_task`); shared by ``glia compare`` and ``glia study``."""
    p.add_argument("--duration", type=float, help="shorter traces, in simulated seconds "
                   "(quick checks and tests; results are not comparable to full runs)")
    p.add_argument("--eval-seeds", type=int, help="evaluate over the scenario's first N seeds")


def sized_task(args):
    """The registered task ``args.task`` with ``--duration`` / ``--eval-seeds`` applied."""
    from glia_nb.tasks import get_task  # start-up time: the registry loads numpy

    if args.duration is not None and not args.duration > 0:
        raise ValueError("--duration must be > 0 seconds")
    if args.eval_seeds is not None and args.eval_seeds < 1:
        raise ValueError("--eval-seeds must be >= 1")
    changes = {k: v for k, v in (("duration_s", args.duration),
                                 ("num_eval_seeds", args.eval_seeds)) if v}
    return get_task(args.task).replace(**changes)


def cmd_compare(args) -> int:
    """``glia compare``: run, then print the table and where the files are."""
    # Imported here for start-up time: `glia --help` must not load the methods, the
    # simulator or matplotlib.
    from glia_nb.baselines.compare import run_compare
    from glia_nb.plots.baselines import draw_comparison

    task = sized_task(args)
    from glia_nb.progress import note

    def stop(_signum, _frame):  # SIGTERM stops like Ctrl-C: the partial table is written
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        # Progress lines on stderr whatever stdout is: a comparison takes minutes.
        doc = draw_comparison(run_compare(
            task, parse_methods(args.methods), parse_budgets(args.budget_sims), args.runs,
            args.model, args.out, glia_researcher=args.glia_researcher,
            budget_usd=args.budget_usd, workers=args.workers, seed=args.seed, dask=args.dask,
            max_tokens=args.max_tokens, progress=lambda t: note("  " + t)))
    finally:
        signal.signal(signal.SIGTERM, previous)
    code = 130 if doc.get("stopped") else 0
    if args.json:
        print(json.dumps(doc, default=str))
        return code
    print(f"task {doc['task']}  seeds {doc['eval_seeds']}  runs {doc['runs']}  "
          f"model {doc['model'] or '-'}  Glia researcher {doc['glia_researcher']}")
    if doc["unavailable_reason"]:
        print(f"note: {doc['unavailable_reason']}")
    for b, res in doc["results"].items():
        print(f"\nbudget {b} simulations")
        print(Path(res["files"]["table_md"]).read_text().rstrip())
        for k, v in res["files"].items():
            print(f"  {k}: {v}")
    if doc.get("stopped"):
        print(f"\nstopped before the end: budget {doc['partial_budget']} holds the runs that "
              "finished" if doc.get("partial_budget") else "\nstopped before any run finished")
    return code
