"""How a session finds its parts: task, workspace, toolbox, Researcher and Supervisor.

Kept apart from :mod:`glia_nb.research.session.session` so the loop reads on its own, and so the imports of
the workspace, tools and SDK clients happen only when a session is built.
"""

from __future__ import annotations

import importlib
import inspect
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from glia_nb.research.agent import Agent, AgentConfig, StepResult
from glia_nb.text import load_prompt
from glia_nb.tasks.budget import Budget, BudgetTracker
from glia_nb.research.journal import finite_or_none, read_journal, to_jsonable
from glia_nb.llm.types import Completion, Message
from glia_nb.research.session.replay import Replay, best_of, replay_records
from glia_nb.research.supervisor import Supervisor, SupervisorConfig

__all__ = [
    "Built", "GuardedToolBox", "Parts", "ToolResult", "assemble", "best_experiment", "build_new", "build_researcher",
    "build_resumed", "build_supervisor", "build_toolbox", "call_fields", "call_step", "client_from_header",
    "create_workspace", "journal_header", "ledger_summary", "lower_is_better", "open_workspace", "resolve_task",
    "run_baseline", "task_from_header", "task_text", "workspace_dir",
]


# ---------------------------------------------------------------------- task
def resolve_task(task: Any) -> Any:
    """A Task from a Task or a registered task name; a string with spaces is taken as
    the task text itself (quick experiments and tests)."""
    if isinstance(task, str) and not any(c.isspace() for c in task.strip()):
        from glia_nb.tasks import get_task

        return get_task(task)
    return task


def task_text(task: Any, baseline_score: float | None = None) -> str:
    """The Researcher's task text (``render_text(baseline_score)`` for a Task; ``str``
    otherwise)."""
    render = getattr(task, "render_text", None)
    return render(baseline_score) if callable(render) else str(task)


def task_from_header(header: Mapping[str, Any]) -> Any:
    """Rebuild the task recorded in a journal header."""
    d = header.get("task")
    if isinstance(d, Mapping):
        from glia_nb.tasks import Task

        return Task.from_dict(d)
    if header.get("task_name"):
        try:
            return resolve_task(header["task_name"])
        except KeyError:
            pass
    return header.get("task_text") or ""


def lower_is_better(task: Any) -> bool:
    """The objective's direction (lower is better unless the task says ``max``)."""
    objective = getattr(task, "objective", None)
    return getattr(objective, "direction", "min") != "max"


# ---------------------------------------------------------------------- workspace
def create_workspace(task: Any, root: str | Path, seed: int, session_id: str | None = None) -> Any:
    """A new workspace ``root/session_id`` (a :class:`glia_nb.research.workspace.Workspace` for a
    real Task), or the directory ``root`` itself for a plain-text task."""
    ws_cls = _workspace_class()
    if ws_cls is not None and hasattr(task, "render_text"):
        if session_id is None:
            stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
            session_id = f"{getattr(task, 'name', 'session')}-{stamp}-s{seed}-{secrets.token_hex(2)}"
        return ws_cls.create(root, task, session_id)
    path = Path(root) / session_id if session_id else Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def open_workspace(path: str | Path, task: Any) -> Any:
    """Reopen the workspace of a session being resumed (the plain directory when it is
    not a :class:`~glia_nb.research.workspace.Workspace`)."""
    ws_cls = _workspace_class()
    if ws_cls is not None and hasattr(task, "render_text"):
        try:
            return ws_cls.open(path)
        except (OSError, ValueError, RuntimeError):
            pass
    return Path(path)


def workspace_dir(workspace: Any) -> Path:
    """The directory of a workspace object (or path)."""
    if isinstance(workspace, (str, Path)):
        return Path(workspace)
    for attr in ("root", "path", "dir", "directory"):
        value = getattr(workspace, attr, None)
        if isinstance(value, (str, Path)):
            return Path(value)
    raise TypeError(f"cannot find the directory of workspace {workspace!r}")


def ledger_summary(workspace: Any, experiments: Sequence[Mapping[str, Any]]) -> str:
    """The experiment ledger as a text table for the Supervisor: the workspace's own
    summary when it offers one, else one built from the session's experiment records."""
    for attr in ("ledger_summary", "ledger_text", "summary_table"):
        fn = getattr(workspace, attr, None)
        if callable(fn):
            try:
                text = fn()
            except Exception:
                continue
            if isinstance(text, str) and text.strip():
                return text
    if not experiments:
        return ""
    rows = ["| # | id | name | score | ok | hypothesis |", "|---|---|---|---|---|---|"]
    for i, e in enumerate(experiments, 1):
        score = e.get("score")
        hyp = " ".join(str(e.get("hypothesis") or "").split())[:160]
        rows.append(
            f"| {i} | {e.get('id')} | {e.get('name') or ''} | {'-' if score is None else f'{score:.4g}'} | "
            f"{'yes' if e.get('ok', True) else 'no'} | {hyp} |"
        )
    return "\n".join(rows)


