"""Single-Context Glia: one Researcher conversation, watched by a Supervisor, steered by
a person, journaled record by record.

``Session.start()`` runs the loop in a daemon thread so a notebook kernel stays free for
widgets; ``run()`` runs it in the calling thread (CLI, tests). Every event is appended to
``journal.jsonl`` in the workspace before anyone is told about it, and
``Session.resume(workspace_dir, ...)`` rebuilds the conversation, the budget counters and
the approval queue from those records alone.

Control methods (``nudge``, ``pause``, ``approve``, ``stop``, ...) are called from other
threads; they only change shared state under a lock and wake the worker, so they return
at once and never wait for a model call.
"""

from __future__ import annotations

import inspect
import logging
import math
import threading
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from glia_nb.agent import Agent, AgentConfig, Researcher, StepResult, load_prompt
from glia_nb.budget import Budget, BudgetTracker
from glia_nb.journal import Journal, read_journal
from glia_nb.llm.types import Message, ToolCall, Usage
from glia_nb.session_replay import Replay, replay_records
from glia_nb.supervisor import Decision, ReviewContext, ReviewState, Supervisor, SupervisorConfig

__all__ = ["Intervention", "RESEARCHERS", "Session", "STATUSES"]

log = logging.getLogger(__name__)

JOURNAL_NAME = "journal.jsonl"
STATUSES = ("created", "running", "paused", "waiting_approval", "stopped", "finished", "failed")
CONTEXT_FRACTION = 0.9  # stop before the window is full: the next prompt is always larger
RUN_EXPERIMENT = "run_experiment"
CONTINUE_TEXT = "Continue the research with your tools, or call finish(summary) when you are done."

# Rule-based researchers, by name: factory(*, task, toolbox, workspace, seed, budget) -> an
# object with step(messages) -> StepResult. The offline researcher registers "offline".
RESEARCHERS: dict[str, Callable[..., Researcher]] = {}


