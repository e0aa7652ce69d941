"""The notebook of a published case study (nbformat v4), built from its manifest.

The notebook reads as a case study: the question, the team, the research as it happened
(replayed read-only from the journal, the Supervisor's interventions and the person's nudges
highlighted), the experiment ledger and lineage, the discovered design and its diff against
the baseline, and a re-check on the task's seeds and on held-out seeds next to the baselines
that ends in an assertion that the re-checked score equals the journal's. Only words and
the folder's own facts are written in at build time; every result is computed by the cells.
Cells carry tags (``setup``, ``replay``, ``ledger``, ``recheck``, ``assert-reproduced``,
``breakdown``...) so tests and readers can find them.
"""
from __future__ import annotations

from typing import Any

__all__ = ["build_notebook"]

_SETUP = '''\
%matplotlib inline
import html
import os
from pathlib import Path

from IPython.display import HTML, Markdown, display

import glia_nb.widgets
from glia_nb import plots
from glia_nb.research.casestudy import CaseStudy

# The notebook's own folder is the working directory in Jupyter and on Binder;
# GLIA_CASE_STUDY points elsewhere when the notebook is run from another place.
study = CaseStudy.open(os.environ.get("GLIA_CASE_STUDY", "."))
task = study.task
print(f"{study.manifest['title']}: task {task.name}, {len(study.contexts)} context(s)")


def show_replay(label=None):
    """The research of one context, replayed read-only from its journal."""
    if hasattr(glia_nb.widgets, "ReplayPanel"):
        return glia_nb.widgets.ReplayPanel(study.journal_path(label))
    from glia_nb.widgets.transcript import Transcript

    tx = Transcript(max_entries=100_000)
    for rec in study.context(label).records:
        tx.add(rec)
    return HTML(tx.html(height_px=560))


def highlight(row):
    color = "#f3e9fa" if row["who"] == "Supervisor" else "#e7f5ea"
    return [f"background-color: {color}"] * len(row)
'''

_QUESTION = '''\
c = study.context()
display(Markdown(
    f"**Task** `{task.name}` — {task.title or task.scenario}  \\n"
    f"**Layer under design:** {task.layer}; **objective:** {task.objective.direction}imise "
    f"`{task.objective.name}` ({task.objective.unit}) — {task.objective.description}.  \\n"
    f"**Evaluation:** scenario `{task.scenario}`, {task.duration_s or 'full'} s of traffic per "
    f"seed, seeds {list(task.seeds)}; held-out seeds for the re-check "
    f"{study.manifest['held_out_seeds']}."))
display(HTML("<details><summary>The Researcher's task text, as it was given</summary><pre style="
             "'white-space:pre-wrap'>" + html.escape(c.header.get("task_text", ""))
             + "</pre></details>"))
'''

_TEAM = '''\
import pandas as pd

v, used = study.manifest["versions"], study.manifest["budget_used"]
limits = (study.context().summary.get("budget") or {})
team = pd.Series({
    "Researcher": v.get("researcher_model"), "Supervisor": v.get("supervisor_model"),
    "contexts": len(study.contexts),
    "simulations used": f"{used['simulations']} (limit {limits.get('max_simulations')} per context)",
    "model cost (USD)": f"{used['usd']:.2f}", "Researcher turns": used["turns"],
    "isolation of the evaluations": study.manifest.get("isolation") or "not recorded",
    "glia-nb": v.get("glia_nb"), "Python / NumPy / Numba": f"{v.get('python')} / {v.get('numpy')} / {v.get('numba')}",
}, name="value").to_frame()
team
'''

_HIGHLIGHTS = '''\
hl = study.highlights()
if hl.empty:
    print("No Supervisor interventions or nudges in this study.")
else:
    display(hl.style.apply(highlight, axis=1).hide(axis="index"))
'''

