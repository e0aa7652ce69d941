"""A published case study, read back: what the generated notebook calls.

:class:`CaseStudy` opens a folder written by :func:`glia_nb.research.publish.publish_study`
(found by a relative path, so it works wherever the folder was copied: a clone, Binder),
reads each context's journal through :func:`~glia_nb.research.journal.read_journal` and
the one fold of a journal, and re-evaluates designs with the sandboxed harness. Every number the
notebook shows about the re-check is computed here when the notebook runs.
"""
from __future__ import annotations

import difflib
import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glia_nb.research import records as R
from glia_nb.research.fold import StudyState, best_of, fold_records
from glia_nb.research.journal import finite_or_none, read_journal
from glia_nb.research.publish import MANIFEST

__all__ = ["CaseStudy", "Context", "RECHECK_REL_TOL"]

RECHECK_REL_TOL = 1e-9  # the simulator is deterministic: a re-check must agree this closely


@dataclass(frozen=True)
class Context:
    """One session of the study: its journal (header, records), their fold and the
    manifest's summary of it."""

    label: str
    header: dict
    records: list
    state: StudyState
    summary: dict

    @property
    def experiments(self) -> list[dict]:
        """The experiment records (the baseline, id 0, excluded)."""
        return [e for e in self.state.experiments if e.get("id") not in (0, "0")]