def _workspace_class() -> Any:
    try:
        from glia_nb.research.workspace import Workspace
    except ImportError:
        return None
    return Workspace


# ---------------------------------------------------------------------- toolbox
def build_toolbox(toolbox: Any, workspace: Any, task: Any, budget: Budget) -> Any:
    """A toolbox: the one given, one from a factory ``(workspace, task, budget)``, or the
    default :class:`glia_nb.research.tools.ToolBox` bound to the workspace."""
    if toolbox is not None and hasattr(toolbox, "call") and hasattr(toolbox, "specs"):
        return toolbox
    if callable(toolbox):
        return toolbox(workspace, task, budget)
    if isinstance(workspace, Path):
        raise ValueError("no toolbox given and no Workspace to build the default one on")
    from glia_nb.research.tools import ToolBox

    # The ToolBox enforces the simulation budget itself; None (unlimited) must not fall back
    # to the task's default there.
    cap = budget.max_simulations
    return _call_flex(ToolBox, workspace, max_simulations=cap, unlimited=cap is None)


def run_baseline(toolbox: Any, workspace: Any) -> dict[str, Any] | None:
    """Evaluate the baseline once (free of the simulation budget) when the workspace has no
    score for it yet and the toolbox can; returns the journal fields, or None if skipped."""
    runner = getattr(toolbox, "run_baseline", None)
    if not callable(runner) or getattr(workspace, "baseline_score", 0.0) is not None:
        return None
    result = runner()
    summary = getattr(result, "summary", None)
    return {"ok": bool(getattr(result, "ok", False)),
            "score": finite_or_none(getattr(result, "score", None)),
            "seeds": int(getattr(result, "simulations", 0) or 0), "error": getattr(result, "error", None),
            "metrics": to_jsonable(summary) if isinstance(summary, Mapping) else {}}


def best_experiment(workspace: Any, experiments: Sequence[Mapping[str, Any]], lower: bool) -> dict[str, Any] | None:
    """The best experiment so far: the workspace ledger's (baseline included) when it keeps
    one, else the best of the session's experiment records."""
    fn = getattr(workspace, "best", None)
    if callable(fn):
        try:
            return fn()
        except Exception:  # an unreadable ledger: fall back to the journal's view
            pass
    return best_of(experiments, lower)


def _call_flex(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn`` with only the keyword arguments it accepts (sibling modules' optional
    parameters differ; this keeps the session from breaking when one is added)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return fn(*args, **kwargs)
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in params}
    return fn(*args, **kwargs)


# ---------------------------------------------------------------------- agents
def build_researcher(
    spec: Any, *, registry: Mapping[str, Any], task: Any, workspace: Any, seed: int, budget: Budget,
    config: AgentConfig | None, toolbox: Any,
) -> tuple[Any, dict[str, Any], Any]:
    """``(researcher, journal_info, llm_client_or_None)`` from an LLM client, a client spec,
    a name in ``registry`` (:data:`glia_nb.research.session.session.RESEARCHERS`) or a ready researcher."""
    if isinstance(spec, str) and ":" not in spec and spec not in ("anthropic", "openai"):
        factory = registry.get(spec)
        if factory is None:
            known = ", ".join(sorted(registry)) or "none registered yet"
            raise LookupError(
                f"no researcher named {spec!r} ({known}); pass an LLM client or a spec such as "
                f"'anthropic:claude-opus-4-5', or register a factory in glia_nb.research.session.session.RESEARCHERS"
            )
        if isinstance(factory, str):  # "package.module:attribute", imported on first use
            module, _, attr = factory.partition(":")
            factory = getattr(importlib.import_module(module), attr)
        researcher = factory(task=task, toolbox=toolbox, workspace=workspace, seed=seed, budget=budget)
        return researcher, {"kind": "registered", "name": spec, "model": getattr(researcher, "model", spec)}, None
    if isinstance(spec, str):
        from glia_nb.llm import make_client

        spec = make_client(spec)
    if hasattr(spec, "complete"):
        cfg = config or AgentConfig(name="researcher", system_prompt=load_prompt("researcher_system"))
        info = {"kind": "llm", "provider": getattr(spec, "provider", ""), "model": getattr(spec, "model", ""),
                "max_tokens": cfg.max_tokens, "temperature": cfg.temperature}
        return Agent(spec, cfg, toolbox), info, spec
    if hasattr(spec, "step"):
        return spec, {"kind": "object", "name": type(spec).__name__, "model": getattr(spec, "model", "")}, None
    raise TypeError(f"researcher must be an LLM client, a spec, a registered name or have step(); got {spec!r}")


