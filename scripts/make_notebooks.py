#!/usr/bin/env python3
"""Build the case-study notebooks in notebooks/ from the cell sources below.

The notebooks are generated so that they are reviewable as code and committed without
outputs: edit this file, then run

    python scripts/make_notebooks.py            # writes notebooks/*.ipynb
    python scripts/make_notebooks.py --check    # exit 1 if a notebook is out of date

Cells carry tags (``results-table``, ``panel``, ...) that tests/notebooks/ use to find the
outputs they assert on.
"""
from __future__ import annotations

import sys

from nbtools import code, main as build_main, md


# --------------------------------------------------------------------------- 01
PLAYGROUND = [
    md("""
# A tour of the playground: routing LLM requests across four A10s

**The question.** An LLM-serving cluster has a *router* (its global scheduler) that decides which
model replica serves each request. The obvious policy is to balance the load: send each request where
the queue is shortest. This notebook shows, on the simulator every later study uses, how four
routers compare on the paper's `routing-a10` workload, and why balancing the queues still leaves much
time on the table: **requests get restarted** when a replica runs out of KV-cache memory.

**What we run.** The `routing-a10` scenario (4 replicas of Llama-3-8B on A10 GPUs, ShareGPT prompts
with heavy tails, bursty arrivals) for three seeds under round robin (RR), least outstanding
requests (LOR), least loaded queue (LLQ, the baseline of the research task) and a head-room
admission router (HRA). Everything runs on CPU in well under a minute; no API key is needed.
"""),
    code("""
%matplotlib inline
import time

import pandas as pd
from IPython.display import Markdown, display

from glia_nb import plots
from glia_nb.widgets import RequestBreakdown, compare_routers, summary_table
from workloads import get_scenario

pd.set_option("display.precision", 3)
T0 = time.time()
SEEDS = [0, 1, 2]
scenario = get_scenario("routing-a10")
""", "setup"),
    md("""
## The cluster and the workload

Each replica holds a pool of KV-cache blocks (16 tokens each). A request needs blocks for its prompt
and, as it decodes, for every token it generates; the router never knows in advance how long the
output will be. Replicas batch requests vLLM-style with chunked prefill (Sarathi). When a running
request needs a block and none is free, the replica **pre-empts its youngest request**: its blocks are
freed, its progress is lost, and it goes back to the replica's queue to be recomputed from scratch.
"""),
    code("""
print(scenario.description)
rc = scenario.cluster.replica
pd.Series({
    "replicas": scenario.cluster.num_replicas, "GPU / model": f"{rc.gpu} / {rc.model}",
    "tensor parallel": rc.tp, "KV blocks per replica": rc.num_blocks, "block size (tokens)": rc.block_size,
    "KV tokens per replica": rc.num_blocks * rc.block_size, "batch scheduler": rc.scheduler,
    "prefill chunk (tokens)": rc.chunk_size, "max batch": rc.batch_cap,
}, name="value").to_frame()
""", "cluster"),
    code("""
trace = scenario.trace(0)
prompts, decodes = pd.Series(trace.prompt_tokens), pd.Series(trace.decode_tokens)
stats = pd.DataFrame({"prompt tokens": prompts.describe(percentiles=[0.5, 0.9, 0.99]),
                      "decode tokens": decodes.describe(percentiles=[0.5, 0.9, 0.99])}).T
print(f"{len(prompts):,} requests over {trace.arrived_at.max():.0f} s "
      f"({len(prompts) / trace.arrived_at.max():.2f} requests/s on average)")
stats
""", "trace-stats"),
    code("plots.workload_overview(trace)", "trace-plot"),
    md("""
**What we see.** Arrivals come in bursts (log-normal inter-arrival times with σ = 2): quiet stretches,
then many requests at once. Prompt and decode lengths are heavy-tailed; a few requests (5% of each are
inflated 10×) need thousands of tokens of KV cache, a large share of one replica's pool.
"""),
    md("""
## Four routers

* **RR** sends requests to replicas in turn.
* **LOR** sends each request to the replica with the fewest outstanding requests.
* **LLQ** (least loaded queue) picks the replica with the fewest waiting and running requests; the
  research task's baseline.
* **HRA** (head-room admission) keeps requests in the global queue unless some replica has enough free
  KV blocks for the prompt and its expected growth, then balances by memory.

Each router runs on the same three traces (seeds 0–2); the table shows the mean over seeds.
"""),
    code("""
runs, table = compare_routers(scenario, {"RR": "rr", "LOR": "lor", "LLQ": "llq", "HRA": "hra"}, SEEDS)
table[["seeds", "mean_e2e_s", "p90_e2e_s", "mean_ttft_s", "restart_fraction", "mean_lost_to_restarts_s"]]
""", "results-table"),
    code("""
per_seed = summary_table(runs, per_seed=True)
plots.router_comparison(per_seed, metric="mean_e2e_s", baseline="LLQ")
""", "results-plot"),
    code("""
rr, lor, llq, hra = (table.loc[k] for k in ("RR", "LOR", "LLQ", "HRA"))
display(Markdown(
    f"**What we saw.** Over {len(SEEDS)} seeds, balancing request counts (LOR {lor.mean_e2e_s:.1f} s, "
    f"LLQ {llq.mean_e2e_s:.1f} s mean e2e) beats round robin ({rr.mean_e2e_s:.1f} s), yet LLQ still restarts "
    f"{llq.restart_fraction:.1%} of requests: a count says nothing about how much memory a request will "
    f"grow into. Head-room admission averages {hra.mean_e2e_s:.1f} s ({1 - hra.mean_e2e_s / llq.mean_e2e_s:.0%} "
    f"less than LLQ) and restarts {hra.restart_fraction:.1%}."))
""", "results-text"),
    md("""
## The restart phenomenon

Take one LLQ run (seed 0). How many requests were restarted, how often, and what did it cost them?
"""),
    code("""
res = runs["LLQ"][0]
req = res.requests
restarted = req[req.restarts > 0]
print(f"{len(restarted):,} of {len(req):,} requests ({len(restarted) / len(req):.1%}) were restarted at least once; "
      f"{int(req.tokens_recomputed.sum()):,} tokens were computed again.")
req.groupby(req.restarts > 0)[["e2e_s", "replica_queue_s", "lost_to_restarts_s", "prompt_tokens"]].mean() \\
   .rename(index={False: "never restarted", True: "restarted"})
""", "restart-table"),
    code("plots.restart_counts(res)", "restart-plot"),
    code("plots.memory_timelines(res)", "memory-plot"),
    md("""
**What we see.** Once a burst arrives, every replica's KV cache sits at 100% for minutes. In that
state each new block a running request needs evicts the youngest request on the replica: its
work is thrown away and it joins the queue again, now with a longer prompt to recompute. Restarted
requests finish much later than the others, and the queue behind them grows because the replica keeps
redoing work. A router that only balances counts keeps feeding replicas that are already full.
"""),
    md("""
## Where each request's time went

The breakdown widget splits each request's latency into time in the global queue, the replica queue,
prefill, decode and time lost to restarts. Use the menu to switch between requests sorted by latency,
binned by prompt length, the memory timelines and the restart counts, for LLQ next to HRA.
"""),
    code("""
RequestBreakdown(runs["LLQ"][0], runs["HRA"][0], labels=("LLQ", "HRA"))
""", "breakdown"),
    md("""
## What it means

The time an LLQ request loses is mostly **queueing at a replica that is thrashing**, not decode. HRA
moves that waiting to the global queue, where it costs nothing but time, and the restarts mostly
disappear. It trades a little for the largest prompts, which now wait for room, but the mean falls
sharply. That is the starting point of the research task in `02_routing_case_study`: can an AI
research team, given only the simulator and its telemetry, find this mechanism (or a better one) on
its own?
"""),
    code('print(f"notebook ran in {time.time() - T0:.0f} s")', "elapsed"),
]


