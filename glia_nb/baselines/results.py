"""The records of a comparison and the tables made of them (data only; the figures are
drawn by :mod:`glia_nb.plots.baselines`).

* :class:`EvalRecord`: one candidate's evaluation; :class:`MethodRun`: one run of one method.
* :func:`best_so_far`: the best score after each simulation; :func:`curve_band`: its mean
  over runs with a bootstrap band.
* :func:`summary_row` / :func:`fixed_row`: one row of the per-method table;
  :func:`write_table`: the table as CSV and Markdown.

Which score is better, and how many times better than the baseline a score is, is asked of
the task's :class:`~glia_nb.tasks.objective.Objective` only.
"""
from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from glia_nb.tasks.objective import Objective

__all__ = ["EvalRecord", "MethodRun", "best_so_far", "curve_band", "summary_row", "fixed_row",
           "write_table", "usable", "TABLE_COLUMNS", "KINDS"]

KINDS = {"as-is": "llm-search", "funsearch": "llm-search", "eoh": "llm-search",
         "openevolve": "llm-search", "glia-scg": "glia", "glia-par4": "glia", "glia-seq": "glia"}
TABLE_COLUMNS = ("method", "kind", "status", "runs", "budget_sims", "sims_used_mean",
                 "sims_used_max", "best_score_mean", "ci_low", "ci_high", "best_score_min",
                 "vs_baseline", "valid_fraction", "llm_calls_mean", "usd_mean", "wall_s_mean",
                 "reason")


@dataclass
class EvalRecord:
    """One candidate's evaluation. ``sim`` is its 1-based index among the run's counted
    simulations (None when it cost nothing: invalid code, a repeat, the free baseline)."""

    label: str
    ok: bool
    score: float | None
    sim: int | None = None
    counted: bool = False
    cached: bool = False
    error_kind: str | None = None
    error: str | None = None
    code_hash: str = ""
    code_path: str | None = None
    ci: list | None = None
    per_seed: list = field(default_factory=list)
    wall_s: float = 0.0
    t_s: float = 0.0
    usd: float = 0.0
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """A JSON-native dict."""
        return asdict(self)


def best_so_far(records: list[dict | EvalRecord], budget: int, start: float | None,
                objective: Objective | None = None) -> list[float]:
    """Best score after 0..``budget`` counted simulations (index 0 = ``start``, the
    starting program's score; NaN while nothing valid is known), ranked by ``objective``
    (default: lower is better). After the run's last simulation the value is carried
    forward."""
    objective = objective or Objective()
    by_sim = {}
    for r in records:
        d = r.to_dict() if isinstance(r, EvalRecord) else r
        if d.get("counted") and d.get("sim") and d.get("ok") and d.get("score") is not None:
            by_sim[int(d["sim"])] = float(d["score"])
    first = objective.best_so_far([start])
    return first + objective.best_so_far([by_sim.get(k) for k in range(1, budget + 1)], first[0])


@dataclass
class MethodRun:
    """The outcome of one run of one method (JSON-native via :meth:`to_dict`)."""

    method: str
    run: int
    seed: int
    budget_sims: int
    status: str = "ok"            # ok | stopped | error | unavailable
    reason: str = ""
    sims_used: int = 0
    llm_calls: int = 0
    usd: float = 0.0
    wall_s: float = 0.0
    baseline_score: float | None = None
    best_score: float | None = None
    best_code_path: str | None = None
    records: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    def curve(self, objective: Objective | None = None) -> list[float]:
        """Best-so-far after 0..budget simulations (see :func:`best_so_far`)."""
        return best_so_far(self.records, self.budget_sims, self.baseline_score, objective)

    def to_dict(self) -> dict:
        """A JSON-native dict."""
        return asdict(self)