_LEDGER = '''\
ledger = study.ledger()
def mark(row):
    style = "font-weight: bold; background-color: #fff3c4" if row["best"] else (
        "background-color: #eef6ff" if row["lineage"] else "")
    return [style] * len(row)
display(ledger.style.apply(mark, axis=1).format(
    {"score": "{:.4f}", "vs_baseline": "{:+.1%}", "restarted": "{:.1%}"}, na_rep="-").hide(axis="index"))
lineage = ledger[ledger["lineage"] & (ledger["context"] == study.context().label)]
print("Lineage of the best design: baseline -> " + " -> ".join(lineage["name"]))
'''

_PROGRESS = '''\
c = study.context()
plots.best_so_far(c.experiments, c.summary.get("baseline_score"), lower_is_better=study.lower_is_better)
'''

_CONTEXTS = '''\
best_label = study.context().label
rows = []
for c in study.contexts:
    b = c.summary.get("best") or {}
    rows.append({"context": c.label + ("  (best)" if c.label == best_label else ""),
                 "experiments": c.summary["num_experiments"], "best design": b.get("name"),
                 "best score": b.get("score"), "baseline": c.summary.get("baseline_score"),
                 "simulations": c.summary["budget_used"]["simulations"]})
pd.DataFrame(rows)
'''

_CODE = '''\
best = study.journal_best()
code = study.policy_path().read_text()
display(Markdown(f"**{best['name']}** (experiment {best['id']} of {study.context().label}): "
                 f"{best.get('hypothesis') or ''}\\n\\n```python\\n{code}\\n```"))
'''

_DIFF = '''\
display(Markdown("```diff\\n" + study.diff() + "\\n```"))
'''

_RECHECK = '''\
results = study.recheck(progress=lambda what: print("evaluating", what))
table = study.recheck_table(results)
table
'''

_ASSERT = '''\
rechecked = study.assert_reproduced(results)
print(f"re-checked score {rechecked!r} equals the journal's {study.journal_best()['score']!r} "
      f"(relative tolerance 1e-9)")
'''

_BREAKDOWN = '''\
split = "task seeds"
runs = {"discovered": results[("discovered", split)],
        study.manifest["baselines"][0]: results[(study.manifest["baselines"][0], split)]}
frames = [study.requests(r) for r in runs.values()]
display(plots.side_by_side("e2e", frames, list(runs)))
display(plots.side_by_side("restarts", frames, list(runs)))
'''


def _md(text: str, tags: tuple[str, ...] = ()) -> Any:
    import nbformat

    return nbformat.v4.new_markdown_cell(text, metadata={"tags": list(tags)})


def _code(src: str, tags: tuple[str, ...] = ()) -> Any:
    import nbformat

    return nbformat.v4.new_code_cell(src, metadata={"tags": list(tags)})


def _context_sections(manifest: dict) -> list:
    """One section per context (or ``glia compare`` method), the best one marked."""
    best = (manifest.get("best") or {}).get("context")
    cells = [_md("## The contexts\n\nThis study ran several independent research contexts "
                 "(MCG-ParN, MCG-Seq or the Glia runs of `glia compare`); the best design "
                 "comes from the context marked *best*."), _code(_CONTEXTS, ("contexts",))]
    for c in manifest["contexts"]:
        mark = " — best" if c["label"] == best else ""
        cells.append(_md(f"### Context `{c['label']}`{mark}"))
        cells.append(_code(f"display(show_replay({c['label']!r}))\n"
                           f"c = study.context({c['label']!r})\n"
                           "plots.best_so_far(c.experiments, c.summary.get('baseline_score'), "
                           "lower_is_better=study.lower_is_better)", (f"context-{c['label']}",)))
    return cells


