#!/usr/bin/env python3
"""Build notebooks/03_search_baselines.ipynb (the search-baselines comparison) from the cell
sources below. Same conventions as scripts/make_notebooks.py: generated, committed without
outputs, cells tagged for tests/notebooks/.

    python scripts/make_baselines_notebook.py            # writes the notebook
    python scripts/make_baselines_notebook.py --check    # exit 1 if it is out of date
"""
from __future__ import annotations

import sys

from nbtools import code, main as build_main, md

NAME = "03_search_baselines"


CELLS = [
    md("""
# Search baselines side by side: LLM as-is, FunSearch, EoH, OpenEvolve and Glia

**The question.** The Glia paper's claim is comparative: asking an LLM once for a router gives designs
barely better than least-loaded-queue (LLQ) routing; code-evolution loops (FunSearch, Evolution of
Heuristics, OpenEvolve) improve on that but stop short of the expert; Glia gets further in fewer
simulations, and its multi-context variants keep improving as the budget grows. This notebook runs that
comparison on your machine, with your model, on the `routing-a10` task.

**How it is made fair.** Every method is given the same task, the same evaluator (the sandboxed
simulator over the task's evaluation seeds) and the same budget of *simulations*, where one simulation is
one benchmark run of one candidate over the evaluation seeds (the unit of `glia study --budget-sims`).
The starting LLQ program's score is free for everyone, as Glia's baseline run is. Each method makes
several independent runs; we plot the best score found so far against the simulations spent, with a
90% bootstrap band over runs, and the best design per method with its 90% confidence interval.

* **LLM as-is**: independent samples from one detailed prompt, no feedback.
* **FunSearch**: best-shot prompting with the 3 best-scoring earlier programs, 6 islands of up to
  20 programs, periodic island resets.
* **EoH**: a population of 20 (idea, code) pairs evolved with five operators (E1 explore, E2
  recombine, M1 modify, M2 re-parameterise, M3 simplify).
* **OpenEvolve**: the `openevolve` package itself, starting from the LLQ router, exploration 0.6 /
  exploitation 0.4.
* **Glia**: the Researcher + Supervisor team, as one context (SCG), four parallel contexts that
  split the budget (MCG-Par4) or contexts in sequence (MCG-Seq).
* **Fixed routers**: round robin (RR), LLQ, least outstanding requests (LOR) and head-room
  admission (HRA), evaluated once.
"""),
    code("""
import os
import time
from pathlib import Path

import pandas as pd
from IPython.display import Image, Markdown, display

from glia_nb.baselines.compare import METHODS, run_compare
from glia_nb.baselines.openevolve_runner import openevolve_status
from glia_nb.plots.baselines import draw_comparison
from glia_nb.runs import runs_dir
from glia_nb.tasks import get_task

pd.set_option("display.precision", 3)
T0 = time.time()
MODEL = os.environ.get("GLIA_MODEL")  # e.g. anthropic:claude-opus-4-5 or openai:o3
task = get_task("routing-a10")
if MODEL:   # the real comparison: the full task (10 seeds of 1,000 s), three runs per method
    BUDGETS, RUNS = [15], 3   # the paper also uses [15, 100]: hours of model time and dollars
else:       # no key: a quick look at the methods that need none
    task = task.replace(duration_s=600, num_eval_seeds=2)
    BUDGETS, RUNS = [15], 1   # the offline researcher is deterministic: one run says it all
OUT = runs_dir() / f"compare-{time.strftime('%Y%m%d-%H%M%S')}"
print(f"model: {MODEL or 'none'}; task {task.name}: {len(task.seeds)} seeds of "
      f"{task.load_scenario().duration_s:g} s; budgets {BUDGETS}; {RUNS} run(s) per method")
""", "setup"),
    code("""
oe_ok, oe_info = openevolve_status()
if MODEL:
    note = (f"A model is configured (`{MODEL}`): every method runs, Glia's Researcher and Supervisor "
            f"included. OpenEvolve: {'version ' + oe_info if oe_ok else oe_info}.")
else:
    note = ("**No model is configured, so this run shows only the methods that need no key:** Glia with "
            "the offline (rule-based) researcher, in its three forms, and the fixed routers. LLM as-is, "
            "FunSearch, EoH and OpenEvolve need an LLM and appear as *unavailable*; set `GLIA_MODEL` "
            "(and the provider's API key) and re-run the notebook to include them. To keep this quick the "
            "task is shortened to 2 seeds of 600 s, so the numbers are not those of the full task.")
display(Markdown(note))
""", "mode"),
    code("""
def progress(line):  # one line per finished run keeps the output short
    if "simulations, best" in line or line.startswith(("starting", "fixed")):
        print(line)

doc = draw_comparison(run_compare(task, METHODS, BUDGETS, RUNS, MODEL, OUT, progress=progress))
print(f"comparison finished in {doc['wall_s']:.0f} s; files in {doc['out']}")
""", "run"),
    md("""
## The results table

One row per method: the best score found (mean over runs) with its 90% confidence interval, how many
simulations the runs used (never more than the budget), how often a candidate ran without error, model
calls and dollars per run. `vs_baseline` is LLQ's mean response time divided by the method's.
"""),
    code("""
B = str(BUDGETS[0])
rows = pd.DataFrame(doc["results"][B]["rows"]).set_index("method")
rows[["kind", "status", "runs", "sims_used_mean", "best_score_mean", "ci_low", "ci_high", "vs_baseline",
      "valid_fraction", "llm_calls_mean", "usd_mean"]]
""", "results-table"),
    md("""
## Best so far against simulations (the paper's Fig. 7)

Each line is the best mean response time a method has found after a number of simulations, averaged over
runs, with a 90% bootstrap band over runs. A curve that stops early belongs to a method that ended its
search before the budget ran out (a single Glia context finishes when its Researcher is done).
"""),
    code('Image(filename=doc["results"][B]["files"]["curves"])', "curves-plot"),
    md("""
## Best design per method (the paper's Fig. 3)

Bars are the best design each method found (mean over runs); error bars are 90% bootstrap confidence
intervals, over runs when there are several, else over the evaluation seeds of the best design.
"""),
    code('Image(filename=doc["results"][B]["files"]["bars"])', "bars-plot"),
    code("""
dist = doc["results"][B]["files"].get("as_is_distribution")
if dist:
    display(Image(filename=dist))
else:
    print("LLM as-is did not run (no model), so there is no sample distribution to show.")
""", "as-is-plot"),
    code("""
llq = rows.loc["LLQ", "best_score_mean"]
ran = rows[(rows["status"] == "ok") & rows["kind"].isin(["glia", "llm-search"])]
lines = [f"* **{m}**: {r.best_score_mean:.2f} s ({llq / r.best_score_mean:.2f}x LLQ's {llq:.2f} s) "
         f"after {r.sims_used_mean:.0f} simulations" for m, r in ran.iterrows()]
best = ran["best_score_mean"].idxmin()
display(Markdown(f"**What we saw.** Best design per method against LLQ:\\n\\n" + "\\n".join(lines) +
                 f"\\n\\nThe best method on this run was **{best}**. Head-room admission (HRA, a hand-written "
                 f"design) scores {rows.loc['HRA', 'best_score_mean']:.2f} s."))
""", "summary"),
    code("""
import json
res = json.loads(Path(doc["results"][B]["files"]["results"]).read_text())
glia = [r for m in ("glia-seq", "glia-par4", "glia-scg") for r in res["runs"].get(m, []) if r["best_code_path"]]
if glia:
    top = min(glia, key=lambda r: r["best_score"] if r["best_score"] is not None else float("inf"))
    print(f"{top['method']} run {top['run']}: its best design ({top['best_code_path']})\\n")
    print(Path(top["best_code_path"]).read_text())
""", "best-code"),
    md("""
## Running the full comparison

The same comparison from a terminal, with a model, both budgets of the paper and three runs per method:

```bash
glia compare routing-a10 --model anthropic:claude-opus-4-5 --budget-sims 15,100 --runs 3 --out cmp
```

It writes `best_so_far_bN.png`, `best_score_bN.png`, `table_bN.csv` / `.md` and `results_bN.json`
(every run and every evaluated candidate) for each budget `N`. `--methods as-is,funsearch,...` picks
methods; `--budget-usd` caps the dollars per run; OpenEvolve needs `pip install 'glia-nb[openevolve]'`.
"""),
    code('print(f"notebook ran in {time.time() - T0:.0f} s")', "elapsed"),
]


def main(argv: list[str] | None = None) -> int:
    return build_main({NAME: CELLS}, "make_baselines_notebook.py", __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
