"""The experiment ledger of a session as the panels show it: folded from ``baseline`` and
``experiment`` records by the journal's own fold (:func:`glia_nb.research.fold.fold`), rendered as a sortable table whose best row stays in view, and an
experiment lineage (what each experiment built on, its hypothesis and score, and its
policy's diff against that parent and against the best).

Pure Python (pandas for the table); the panels put the HTML into widgets.

Lineage: the Researcher edits one policy file and each experiment snapshots it, so an
experiment built on the snapshot its code is closest to (fewest changed lines; ties go to
the most recent). Without snapshots on disk it built on the experiment before it.
"""
from __future__ import annotations

import difflib
import html
import math
from pathlib import Path
from typing import Any, Mapping

from glia_nb.research import records as R
from glia_nb.research.fold import fold, new_state
from glia_nb.tasks.objective import Objective

__all__ = ["Ledger", "num"]

COLUMNS = ("#", "name", "score", "vs baseline", "built on", "restarted", "p90 TTFT (s)", "seeds", "note")


def num(x: Any) -> float | None:
    """``x`` as a finite float, else None."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


class Ledger:
    """Baseline and experiments of one session, ranked by ``objective`` (or by
    ``lower_is_better`` when only the direction is known); ``root``/``policy_file`` locate
    the code snapshots (``<root>/<folder>/<policy_file>``) for the lineage and diffs."""

    def __init__(self, *, objective: Objective | None = None, lower_is_better: bool | None = None,
                 metric: str | None = None, root: Path | None = None, policy_file: str | None = None) -> None:
        if objective is None:
            objective = Objective(direction="max" if lower_is_better is False else "min")
        self.objective, self.lower = objective, objective.lower_is_better
        self.metric = metric or getattr(objective, "name", "") or "score"
        self.root, self.policy_file = root, policy_file
        self._state = new_state(lower_is_better=self.lower)
        self.sort_by = "order"  # or "score"
        self._code: dict[Any, list[str] | None] = {}

    def add(self, rec: Mapping[str, Any]) -> bool:
        """Fold a journal record; True if it was a ``baseline`` or ``experiment``."""
        if rec.get("seq") is None:  # a status event, not a journal record
            return False
        fold(self._state, rec)
        return rec.get("type") in (R.Experiment.TYPE, R.Baseline.TYPE)

    # ------------------------------------------------------------------ facts
    @property
    def experiments(self) -> list[dict[str, Any]]:
        """The experiment records, oldest first."""
        return self._state.experiments

    @property
    def baseline(self) -> dict[str, Any] | None:
        """The baseline record, or None."""
        return self._state.baseline

    @property
    def base_score(self) -> float | None:
        return self._state.baseline_score

    def best(self) -> dict[str, Any] | None:
        """The best successful experiment (score a float), or None."""
        return self._state.best_experiment()

    def gain(self, score: float | None) -> float | None:
        """Relative improvement over the baseline (positive = better), or None."""
        return self.objective.improvement(score, self.base_score)

    def code(self, exp: Mapping[str, Any] | None) -> list[str] | None:
        """The policy snapshot of an experiment (None for the baseline or when absent)."""
        if exp is None or self.root is None or not self.policy_file or not exp.get("folder"):
            return None
        key = exp.get("id")
        if key not in self._code:
            path = Path(self.root) / str(exp["folder"]) / self.policy_file
            try:
                self._code[key] = path.read_text().splitlines()
            except OSError:
                self._code[key] = None
        return self._code[key]

    def parent(self, exp: Mapping[str, Any]) -> dict[str, Any] | None:
        """The experiment this one built on (None: it built on the baseline policy)."""
        earlier = [e for e in self.experiments if e is not exp and _before(e, exp)]
        if not earlier:
            return None
        mine = self.code(exp)
        if mine is None:
            return earlier[-1]
        scored = [(_changed(self.code(e), mine), -i, e) for i, e in enumerate(earlier) if self.code(e) is not None]
        return min(scored, key=lambda t: (t[0], t[1]))[2] if scored else earlier[-1]

    def diff(self, exp: Mapping[str, Any], other: Mapping[str, Any] | None, limit: int = 80) -> str:
        """Unified diff of ``other``'s policy → ``exp``'s (at most ``limit`` lines)."""
        a, b = self.code(other), self.code(exp)
        if other is None:
            return "(the first experiment: no earlier snapshot to compare with)"
        if b is None:
            return "(no code snapshot)"
        if other is not None and a is None:
            return "(no code snapshot of the other experiment)"
        lines = list(difflib.unified_diff(a or [], b, f"#{other.get('id')} {other.get('name')}", f"#{exp.get('id')} {exp.get('name')}", lineterm="", n=1))
        if not lines:
            return "(identical code)"
        return "\n".join(lines[:limit]) + (f"\n… {len(lines) - limit} more lines" if len(lines) > limit else "")

    # ------------------------------------------------------------------ rendering
    def html(self) -> str:
        """The table: baseline first, the best row next (so it stays in view), then the
        others by experiment order or by score (``sort_by``)."""
        import pandas as pd

        def f(v: float | None, spec: str) -> str:
            return "" if v is None else format(v, spec)

        best = self.best()
        rows = []
        if self.baseline is not None:
            m = self.baseline.get("metrics") or {}
            rows.append((["0", "baseline", f(self.base_score, ".4g"), "", "", f(num(m.get("restart_fraction")), ".1%"),
                          f(num(m.get("p90_ttft_s")), ".3g"), _seeds(self.baseline), ""], 0))
        others = list(self.experiments)
        if self.sort_by == "score":
            bad = float("inf") if self.lower else float("-inf")
            others.sort(key=lambda e: num(e.get("score")) if num(e.get("score")) is not None else bad,
                        reverse=not self.lower)
        if best is not None:
            others = [e for e in others if e.get("id") == best.get("id")] + \
                     [e for e in others if e.get("id") != best.get("id")]
        for e in others:
            s, m = num(e.get("score")), e.get("metrics") or {}
            p = self.parent(e)
            is_best = best is not None and e.get("id") == best.get("id")
            note = ("failed: " + str(e.get("error") or "")[:60] if s is None else "★ best" if is_best else "")
            rows.append(([str(e.get("id", "")), str(e.get("name", "")), f(s, ".4g") or "—", f(self.gain(s), "+.1%"),
                          "baseline" if p is None else f"#{p.get('id')}", f(num(m.get("restart_fraction")), ".1%"),
                          f(num(m.get("p90_ttft_s")), ".3g"), _seeds(e), note], 1 if is_best else 0))
        if not rows:
            return "<i>No experiments yet.</i>"
        cols = list(COLUMNS)
        cols[2] = html.escape(self.metric)
        table = pd.DataFrame([r for r, _ in rows], columns=cols).to_html(
            index=False, escape=True, border=0, classes="glia-ledger-table")
        if best is not None:  # highlight the best row (first after the baseline)
            marker = "<tr>"
            idx = table.find(marker, table.find("<tbody>"))
            if self.baseline is not None:
                idx = table.find(marker, idx + 1)
            table = table[:idx] + "<tr class='glia-best-row' style='background:#fff4c2;font-weight:600'>" \
                + table[idx + len(marker):]
        css = ("<style>.glia-ledger-table td,.glia-ledger-table th{padding:1px 8px;text-align:right}"
               ".glia-ledger-table td:nth-child(2),.glia-ledger-table th:nth-child(2),"
               ".glia-ledger-table td:last-child{text-align:left}</style>")
        return (f"{css}<div style='font-size:12px;color:#555'>{self.metric}: "
                f"{'lower' if self.lower else 'higher'} is better; 'vs baseline' is the relative gain over the "
                f"baseline's score; sorted by {'score' if self.sort_by == 'score' else 'experiment order'},"
                f" best row first</div><div style='max-height:260px;overflow-y:auto;font-size:12px'>{table}</div>")

    def lineage_html(self) -> str:
        """Each experiment: what it built on, its hypothesis and score, and its policy's
        diff against its parent and against the best (collapsible)."""
        if not self.experiments:
            return "<i>No experiments yet.</i>"
        best = self.best()
        out = ["<div class='glia-lineage' style='font-size:12.5px;max-height:420px;overflow-y:auto'>"]
        for e in self.experiments:
            p, s = self.parent(e), num(e.get("score"))
            on = "the baseline policy" if p is None else f"#{p.get('id')} {html.escape(str(p.get('name')))}"
            score = "failed" if s is None else f"{self.metric} {s:.4g}" + (
                f" ({self.gain(s):+.1%} vs baseline)" if self.gain(s) is not None else "")
            star = " &#9733; best" if best is not None and e.get("id") == best.get("id") else ""
            out.append(
                f"<div style='margin:4px 0;padding:3px 6px;border-left:3px solid #1f5fa8'>"
                f"<b>#{html.escape(str(e.get('id')))} {html.escape(str(e.get('name')))}</b>{star} — built on {on}; "
                f"{score}<br><i>{html.escape(str(e.get('hypothesis') or ''))}</i>"
                f"<details><summary>code diff against its parent</summary><pre style='font-size:11px'>"
                f"{html.escape(self.diff(e, p))}</pre></details>")
            if best is not None and e.get("id") != best.get("id"):
                out.append(f"<details><summary>code diff against the best (#{best.get('id')})</summary>"
                           f"<pre style='font-size:11px'>{html.escape(self.diff(e, best))}</pre></details>")
            out.append("</div>")
        out.append("</div>")
        return "".join(out)


def _seeds(rec: Mapping[str, Any]) -> str:
    """How many evaluation seeds a record's score averages (older journals: simulations)."""
    seeds = rec.get("seeds", rec.get("simulations", ""))
    return str(len(seeds)) if isinstance(seeds, (list, tuple)) else str(seeds)


def _before(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    sa, sb = a.get("seq"), b.get("seq")
    if sa is not None and sb is not None:
        return int(sa) < int(sb)
    try:
        return int(a.get("id")) < int(b.get("id"))
    except (TypeError, ValueError):
        return str(a.get("id")) < str(b.get("id"))


def _changed(a: list[str] | None, b: list[str]) -> int:
    if a is None:
        return len(b)
    return sum(1 for line in difflib.ndiff(a, b) if line[:1] in "+-")
