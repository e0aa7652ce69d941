"""A research session's working directory: task text, policy under design, experiments, ledger.

Layout of ``Workspace.create(root, task, session_id)`` → ``root/session_id/``::

    workspace.json        task (as a dict), session id, baseline score and summary
    TASK.md               the Researcher's task text (Task.render_text)
    policy.py             the policy under design (starts as a readable LLQ router)
    run_benchmark.sh      the shell equivalent of one evaluation
    experiments/NNN_<slug>/
        policy.py         snapshot of the code that was evaluated
        metrics.json      aggregate + per-seed metrics, error details if it failed
        seeds.csv         one summary row per seed
        requests.csv, request_metrics.csv, gs_log.csv, reqs_log.csv, config.json
                          telemetry of the first evaluation seed only (keeps the disk small)
        sandbox_log.txt   whatever the candidate printed
    ledger.csv            one row per experiment

Paths handed in by the agent go through :meth:`Workspace.resolve`, which rejects anything
that resolves (symlinks followed) outside the workspace.
"""
from __future__ import annotations

import csv
import json
import re
import shutil
import stat
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from glia_nb.evaluation.harness import write_result_files
from glia_nb.evaluation.secrets import known_secrets, redact
from glia_nb.research.journal import finite_or_none
from glia_nb.tasks import Task

LEDGER_COLUMNS = ("id", "name", "hypothesis", "status", "error_kind", "error", "score",
                  "vs_baseline", "mean_e2e_s", "restart_fraction", "p90_ttft_s", "ci_low",
                  "ci_high", "seeds", "wall_s", "created_at", "folder")
META_FILE = "workspace.json"
LEDGER_FILE = "ledger.csv"
TASK_FILE = "TASK.md"
EXPERIMENTS_DIR = "experiments"
_SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_EXP_DIR = re.compile(r"^(\d{3,})_")


class PathEscapeError(ValueError):
    """A path resolves outside the workspace."""


class WorkspaceError(RuntimeError):
    """The directory is not a workspace, or already is one."""


