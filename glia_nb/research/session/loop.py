"""The worker side of a :class:`~glia_nb.research.session.session.Session`: the turn loop, the Supervisor's
reviews, and the journaling and counting of every event.

Kept apart from the public API so each reads on its own. All shared state lives here and
is guarded by ``self._cond`` (a condition over a re-entrant lock): the worker thread and
the control methods called from a notebook meet only through it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Mapping

from glia_nb.research.session import wiring
from glia_nb.research.agent import StepResult
from glia_nb.tasks.budget import BudgetTracker
from glia_nb.research.journal import Journal
from glia_nb.llm.types import Message
from glia_nb.research.session.replay import Intervention, Replay, experiment_fields, is_improvement
from glia_nb.research.supervisor import Decision, ReviewContext, ReviewState

__all__ = ["SessionLoop", "ENDED", "CONTINUE_TEXT", "CONTEXT_FRACTION", "check_approval"]

log = logging.getLogger("glia_nb.research.session.session")

ENDED = ("stopped", "finished", "failed")
CONTEXT_FRACTION = 0.9  # stop before the window is full: the next prompt is always larger
CONTINUE_TEXT = "Continue the research with your tools, or call finish(summary) when you are done."
_PREFIX = {"supervisor": "[Supervisor] ", "person": "[Person] "}


def check_approval(approval: str) -> str:
    """``approval`` if it is ``'auto'`` or ``'manual'``; else ValueError."""
    if approval not in ("auto", "manual"):
        raise ValueError(f"approval must be 'auto' or 'manual', got {approval!r}")
    return approval


class SessionLoop:
    """State and worker loop of a session (see :class:`glia_nb.research.session.session.Session`)."""

    def __init__(self, *, task: Any, workspace: Any, journal: Journal, parts: wiring.Parts, tracker: BudgetTracker,
                 approval: str, run_baseline: bool = True, replay: Replay | None = None) -> None:
        self.task, self.workspace, self.journal, self.tracker = task, workspace, journal, tracker
        self.toolbox, self.researcher, self.supervisor = parts.toolbox, parts.researcher, parts.supervisor
        self.context_limit_tokens = parts.context_limit_tokens
        self.run_baseline = run_baseline
        self._lower = wiring.lower_is_better(task)
        self._cond = threading.Condition(threading.RLock())
        self._subscribers: list[Callable[[dict[str, Any]], None]] = []
        self._thread: threading.Thread | None = None
        self._running = self._stop_requested = self._pause_requested = False
        self._status, self._end_reason = "created", None
        r = replay or Replay()
        self._approval = check_approval(r.approval or approval)
        self._messages: list[Message] = list(r.messages)
        self._outbox: list[tuple[str, str, str]] = list(r.outbox)  # (source, source_id, text)
        self._pending: dict[str, Intervention] = {i.id: i for i in r.pending}
        self._experiments: list[dict[str, Any]] = list(r.experiments)
        self._baseline: dict[str, Any] | None = r.baseline
        self._researcher_text, self._interventions_text = list(r.researcher_text), list(r.interventions_text)
        self._last_prompt_tokens, self._since_improvement = r.last_prompt_tokens, r.since_improvement
        self._exp_at_review, self._turn_at_review = r.experiments_at_review, r.turn_at_review
        self._finish_unreviewed, self._finish_accepted = r.finish_unreviewed, r.finish_accepted
        self._summary: str | None = r.summary
        self.toolbox.on_experiment = self._on_experiment

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
                if not self._messages:
                    self._open_study()
                    continue
                if self._finish_unreviewed:  # resumed between a finish and its review
                    self._after_turn(finished=True, idle=False)
                    continue
                self._flush_outbox()
                step = self._researcher_turn()
                self._after_turn(finished=step.finished, idle=not step.assistant.tool_calls, summary=step.finish_summary)
        except BaseException as exc:  # journal it; the session can be resumed from here
            log.exception("session failed")
            try:
                self._log("error", error=f"{type(exc).__name__}: {exc}")
            finally:
                self._end("failed", f"error: {type(exc).__name__}")
            if not isinstance(exc, Exception):
                raise
        finally:
            self.tracker.stop_clock()
            with self._cond:
                self._running = False
                self._cond.notify_all()

    def _wait_until_runnable(self) -> bool:
        """Block while paused or waiting for approval; False once a stop is asked."""
        with self._cond:
            while not self._stop_requested:
                waiting = self._approval == "manual" and bool(self._pending)
                if not self._pause_requested and not waiting:
                    self._set_status("running")
                    self.tracker.start_clock()
                    return True
                self.tracker.stop_clock()  # a person's time is not the team's budget
                self._set_status("paused" if self._pause_requested else "waiting_approval")
                self._cond.wait(timeout=1.0)
            return False

    def _context_full(self) -> bool:
        limit = self.context_limit_tokens
        return bool(limit) and self._last_prompt_tokens > CONTEXT_FRACTION * float(limit)

    def _open_study(self) -> None:
        """Evaluate the baseline (if wanted and not yet known), then hand over the task."""
        fields = wiring.run_baseline(self.toolbox.inner, self.workspace) if self.run_baseline else None
        if fields is not None:
            rec = self._log("baseline", **fields)
            self._baseline = {k: v for k, v in rec.items() if k != "ts"}
        score = getattr(self.workspace, "baseline_score", None)
        self._deliver("task", "task", wiring.task_text(self.task, score))

    def _flush_outbox(self) -> None:
        with self._cond:
            pending, self._outbox = self._outbox, []
            last = self._messages[-1] if self._messages else None
        for source, source_id, text in pending:
            self._deliver(source, source_id, text)
        if not pending and last is not None and last.role == "assistant":
            # A turn without tool calls and nobody else speaking: the model needs a user turn.
            self._deliver("loop", "continue", CONTINUE_TEXT)

    def _deliver(self, source: str, source_id: str, text: str) -> None:
        text = _PREFIX.get(source, "") + text
        self._log("user_message", source=source, source_id=source_id, text=text)
        with self._cond:
            self._messages.append(Message.user(text, name=source))

    def _researcher_turn(self) -> StepResult:
        """One Researcher step, journaled as it happens when the researcher reports events
        (the LLM loop does), else right after it returns. Either way the assistant record
        precedes its tool results, so the journal reads in conversation order."""
        replied = False
        journaled: set[str] = set()

        def on_event(kind: str, payload: Mapping[str, Any]) -> None:
            nonlocal replied
            if kind == "reply":
                replied = True
                self._log_call("researcher", wiring.call_fields(payload["completion"]))
                self._log_message(payload["completion"].message)
            elif kind == "tool" and replied:  # without the reply first, wait for the step's end
                self._log_message(payload["message"])
                journaled.add(payload["message"].tool_call_id)

        with self._cond:
            convo = list(self._messages)
        step = wiring.call_step(self.researcher, convo, on_event)
        if not replied:
            self._log_call("researcher", wiring.call_fields(step))
            self._log_message(step.assistant)
        for m in step.tool_messages:
            if m.tool_call_id not in journaled:
                self._log_message(m)
        with self._cond:
            self._messages.extend(step.messages)
            if step.assistant.content.strip():
                self._researcher_text.append(step.assistant.content)
        return step

    def _after_turn(self, *, finished: bool, idle: bool, summary: str | None = None) -> None:
        """Ask the Supervisor if a trigger fires; act on its decision."""
        self._summary = summary or self._summary
        trigger = None
        if self.supervisor is not None:
            trigger = self.supervisor.should_review(ReviewState(
                turn=self.tracker.turns, finished=finished, idle=idle, experiments=len(self._experiments),
                experiments_since_improvement=self._since_improvement,
                experiments_at_last_review=self._exp_at_review, turn_at_last_review=self._turn_at_review,
            ))
        self._finish_unreviewed = False
        if trigger is None:
            self._finish_accepted = self._finish_accepted or finished
            return
        decision = self._review(trigger)
        if finished and decision.kind in ("proceed", "stop"):  # the Supervisor agrees to end
            self._finish_accepted = True
            return
        if not decision.intervenes:
            return
        with self._cond:
            iv = Intervention(f"iv-{self.journal.next_seq}", decision.kind, decision.message, decision.reason, trigger)
            self._interventions_text.append(f"({iv.kind}) {iv.text}")
            if self._approval == "auto":
                self._log("intervention_approved", auto=True, **iv.to_dict())
                self._outbox.append(("supervisor", iv.id, iv.text))
            else:
                self._log("intervention_queued", **iv.to_dict())
                self._pending[iv.id] = iv

    def _review(self, trigger: str) -> Decision:
        with self._cond:
            context = ReviewContext(
                task_text=wiring.task_text(self.task, getattr(self.workspace, "baseline_score", None)),
                researcher_text=list(self._researcher_text),
                ledger_summary=wiring.ledger_summary(self.workspace, self._experiments),
                trigger=trigger,
                previous=list(self._interventions_text),
                budget_summary=self.tracker.describe(),
            )
        try:
            decision = self.supervisor.review(context)  # type: ignore[union-attr]
        except Exception as exc:  # a failed review must not end the study: let it proceed
            decision = Decision("proceed", "", f"review failed: {type(exc).__name__}: {exc}", trigger, "", False)
        if decision.step is not None:
            self._log_call("supervisor", wiring.call_fields(decision.step))
        self._exp_at_review, self._turn_at_review = len(self._experiments), self.tracker.turns
        self._log("supervisor_review", trigger=trigger, kind=decision.kind, text=decision.text,
                  reason=decision.reason, parsed=decision.parsed, raw=None if decision.parsed else decision.raw,
                  experiments=self._exp_at_review, turn=self._turn_at_review)
        return decision

    # ------------------------------------------------------------------ bookkeeping
    def _on_experiment(self, arguments: Mapping[str, Any], result: Any) -> None:
        """Journal and count one experiment the moment run_experiment returns."""
        fields = experiment_fields(arguments, result)
        if fields is None:  # refused: nothing was simulated
            return
        with self._cond:
            reference = self._experiments + ([self._baseline] if self._baseline else [])
            improved = is_improvement(fields.get("score"), reference, self._lower)
            self._since_improvement = 0 if improved else self._since_improvement + 1
            self.tracker.add_simulations(1)
            rec = self._log("experiment", improved=improved, **fields)
            self._experiments.append({k: v for k, v in rec.items() if k != "ts"})

    def _log_call(self, agent: str, fields: dict[str, Any]) -> None:
        """Count and journal one model call (or one rule-based researcher turn)."""
        self.tracker.add_cost(fields["cost_usd"])
        if agent == "researcher":
            self.tracker.add_turn()
            self._last_prompt_tokens = int(fields["usage"]["input_tokens"])
        self._log("llm_call", agent=agent, **fields)

    def _log_message(self, message: Message) -> None:
        if message.role == "assistant":
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
            if self._status in ENDED:
                return
            self._end_reason = reason
            experiments = list(self._experiments)
        best = wiring.best_experiment(self.workspace, experiments, self._lower)
        self._log("finished", status=status, reason=reason, best=best, best_score=(best or {}).get("score"),
                  summary=self._summary, budget_used=self.tracker.snapshot())
        self._set_status(status)
        with self._cond:
            self._cond.notify_all()