def curve_band(curves: list[list[float]], confidence: float = 0.90,
               length: int | None = None) -> dict:
    """Mean best-so-far over runs at each simulation count, with a bootstrap band;
    ``length`` cuts the curves after that many simulations (a method that stopped early,
    like SCG, gets a shorter curve)."""
    from sim_core.results import bootstrap_ci

    n = max((len(c) for c in curves), default=0)
    if length is not None:
        n = min(n, length + 1)
    mean, lo, hi = [], [], []
    for x in range(n):
        vals = [c[x] for c in curves if x < len(c) and c[x] == c[x]]
        a, b = bootstrap_ci(vals, confidence) if vals else (math.nan, math.nan)
        mean.append(sum(vals) / len(vals) if vals else math.nan)
        lo.append(a)
        hi.append(b)
    return {"x": list(range(n)), "mean": mean, "low": lo, "high": hi}


def usable(run) -> bool:
    """A run that searched: not unavailable, and not an error before its first simulation."""
    return run.status != "unavailable" and not (run.status == "error" and run.sims_used == 0)


def summary_row(method: str, runs: list, budget: int, baseline, objective: Objective) -> dict:
    """One method's row of the table: its runs' final best scores (mean, best, 90% CI),
    simulations, validity, model calls, dollars and time."""
    from sim_core.results import bootstrap_ci

    live = [r for r in runs if usable(r)]
    row = {"method": method, "kind": KINDS.get(method, "?"), "runs": len(live),
           "budget_sims": budget}
    if not live:
        failed = [r for r in runs if r.status == "error"]
        row.update(status="error" if failed else "unavailable",
                   reason=(failed or runs)[0].reason if runs else "")
        return row
    finals = [r.curve(objective)[-1] for r in live]
    finals = [f for f in finals if f == f]
    errs = [r for r in live if r.status == "error"]
    row["status"] = "error" if len(errs) == len(live) else "ok"
    row["reason"] = "; ".join(sorted({r.reason for r in live if r.reason}))[:300]
    counted = [rec for r in live for rec in r.records if rec.get("counted")]
    row["sims_used_mean"] = sum(r.sims_used for r in live) / len(live)
    row["sims_used_max"] = max(r.sims_used for r in live)
    row["valid_fraction"] = (sum(1 for c in counted if c.get("ok")) / len(counted)) if counted else None
    row["llm_calls_mean"] = sum(r.llm_calls for r in live) / len(live)
    row["usd_mean"] = sum(r.usd for r in live) / len(live)
    row["wall_s_mean"] = sum(r.wall_s for r in live) / len(live)
    if finals:
        row["best_score_mean"] = sum(finals) / len(finals)
        row["best_score_min"] = objective.best_of(finals)
        if len(finals) >= 2:
            row["ci_low"], row["ci_high"] = bootstrap_ci(finals)
        else:
            ci = _best_record_ci(live[0], baseline, finals[0])
            row["ci_low"], row["ci_high"] = ci if ci else (None, None)
        row["vs_baseline"] = objective.ratio(row["best_score_mean"], baseline.score)
    return row


def _best_record_ci(run, baseline, final):
    for rec in run.records:
        if rec.get("counted") and rec.get("ok") and rec.get("score") == final:
            return rec.get("ci")
    return baseline.ci if baseline.score == final else None


def fixed_row(f: dict, baseline, objective: Objective) -> dict:
    """A fixed router's row of the table (evaluated once, outside any budget)."""
    ci = f.get("ci") or (None, None)
    return {"method": f["method"], "kind": "fixed", "status": "ok" if f["ok"] else "error",
            "runs": None, "best_score_mean": f["score"], "best_score_min": f["score"],
            "ci_low": ci[0], "ci_high": ci[1], "reason": f.get("error") or "",
            "vs_baseline": objective.ratio(f["score"], baseline.score)}


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "-" if v != v else f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"
    return str(v)


def write_table(rows: list[dict], csv_path, md_path) -> tuple[Path, Path]:
    """The per-method table as CSV (all columns) and Markdown (the readable ones)."""
    with open(csv_path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(TABLE_COLUMNS), extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k) for k in TABLE_COLUMNS})
    cols = ("method", "kind", "status", "runs", "sims_used_mean", "best_score_mean", "ci_low",
            "ci_high", "vs_baseline", "valid_fraction", "llm_calls_mean", "usd_mean", "wall_s_mean")
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rows]
    Path(md_path).write_text("\n".join(lines) + "\n")
    return Path(csv_path), Path(md_path)