def build_supervisor(client: Any, researcher_client: Any, config: SupervisorConfig | None) -> Supervisor | None:
    """The Supervisor on ``client`` (default: the Researcher's LLM client), or None when
    disabled (``config=None``, ``client=False``) or when there is no model to run it."""
    if config is None or client is False:
        return None
    if isinstance(client, str):
        from glia_nb.llm import make_client

        client = make_client(client)
    client = client if client is not None else researcher_client
    if client is None:
        return None
    return Supervisor(client, config)


@dataclass(frozen=True)
class Parts:
    """What :func:`assemble` builds for a session."""

    toolbox: "GuardedToolBox"
    researcher: Any
    researcher_info: dict
    supervisor: Supervisor | None
    context_limit_tokens: int | None


def assemble(*, task: Any, workspace: Any, tracker: BudgetTracker, toolbox: Any, researcher: Any,
             registry: Mapping[str, Any], supervisor_client: Any, supervisor_config: SupervisorConfig | None,
             researcher_config: AgentConfig | None, seed: int, context_limit_tokens: int | None) -> Parts:
    """Toolbox (guarded), Researcher, Supervisor and context limit of a new or resumed session."""
    guard = GuardedToolBox(build_toolbox(toolbox, workspace, task, tracker.budget), tracker)
    r, info, client = build_researcher(researcher, registry=registry, task=task, workspace=workspace, seed=seed,
                                       budget=tracker.budget, config=researcher_config, toolbox=guard)
    supervisor = build_supervisor(supervisor_client, client, supervisor_config)
    limit = context_limit_tokens if context_limit_tokens is not None else getattr(client, "context_window", None)
    return Parts(guard, r, info, supervisor, limit)


def journal_header(task: Any, parts: Parts, *, seed: int, approval: str, config: SupervisorConfig | None,
                   run_baseline: bool) -> dict[str, Any]:
    """The header record of a new session's journal (everything resume needs)."""
    sup = parts.supervisor
    return {
        "kind": "glia-session",
        "mode": "single-context",
        "task_name": getattr(task, "name", ""),
        "task": task.to_dict() if hasattr(task, "to_dict") else None,
        "task_text": task_text(task),
        "seed": seed,
        "budget": parts.toolbox.tracker.budget.to_dict(),
        "supervisor_config": asdict(config) if sup is not None and config is not None else None,
        "approval": approval,
        "run_baseline": run_baseline,
        "context_limit_tokens": parts.context_limit_tokens,
        "researcher": parts.researcher_info,
        "researcher_model": parts.researcher_info.get("model"),
        "supervisor": {"provider": getattr(sup.agent.client, "provider", ""), "model": sup.model} if sup else None,
        "supervisor_model": sup.model if sup else None,
    }


@dataclass
class Built:
    """The pieces of a session before its journal is opened."""

    task: Any
    workspace: Any
    tracker: BudgetTracker
    parts: Parts
    header: dict
    replay: Replay | None = None


def build_new(task: Any, workspace_root: Any, researcher: Any, *, registry: Mapping[str, Any], supervisor_client: Any,
              budget: Any, supervisor_config: SupervisorConfig | None, approval: str, seed: int,
              context_limit_tokens: int | None, toolbox: Any, researcher_config: AgentConfig | None,
              session_id: str | None, run_baseline: bool) -> Built:
    """Everything :meth:`glia_nb.research.session.session.Session.create` needs, journal header included."""
    task = resolve_task(task)
    tracker = BudgetTracker(Budget.coerce(budget if budget is not None else getattr(task, "budget", None)))
    workspace = create_workspace(task, workspace_root, seed, session_id)
    parts = assemble(task=task, workspace=workspace, tracker=tracker, toolbox=toolbox, researcher=researcher,
                     registry=registry, supervisor_client=supervisor_client, supervisor_config=supervisor_config,
                     researcher_config=researcher_config, seed=seed, context_limit_tokens=context_limit_tokens)
    header = journal_header(task, parts, seed=seed, approval=approval, config=supervisor_config,
                            run_baseline=run_baseline)
    return Built(task, workspace, tracker, parts, header)