# --------------------------------------------------------------------------- 02
CASE_STUDY = [
    md("""
# Case study: an AI research team designs a router for `routing-a10`

**The question.** Can a Researcher agent (hands on the code and the simulator) and a Supervisor
(sees only ideas and results) find a router that beats the least-loaded-queue baseline on the
`routing-a10` cluster, and can a person follow and steer that research from a notebook?

**What we run.** A research session on a short version of the task (one 1,000 s trace per
experiment and a budget of twelve simulations), shown live in two panels: the **research panel**
(transcript, experiment ledger, best so far, budget, controls and a nudge box) and the **Supervisor
inbox** (interventions to approve, edit or reject). Then we evaluate the winner against the baselines
on held-out seeds and look at where its requests' time went.

With no API key the team is the **offline researcher**, a deterministic rule-based stand-in that
follows the same profile → hypothesise → experiment → compose loop with the same tools and journal,
and a rule-based Supervisor. Set `GLIA_MODEL` (for example `anthropic:claude-sonnet-4-5`, with
`ANTHROPIC_API_KEY` set) to run the study with an LLM instead.
"""),
    code("""
import os

RESEARCHER = os.environ.get("GLIA_MODEL", "offline")  # or e.g. "anthropic:claude-sonnet-4-5"
APPROVAL = os.environ.get("GLIA_APPROVAL", "auto")    # "manual": interventions wait in the inbox
DURATION_S = 1000.0                                  # seconds of traffic per experiment
MAX_SIMULATIONS = 12 if RESEARCHER == "offline" else 40
MAX_USD = 2.0                                        # only an LLM spends dollars
HELD_OUT_SEEDS = [0, 1]                              # seeds for the final comparison
""", "parameters"),
    code("""
%matplotlib inline
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from glia_nb.tasks.budget import Budget
from glia_nb.research.offline.researcher import OfflineSupervisor
from glia_nb.research.report import experiments_frame, summarize_session
from glia_nb.runs import runs_dir
from glia_nb.research.session.session import Session
from glia_nb.tasks import get_task
from glia_nb.widgets import RequestBreakdown, ResearchPanel, SupervisorInbox, compare_routers, wait_async

pd.set_option("display.precision", 3)
T0 = time.time()
RUNS = runs_dir()  # $GLIA_RUNS, else glia_runs/ at the repository root
""", "setup"),
    md("""
## The task

The task is the paper's routing study: minimise the mean end-to-end latency of requests on four A10
replicas, changing only the router, without knowing output lengths. The Researcher gets the task text
below, a workspace with the policy file, a benchmark command and an analysis tool; each
`run_experiment` call simulates the evaluation seeds and counts against the budget.
"""),
    code("""
task = replace(get_task("routing-a10"), duration_s=DURATION_S, num_eval_seeds=1)
print(f"objective: {task.objective.direction} {task.objective.name}; baseline: {task.baseline}; "
      f"evaluation seeds: {task.seeds}; trace: {DURATION_S:g} s")
print(task.render_text()[:1200], "…")
""", "task"),
    code("""
session = Session.create(
    task, RUNS,
    researcher_client=RESEARCHER,
    supervisor_client=OfflineSupervisor() if RESEARCHER == "offline" else None,
    budget=Budget(max_simulations=MAX_SIMULATIONS, max_usd=MAX_USD),
    approval=APPROVAL,
)
print("workspace:", session.path)
""", "session"),
    md("""
## The panels

The research panel shows the session as it happens, in the order things happened: the Researcher's
message, its tool call, the call's result (✓, or ✗ when it failed), then the experiment it produced.
Click a tool call or a result to open it; it stays open while new entries arrive, and the transcript
does not jump while you read further up (a "new entries" marker takes you down). Type in the box under
the transcript and press **Enter** (or **Send**) to nudge the Researcher; a receipt in the transcript
says before which turn it was delivered, and the journal records it.

When approval is **manual** (the orange switch), a Supervisor intervention waits as a banner at the top
of the panel: edit the text if you like, then **Approve** (the edited text is what the Researcher
receives) or **Reject**. **Step mode** holds each experiment before it runs and shows its hypothesis and
code change: edit the hypothesis and **Run it**, or **Skip** it with a word to the Researcher. Under the
ledger, **lineage**, **trade-off** and **time split** explain what each experiment built on and traded.
The Supervisor inbox below lists the same interventions and the history of your decisions.
"""),
    code("""
panel = ResearchPanel(session)
panel
""", "panel"),
    code("""
inbox = SupervisorInbox(session)
inbox
""", "inbox"),
    md("""
`session.start()` runs the study in a background thread and returns at once, so the panels stay live.
The cell after it waits for the study to end with `await`, which keeps the kernel answering the
panels' buttons while it waits (a plain blocking wait would hold your clicks until it returned).
"""),
    code("""
session.start()
print("started; status:", session.status)
""", "start"),
    code("""
ended = await wait_async(session, timeout=900)
print(f"status: {session.status} ({session.end_reason}); ended: {ended}")
""", "wait"),
    md("""
## What the team did

The journal (`journal.jsonl` in the workspace) is the record of the study: every message, tool call,
experiment, Supervisor review, nudge and approval. Its summary:
"""),
    code("""
summary = summarize_session(session.path)
print(summary["text"])
""", "summary"),
    code("""
ledger = experiments_frame(session.path)
ledger[[c for c in ("id", "name", "score", "improved", "hypothesis") if c in ledger.columns]]
""", "ledger"),
    md("""
To walk through the study at your own pace, replay its journal: drag the slider (or step with ◀ ▶)
and the transcript, ledger and plot show the study as it stood after that record.
"""),
    code("""
from glia_nb.widgets import ReplayPanel

ReplayPanel(session.path)
""", "replay"),
    code("""
from glia_nb.research.journal import read_journal

_, records = read_journal(session.path / "journal.jsonl")
delivered = [r for r in records if r["type"] in ("intervention_approved", "intervention_edited")]
for iv in delivered:
    after = [r for r in records if r["type"] == "experiment" and r["seq"] > iv["seq"]]
    nxt = min(after, key=lambda r: r["score"] if r.get("score") is not None else float("inf"), default=None)
    text = iv.get("text") or next((r.get("text") for r in records if r.get("id") == iv["id"] and r.get("text")), "")
    print(f"Supervisor ({iv.get('kind', 'intervention')}, {iv.get('trigger', '')}): {text}")
    if nxt is not None:
        print(f"  best experiment after it: {nxt['name']} (score {nxt['score']:.2f})")
for n in (r for r in records if r["type"] == "nudge"):
    print(f"Person: {n['text']}")
""", "interventions"),
    code("""
best = session.best or {}
policy_file = session.path / best["folder"] / task.policy_file if best.get("folder") else None
print(f"best experiment: {best.get('name')} (score {best.get('score')})")
if policy_file is not None:
    print(policy_file.read_text()[:1500])
""", "winner-code"),
    md("""
## The winner against the baselines, on held-out seeds

The study saw one trace (seed 0). We now run the winning router and the four baselines of the
playground tour on seeds 0 and 1; seed 1 is traffic the team never saw.
"""),
    code("""
from workloads import get_scenario

scenario = get_scenario("routing-a10").replace(duration_s=DURATION_S)
routers = {"RR": "rr", "LOR": "lor", "LLQ": "llq", "HRA": "hra"}
if policy_file is not None:
    routers["discovered"] = f"{policy_file}:{task.class_name}"
runs, table = compare_routers(scenario, routers, HELD_OUT_SEEDS)
table[["seeds", "mean_e2e_s", "p90_e2e_s", "mean_ttft_s", "restart_fraction", "mean_lost_to_restarts_s"]]
""", "results-table"),
    code("""
if "discovered" in table.index:
    llq, hra, new = (table.loc[k, "mean_e2e_s"] for k in ("LLQ", "HRA", "discovered"))
    versus_hra = ("about the same as" if abs(new - hra) <= 0.05 * hra else "better than" if new < hra else "worse than")
    display(Markdown(
        f"**Result.** On seeds {HELD_OUT_SEEDS} the discovered router cuts mean e2e latency by "
        f"**{1 - new / llq:.1%} against LLQ** ({llq:.1f} s → {new:.1f} s); it restarts "
        f"{table.loc['discovered', 'restart_fraction']:.1%} of requests against "
        f"{table.loc['LLQ', 'restart_fraction']:.1%} for LLQ. That is {versus_hra} the hand-written "
        f"head-room admission router HRA ({hra:.1f} s)."))
else:
    display(Markdown("**Result.** The study produced no experiment that beat the baseline."))
""", "improvement"),
    code("""
RequestBreakdown(runs["LLQ"][0], runs.get("discovered", runs["HRA"])[0],
                 labels=("LLQ", "discovered" if "discovered" in runs else "HRA"))
""", "breakdown"),
    md("""
## What it means

Within a dozen simulations the team arrived at the mechanism the playground tour pointed at: **hold
requests back until a replica has KV-cache head-room for them**, balance by memory rather than by
count, and serve short prompts first from the global queue. Its requests no longer queue behind a
thrashing replica; the time left is mostly decode, and far fewer requests are restarted (switch the
breakdown's view to *restarts* and *memory timelines*). The offline team rediscovers a known design
rather than inventing a new one; what the notebook shows is the loop that gets there: measure,
hypothesise, test, and, when several experiments stop improving, a Supervisor who asks which earlier
finding has not yet been combined with the best design (the cell listing the interventions shows each
one and the best experiment that followed it).

An LLM Researcher (set `GLIA_MODEL`) runs the same loop with the same tools, journal and panels; with a
larger budget it can go further than this rule-based stand-in.
"""),
    code('print(f"notebook ran in {time.time() - T0:.0f} s")', "elapsed"),
]


NOTEBOOKS_SPEC = {"01_playground_tour": PLAYGROUND, "02_routing_case_study": CASE_STUDY}


def main(argv: list[str] | None = None) -> int:
    return build_main(NOTEBOOKS_SPEC, "make_notebooks.py", __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
