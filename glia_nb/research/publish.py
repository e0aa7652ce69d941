"""Publish a study as a self-contained case-study folder (``glia publish``).

An LLM study cannot be re-run to the same transcript, so a case study is built from the
record — each session's journal and the policy file of every evaluated experiment — plus
what can be reproduced exactly: the simulator is deterministic, so the generated notebook
re-evaluates the discovered design and checks that it scores what the journal says.

Layout of ``publish_study(study_dir, out)``::

    manifest.json            task, scenario, seeds (evaluation and held-out), versions of
                             glia-nb, Python and the models, isolation level, budget used,
                             and one entry per context (its journal, policies, best)
    case_study.ipynb         the generated notebook (finds this folder by a relative path)
    baseline_policy.py       the starting policy (the task's baseline), for the diff
    contexts/<label>/journal.jsonl          the journal, redacted
    contexts/<label>/policies/NNN_<slug>.py  the evaluated code of each experiment
    compare/table_bN.md      the method tables of a ``glia compare`` run
    binder/requirements.txt, binder/runtime.txt
    README.md

``study_dir`` is a session folder (holding ``journal.jsonl``), a multi-context study folder
(``context0/``, ``context1/``...) or a ``glia compare`` output: every journal under it is a
context. Journals are read only through :func:`glia_nb.research.journal.read_journal` and
folded with :func:`glia_nb.research.fold.fold_records` (the one fold of a journal).

Redaction: values of environment variables whose names contain KEY, TOKEN, SECRET,
PASSWORD or CREDENTIAL, strings shaped like API keys (``sk-...``, ``AKIA...``, ``ghp_...``),
and absolute paths of the author's machine are replaced in every string of every record
and in the policy files.
"""
from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from glia_nb.evaluation.secrets import MASK, known_secrets
from glia_nb.research.fold import best_of, fold_records, is_improvement
from glia_nb.research.journal import environment_info, read_journal

__all__ = ["Redactor", "PublishedContext", "find_journals", "lineage", "publish_study",
           "held_out_seeds", "MANIFEST", "NOTEBOOK"]

MANIFEST = "manifest.json"
NOTEBOOK = "case_study.ipynb"
JOURNAL = "journal.jsonl"
REDACTED = MASK
# Shapes of API keys and tokens that must not leave the author's machine even when no
# environment variable holds them (OpenAI/Anthropic, AWS, GitHub, Slack, Google).
_KEY_SHAPES = re.compile(
    r"(?<![A-Za-z0-9])(?:sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{8,}|AKIA[0-9A-Z]{16}"
    r"|gh[pousr]_[A-Za-z0-9]{20,}|xox[abprs]-[A-Za-z0-9\-]{10,}|AIza[0-9A-Za-z_\-]{30,})")
# Absolute paths under places that name a person or a machine.
_ABS_PATH = re.compile(
    r"(?<![\w.~<])(?:/(?:home|Users|root|tmp|private|var/folders|mnt|media|work|srv|scratch)"
    r"(?![\w.-])(?:/[^\s\"'`<>()\[\]{},;:|]*)?|[A-Za-z]:\\(?:Users|Documents and Settings)\\[^\s\"'`<>|]*)")
_MIN_SECRET_LEN = 6  # shorter values ("1", "yes") would shred unrelated text


def _machine_prefixes(extra: Iterable[tuple[Path, str]]) -> list[tuple[str, str]]:
    """Absolute locations of this machine with what replaces them, longest first."""
    import sim_core

    pairs = [(Path(p).resolve(), label) for p, label in extra]
    pairs += [(Path(sim_core.__file__).resolve().parent.parent, "<glia-nb>"),
              (Path(sys.prefix).resolve(), "<python>"), (Path(sys.base_prefix).resolve(), "<python>"),
              (Path.cwd().resolve(), "<cwd>"), (Path.home().resolve(), "~")]
    out: list[tuple[str, str]] = []
    for p, label in pairs:
        if str(p) not in ("/", "") and len(p.parts) > 1:
            out.append((str(p), label))
    return sorted(set(out), key=lambda pl: len(pl[0]), reverse=True)