class CaseStudy:
    """A published case study. Build with :meth:`open`."""

    def __init__(self, folder: Path, manifest: dict, contexts: list[Context]):
        self.folder, self.manifest, self.contexts = folder, manifest, contexts

    @classmethod
    def open(cls, folder: str | Path = ".") -> "CaseStudy":
        """Open the case study in ``folder`` (default: the working directory, which is the
        notebook's own folder in Jupyter)."""
        from glia_nb.tasks import Task

        folder = Path(folder).resolve()
        path = folder / MANIFEST
        if not path.is_file():
            raise FileNotFoundError(f"no {MANIFEST} in {folder}: open the notebook from its "
                                    "case-study folder")
        manifest = json.loads(path.read_text())
        lower = Task.from_dict(manifest["task"]).objective.direction != "max"
        contexts = []
        for c in manifest["contexts"]:
            header, records = read_journal(folder / c["journal"])
            contexts.append(Context(c["label"], header, records,
                                    fold_records(records, header, lower_is_better=lower), c))
        return cls(folder, manifest, contexts)

    # ------------------------------------------------------------------ the record
    @property
    def task(self):
        """The task as it was studied (scenario, seeds, duration, objective)."""
        from glia_nb.tasks import Task

        return Task.from_dict(self.manifest["task"])

    @property
    def lower_is_better(self) -> bool:
        """The objective's direction."""
        return self.manifest.get("direction", "min") != "max"

    def context(self, label: str | None = None) -> Context:
        """The context called ``label`` (default: the one holding the best design)."""
        label = label or (self.manifest.get("best") or {}).get("context") or self.contexts[0].label
        for c in self.contexts:
            if c.label == label:
                return c
        raise KeyError(f"no context {label!r}; have {', '.join(c.label for c in self.contexts)}")

    def journal_path(self, label: str | None = None) -> Path:
        """The redacted journal of a context."""
        return self.folder / self.context(label).summary["journal"]

    def journal_best(self) -> dict:
        """The best experiment as its journal records it (not as the manifest says)."""
        c = self.context()
        best = best_of(c.experiments, self.lower_is_better)
        if best is None:
            raise ValueError("the study has no experiment with a score")
        return best

    def ledger(self):
        """Every experiment of every context as a DataFrame, with its improvement on the
        baseline, whether it is in the best design's lineage and whether it is the best."""
        import pandas as pd

        obj, best = self.task.objective, self.manifest.get("best") or {}
        rows = []
        for c in self.contexts:
            base = finite_or_none(c.summary.get("baseline_score"))
            for e in c.experiments:
                s = finite_or_none(e.get("score"))
                rows.append({
                    "context": c.label, "id": e.get("id"), "name": e.get("name"),
                    "score": s, "vs_baseline": obj.improvement(s, base) if s is not None and base else None,
                    "restarted": (e.get("metrics") or {}).get("restart_fraction"),
                    "ok": e.get("ok"), "lineage": e.get("id") in c.summary.get("lineage", []),
                    "best": c.label == best.get("context") and e.get("id") == best.get("id"),
                    "hypothesis": e.get("hypothesis"),
                })
        return pd.DataFrame(rows)

    def highlights(self):
        """The Supervisor's interventions and the person's nudges, in journal order."""
        import pandas as pd

        person = {R.Nudge.TYPE: "nudge", R.InterventionEdited.TYPE: "edited an intervention",
                  R.InterventionRejected.TYPE: "rejected an intervention"}
        rows = []
        for c in self.contexts:
            for r in c.records:
                t = r.get("type")
                if t == R.SupervisorReview.TYPE and r.get("kind") not in (None, "proceed"):
                    rows.append((c.label, r.get("seq"), "Supervisor", f"{r.get('kind')} (on {r.get('trigger')})", r.get("text")))
                elif t in person:
                    rows.append((c.label, r.get("seq"), "Person", person[t], r.get("text", "")))
        return pd.DataFrame(rows, columns=["context", "seq", "who", "what", "text"])

    # ------------------------------------------------------------------ the code
    def policy_path(self, exp_id: Any = None, label: str | None = None) -> Path:
        """The published code of experiment ``exp_id`` (default: the best design)."""
        c = self.context(label)
        exp_id = self.journal_best()["id"] if exp_id is None else exp_id
        rel = c.summary["policies"].get(str(exp_id))
        if rel is None:
            raise KeyError(f"experiment {exp_id} of {c.label} has no published policy file "
                           "(published with --lineage-only, or it never ran)")
        return self.folder / rel

    def diff(self, exp_id: Any = None, label: str | None = None) -> str:
        """A unified diff from the baseline policy to experiment ``exp_id``'s code."""
        base = (self.folder / "baseline_policy.py").read_text().splitlines(keepends=True)
        new = self.policy_path(exp_id, label).read_text().splitlines(keepends=True)
        return "".join(difflib.unified_diff(base, new, "baseline_policy.py", self.policy_path(exp_id, label).name))

    # ------------------------------------------------------------------ the re-check
    def evaluate(self, policy: Any, seeds=None, out_dir=None):
        """Evaluate ``policy`` (a file or a built-in spec) on the task, or on ``seeds``, in
        the sandboxed harness; returns an :class:`~glia_nb.evaluation.harness.EvalResult`."""
        from glia_nb.evaluation.harness import evaluate

        task = self.task if seeds is None else self.task.replace(eval_seeds=tuple(int(s) for s in seeds))
        return evaluate(policy, task, out_dir)

    def recheck(self, out_dir=None, progress=None) -> dict:
        """The best design and the baselines on the task's seeds and on held-out seeds:
        ``{(name, split): EvalResult}``, ``split`` in ("task seeds", "held-out seeds").
        Telemetry of each run's first seed lands in ``out_dir`` (default: a temporary folder)."""
        out = Path(out_dir or tempfile.mkdtemp(prefix="glia-recheck-"))
        entries = [("discovered", self.policy_path())] + [(b, b) for b in self.manifest["baselines"]]
        splits = {"task seeds": None, "held-out seeds": self.manifest["held_out_seeds"]}
        results = {}
        for name, policy in entries:
            for split, seeds in splits.items():
                if progress:
                    progress(f"{name} on {split}")
                folder = out / f"{name}-{split.split()[0]}".replace(" ", "_")
                results[(name, split)] = self.evaluate(policy, seeds, folder)
        return results

    def recheck_table(self, results: dict):
        """Scores of :meth:`recheck` as a DataFrame: one row per policy, one column per split,
        plus the scores the journal recorded for the design and the baseline."""
        import pandas as pd

        names = list(dict.fromkeys(n for n, _ in results))
        splits = list(dict.fromkeys(s for _, s in results))
        table = pd.DataFrame({s: [results[(n, s)].score for n in names] for s in splits}, index=names)
        table["restarted (task seeds)"] = [results[(n, splits[0])].summary.get("restart_fraction") for n in names]
        recorded = {"discovered": self.journal_best()["score"],
                    self.task.baseline: self.context().summary.get("baseline_score")}
        table["journal (task seeds)"] = [recorded.get(n) for n in names]
        table.index.name = "policy"
        return table

    def assert_reproduced(self, results: dict, rel_tol: float = RECHECK_REL_TOL) -> float:
        """Check that the re-evaluated design scores what its journal records; returns the
        re-checked score, or raises ``AssertionError`` with both numbers."""
        res = results[("discovered", "task seeds")]
        if not res.ok:
            raise AssertionError(f"the re-check failed: {res.one_line()}")
        want = float(self.journal_best()["score"])
        if not math.isclose(res.score, want, rel_tol=rel_tol, abs_tol=0.0):
            from glia_nb.research.journal import environment_info

            raise AssertionError(
                f"re-checked score {res.score!r} differs from the journal's {want!r}: the simulator "
                f"is not the one the study ran on (recorded with glia-nb "
                f"{self.manifest['versions'].get('glia_nb')}, running {environment_info()['version']})")
        return float(res.score)

    @staticmethod
    def requests(result):
        """The per-request table of a re-check's first seed (for :mod:`glia_nb.plots`)."""
        import pandas as pd

        return pd.read_csv(Path(result.out_dir) / "requests.csv")