def build_notebook(manifest: dict) -> Any:
    """The case-study notebook for a published folder's ``manifest`` (an nbformat node)."""
    import nbformat

    multi = len(manifest["contexts"]) > 1
    best = manifest.get("best") or {}
    title = manifest["title"]
    cells = [
        _md(f"# {title}\n\nA case study published with `glia publish` from the journal of a "
            f"glia-nb study of task `{manifest['task_name']}`. A study run by language models "
            "cannot be re-run to the same transcript, so this notebook is built from the "
            "record — every message, tool call, experiment, Supervisor intervention and nudge, "
            "and the code of each evaluated design — and from what can be reproduced exactly: "
            "the simulator is deterministic, so the discovered design is evaluated again below "
            "and its score must equal the journal's.\n\nIt needs no API key and runs top to "
            "bottom in a few minutes on a laptop or on Binder. Secrets and the author's paths "
            "were redacted from the journal when it was published.", ("intro",)),
        _code(_SETUP, ("setup",)),
        _md("## The question\n\nWhat the research team was asked to do, in the words the "
            "Researcher received."),
        _code(_QUESTION, ("question",)),
        _md("## The team\n\nA Researcher (hands on the code and the simulator) and a Supervisor "
            "(sees only ideas and results), the budget they were given and what they used."),
        _code(_TEAM, ("team",)),
        _md("## The research as it happened\n\nThe " + ("best context's " if multi else "")
            + "transcript, replayed read-only from the journal. The Supervisor's entries "
            "are purple and the person's green; tool calls and their results fold open."),
        _code("show_replay()", ("replay",)),
        _md("### Interventions and nudges\n\nEvery time the Supervisor stepped in (purple) and "
            "every message from the person (green)."),
        _code(_HIGHLIGHTS, ("highlights",)),
        _md("## Experiment ledger and lineage\n\nEvery experiment, scored by the harness. "
            "The best design is in bold on yellow; the experiments that were each a new best on "
            "the way to it (its lineage) are blue."),
        _code(_LEDGER, ("ledger",)),
        _code(_PROGRESS, ("progress",)),
    ]
    if multi:
        cells += _context_sections(manifest)
    for table in manifest.get("compare_tables") or ():
        cells += [_md(f"### `glia compare`: every method on the same budget (`{table}`)"),
                  _code(f"display(Markdown((study.folder / {table!r}).read_text()))", ("compare",))]
    if not best:
        cells.append(_md("## No result to re-check\n\nNo experiment of this study produced a "
                         "score, so there is no discovered design to show or re-evaluate."))
        return _notebook(cells, title, manifest)
    cells += [
        _md(f"## The discovered design\n\nThe code of the best design"
            + (f", *{best.get('name')}*," if best.get("name") else "")
            + " exactly as it was evaluated, then what it changed in the baseline policy."),
        _code(_CODE, ("design",)),
        _code(_DIFF, ("diff",)),
        _md("## Re-check\n\nThe design and the baselines evaluated now, in the same sandboxed "
            "harness the study used: on the task's seeds (which the study optimised on) and on "
            "held-out seeds it never saw."),
        _code(_RECHECK, ("recheck",)),
        _md("The simulator is deterministic: on the task's seeds the re-checked score must equal "
            "the score recorded in the journal."),
        _code(_ASSERT, ("assert-reproduced",)),
        _md("### Where the time went\n\nPer-request breakdown on the first task seed: the "
            "discovered design next to the baseline (end-to-end time split into queueing, "
            "prefill, decode and time lost to restarts, and the restarts themselves)."),
        _code(_BREAKDOWN, ("breakdown",)),
        _md("## Reproduce it yourself\n\n" + f"Install the recorded version (`{manifest.get('install')}`), "
            "open this folder and run the notebook; `manifest.json` lists every version. To run "
            "a study of your own, `glia study " + manifest["task_name"] + "` (offline, no key) or "
            "with a model, then `glia publish` its folder."),
    ]
    return _notebook(cells, title, manifest)


def _notebook(cells: list, title: str, manifest: dict) -> Any:
    import nbformat

    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata.update({"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                        "language_info": {"name": "python"},
                        "glia": {"title": title, "task": manifest["task_name"], "format": 1}})
    return nb