@dataclass(frozen=True)
class Redactor:
    """Replaces secrets and the author's absolute paths in strings and JSON values."""

    secrets: tuple[str, ...] = ()
    prefixes: tuple[tuple[str, str], ...] = ()

    @classmethod
    def for_study(cls, study_dir: Path, secrets: Iterable[str] = ()) -> "Redactor":
        """Secrets from the current environment and ``secrets`` (say, the keys of the model
        clients a notebook built); paths of the study and of this machine."""
        return cls(tuple(known_secrets(extra=secrets, min_len=_MIN_SECRET_LEN)),
                   tuple(_machine_prefixes([(Path(study_dir), "<study>")])))

    def text(self, s: str) -> str:
        """``s`` with secrets, key-shaped strings and absolute paths replaced."""
        for v in self.secrets:
            s = s.replace(v, REDACTED)
        s = _KEY_SHAPES.sub(REDACTED, s)
        for prefix, label in self.prefixes:  # whole path components only: /root, not /rootfs
            s = re.sub(re.escape(prefix) + r"(?![\w.-])", lambda _m, lab=label: lab, s)
        return _ABS_PATH.sub("<path>", s)

    def value(self, obj: Any) -> Any:
        """A JSON value with every string (keys included) redacted."""
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {self.text(str(k)): self.value(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self.value(v) for v in obj]
        return obj


def find_journals(study_dir: str | os.PathLike) -> list[Path]:
    """The session folders (each holding ``journal.jsonl``) of a study, in a stable order:
    ``study_dir`` itself when it is a session, else every session below it."""
    root = Path(study_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"no study folder at {root}")
    if (root / JOURNAL).is_file():
        return [root]
    found = sorted({p.parent for p in root.rglob(JOURNAL)}, key=lambda p: _natural(p.relative_to(root)))
    if not found:
        raise FileNotFoundError(f"no {JOURNAL} in {root} or below it: not a glia session or study")
    return found


def _natural(p: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(p))]


def held_out_seeds(task: Any, n: int | None = None) -> list[int]:
    """``n`` (default: as many as the task has) seeds the study never evaluated on: the
    scenario's next seeds, then integers after the largest seed used."""
    used = list(task.seeds)
    n = len(used) if n is None else int(n)
    out = [int(s) for s in task.load_scenario().seeds if s not in used][:n]
    nxt = max(used + out) + 1
    while len(out) < n:
        out.append(nxt)
        nxt += 1
    return out


def lineage(experiments: list[dict], baseline: dict | None, lower_is_better: bool) -> list[Any]:
    """Ids of the experiments that were each a new best when they ran, ending with the
    study's best: the chain of designs that led to the result."""
    best = best_of(experiments, lower_is_better)
    if best is None:
        return []
    chain, seen = [], [baseline] if baseline else []
    for e in experiments:
        if is_improvement(e.get("score"), seen, lower_is_better):
            chain.append(e.get("id"))
        seen.append(e)
        if e.get("id") == best.get("id"):
            break
    return chain


@dataclass(frozen=True)
class PublishedContext:
    """One session of the study as published: where its files went and what it found."""

    label: str
    folder: str
    summary: dict


def _label(session: Path, root: Path) -> str:
    if session == root:
        return "session"
    parts = list(session.relative_to(root).parts)
    # A workspace's own folder is named by task and time; its parent (context0, run1...) is
    # the readable name unless the session sits directly in the study folder.
    if len(parts) > 1 and (session / "workspace.json").is_file():
        parts = parts[:-1]
    if len(parts) > 1 and parts[0] == "contexts":  # an already published case study
        parts = parts[1:]
    return "-".join(re.sub(r"[^A-Za-z0-9._-]+", "-", p) for p in parts) or "session"


def _publish_context(session: Path, label: str, out: Path, red: Redactor,
                     lineage_only: bool) -> tuple[PublishedContext, dict, Any]:
    from glia_nb.tasks import Task

    header, records = read_journal(session / JOURNAL)
    task = Task.from_dict(header["task"])
    lower = task.objective.direction != "max"
    state = fold_records(records, header, lower_is_better=lower)
    exps = [e for e in state.experiments if e.get("id") not in (0, "0")]
    chain = lineage(exps, state.baseline, lower)
    best = best_of(exps, lower)
    dest = out / "contexts" / label
    (dest / "policies").mkdir(parents=True, exist_ok=True)
    with open(dest / JOURNAL, "w", encoding="utf-8") as fh:
        for rec in [header, *records]:
            fh.write(json.dumps(red.value(rec), ensure_ascii=False, allow_nan=False) + "\n")
    policies: dict[str, str] = {}
    for e in exps:
        if lineage_only and e.get("id") not in chain:
            continue
        src = session / str(e.get("folder") or "") / task.policy_file
        if e.get("folder") and src.is_file():
            name = f"{Path(str(e['folder'])).name}.py"
            (dest / "policies" / name).write_text(red.text(src.read_text(encoding="utf-8")),
                                                  encoding="utf-8")
            policies[str(e.get("id"))] = f"contexts/{label}/policies/{name}"
    base_score = (state.baseline or {}).get("score")
    summary = {
        "label": label, "journal": f"contexts/{label}/{JOURNAL}", "policies": policies,
        "researcher_model": header.get("researcher_model"),
        "supervisor_model": header.get("supervisor_model"),
        "isolation": header.get("isolation"), "seed": header.get("seed"),
        "baseline_score": base_score, "num_experiments": len(exps), "lineage": chain,
        "best": None if best is None else {k: best.get(k) for k in ("id", "name", "score", "hypothesis")},
        "budget_used": {"simulations": state.simulations, "usd": round(state.usd, 6),
                        "turns": state.turns, "llm_calls": state.llm_calls,
                        "wall_s": round(state.wall_s, 3)},
        "budget": header.get("budget"),
    }
    return PublishedContext(label, str(dest), summary), header, task