def slugify(text: str, max_len: int = 40) -> str:
    """``"HRA: tuned r=0.6!"`` → ``"hra-tuned-r-0-6"`` (never empty)."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:max_len].strip("-")
    return slug or "experiment"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Workspace:
    """One session's directory.  Build with :meth:`create` or :meth:`open`."""

    def __init__(self, path: Path, task: Task, session_id: str, meta: dict):
        self.path = Path(path).resolve()
        self.task = task
        self.session_id = session_id
        self._meta = meta

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def create(cls, root, task: Task, session_id: str, *, baseline_score: float | None = None,
               exist_ok: bool = False) -> "Workspace":
        """Create ``root/session_id`` with the task text, the starting policy, the benchmark
        script, an empty ``experiments/`` and the ledger header.  With ``exist_ok`` an
        existing workspace is opened instead."""
        if not _SESSION_ID.match(session_id):
            raise ValueError(f"session id {session_id!r} must be letters, digits, '.', '_' or '-'")
        path = (Path(root) / session_id).resolve()
        if (path / META_FILE).exists():
            if exist_ok:
                return cls.open(path)
            raise WorkspaceError(f"{path} is already a workspace (use Workspace.open to resume)")
        path.mkdir(parents=True, exist_ok=True)
        (path / EXPERIMENTS_DIR).mkdir(exist_ok=True)
        meta = {"format": 1, "session_id": session_id, "created_at": _now(),
                "task": task.to_dict(), "baseline": None}
        if baseline_score is not None:
            meta["baseline"] = {"score": float(baseline_score), "summary": None, "experiment": None}
        ws = cls(path, task, session_id, meta)
        (path / task.policy_file).write_text(task.render_policy_template())
        script = path / "run_benchmark.sh"
        script.write_text(_benchmark_script(task))
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        with open(path / LEDGER_FILE, "w", newline="") as fh:
            csv.writer(fh).writerow(LEDGER_COLUMNS)
        ws._write_task_text()
        ws._save_meta()  # last: its presence marks a complete workspace
        return ws

    @classmethod
    def open(cls, path) -> "Workspace":
        """Re-open an existing workspace (resume)."""
        path = Path(path).resolve()
        try:
            meta = json.loads((path / META_FILE).read_text())
        except FileNotFoundError:
            raise WorkspaceError(f"{path} is not a workspace (no {META_FILE})") from None
        return cls(path, Task.from_dict(meta["task"]), meta["session_id"], meta)

    def _save_meta(self) -> None:
        tmp = self.path / (META_FILE + ".tmp")
        tmp.write_text(json.dumps(self._meta, indent=2, default=str))
        tmp.replace(self.path / META_FILE)

    def _write_task_text(self) -> None:
        (self.path / TASK_FILE).write_text(self.task.render_text(self.baseline_score))

    def __repr__(self) -> str:
        return f"Workspace({str(self.path)!r}, task={self.task.name!r})"

    # ------------------------------------------------------------------ paths
    @property
    def policy_path(self) -> Path:
        """The policy file under design."""
        return self.path / self.task.policy_file

    @property
    def experiments_dir(self) -> Path:
        """The folder holding one sub-folder per experiment."""
        return self.path / EXPERIMENTS_DIR

    @property
    def ledger_path(self) -> Path:
        """``ledger.csv``: one row per experiment."""
        return self.path / LEDGER_FILE

    def record_files(self) -> list[Path]:
        """The files only the harness writes (ledger, workspace metadata, task text, each
        experiment's metrics, per-seed table and code snapshot) that exist now."""
        names = (self.ledger_path, self.path / META_FILE, self.path / TASK_FILE)
        per_exp = [f for d in sorted(self.experiments_dir.glob("*")) for f in
                   (d / "metrics.json", d / "seeds.csv", d / self.task.policy_file)]
        return [f for f in (*names, *per_exp) if f.is_file() or f.is_symlink()]

    def resolve(self, path, *, must_exist: bool = False) -> Path:
        """``path`` (relative to the workspace, or absolute) as an absolute path inside it.

        Symlinks are followed before the check, so a link pointing outside is rejected too.
        Raises :class:`PathEscapeError` (or ``FileNotFoundError`` with ``must_exist``)."""
        text = str(path)
        if "\x00" in text:
            raise PathEscapeError("path contains a NUL character")
        p = Path(text)
        if not p.is_absolute():
            p = self.path / p
        resolved = p.resolve()
        if resolved != self.path and not resolved.is_relative_to(self.path):
            raise PathEscapeError(f"{text!r} is outside the workspace ({self.path}); only files "
                                  "inside it can be used")
        if must_exist and not resolved.exists():
            raise FileNotFoundError(f"{self.relative(resolved)} does not exist")
        return resolved

    def relative(self, path) -> str:
        """``path`` relative to the workspace root, for messages."""
        try:
            return str(Path(path).resolve().relative_to(self.path)) or "."
        except ValueError:
            return str(path)

    # ------------------------------------------------------------------ baseline
    @property
    def baseline_score(self) -> float | None:
        """The baseline's score, once measured (None before)."""
        b = self._meta.get("baseline") or {}
        return finite_or_none(b.get("score"))

    @property
    def baseline_summary(self) -> dict | None:
        """The baseline's aggregate summary, if it was measured here."""
        return (self._meta.get("baseline") or {}).get("summary")

    def set_baseline(self, score: float, summary: dict | None = None,
                     experiment: int | None = None) -> None:
        """Record the baseline's score (and summary) and re-render ``TASK.md``."""
        self._meta["baseline"] = {"score": float(score), "summary": summary,
                                  "experiment": experiment}
        self._save_meta()
        self._write_task_text()

    # ------------------------------------------------------------------ experiments
    def next_experiment_id(self) -> int:
        """One more than the highest id in the ledger or among experiment folders (≥ 1)."""
        ids = [int(r["id"]) for r in self.ledger_rows() if str(r.get("id", "")).isdigit()]
        if self.experiments_dir.is_dir():
            ids += [int(m.group(1)) for d in self.experiments_dir.iterdir()
                    if (m := _EXP_DIR.match(d.name))]
        return max([0] + ids) + 1

    def new_experiment(self, name: str, *, exp_id: int | None = None,
                       snapshot: bool = True) -> tuple[int, Path]:
        """Create ``experiments/NNN_<slug>/`` and copy the policy file into it."""
        exp_id = self.next_experiment_id() if exp_id is None else int(exp_id)
        folder = self.experiments_dir / f"{exp_id:03d}_{slugify(name)}"
        folder.mkdir(parents=True, exist_ok=False)
        if snapshot and self.policy_path.exists():
            shutil.copyfile(self.policy_path, folder / self.task.policy_file)
        return exp_id, folder

    def record_experiment(self, exp_id: int, name: str, hypothesis: str, result,
                          folder, *, secrets: Sequence[str] = ()) -> dict:
        """Write ``metrics.json``/``seeds.csv`` for ``result`` (an
        :class:`~glia_nb.evaluation.harness.EvalResult`) and append its ledger row; returns the row.
        The environment's keys and ``secrets`` (the session's model clients') are redacted."""
        folder = Path(folder)
        s = result.summary or {}
        ci = s.get("mean_e2e_ci90_s") or [None, None]
        base = self.baseline_score
        vs = (self.task.objective.improvement(result.score, base)
              if result.ok and result.score is not None and base is not None else None)
        row = {
            "id": int(exp_id), "name": name, "hypothesis": " ".join(str(hypothesis).split()),
            "status": "ok" if result.ok else "error", "error_kind": result.error_kind or "",
            "error": (result.error or "").splitlines()[0][:200] if result.error else "",
            "score": result.score, "vs_baseline": vs, "mean_e2e_s": s.get("mean_e2e_s"),
            "restart_fraction": s.get("restart_fraction"), "p90_ttft_s": s.get("p90_ttft_s"),
            "ci_low": ci[0], "ci_high": ci[1], "seeds": int(result.simulations),
            "wall_s": round(float(result.wall_s), 3), "created_at": _now(),
            "folder": self.relative(folder),
        }
        row = redact(row, known_secrets(extra=secrets))
        write_result_files(result, folder, extra={"experiment": {
            k: row[k] for k in ("id", "name", "hypothesis", "created_at", "folder")}},
            secrets=secrets)
        with open(self.ledger_path, "a", newline="") as fh:
            csv.writer(fh).writerow(["" if row[c] is None else row[c] for c in LEDGER_COLUMNS])
        return row

    # ------------------------------------------------------------------ ledger
    def ledger_rows(self) -> list[dict[str, Any]]:
        """The ledger as a list of dicts (numbers parsed, blanks as None)."""
        if not self.ledger_path.exists():
            return []
        with open(self.ledger_path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        numeric = {"score", "vs_baseline", "mean_e2e_s", "restart_fraction", "p90_ttft_s",
                   "ci_low", "ci_high", "wall_s"}
        for r in rows:
            if "seeds" not in r and "simulations" in r:  # a ledger written before the rename
                r["seeds"] = r.pop("simulations")
            for k, v in r.items():
                if v == "":
                    r[k] = None
                elif k in numeric:
                    r[k] = finite_or_none(v)
                elif k in ("id", "seeds"):
                    r[k] = int(float(v))
        return rows

    def experiment_with_same_policy(self) -> dict | None:
        """The latest ledger row whose code snapshot equals the current policy file, or None
        (the baseline, experiment 0, has no snapshot and never matches)."""
        if not self.policy_path.exists():
            return None
        code = self.policy_path.read_bytes()
        for row in reversed(self.ledger_rows()):
            snap = self.path / str(row.get("folder") or "") / self.task.policy_file
            if row.get("id") and row.get("folder") and snap.is_file() and snap.read_bytes() == code:
                return row
        return None

    def ledger(self):
        """The ledger as a pandas DataFrame (one row per experiment)."""
        import pandas as pd

        return pd.DataFrame(self.ledger_rows(), columns=list(LEDGER_COLUMNS))

    def simulations_used(self, *, include_baseline: bool = False) -> int:
        """Simulations charged so far: one per recorded experiment, whatever its outcome
        (the baseline, experiment 0, is free by default)."""
        return sum(1 for r in self.ledger_rows() if include_baseline or r["id"] != 0)

    def best(self) -> dict | None:
        """The ledger row with the best score among successful experiments."""
        obj = self.task.objective
        best = None
        for r in self.ledger_rows():
            if r["status"] == "ok" and r["score"] is not None and (
                    best is None or obj.is_better(r["score"], best["score"])):
                best = r
        return best

    def ledger_text(self, max_rows: int = 30, hypothesis_chars: int = 70) -> str:
        """A compact fixed-width table of the ledger (the newest ``max_rows`` rows), for
        the Supervisor, who sees results but no code."""
        rows = self.ledger_rows()
        if not rows:
            return "(no experiments yet)"
        unit = self.task.objective.unit
        best = self.best()
        head = ["id", "name", "status", f"score {unit}".strip(), "vs base", "restarted",
                "p90 TTFT", "hypothesis / error"]
        cells = []
        for r in rows[-max_rows:]:
            ok = r["status"] == "ok"
            note = r["hypothesis"] or ""
            if not ok:
                note = f"[{r['error_kind']}] {r['error'] or ''} | {note}"
            note = note if len(note) <= hypothesis_chars else note[: hypothesis_chars - 1] + "…"
            mark = "*" if best is not None and r["id"] == best["id"] else ""
            cells.append([
                f"{r['id']:03d}{mark}", (r["name"] or "")[:28], r["status"] or "",
                _fmt(r["score"], ".2f") if ok else "-",
                _fmt(r["vs_baseline"], "+.1%") if ok else "-",
                _fmt(r["restart_fraction"], ".1%") if ok else "-",
                _fmt(r["p90_ttft_s"], ".1f") if ok else "-", note])
        widths = [max(len(str(c[i])) for c in cells + [head]) for i in range(len(head))]
        lines = ["  ".join(str(c).ljust(w) for c, w in zip(head, widths)).rstrip(),
                 "  ".join("-" * w for w in widths)]
        lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
        skipped = len(rows) - len(cells)
        foot = []
        if skipped > 0:
            foot.append(f"({skipped} earlier experiments not shown)")
        base = self.baseline_score
        if base is not None:
            foot.append(f"baseline {self.task.baseline}: {base:.2f} {unit}; "
                        f"objective {self.task.objective.name} ({self.task.objective.direction}); "
                        "* marks the best")
        return "\n".join(lines + foot)


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _benchmark_script(task: Task) -> str:
    cmd = task.benchmark_command(out_dir='"$out"')
    return ("#!/usr/bin/env bash\n"
            "# One evaluation of the policy, as the run_experiment tool does it (but not recorded\n"
            "# in ledger.csv).  Usage: ./run_benchmark.sh [out_dir]\n"
            "set -euo pipefail\n"
            'cd "$(dirname "$0")"\n'
            'out="${1:-scratch/run_$(date +%Y%m%d_%H%M%S)}"\n'
            f"exec {cmd}\n")


__all__ = ["Workspace", "PathEscapeError", "WorkspaceError", "LEDGER_COLUMNS", "slugify"]