@dataclass(frozen=True)
class Intervention:
    """A Supervisor decision on its way to the Researcher (pending in manual mode)."""

    id: str
    kind: str
    text: str
    reason: str = ""
    trigger: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-native dict."""
        return asdict(self)


class _hybrid:
    """``Session.resume(dir)`` rebuilds a session from its journal; ``session.resume()``
    un-pauses a live one. One name, as a notebook user expects both to read."""

    def __init__(self, on_class: Callable[..., Any], on_instance: Callable[..., Any]) -> None:
        self._on_class, self._on_instance = on_class, on_instance
        self.__doc__ = on_class.__doc__

    def __get__(self, obj: Any, cls: type) -> Callable[..., Any]:
        if obj is None:
            return self._on_class.__get__(cls, cls)
        return self._on_instance.__get__(obj, cls)


class _GuardedToolBox:
    """Wraps the toolbox so every experiment is journaled and counted the moment it
    returns, whoever called it (the LLM loop or a rule-based researcher), and so no
    experiment starts once the simulation budget is spent."""

    def __init__(self, inner: Any, session: "Session") -> None:
        self.inner, self._session = inner, session

    def specs(self) -> list[Any]:
        return list(self.inner.specs())

    def call(self, name: str, arguments: Mapping[str, Any]) -> Any:
        s = self._session
        if name == RUN_EXPERIMENT and s.tracker.exhausted() == "simulations":
            return _ToolResult("The simulation budget is spent; no experiment was run. Call finish(summary).", True)
        result = self.inner.call(name, arguments)
        if name == RUN_EXPERIMENT:
            s._on_experiment(arguments, result)
        return result

    def __getattr__(self, item: str) -> Any:
        return getattr(self.inner, item)


@dataclass(frozen=True)
class _ToolResult:
    text: str
    is_error: bool = False
    data: Any = None


class Session:
    """A Single-Context Glia study. Build with :meth:`create` or :meth:`resume`."""

    def __init__(
        self,
        *,
        task: Any,
        workspace: Any,
        journal: Journal,
        researcher: Researcher,
        supervisor: Supervisor | None,
        toolbox: _GuardedToolBox,
        tracker: BudgetTracker,
        approval: str,
        context_limit_tokens: int | None,
        replay: Replay | None = None,
    ) -> None:
        self.task, self.workspace, self.journal = task, workspace, journal
        self.researcher, self.supervisor, self.toolbox, self.tracker = researcher, supervisor, toolbox, tracker
        self.context_limit_tokens = context_limit_tokens
        self._cond = threading.Condition(threading.RLock())
        self._subscribers: list[Callable[[dict[str, Any]], None]] = []
        self._thread: threading.Thread | None = None
        self._approval = _check_approval(approval)
        self._status = "created"
        self._stop_requested = self._pause_requested = False
        self._end_reason: str | None = None
        r = replay or Replay()
        self._messages: list[Message] = list(r.messages)
        self._outbox: list[tuple[str, str, str]] = list(r.outbox)  # (source, source_id, text)
        self._pending: dict[str, Intervention] = {i.id: i for i in r.pending}
        self._experiments: list[dict[str, Any]] = list(r.experiments)
        self._researcher_text: list[str] = list(r.researcher_text)
        self._interventions_text: list[str] = list(r.interventions_text)
        self._last_prompt_tokens = r.last_prompt_tokens
        self._since_improvement = r.since_improvement
        self._exp_at_review, self._turn_at_review = r.experiments_at_review, r.turn_at_review
        self._finish_unreviewed = r.finish_unreviewed
        self._finish_accepted = False
        self._summary: str | None = r.summary

    # ------------------------------------------------------------------ construction
    @classmethod
    def create(
        cls,
        task: Any,
        workspace_root: str | Path,
        researcher_client: Any = "offline",
        *,
        supervisor_client: Any = None,
        budget: Budget | Any = None,
        supervisor_config: SupervisorConfig | None = SupervisorConfig(),
        approval: str = "auto",
        seed: int = 0,
        context_limit_tokens: int | None = None,
        toolbox: Any = None,
        researcher_config: AgentConfig | None = None,
    ) -> "Session":
        """Start a new study in a fresh workspace.

        ``task``: a Task or a registered task name. ``researcher_client``: an LLM client,
        a client spec (``"anthropic:claude-opus-4-5"``), a name in :data:`RESEARCHERS`
        (``"offline"``) or any object with ``step(messages) -> StepResult``.
        ``supervisor_client`` defaults to the Researcher's client (no Supervisor for a
        rule-based researcher); ``supervisor_config=None`` disables the Supervisor.
        ``budget`` defaults to the task's. ``context_limit_tokens`` defaults to the client's
        context window. ``toolbox``: a ready toolbox, or ``callable(workspace, task, budget)``
        returning one (default: :class:`glia_nb.tools.ToolBox`).
        """
        from glia_nb import session_wiring as wiring

        task = wiring.resolve_task(task)
        budget = Budget.coerce(budget if budget is not None else getattr(task, "budget", None))
        workspace = wiring.create_workspace(task, workspace_root, seed)
        ws_dir = wiring.workspace_dir(workspace)
        tracker = BudgetTracker(budget)
        inner_toolbox = wiring.build_toolbox(toolbox, workspace, task, budget)
        researcher, r_info, r_client = wiring.build_researcher(
            researcher_client, task=task, workspace=workspace, seed=seed, budget=budget,
            config=researcher_config, toolbox=None,
        )
        supervisor = wiring.build_supervisor(supervisor_client, r_client, supervisor_config)
        limit = context_limit_tokens if context_limit_tokens is not None else getattr(r_client, "context_window", None)
        task_text = wiring.task_text(task)
        header = {
            "kind": "glia-session",
            "mode": "single-context",
            "task_name": getattr(task, "name", str(task)),
            "task": task.to_dict() if hasattr(task, "to_dict") else str(task),
            "task_text": task_text,
            "seed": seed,
            "budget": budget.to_dict(),
            "supervisor_config": asdict(supervisor_config) if supervisor_config is not None else None,
            "approval": _check_approval(approval),
            "context_limit_tokens": limit,
            "researcher": r_info,
            "researcher_model": r_info.get("model"),
            "supervisor": {"provider": getattr(supervisor.agent.client, "provider", ""), "model": supervisor.model}
            if supervisor else None,
            "supervisor_model": supervisor.model if supervisor else None,
        }
        journal = Journal.create(ws_dir / JOURNAL_NAME, header)
        session = cls(
            task=task, workspace=workspace, journal=journal, researcher=researcher, supervisor=supervisor,
            toolbox=None, tracker=tracker, approval=approval, context_limit_tokens=limit,  # type: ignore[arg-type]
        )
        session._attach_toolbox(inner_toolbox, researcher, researcher_client, task, workspace, seed, budget, researcher_config)
        session._log("user_message", source="task", source_id="task", text=task_text)
        session._messages.append(Message.user(task_text, name="task"))
        return session

    def _attach_toolbox(self, inner: Any, researcher: Any, spec: Any, task: Any, workspace: Any, seed: int,
                        budget: Budget, config: AgentConfig | None) -> None:
        # The guard needs the session, and the researcher needs the guard, hence this second step.
        from glia_nb import session_wiring as wiring

        self.toolbox = _GuardedToolBox(inner, self)
        if researcher is None:
            self.researcher, _, _ = wiring.build_researcher(
                spec, task=task, workspace=workspace, seed=seed, budget=budget, config=config, toolbox=self.toolbox
            )

    def _resume_from_journal(cls, workspace_dir: str | Path, researcher_client: Any = None, *,
                             supervisor_client: Any = None, budget: Budget | Any = None,
                             supervisor_config: SupervisorConfig | None | str = "journal",
                             approval: str | None = None, context_limit_tokens: int | None = None,
                             toolbox: Any = None, researcher_config: AgentConfig | None = None,
                             task: Any = None) -> "Session":
        """Rebuild a session from ``workspace_dir/journal.jsonl`` and return it, ready to
        ``start()`` or ``run()``: the conversation, the budget counters (simulations from
        the experiment records, dollars and turns from the llm_call records, wall time),
        pending interventions and undelivered nudges. Settings default to the journal's;
        ``researcher_client`` defaults to the journal's offline researcher or provider:model.
        """
        from glia_nb import session_wiring as wiring

        ws_dir = Path(workspace_dir)
        header, records = read_journal(ws_dir / JOURNAL_NAME)
        if task is None:
            task = wiring.task_from_header(header)
        budget = Budget.coerce(budget) if budget is not None else Budget.from_dict(header.get("budget"))
        if supervisor_config == "journal":
            sc = header.get("supervisor_config")
            supervisor_config = SupervisorConfig(**sc) if sc is not None else None
        workspace = wiring.open_workspace(ws_dir, task)
        replay = replay_records(records, lower_is_better=wiring.lower_is_better(task))
        tracker = BudgetTracker(budget)
        tracker.restore(simulations=replay.simulations, usd=replay.usd, turns=replay.turns,
                        calls=replay.llm_calls, wall_s=replay.wall_s)
        if researcher_client is None:
            researcher_client = wiring.client_from_header(header.get("researcher") or {})
        researcher, _, r_client = wiring.build_researcher(
            researcher_client, task=task, workspace=workspace, seed=header.get("seed", 0), budget=budget,
            config=researcher_config, toolbox=None,
        )
        supervisor = wiring.build_supervisor(supervisor_client, r_client, supervisor_config)
        limit = context_limit_tokens if context_limit_tokens is not None else header.get("context_limit_tokens")
        journal = Journal.open(ws_dir / JOURNAL_NAME)
        session = cls(
            task=task, workspace=workspace, journal=journal, researcher=researcher, supervisor=supervisor,
            toolbox=None, tracker=tracker, approval=approval or header.get("approval", "auto"),  # type: ignore[arg-type]
            context_limit_tokens=limit, replay=replay,
        )
        session._attach_toolbox(wiring.build_toolbox(toolbox, workspace, task, budget), researcher, researcher_client,
                                task, workspace, header.get("seed", 0), budget, researcher_config)
        session._log("resumed", dropped_bytes=journal.dropped_bytes, budget_used=tracker.snapshot(),
                     pending=[i.id for i in session._pending.values()])
        for call in replay.unanswered_calls:  # a crash mid-step: answer the calls that never returned
            session._log_message("tool_result", Message.tool_result(
                call.id, "Interrupted: the session stopped before this tool returned.", name=call.name, is_error=True))
        if replay.ended and not session._outbox and session._messages and session._messages[-1].role != "user":
            session._deliver("resume", "resume", "The study was resumed. " + CONTINUE_TEXT)
        return session

    def _unpause(self) -> None:
        """Let a paused session continue with the Researcher's next turn."""
        with self._cond:
            if not self._pause_requested:
                return
            self._pause_requested = False
            self._log("resume")
            if self._status == "paused":
                self._set_status("running")
            self._cond.notify_all()

    resume = _hybrid(classmethod(_resume_from_journal), _unpause)

    # ------------------------------------------------------------------ public state
    @property
    def status(self) -> str:
        """One of :data:`STATUSES`."""
        with self._cond:
            return self._status

    @property
    def path(self) -> Path:
        """The workspace directory."""
        return self.journal.path.parent

    @property
    def messages(self) -> list[Message]:
        """A copy of the Researcher's conversation (without the system prompt)."""
        with self._cond:
            return list(self._messages)

    @property
    def experiments(self) -> list[dict[str, Any]]:
        """The experiment records so far, oldest first."""
        with self._cond:
            return [dict(e) for e in self._experiments]

    @property
    def best(self) -> dict[str, Any] | None:
        """The best experiment so far (by the task's objective direction), or None."""
        from glia_nb.session_replay import best_of

        with self._cond:
            return best_of(self._experiments, _lower(self))

    @property
    def budget_used(self) -> dict[str, Any]:
        """Spent and limit of every budget (see :meth:`BudgetTracker.snapshot`)."""
        return self.tracker.snapshot()

    @property
    def approval(self) -> str:
        """``'auto'`` or ``'manual'``."""
        with self._cond:
            return self._approval

    @property
    def end_reason(self) -> str | None:
        """Why the session ended (``researcher_finished``, ``budget:dollars``, ...)."""
        with self._cond:
            return self._end_reason

    # ------------------------------------------------------------------ running
    def start(self) -> "Session":
        """Run the study in a daemon thread and return at once."""
        with self._cond:
            self._claim_run()
            self._thread = threading.Thread(target=self._loop, name="glia-session", daemon=True)
            self._thread.start()
        return self

    def run(self) -> "Session":
        """Run the study in the calling thread until it ends (CLI and tests)."""
        with self._cond:
            self._claim_run()
            self._thread = threading.current_thread()
        self._loop()
        return self

    def _claim_run(self) -> None:
        if self._thread is not None and self._thread.is_alive() or self._status == "running":
            raise RuntimeError("this session is already running")
        self._stop_requested = False
        self._set_status("running")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the worker thread ends (or ``timeout`` seconds pass); True if ended."""
        t = self._thread
        if t is None or t is threading.current_thread():
            return self.status not in ("running", "paused", "waiting_approval")
        t.join(timeout)
        return not t.is_alive()

    def stop(self) -> None:
        """Ask the study to stop; it ends after the model call in flight (if any)."""
        with self._cond:
            if self._status in ("stopped", "finished", "failed") or self._stop_requested:
                return
            self._stop_requested = True
            self._log("stop")
            if self._status == "created":
                self._end("stopped", "stop requested")
            self._cond.notify_all()

    def pause(self) -> None:
        """Hold the Researcher before its next turn until :meth:`resume`."""
        with self._cond:
            if self._pause_requested or self._status in ("stopped", "finished", "failed"):
                return
            self._pause_requested = True
            self._log("pause")
            if self._status in ("running", "waiting_approval"):
                self._set_status("paused")
            self._cond.notify_all()

    def nudge(self, text: str) -> None:
        """A person's message, delivered to the Researcher before its next turn."""
        text = str(text).strip()
        if not text:
            raise ValueError("empty nudge")
        with self._cond:
            rec = self._log("nudge", text=text)
            self._outbox.append(("person", f"nudge-{rec['seq']}", text))
            self._cond.notify_all()

    def subscribe(self, callback: Callable[[dict[str, Any]], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for every journal record and status change (from the
        worker thread: widget code must only set traits or use ``append_*``). Returns an
        unsubscribe function."""
        with self._cond:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._cond:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    # ------------------------------------------------------------------ approval queue
    def pending_interventions(self) -> list[Intervention]:
        """Supervisor interventions waiting for a person (manual approval)."""
        with self._cond:
            return list(self._pending.values())

    def approve(self, intervention_id: str) -> None:
        """Deliver a pending intervention to the Researcher as written."""
        with self._cond:
            iv = self._take_pending(intervention_id)
            self._log("intervention_approved", id=iv.id)
            self._outbox.append(("supervisor", iv.id, iv.text))
            self._cond.notify_all()

    def edit(self, intervention_id: str, text: str) -> None:
        """Replace a pending intervention's text, then deliver it."""
        text = str(text).strip()
        if not text:
            raise ValueError("empty intervention text; use reject() to drop it")
        with self._cond:
            iv = self._take_pending(intervention_id)
            self._log("intervention_edited", id=iv.id, text=text, original=iv.text)
            self._outbox.append(("supervisor", iv.id, text))
            self._cond.notify_all()

    def reject(self, intervention_id: str) -> None:
        """Drop a pending intervention. Rejecting one raised when the Researcher asked to
        finish lets the finish stand."""
        with self._cond:
            iv = self._take_pending(intervention_id)
            self._log("intervention_rejected", id=iv.id)
            if iv.trigger == "finish":
                self._finish_accepted = True
            self._cond.notify_all()

    def set_approval_policy(self, approval: str) -> None:
        """Switch between ``'auto'`` and ``'manual'``; switching to auto approves
        everything pending."""
        with self._cond:
            self._approval = _check_approval(approval)
            self._log("approval_policy", approval=self._approval)
            if self._approval == "auto":
                for iv_id in list(self._pending):
                    self.approve(iv_id)
            self._cond.notify_all()

    def _take_pending(self, intervention_id: str) -> Intervention:
        try:
            return self._pending.pop(intervention_id)
        except KeyError:
            raise KeyError(f"no pending intervention {intervention_id!r}") from None

    # ------------------------------------------------------------------ the loop
    def _loop(self) -> None:
        try:
            self.tracker.start_clock()
            while True:
                if not self._wait_until_runnable():
                    return self._end("stopped", "stop requested")
                if self._finish_accepted:
                    return self._end("finished", "researcher_finished")
                reason = self.tracker.exhausted()
                if reason:
                    self._log("budget_exhausted", reason=reason, budget_used=self.tracker.snapshot())
                    return self._end("finished", f"budget:{reason}")
                if self._context_full():
                    self._log("context_limit", prompt_tokens=self._last_prompt_tokens, limit=self.context_limit_tokens)
                    return self._end("finished", "context_limit")
                if self._finish_unreviewed:  # resumed between a finish and its review
                    self._after_turn(finished=True, idle=False)
                    continue
                self._flush_outbox()
                step = self._researcher_turn()
                self._after_turn(finished=step.finished, idle=not step.assistant.tool_calls, summary=step.finish_summary)
        except BaseException as exc:  # report, then let the thread die quietly
            log.exception("session failed")
            try:
                self._log("error", error=f"{type(exc).__name__}: {exc}")
            finally:
                self._end("failed", f"error: {type(exc).__name__}")
            if not isinstance(exc, Exception):
                raise
        finally:
            self.tracker.stop_clock()

    def _wait_until_runnable(self) -> bool:
        """Block while paused or waiting for approval; False when a stop was asked."""
        with self._cond:
            while not self._stop_requested:
                waiting = self._approval == "manual" and bool(self._pending)
                if not self._pause_requested and not waiting:
                    if self._status != "running":
                        self._set_status("running")
                    self.tracker.start_clock()
                    return True
                self.tracker.stop_clock()  # a person's time does not count against the budget
                self._set_status("paused" if self._pause_requested else "waiting_approval")
                self._cond.wait(timeout=1.0)
            return False

    def _context_full(self) -> bool:
        limit = self.context_limit_tokens
        return bool(limit) and self._last_prompt_tokens > CONTEXT_FRACTION * float(limit)

    def _flush_outbox(self) -> None:
        with self._cond:
            pending, self._outbox = self._outbox, []
        for source, source_id, text in pending:
            self._deliver(source, source_id, text)

    def _deliver(self, source: str, source_id: str, text: str) -> None:
        prefix = {"supervisor": "[Supervisor] ", "person": "[Person] "}.get(source, "")
        self._log("user_message", source=source, source_id=source_id, text=prefix + text)
        with self._cond:
            self._messages.append(Message.user(prefix + text, name=source))

    def _researcher_turn(self) -> StepResult:
        seen: dict[str, bool] = {"reply": False}
        journaled: set[str] = set()

        def on_event(kind: str, payload: Mapping[str, Any]) -> None:
            if kind == "reply":
                seen["reply"] = True
                self._log_completion("researcher", payload["completion"])
            elif kind == "tool":
                self._log_message("tool_result", payload["message"])
                journaled.add(payload["message"].tool_call_id)

        with self._cond:
            convo = list(self._messages)
        step = _call_step(self.researcher, convo, on_event)
        if not seen["reply"]:  # a researcher that does not report events: journal it now
            self._log_step_reply("researcher", step)
        for m in step.tool_messages:
            if m.tool_call_id not in journaled:
                self._log_message("tool_result", m)
        with self._cond:
            self._messages.extend(step.messages)
            if step.assistant.content.strip():
                self._researcher_text.append(step.assistant.content)
        if not step.assistant.tool_calls and not step.finished:
            with self._cond:
                if not self._outbox:
                    self._outbox.append(("loop", "continue", CONTINUE_TEXT))
        return step

    def _after_turn(self, *, finished: bool, idle: bool, summary: str | None = None) -> None:
        if summary:
            self._summary = summary
        self._finish_unreviewed = finished
        sup = self.supervisor
        trigger = None
        if sup is not None:
            trigger = sup.should_review(ReviewState(
                turn=self.tracker.turns, finished=finished, idle=idle, experiments=len(self._experiments),
                experiments_since_improvement=self._since_improvement,
                experiments_at_last_review=self._exp_at_review, turn_at_last_review=self._turn_at_review,
            ))
        if trigger is None:
            if finished:
                self._finish_accepted = True
            self._finish_unreviewed = False
            return
        decision = self._review(trigger)
        self._finish_unreviewed = False
        if finished and decision.kind in ("proceed", "stop"):
            self._finish_accepted = True
            return
        if not decision.intervenes:
            return
        with self._cond:
            iv = Intervention(f"iv-{self.journal.next_seq}", decision.kind, _intervention_text(decision),
                              decision.reason, trigger)
            self._interventions_text.append(f"({iv.kind}) {iv.text}")
            if self._approval == "auto":
                self._log("intervention_approved", auto=True, **iv.to_dict())
                self._outbox.append(("supervisor", iv.id, iv.text))
            else:
                self._log("intervention_queued", **iv.to_dict())
                self._pending[iv.id] = iv
                self._cond.notify_all()

    def _review(self, trigger: str) -> Decision:
        from glia_nb import session_wiring as wiring

        with self._cond:
            context = ReviewContext(
                task_text=wiring.task_text(self.task),
                researcher_text=list(self._researcher_text),
                ledger_summary=wiring.ledger_summary(self.workspace, self._experiments),
                trigger=trigger,
                previous=list(self._interventions_text),
                budget_summary=_budget_line(self.tracker.snapshot()),
            )
        try:
            decision = self.supervisor.review(context)  # type: ignore[union-attr]
        except Exception as exc:  # a failed review must not end the study: let it proceed
            decision = Decision("proceed", "", f"review failed: {type(exc).__name__}: {exc}", trigger, "", False)
        if decision.step is not None:
            self._log_step_reply("supervisor", decision.step, with_message=False)
        self._exp_at_review, self._turn_at_review = len(self._experiments), self.tracker.turns
        self._log("supervisor_review", trigger=trigger, kind=decision.kind, text=decision.text,
                  reason=decision.reason, parsed=decision.parsed, raw=None if decision.parsed else decision.raw,
                  experiments=self._exp_at_review, turn=self._turn_at_review)
        return decision

    # ------------------------------------------------------------------ bookkeeping
    def _on_experiment(self, arguments: Mapping[str, Any], result: Any) -> None:
        """Journal and count one experiment the moment run_experiment returns."""
        from glia_nb.session_replay import experiment_fields, is_improvement

        fields = experiment_fields(arguments, result)
        if fields is None:  # refused before anything was simulated
            return
        with self._cond:
            improved = is_improvement(fields.get("score"), self._experiments, _lower(self))
            self._since_improvement = 0 if improved else self._since_improvement + 1
            self.tracker.add_simulations(fields["simulations"])
            rec = self._log("experiment", improved=improved, **fields)
            self._experiments.append({k: v for k, v in rec.items() if k not in ("ts",)})

    def _log_completion(self, agent: str, completion: Any) -> None:
        self.tracker.add_cost(completion.cost_usd)
        if agent == "researcher":
            self.tracker.add_turn()
            self._last_prompt_tokens = completion.usage.input_tokens
        self._log("llm_call", agent=agent, model=completion.model, provider=completion.provider,
                  usage=completion.usage.to_dict(), cost_usd=completion.cost_usd, cost_known=completion.cost_known,
                  stop_reason=completion.stop_reason, latency_s=completion.latency_s, attempts=completion.attempts)
        if agent == "researcher":
            self._log_message("assistant", completion.message)

    def _log_step_reply(self, agent: str, step: StepResult, with_message: bool = True) -> None:
        if step.completion is not None:
            if agent == "researcher" and with_message:
                return self._log_completion(agent, step.completion)
            self.tracker.add_cost(step.completion.cost_usd)
            self._log("llm_call", agent=agent, model=step.model, usage=step.usage.to_dict(), cost_usd=step.cost_usd,
                      stop_reason=step.stop_reason, latency_s=step.completion.latency_s,
                      attempts=step.completion.attempts)
            return None
        # A rule-based researcher: no model call, but still a turn (max_turns applies).
        self.tracker.add_cost(step.cost_usd)
        self.tracker.add_turn()
        self._last_prompt_tokens = step.usage.input_tokens
        self._log("llm_call", agent=agent, model=step.model or "offline", usage=step.usage.to_dict(),
                  cost_usd=step.cost_usd, stop_reason=step.stop_reason or "offline", latency_s=0.0, attempts=0)
        if with_message:
            self._log_message("assistant", step.assistant)
        return None

    def _log_message(self, kind: str, message: Message) -> None:
        if kind == "assistant":
            self._log("assistant", agent="researcher", text=message.content,
                      tool_calls=[tc.to_dict() for tc in message.tool_calls])
        else:
            self._log("tool_result", call_id=message.tool_call_id, name=message.name, is_error=message.is_error,
                      text=message.content)

    def _log(self, type: str, **fields: Any) -> dict[str, Any]:
        rec = self.journal.append(type, wall_s=round(self.tracker.wall_s, 3), **fields)
        self._emit(rec)
        return rec

    def _emit(self, event: dict[str, Any]) -> None:
        with self._cond:
            subscribers = list(self._subscribers)
        for cb in subscribers:
            try:
                cb(event)
            except Exception:  # a broken widget must not stop the study
                log.exception("session subscriber failed")

    def _set_status(self, status: str) -> None:
        with self._cond:
            if status == self._status:
                return
            self._status = status
        self._emit({"type": "status", "status": status})

    def _end(self, status: str, reason: str) -> None:
        with self._cond:
            if self._status in ("stopped", "finished", "failed"):
                return
            self._end_reason = reason
            best = self.best
        self._log("finished", status=status, reason=reason, best=best,
                  best_score=best.get("score") if best else None, summary=self._summary,
                  budget_used=self.tracker.snapshot())
        self._set_status(status)
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        """Stop the study (if running), wait for it and close the journal."""
        self.stop()
        self.wait(timeout=30)
        self.journal.close()

    def __repr__(self) -> str:
        return f"Session({str(self.path)!r}, status={self.status!r}, budget={self.tracker!r})"


# ---------------------------------------------------------------------- helpers
def _check_approval(approval: str) -> str:
    if approval not in ("auto", "manual"):
        raise ValueError(f"approval must be 'auto' or 'manual', got {approval!r}")
    return approval


def _lower(session: Session) -> bool:
    from glia_nb import session_wiring as wiring

    return wiring.lower_is_better(session.task)


def _call_step(researcher: Any, messages: list[Message], on_event: Callable[..., None]) -> StepResult:
    # Rule-based researchers may implement plain step(messages); pass the hook only if taken.
    try:
        params = inspect.signature(researcher.step).parameters
    except (TypeError, ValueError):
        params = {}
    if "on_event" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return researcher.step(messages, on_event=on_event)
    return researcher.step(messages)


def _intervention_text(decision: Decision) -> str:
    if decision.text.strip():
        return decision.text.strip()
    if decision.reason.strip():
        return decision.reason.strip()
    return {
        "question": "Before going on: what does the evidence so far say about where the time goes?",
        "recall": "Look back at your earlier experiments: which findings have you not used yet?",
        "redirect": "Remember the objective and the rules of the task, and the budget left.",
        "stop": "This line of work is not paying off; step back and reconsider the bottleneck.",
    }.get(decision.kind, CONTINUE_TEXT)


def _budget_line(snap: Mapping[str, Any]) -> str:
    lim = snap.get("limits", {})

    def part(used: Any, cap: Any, label: str, fmt: str = "{}") -> str:
        return f"{label} {fmt.format(used)}" + (f" of {fmt.format(cap)}" if cap is not None else "")

    return ", ".join([
        part(snap["simulations"], lim.get("max_simulations"), "simulations"),
        part(snap["usd"], lim.get("max_usd"), "dollars", "{:.2f}"),
        part(snap["turns"], lim.get("max_turns"), "turns"),
        part(round(snap["wall_s"]), lim.get("max_wall_s"), "seconds"),
    ])