def build_resumed(journal_path: Path, researcher: Any, *, registry: Mapping[str, Any], supervisor_client: Any,
                  budget: Any, supervisor_config: Any, context_limit_tokens: int | None, toolbox: Any,
                  researcher_config: AgentConfig | None, task: Any) -> Built:
    """Everything :meth:`glia_nb.research.session.session.Session.resume` needs, from the journal alone;
    arguments that are None (``"journal"`` for ``supervisor_config``) take the journal's value."""
    header, records = read_journal(journal_path)
    task = resolve_task(task) if task is not None else task_from_header(header)
    budget = Budget.coerce(budget) if budget is not None else Budget.from_dict(header.get("budget"))
    if supervisor_config == "journal":
        sc = header.get("supervisor_config")
        supervisor_config = SupervisorConfig(**sc) if sc is not None else None
    workspace = open_workspace(journal_path.parent, task)
    replay = replay_records(records, lower_is_better=lower_is_better(task))
    tracker = BudgetTracker(budget)
    tracker.restore(simulations=replay.simulations, usd=replay.usd, turns=replay.turns, calls=replay.llm_calls,
                    wall_s=replay.wall_s)
    if researcher is None:
        researcher = client_from_header(header.get("researcher") or {})
    limit = context_limit_tokens if context_limit_tokens is not None else header.get("context_limit_tokens")
    parts = assemble(task=task, workspace=workspace, tracker=tracker, toolbox=toolbox, researcher=researcher,
                     registry=registry, supervisor_client=supervisor_client, supervisor_config=supervisor_config,
                     researcher_config=researcher_config, seed=int(header.get("seed", 0)), context_limit_tokens=limit)
    return Built(task, workspace, tracker, parts, header, replay)


def client_from_header(info: Mapping[str, Any]) -> Any:
    """What to build the Researcher from on resume when no client is given."""
    if info.get("kind") == "registered":
        return info["name"]
    provider, model = info.get("provider"), info.get("model")
    if info.get("kind") == "llm" and provider in ("anthropic", "openai") and model:
        return f"{provider}:{model}"
    raise ValueError(
        f"cannot rebuild the Researcher ({dict(info)}) from the journal; pass researcher_client= to Session.resume"
    )


# ---------------------------------------------------------------------- running
RUN_EXPERIMENT = "run_experiment"


class GuardedToolBox:
    """Wraps the toolbox so every experiment is journaled and counted the moment it
    returns, whoever called it (the LLM loop or a rule-based researcher), and so no
    experiment starts once the simulation budget is spent."""

    def __init__(self, inner: Any, tracker: BudgetTracker) -> None:
        self.inner, self.tracker = inner, tracker
        self.on_experiment: Callable[[Mapping[str, Any], Any], None] | None = None  # set by the session

    def specs(self) -> list[Any]:
        """The wrapped toolbox's tool specs."""
        return list(self.inner.specs())

    def call(self, name: str, arguments: Mapping[str, Any]) -> Any:
        """Run a tool through the wrapped toolbox; report experiments to the session."""
        if name == RUN_EXPERIMENT and self.tracker.exhausted() == "simulations":
            return ToolResult("The simulation budget is spent; no experiment was run. Call finish(summary).", True)
        result = self.inner.call(name, arguments)
        if name == RUN_EXPERIMENT and self.on_experiment is not None:
            self.on_experiment(arguments, result)
        return result

    def __getattr__(self, item: str) -> Any:
        return getattr(self.inner, item)


@dataclass(frozen=True)
class ToolResult:
    """A result made up by the guard itself (same shape as ``glia_nb.research.tools.ToolResult``)."""

    text: str
    is_error: bool = False
    data: Any = None


def call_step(researcher: Any, messages: list[Message], on_event: Callable[..., None]) -> StepResult:
    """``researcher.step(messages)``, with ``on_event`` only if its signature takes it (a
    rule-based researcher may implement the plain one-argument protocol)."""
    try:
        params = inspect.signature(researcher.step).parameters
    except (TypeError, ValueError):
        params = {}
    if "on_event" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return researcher.step(messages, on_event=on_event)
    return researcher.step(messages)


def call_fields(source: Any) -> dict[str, Any]:
    """llm_call fields from a Completion or a StepResult (a rule-based turn has no model)."""
    completion = source if isinstance(source, Completion) else source.completion
    if completion is not None:
        return {"model": completion.model, "provider": completion.provider, "usage": completion.usage.to_dict(),
                "cost_usd": completion.cost_usd, "cost_known": completion.cost_known,
                "stop_reason": completion.stop_reason, "latency_s": completion.latency_s,
                "attempts": completion.attempts}
    return {"model": source.model or "offline", "provider": "offline", "usage": source.usage.to_dict(),
            "cost_usd": float(source.cost_usd), "cost_known": True, "stop_reason": source.stop_reason or "offline",
            "latency_s": 0.0, "attempts": 0}