def _binder_files(out: Path, version: str, python: str | None) -> None:
    (out / "binder").mkdir(exist_ok=True)
    (out / "binder" / "requirements.txt").write_text(
        "# The environment this case study was published with (repo2docker reads this folder when\n"
        "# the case study is the root of its own repository). If glia-nb is not on your package\n"
        "# index, install it from its repository at the same version instead, e.g.\n"
        f"#   glia-nb @ git+https://github.com/<org>/glia-nb@v{version}\n"
        f"glia-nb=={version}\nnbclient>=0.10\nipykernel>=6.29\n")
    major_minor = ".".join((python or "3.11").split(".")[:2])
    (out / "binder" / "runtime.txt").write_text(f"python-{major_minor}\n")


def publish_study(study_dir: str | os.PathLike, out: str | os.PathLike, *, title: str | None = None,
                  lineage_only: bool = False, overwrite: bool = False,
                  secrets: Iterable[str] = ()) -> Path:
    """Write the case-study folder of the study at ``study_dir`` into ``out``; returns ``out``.

    ``lineage_only`` keeps only the policy files of the best design's lineage (the chain of
    experiments that were each a new best). Refuses a non-empty ``out`` unless ``overwrite``
    (then only files this function writes are replaced).  Keys of the environment and
    ``secrets`` (e.g. :func:`glia_nb.evaluation.secrets.secrets_of` a notebook's clients, or
    ``session.secrets``) are redacted from everything written."""
    from glia_nb.research.casestudy_notebook import build_notebook

    root = Path(study_dir).resolve()
    sessions = find_journals(root)
    out = Path(out).resolve()
    if out == root or root in out.parents:
        raise ValueError(f"--out {out} is inside the study folder; publish somewhere else")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty (pass overwrite=True / --overwrite)")
    out.mkdir(parents=True, exist_ok=True)
    red = Redactor.for_study(root, secrets)
    contexts, header0, task = [], None, None
    labels: set[str] = set()
    for s in sessions:
        label = _label(s, root)
        while label in labels:
            label += "_"
        labels.add(label)
        ctx, header, t = _publish_context(s, label, out, red, lineage_only)
        contexts.append(ctx.summary)
        header0, task = header0 or header, task or t
    tables = []
    for t in sorted(root.glob("table_b*.md")):  # a glia compare run: its method tables
        (out / "compare").mkdir(exist_ok=True)
        (out / "compare" / t.name).write_text(red.text(t.read_text(encoding="utf-8")), encoding="utf-8")
        tables.append(f"compare/{t.name}")
    lower = task.objective.direction != "max"
    scored = [c for c in contexts if c["best"] and c["best"]["score"] is not None]
    best_ctx = (min if lower else max)(scored, key=lambda c: c["best"]["score"]) if scored else None
    (out / "baseline_policy.py").write_text(task.render_policy_template(), encoding="utf-8")
    env = environment_info()
    manifest = red.value({
        "format": 1,
        "title": title or f"{task.name}: a glia-nb case study",
        "kind": "single-context" if len(contexts) == 1 else "multi-context",
        "task_name": task.name, "task": task.to_dict(), "scenario": task.scenario,
        "layer": task.layer, "objective": task.objective.name,
        "direction": task.objective.direction, "seeds": list(task.seeds),
        "held_out_seeds": held_out_seeds(task), "duration_s": task.duration_s,
        "baselines": [task.baseline] + (["round_robin"] if task.layer == "router"
                                        and task.baseline != "round_robin" else []),
        "versions": {"glia_nb": header0.get("version"), "python": header0.get("python"),
                     "numpy": header0.get("numpy"), "numba": header0.get("numba"),
                     "researcher_model": header0.get("researcher_model"),
                     "supervisor_model": header0.get("supervisor_model"),
                     "published_with": env["version"]},
        "isolation": header0.get("isolation"),
        "created": header0.get("created"), "lineage_only": bool(lineage_only),
        "budget_used": {k: sum(c["budget_used"][k] for c in contexts)
                        for k in ("simulations", "usd", "turns", "llm_calls")},
        "best": None if best_ctx is None else {
            "context": best_ctx["label"], **best_ctx["best"],
            "policy": best_ctx["policies"].get(str(best_ctx["best"]["id"]))},
        "contexts": contexts, "compare_tables": tables,
        "install": f"pip install glia-nb=={header0.get('version')}",
        "notebook": NOTEBOOK,
    })
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, allow_nan=False) + "\n")
    _binder_files(out, str(header0.get("version")), header0.get("python"))
    import nbformat

    nbformat.write(build_notebook(manifest), out / NOTEBOOK)
    (out / "README.md").write_text(
        f"# {manifest['title']}\n\nA case study published with `glia publish` from a glia-nb "
        f"study of task `{task.name}`. Open `{NOTEBOOK}`: it replays the research from the "
        "journal and re-checks the discovered design's score with the deterministic "
        "simulator (no API key needed). `manifest.json` lists the versions used.\n")
    return out
