"""How a session finds its parts: task, workspace, toolbox, Researcher and Supervisor.

Kept apart from :mod:`glia_nb.research.session.session` so the loop reads on its own, and so the imports of
the workspace, tools and SDK clients happen only when a session is built.
"""

from __future__ import annotations

import importlib
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from glia_nb.evaluation.secrets import known_secrets, redact, secrets_of
from glia_nb.research.agent import Agent, AgentConfig, call_fields
from glia_nb.research import sizing as sz
from glia_nb.llm.context import context_window_of
from glia_nb.tasks.budget import Budget, BudgetTracker
from glia_nb.research.journal import finite_or_none, read_journal, to_jsonable
from glia_nb.research import records as R
from glia_nb.research.fold import StudyState, fold_records
from glia_nb.research.session.contracts import (BaselineRunner, PlainWorkspace, ResearcherLike, SupervisorLike,
                                                ToolBoxLike, WorkspaceLike, require)
from glia_nb.research.supervisor import Supervisor, SupervisorConfig

__all__ = [
    "Built", "GuardedToolBox", "Parts", "ToolResult", "assemble", "build_new", "build_researcher",
    "build_resumed", "build_supervisor", "build_toolbox", "call_fields", "client_from_header",
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


def _is_task(task: Any) -> bool:
    from glia_nb.tasks import Task

    return isinstance(task, Task)


def task_text(task: Any, baseline_score: float | None = None) -> str:
    """The Researcher's task text (``render_text(baseline_score)`` for a Task; the text
    itself for a plain-text task)."""
    return task.render_text(baseline_score) if _is_task(task) else str(task)


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
    """The objective's direction (lower is better unless the task says ``max``; a
    plain-text task is minimised)."""
    return task.objective.direction != "max" if _is_task(task) else True


# ---------------------------------------------------------------------- workspace
def create_workspace(task: Any, root: str | Path, seed: int, session_id: str | None = None) -> WorkspaceLike:
    """A new :class:`glia_nb.research.workspace.Workspace` ``root/session_id`` for a Task, or a
    :class:`PlainWorkspace` on ``root[/session_id]`` for a plain-text task."""
    if _is_task(task):
        from glia_nb.research.workspace import Workspace

        if session_id is None:
            stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
            session_id = f"{task.name}-{stamp}-s{seed}-{secrets.token_hex(2)}"
        return Workspace.create(root, task, session_id)
    path = Path(root) / session_id if session_id else Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return PlainWorkspace(path)


def open_workspace(path: str | Path, task: Any) -> WorkspaceLike:
    """Reopen the workspace of a session being resumed (a :class:`PlainWorkspace` for a
    plain-text task, or when the folder holds no Workspace)."""
    if _is_task(task):
        from glia_nb.research.workspace import Workspace

        try:
            return Workspace.open(path)
        except (OSError, ValueError, RuntimeError):
            pass
    return PlainWorkspace(Path(path))


def workspace_dir(workspace: WorkspaceLike) -> Path:
    """The directory of a workspace."""
    return Path(workspace.path)


def ledger_summary(workspace: WorkspaceLike, experiments: Sequence[Mapping[str, Any]]) -> str:
    """The experiment ledger as a text table for the Supervisor: the workspace's own when it
    keeps one, else one built from the session's experiment records."""
    try:
        text = workspace.ledger_text()
    except (OSError, ValueError):  # an unreadable ledger: the journal's records still tell it
        text = ""
    if text.strip() or not experiments:
        return text
    rows = ["| # | id | name | score | ok | hypothesis |", "|---|---|---|---|---|---|"]
    for i, e in enumerate(experiments, 1):
        score = e.get("score")
        hyp = " ".join(str(e.get("hypothesis") or "").split())[:160]
        rows.append(
            f"| {i} | {e.get('id')} | {e.get('name') or ''} | {'-' if score is None else f'{score:.4g}'} | "
            f"{'yes' if e.get('ok', True) else 'no'} | {hyp} |"
        )
    return "\n".join(rows)


# ---------------------------------------------------------------------- toolbox
def build_toolbox(toolbox: Any, workspace: WorkspaceLike, task: Any, budget: Budget) -> ToolBoxLike:
    """A toolbox: the one given, one from a factory ``(workspace, task, budget)``, or the
    default :class:`glia_nb.research.tools.ToolBox` bound to the workspace."""
    if isinstance(toolbox, ToolBoxLike):
        return toolbox
    if toolbox is not None:
        if not callable(toolbox):
            raise TypeError(f"toolbox must have specs() and call() or be a factory, got {type(toolbox).__name__}")
        return require(toolbox(workspace, task, budget), ToolBoxLike, "the toolbox factory's result")
    if isinstance(workspace, PlainWorkspace):
        raise ValueError("no toolbox given and no Workspace to build the default one on")
    from glia_nb.research.tools import ToolBox

    # The ToolBox enforces the simulation budget itself; None (unlimited) must not fall back
    # to the task's default there.
    cap = budget.max_simulations
    return ToolBox(workspace, max_simulations=cap, unlimited=cap is None)


def run_baseline(toolbox: ToolBoxLike) -> R.Baseline | None:
    """Evaluate the baseline once (free of the simulation budget) when the toolbox can;
    returns its journal record, or None if it cannot."""
    if not isinstance(toolbox, BaselineRunner):
        return None
    result = toolbox.run_baseline()
    summary = result.summary
    return R.Baseline(ok=bool(result.ok), score=finite_or_none(result.score), simulations=int(result.simulations or 0),
                      error=result.error, metrics=to_jsonable(summary) if isinstance(summary, Mapping) else {})


# ---------------------------------------------------------------------- agents
def build_researcher(
    spec: Any, *, registry: Mapping[str, Any], task: Any, workspace: Any, seed: int, budget: Budget,
    config: AgentConfig | None, toolbox: Any, context_limit_tokens: int | None = None,
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
        researcher = require(factory(task=task, toolbox=toolbox, workspace=workspace, seed=seed, budget=budget),
                             ResearcherLike, f"researcher {spec!r}")
        return researcher, {"kind": "registered", "name": spec, "model": getattr(researcher, "model", spec)}, None
    if isinstance(spec, str):
        from glia_nb.llm import make_client

        spec = make_client(spec)
    if callable(getattr(spec, "complete", None)):  # an LLM client (glia_nb.llm.base.LLMClient)
        cfg = config or sz.researcher_config_for(context_limit_tokens or context_window_of(spec))
        info = {"kind": "llm", "provider": getattr(spec, "provider", ""), "model": getattr(spec, "model", ""),
                "base_url": getattr(spec, "base_url", None), "context_window": getattr(spec, "context_window", None),
                "context_source": getattr(spec, "context_source", None),
                "max_tokens": cfg.max_tokens, "temperature": cfg.temperature, "tool_mode": cfg.tool_mode}
        return Agent(spec, cfg, toolbox), info, spec
    if isinstance(spec, ResearcherLike):
        return spec, {"kind": "object", "name": type(spec).__name__, "model": getattr(spec, "model", "")}, None
    raise TypeError(f"researcher must be an LLM client, a spec, a registered name or have step(); got {spec!r}")


def build_supervisor(client: Any, researcher_client: Any, config: SupervisorConfig | None) -> SupervisorLike | None:
    """The Supervisor on ``client`` (default: the Researcher's LLM client), ``client`` itself
    when it is a ready Supervisor (e.g. the offline one), or None when disabled
    (``config=None``, ``client=False``) or when there is no model to run it. A small context
    window shortens its prompt, review and reply."""
    if config is None or client is False:
        return None
    if isinstance(client, SupervisorLike):
        return client
    if isinstance(client, str):
        from glia_nb.llm import make_client

        client = make_client(client)
    client = client if client is not None else researcher_client
    if client is None:
        return None
    w = context_window_of(client)
    return Supervisor(client, sz.supervisor_config_for(config, w), system_prompt=sz.supervisor_prompt_for(w))


def _client_info(sup: Any, parts: "Parts") -> dict[str, Any]:
    """What resume needs to rebuild a Supervisor's own LLM client (nothing for a rule-based one)."""
    client = getattr(getattr(sup, "agent", None), "client", None)
    if client is None:
        return {}
    return {"base_url": getattr(client, "base_url", None), "same_client": client is getattr(parts.researcher, "client", None)}


@dataclass(frozen=True)
class Parts:
    """What :func:`assemble` builds for a session."""

    toolbox: "GuardedToolBox"
    researcher: Any
    researcher_info: dict
    supervisor: SupervisorLike | None
    context_limit_tokens: int | None
    sizing: sz.PromptSizing | None = None
    secrets: tuple[str, ...] = ()  # credential values the session's model clients hold


def assemble(*, task: Any, workspace: Any, tracker: BudgetTracker, toolbox: Any, researcher: Any,
             registry: Mapping[str, Any], supervisor_client: Any, supervisor_config: SupervisorConfig | None,
             researcher_config: AgentConfig | None, seed: int, context_limit_tokens: int | None) -> Parts:
    """Toolbox (guarded), Researcher, Supervisor and context limit of a new or resumed session."""
    guard = GuardedToolBox(build_toolbox(toolbox, workspace, task, tracker.budget), tracker)
    r, info, client = build_researcher(researcher, registry=registry, task=task, workspace=workspace, seed=seed,
                                       budget=tracker.budget, config=researcher_config, toolbox=guard,
                                       context_limit_tokens=context_limit_tokens)
    supervisor = build_supervisor(supervisor_client, client, supervisor_config)
    limit = context_limit_tokens if context_limit_tokens is not None else getattr(client, "context_window", None)
    guard.secrets = secrets_of(client, r, supervisor)  # known only now: the Researcher runs on the guard
    if hasattr(guard.inner, "secrets"):  # for the files it writes (metrics, ledger, logs)
        guard.inner.secrets = guard.secrets
    return Parts(guard, r, info, supervisor, limit, sz.sizing_for(limit) if client is not None else None,
                 guard.secrets)


def journal_header(task: Any, parts: Parts, *, seed: int, approval: str, config: SupervisorConfig | None,
                   run_baseline: bool) -> dict[str, Any]:
    """The header record of a new session's journal (everything resume needs)."""
    from glia_nb.evaluation.confine import expected_isolation

    sup = parts.supervisor
    return {
        "kind": "glia-session",
        # What candidates and the shell will get on this machine (each result records its own).
        "isolation": expected_isolation(),
        "mode": "single-context",
        "task_name": task.name if _is_task(task) else "",
        "task": task.to_dict() if _is_task(task) else None,
        "task_text": task_text(task),
        "seed": seed,
        "budget": parts.toolbox.tracker.budget.to_dict(),
        "supervisor_config": asdict(config) if sup is not None and config is not None else None,
        "approval": approval,
        "run_baseline": run_baseline,
        "context_limit_tokens": parts.context_limit_tokens,
        "researcher": parts.researcher_info,
        "researcher_model": parts.researcher_info.get("model"),
        "supervisor": {"provider": sup.provider, "model": sup.model, **_client_info(sup, parts)} if sup else None,
        "supervisor_model": sup.model if sup else None,
    }


@dataclass
class Built:
    """The pieces of a session before its journal is opened."""

    task: Any
    workspace: WorkspaceLike
    tracker: BudgetTracker
    parts: Parts
    header: dict
    state: StudyState | None = None


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
    state = fold_records(records, header, lower_is_better=lower_is_better(task))
    tracker = BudgetTracker(budget)
    tracker.restore(simulations=state.simulations, usd=state.usd, turns=state.turns, calls=state.llm_calls,
                    wall_s=state.wall_s)
    if researcher is None:
        researcher = client_from_header(header.get("researcher") or {})
        sup_info = header.get("supervisor") or {}
        if supervisor_client is None and sup_info.get("base_url") and not sup_info.get("same_client", True):
            supervisor_client = client_from_header({"kind": "llm", **sup_info})
    if supervisor_client is None and (header.get("supervisor") or {}).get("provider") == "offline":
        from glia_nb.research.offline.researcher import OfflineSupervisor

        supervisor_client = OfflineSupervisor(supervisor_config)
    limit = context_limit_tokens if context_limit_tokens is not None else header.get("context_limit_tokens")
    parts = assemble(task=task, workspace=workspace, tracker=tracker, toolbox=toolbox, researcher=researcher,
                     registry=registry, supervisor_client=supervisor_client, supervisor_config=supervisor_config,
                     researcher_config=researcher_config, seed=int(header.get("seed", 0)), context_limit_tokens=limit)
    return Built(task, workspace, tracker, parts, header, state)


def client_from_header(info: Mapping[str, Any]) -> Any:
    """What to build the Researcher from on resume when no client is given."""
    if info.get("kind") == "registered":
        return info["name"]
    if info.get("kind") == "llm" and info.get("model") and (info.get("provider") in ("anthropic", "openai")
                                                           or info.get("base_url")):
        from glia_nb.llm import client_from_info

        return client_from_info(info)
    raise ValueError(
        f"cannot rebuild the Researcher ({dict(info)}) from the journal; pass researcher_client= to Session.resume"
    )


# ---------------------------------------------------------------------- running
RUN_EXPERIMENT = "run_experiment"


class GuardedToolBox:
    """Wraps the toolbox so every experiment is journaled and counted the moment it
    returns, whoever called it (the LLM loop or a rule-based researcher), and so no
    experiment starts once the simulation budget is spent. It offers exactly
    :class:`~glia_nb.research.session.contracts.ToolBoxLike`; the wrapped toolbox is ``inner``."""

    def __init__(self, inner: Any, tracker: BudgetTracker) -> None:
        self.inner, self.tracker = inner, tracker
        self.on_experiment: Callable[[Mapping[str, Any], Any], None] | None = None  # set by the session
        self.secrets: tuple[str, ...] = ()  # the model clients' keys, set by assemble()

    @property
    def journal(self) -> Any:
        """The session's journal, which the wrapped toolbox restores after untrusted code."""
        return getattr(self.inner, "journal", None)

    @journal.setter
    def journal(self, journal: Any) -> None:
        if hasattr(self.inner, "journal"):
            self.inner.journal = journal

    def specs(self) -> list[Any]:
        """The wrapped toolbox's tool specs."""
        return list(self.inner.specs())

    def call(self, name: str, arguments: Mapping[str, Any]) -> Any:
        """Run a tool through the wrapped toolbox; report experiments to the session."""
        if name == RUN_EXPERIMENT and self.tracker.exhausted() == "simulations":
            return ToolResult("The simulation budget is spent; no experiment was run. Call finish(summary).", True)
        same = _same_policy(self.inner) if name == RUN_EXPERIMENT else None
        if same is not None:  # an unchanged policy would only repeat a paid-for result
            return ToolResult(f"Not run: the policy is unchanged since experiment {same['id']:03d} \"{same['name']}\", "
                              f"so nothing was simulated and no budget was spent. Its result: {same['status']}, "
                              f"score {same.get('score')}. Change the policy before the next run.", False,
                              {"duplicate_of": same["id"], "experiment": same})
        result = self.inner.call(name, arguments)
        if self.secrets:  # whatever the toolbox, no key goes back to the model
            known = known_secrets(extra=self.secrets)
            result = type(result)(redact(result.text, known), result.is_error, redact(result.data, known))
        if name == RUN_EXPERIMENT and self.on_experiment is not None:
            self.on_experiment(arguments, result)
        return result


def _same_policy(toolbox: Any) -> dict[str, Any] | None:
    finder = getattr(getattr(toolbox, "workspace", None), "experiment_with_same_policy", None)
    return finder() if callable(finder) else None


@dataclass(frozen=True)
class ToolResult:
    """A result made up by the guard itself (same shape as ``glia_nb.research.tools.ToolResult``)."""

    text: str
    is_error: bool = False
    data: Any = None
