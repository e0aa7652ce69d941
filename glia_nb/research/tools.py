"""The Researcher's tools: plain functions bound to a workspace and a simulation budget.

:class:`ToolBox` offers ``shell``, ``read_file``, ``write_file``, ``run_experiment`` and
``finish``, each described by a JSON schema (:meth:`ToolBox.specs` gives
:class:`glia_nb.llm.types.ToolSpec` objects).  :meth:`ToolBox.call` never raises: an unknown
tool, bad arguments or an exception inside a tool come back as ``ToolResult(is_error=True)``.
Results are kept short, since the model's context is the scarce resource.

The shell runs with the workspace as its working directory and without credentials in its
environment; it runs confined like a candidate (bubblewrap where usable): the workspace is
its only writable place, with no network and no view of other processes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from glia_nb.evaluation.harness import EvalResult, Limits, evaluate
from glia_nb.evaluation.secrets import known_secrets, redact
from glia_nb.llm.types import ToolSpec
from glia_nb.research.experiment_report import format_report
from glia_nb.research.owned import RecordSnapshot, restored_note
from glia_nb.research.shell import run_confined
from glia_nb.research.workspace import EXPERIMENTS_DIR, LEDGER_FILE, META_FILE, TASK_FILE, Workspace
from glia_nb.text import truncate_middle


@dataclass(frozen=True)
class ToolResult:
    """What a tool call returns to the agent loop: text for the model, an error flag, and
    structured ``data`` for the journal and widgets."""

    text: str
    is_error: bool = False
    data: dict | None = None


@dataclass(frozen=True)
class ToolDef:
    """A tool: name, description, JSON schema of its arguments, and the bound function."""

    name: str
    description: str
    parameters: Mapping[str, Any]
    fn: Callable[..., ToolResult] = field(repr=False)

    def spec(self) -> ToolSpec:
        """This tool as a :class:`glia_nb.llm.types.ToolSpec`."""
        return ToolSpec(self.name, self.description, dict(self.parameters))


def _schema(props: dict, required: tuple = ()) -> dict:
    return {"type": "object", "properties": props, "required": list(required),
            "additionalProperties": False}


_JSON_TYPES = {"string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,)}


def validate_arguments(schema: Mapping[str, Any], arguments: Any) -> tuple[dict, str | None]:
    """Check ``arguments`` against our (flat) schemas; returns (arguments with defaults, error)."""
    if not isinstance(arguments, Mapping):
        return {}, f"arguments must be a JSON object, got {type(arguments).__name__}"
    props = schema.get("properties", {})
    extra = sorted(set(arguments) - set(props))
    if extra:
        return {}, f"unexpected argument(s) {', '.join(extra)}; allowed: {', '.join(props) or 'none'}"
    missing = [k for k in schema.get("required", ()) if k not in arguments]
    if missing:
        return {}, f"missing required argument(s) {', '.join(missing)}"
    out = {}
    for k, v in arguments.items():
        p = props[k]
        t = p.get("type")
        if t == "integer" and isinstance(v, float) and v.is_integer():
            v = int(v)
        if t in _JSON_TYPES and (not isinstance(v, _JSON_TYPES[t])
                                 or (t != "boolean" and isinstance(v, bool))):
            return {}, f"argument {k!r} must be of type {t}, got {type(v).__name__} {v!r:.60}"
        if "minimum" in p and v < p["minimum"]:
            return {}, f"argument {k!r} must be >= {p['minimum']}, got {v}"
        if "maximum" in p and v > p["maximum"]:
            return {}, f"argument {k!r} must be <= {p['maximum']}, got {v}"
        out[k] = v
    return out, None


class ToolBox:
    """The Researcher's tools bound to ``workspace``.

    ``max_simulations`` (one simulation = one experiment over the task's seeds; None:
    the task's budget) caps ``run_experiment``; experiments already in the ledger (except
    the free baseline, experiment 0) count as used, so a resumed session keeps its budget.
    ``unlimited=True`` lifts the cap.  ``limits`` and ``executor`` go to :func:`glia_nb.evaluation.harness.evaluate`."""

    def __init__(self, workspace: Workspace, *, limits: Limits | None = None, executor=None,
                 max_simulations: int | None = None, max_output_chars: int = 8000,
                 max_shell_timeout_s: float = 600.0, unlimited: bool = False,
                 secrets: Sequence[str] = ()):
        self.workspace = workspace
        # Keys of the session's model clients (set by the session): redacted like the
        # environment's from results, metrics, the ledger and logs.
        self.secrets = tuple(secrets)
        self.limits = limits or Limits()
        self.executor = executor
        self.max_simulations = (None if unlimited else workspace.task.budget.max_simulations
                                if max_simulations is None else int(max_simulations))
        self.simulations_used = workspace.simulations_used()
        self.max_output_chars = int(max_output_chars)
        self.max_shell_timeout_s = float(max_shell_timeout_s)
        self.shell_isolation: str | None = None
        self.journal = None  # the session's Journal, put back if untrusted code altered it
        self.finished = False
        self.final_summary: str | None = None
        task = workspace.task
        n = len(task.seeds)
        self._tools = {t.name: t for t in (
            ToolDef("shell", "Run a bash command in the workspace directory (cwd = workspace; "
                    "confined: no network, the workspace is the only writable place). Use it to list files, grep, run Python analysis scripts on "
                    "the experiment CSVs, or run ./run_benchmark.sh for a quick unrecorded check. "
                    "Long output is truncated in the middle. Returns the exit code.",
                    _schema({"command": {"type": "string", "description": "bash command line"},
                             "timeout_s": {"type": "integer", "minimum": 1,
                                           "maximum": int(self.max_shell_timeout_s),
                                           "description": "kill the command after this many "
                                                          "seconds (default 60)"}},
                            ("command",)), self.shell),
            ToolDef("read_file", "Read a text file in the workspace with numbered lines "
                    "(offset = first line, 0-based; limit = number of lines, default 200).",
                    _schema({"path": {"type": "string", "description": "path relative to the "
                                                                       "workspace"},
                             "offset": {"type": "integer", "minimum": 0},
                             "limit": {"type": "integer", "minimum": 1, "maximum": 2000}},
                            ("path",)), self.read_file),
            ToolDef("write_file", f"Create or overwrite a text file in the workspace (e.g. "
                    f"{task.policy_file}, or an analysis script). Parent folders are created. "
                    f"{LEDGER_FILE}, {META_FILE}, {TASK_FILE} and {EXPERIMENTS_DIR}/ are "
                    f"read-only records.",
                    _schema({"path": {"type": "string"}, "content": {"type": "string"}},
                            ("path", "content")), self.write_file),
            ToolDef("run_experiment", f"Evaluate the current {task.policy_file} (class "
                    f"{task.class_name}) on the benchmark over seeds "
                    f"{', '.join(map(str, task.seeds))} in a sandbox, record it in "
                    f"{LEDGER_FILE} and in a new folder {EXPERIMENTS_DIR}/NNN_<name>/ (code "
                    f"snapshot, metrics.json, telemetry CSVs). Uses one simulation of the "
                    f"budget ({n} seeds). Returns the score against the baseline, the restart "
                    "fraction and where request time goes.",
                    _schema({"name": {"type": "string", "description": "short label, e.g. "
                                                                       "'headroom-0.6'"},
                             "hypothesis": {"type": "string", "description": "what you expect "
                                            "this change to do and why"}},
                            ("name", "hypothesis")), self.run_experiment),
            ToolDef("finish", "End the research session with a summary of the best design: "
                    "what it does, its score against the baseline, and why it works.",
                    _schema({"summary": {"type": "string"}}, ("summary",)), self.finish),
        )}

    # ------------------------------------------------------------------ protocol
    @property
    def names(self) -> list[str]:
        """The tool names, in the order offered to the model."""
        return list(self._tools)

    def definitions(self) -> list[ToolDef]:
        """The tool definitions (name, description, schema, function)."""
        return list(self._tools.values())

    def specs(self) -> list:
        """The tools as :class:`glia_nb.llm.types.ToolSpec` objects for an LLM client."""
        return [t.spec() for t in self._tools.values()]

    @property
    def simulations_left(self) -> int | None:
        """Simulations (experiments) still allowed by the budget (None: unlimited)."""
        if self.max_simulations is None:
            return None
        return max(0, self.max_simulations - self.simulations_used)

    def call(self, name: str, arguments: Mapping[str, Any] | None) -> ToolResult:
        """Run tool ``name`` with ``arguments``; every failure becomes an error result."""
        tool = self._tools.get(name)
        if tool is None:
            return ToolResult(f"unknown tool {name!r}; available tools: {', '.join(self._tools)}",
                              is_error=True)
        args, err = validate_arguments(tool.parameters, {} if arguments is None else arguments)
        if err:
            return ToolResult(f"bad arguments for {name}: {err}", is_error=True)
        try:
            res = tool.fn(**args)
        except Exception as exc:  # a tool bug or an OS error must not end the session
            res = ToolResult(f"{name} failed: {type(exc).__name__}: {exc}", is_error=True)
        # The one boundary where tool output goes back to a model: no key crosses it.
        known = known_secrets(extra=self.secrets)
        return ToolResult(redact(res.text, known), res.is_error, redact(res.data, known))

    def _restore(self, records: RecordSnapshot) -> list[str]:
        """Put back the workspace's records and the journal as the harness wrote them;
        the names of those untrusted code altered (see :mod:`glia_nb.research.owned`)."""
        altered = records.restore()
        if self.journal is not None and self.journal.restore_if_altered():
            altered.append(self.journal.path.name)
        return altered

    # ------------------------------------------------------------------ tools
    def shell(self, command: str, timeout_s: int = 60) -> ToolResult:
        """Run ``command`` with ``bash -c`` in the workspace, confined (see
        :func:`glia_nb.research.shell.run_confined`); a non-zero exit is a failure."""
        from glia_nb.evaluation.confine import choose_isolation, isolation_label, seccomp_profile

        if self.shell_isolation is None:
            self.shell_isolation = choose_isolation()
        timeout = min(max(1.0, float(timeout_s)), self.max_shell_timeout_s)
        records = RecordSnapshot(self.workspace.path, self.workspace.record_files)
        text, rc, timed_out, total = run_confined(command, self.workspace.path, timeout,
                                                  self.max_output_chars, self.shell_isolation)
        altered = self._restore(records)
        if altered:  # only possible without namespaces; the command fails whatever it printed
            text = f"{text}\n{restored_note(altered, 'this command')}"
        return ToolResult(text, is_error=timed_out or rc != 0 or bool(altered),
                          data={"returncode": rc, "timed_out": timed_out, "output_bytes": total,
                                "isolation": isolation_label(self.shell_isolation,
                                                             seccomp_profile("shell")),
                                "records_restored": altered})

    def read_file(self, path: str, offset: int = 0, limit: int = 200) -> ToolResult:
        """Numbered lines ``offset+1 .. offset+limit`` of a text file in the workspace."""
        p = self.workspace.resolve(path, must_exist=True)
        if p.is_dir():
            entries = sorted(e.name + ("/" if e.is_dir() else "") for e in p.iterdir())
            return ToolResult(f"{self.workspace.relative(p)} is a directory: "
                              + (", ".join(entries[:200]) or "(empty)"), is_error=True)
        raw = p.read_bytes()
        if b"\x00" in raw[:8192]:
            return ToolResult(f"{self.workspace.relative(p)} looks binary ({len(raw)} bytes); "
                              "use the shell to inspect it", is_error=True)
        lines = raw.decode("utf-8", "replace").splitlines()
        chunk = lines[offset: offset + limit]
        width = len(str(offset + len(chunk)))
        body = "\n".join(f"{i:>{width}}\t{_clip(line)}" for i, line in
                         enumerate(chunk, start=offset + 1))
        if not lines:
            return ToolResult(f"{self.workspace.relative(p)} is empty", data={"lines": 0})
        if not chunk:
            return ToolResult(f"offset {offset} is past the end ({len(lines)} lines)",
                              is_error=True)
        end = offset + len(chunk)
        note = (f"\n[lines {offset + 1}-{end} of {len(lines)}; read_file with offset={end} "
                "for more]" if end < len(lines) else "")
        return ToolResult(truncate_middle(body, self.max_output_chars) + note,
                          data={"path": self.workspace.relative(p), "lines": len(lines)})

    def write_file(self, path: str, content: str) -> ToolResult:
        """Write ``content`` to ``path`` in the workspace (records are read-only)."""
        p = self.workspace.resolve(path)
        rel = Path(self.workspace.relative(p))
        if str(rel) in (LEDGER_FILE, META_FILE, TASK_FILE) or (rel.parts and rel.parts[0] == EXPERIMENTS_DIR):
            return ToolResult(f"{rel} is a read-only record of the session; write elsewhere "
                              f"(e.g. analysis/ or {self.workspace.task.policy_file})", is_error=True)
        if p.is_dir():
            return ToolResult(f"{rel} is a directory", is_error=True)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
        msg = f"wrote {len(content.encode())} bytes ({content.count(chr(10)) + 1} lines) to {rel}"
        if p.suffix == ".py":
            try:
                compile(content, str(rel), "exec")
            except SyntaxError as exc:
                msg += f"\nwarning: {rel} has a syntax error at line {exc.lineno}: {exc.msg}"
        return ToolResult(msg, data={"path": str(rel), "bytes": len(content.encode())})

    def run_experiment(self, name: str, hypothesis: str) -> ToolResult:
        """Snapshot the policy, evaluate it in the sandbox, record it, report briefly."""
        ws, task = self.workspace, self.workspace.task
        if self.simulations_left == 0:
            return ToolResult(
                f"simulation budget exhausted: all {self.max_simulations} simulations "
                "(experiments) are used. No more experiments can be run; analyse what you "
                "have and call finish with your best design.",
                is_error=True, data={"budget_exhausted": True})
        if not ws.policy_path.exists():
            return ToolResult(f"{task.policy_file} does not exist; write it first", is_error=True)
        if not name.strip():
            return ToolResult("name must not be empty", is_error=True)
        exp_id, folder = ws.new_experiment(name)
        prev_best = ws.best()
        # The evaluation writes this experiment's metrics itself (record_experiment rewrites
        # them from the result below); every other record must come out as it went in.
        records = RecordSnapshot(ws.path, lambda: [f for f in ws.record_files() if f.parent != folder
                                                   or f.name == task.policy_file])
        result = evaluate(folder / task.policy_file, task, folder, executor=self.executor,
                          limits=self.limits, secrets=self.secrets)
        altered = self._restore(records)
        if altered:  # the candidate reached the workspace (plain-process level): no score
            result = replace(result, ok=False, score=None, error_kind="tamper",
                             error=restored_note(altered, "the candidate"))
        row = ws.record_experiment(exp_id, name, hypothesis, result, folder, secrets=self.secrets)
        self.simulations_used += 1  # the unit of the budget: one experiment, whatever happened
        text = format_report(ws, exp_id, name, result, prev_best, self.simulations_used,
                             self.max_simulations)
        return ToolResult(text, is_error=not result.ok,
                          data={"experiment": row, "result": result.to_dict()})

    def run_baseline(self) -> EvalResult:
        """Evaluate the task's baseline as experiment 0 (free of charge) and record its
        score in the workspace (``TASK.md`` is re-rendered with it)."""
        ws, task = self.workspace, self.workspace.task
        exp_id, folder = ws.new_experiment(f"baseline-{task.baseline}", exp_id=0, snapshot=False)
        result = evaluate(task.baseline, task, folder, executor=self.executor, limits=self.limits,
                          secrets=self.secrets)
        ws.record_experiment(exp_id, f"baseline-{task.baseline}",
                             f"the baseline {task.layer.replace('_', ' ')} {task.baseline}", result, folder,
                             secrets=self.secrets)
        if result.ok:
            ws.set_baseline(result.score, result.summary, experiment=exp_id)
        return result

    def finish(self, summary: str) -> ToolResult:
        """Mark the session finished with the Researcher's summary (saved to FINAL.md)."""
        self.finished = True
        self.final_summary = summary
        (self.workspace.path / "FINAL.md").write_text(summary.rstrip() + "\n")
        best = self.workspace.best()
        note = (f" Best recorded experiment: {best['id']:03d} {best['name']} "
                f"(score {best['score']:.4g})." if best else " No successful experiment recorded.")
        return ToolResult("Session marked as finished." + note, data={"best": best})


def _clip(line: str, n: int = 1000) -> str:
    return line if len(line) <= n else line[:n] + f"… [{len(line) - n} more characters]"


__all__ = ["ToolBox", "ToolResult", "ToolDef", "validate_arguments", "format_report"]
