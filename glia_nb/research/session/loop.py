"""The worker side of a :class:`~glia_nb.research.session.session.Session`: the turn loop, the Supervisor's
reviews, and the journaling and counting of every event.

Kept apart from the public API so each reads on its own. The study's state is a
:class:`~glia_nb.research.fold.StudyState` that changes only by folding the records this
loop appends (:meth:`SessionLoop._log`), so a live session and one resumed from its journal
hold the same state. It is guarded by ``self._cond`` (a condition over a re-entrant lock):
the worker thread and the control methods called from a notebook meet only through it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace as dataclasses_replace
from typing import Any, Callable, Mapping

from glia_nb.llm.types import Message
from glia_nb.research import records as R
from glia_nb.research.agent import StepResult
from glia_nb.research.fold import CONTINUE_TEXT, Intervention, StudyState, fold
from glia_nb.research.journal import Journal
from glia_nb.research.records import ENDED
from glia_nb.research.session import wiring
from glia_nb.research.session.step import StepMode
from glia_nb.research.supervisor import Decision, ReviewContext, ReviewState
from glia_nb.tasks.budget import BudgetTracker
from glia_nb.research.digest import build_digest
from glia_nb.research.sizing import compact_task_text
from glia_nb.llm.retry import LLMError

__all__ = ["SessionLoop", "ENDED", "CONTINUE_TEXT", "CONTEXT_FRACTION", "check_approval"]

log = logging.getLogger("glia_nb.research.session.session")

CONTEXT_FRACTION = 0.9  # compact before the window is full: the next prompt is always larger
MAX_UNUSABLE_TURNS = 6  # turns in a row without one tool call that ran: the model cannot do the task
_PREFIX = {"supervisor": "[Supervisor] ", "person": "[Person] "}


def check_approval(approval: str) -> str:
    """``approval`` if it is ``'auto'`` or ``'manual'``; else ValueError."""
    if approval not in ("auto", "manual"):
        raise ValueError(f"approval must be 'auto' or 'manual', got {approval!r}")
    return approval


class SessionLoop(StepMode):
    """State and worker loop of a session (see :class:`glia_nb.research.session.session.Session`)."""

    def __init__(self, *, task: Any, workspace: Any, journal: Journal, parts: wiring.Parts, tracker: BudgetTracker,
                 approval: str, run_baseline: bool = True, state: StudyState | None = None) -> None:
        self.task, self.workspace, self.journal, self.tracker = task, workspace, journal, tracker
        self.toolbox, self.researcher, self.supervisor = parts.toolbox, parts.researcher, parts.supervisor
        self.context_limit_tokens = parts.context_limit_tokens
        self.secrets = parts.secrets  # the model clients' keys: redacted from every record
        self.sizing = getattr(parts, "sizing", None)
        self.max_unusable_turns = MAX_UNUSABLE_TURNS
        self._unusable = 0
        self.run_baseline = run_baseline
        self._cond = threading.Condition(threading.RLock())
        self._subscribers: list[Callable[[dict[str, Any]], None]] = []
        self._thread: threading.Thread | None = None
        self._running = self._stop_requested = self._pause_requested = False
        self._status, self._end_reason = "created", None
        self._state = state if state is not None else StudyState(lower_is_better=wiring.lower_is_better(task))
        self._state.approval = check_approval(self._state.approval or approval)
        self.toolbox.on_experiment = self._on_experiment
        self.toolbox.journal = self.journal  # checked after untrusted code runs
        self._init_step_mode(self.toolbox)  # step mode and pace (see session/step.py)

    @property
    def _approval(self) -> str:
        return self._state.approval or "auto"

    # ------------------------------------------------------------------ the loop
    def _loop(self) -> None:
        try:
            self.tracker.start_clock()
            while True:
                if not self._wait_until_runnable():
                    return self._end("stopped", "stop requested")
                if self._state.finish_accepted:
                    return self._end("finished", "researcher_finished")
                reason = self.tracker.exhausted()
                if reason:
                    self._log(R.BudgetExhausted(reason=reason, budget_used=self.tracker.snapshot()))
                    return self._end("finished", f"budget:{reason}")
                if self._context_full() and not self._compact("threshold"):
                    self._log(R.ContextLimit(prompt_tokens=self._state.last_prompt_tokens,
                                             limit=self.context_limit_tokens))
                    return self._end("failed", f"the conversation no longer fits the model's "
                                               f"{self.context_limit_tokens}-token context window, even compacted")
                if not self._state.messages:
                    self._open_study()
                    continue
                if self._state.finish_unreviewed:  # resumed between a finish and its review
                    self._after_turn(finished=True, idle=False)
                    continue
                self._keep_pace()
                self._flush_outbox()
                step = self._researcher_turn_fitted()
                self._after_turn(finished=step.finished, idle=not step.assistant.tool_calls)
                if self._count_unusable(step):
                    return self._end("failed", f"the model produced no usable tool call in {self._unusable} turns "
                                               "in a row")
        except LLMError as exc:  # the model cannot be used: say why in one line
            log.info("session failed: %s", exc)
            self._log(R.Error(error=f"LLMError: {exc}", kind=exc.kind))
            self._end("failed", _one_line(str(exc)))
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM (the CLI maps it): end the journal cleanly
            self._end("stopped", "interrupted")
            raise
        except BaseException as exc:  # journal it; the session can be resumed from here
            log.exception("session failed")
            try:
                self._log(R.Error(error=f"{type(exc).__name__}: {exc}"))
            finally:
                self._end("failed", f"error: {type(exc).__name__}: {_one_line(str(exc))}")
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
                waiting = self._approval == "manual" and bool(self._state.pending)
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
        if not limit:
            return False
        threshold = self.sizing.compact_at if self.sizing is not None else CONTEXT_FRACTION * float(limit)
        return self._state.last_prompt_tokens > threshold

    def _task_text(self) -> str:
        """The task as the Researcher and Supervisor read it: compact for a small window."""
        score = self._baseline_score()
        if self.sizing is not None and self.sizing.compact:
            return compact_task_text(self.task, score) + f"\nBudget: {self.tracker.describe()}."
        return wiring.task_text(self.task, score)

    def _compact(self, why: str) -> bool:
        """Fold the conversation into a research digest (a ``digest`` record, which the fold
        and so a resumed session replay); False when there is nothing left to fold."""
        with self._cond:
            st = self._state
            if len(st.messages) <= 2:
                return False
            findings, questions = list(st.researcher_text), list(st.interventions_text)
            experiments, number = list(st.experiments), st.digests + 1
            prompt_tokens = st.last_prompt_tokens
        window = self.context_limit_tokens
        text = build_digest(
            number=number, window=window, task_text=self._task_text(),
            ledger=wiring.ledger_summary(self.workspace, experiments), findings=findings, questions=questions,
            turns=self.tracker.turns, policy_file=getattr(self.task, "policy_file", "policy.py"),
            max_chars=int((window or 200_000) * 3.2 * 0.3),
        )
        self._log(R.ContextLimit(prompt_tokens=prompt_tokens, limit=window, number=number, why=why, digest=text))
        return True

    def _researcher_turn_fitted(self) -> StepResult:
        """A Researcher turn; when the model's window overflows, compact once and retry
        (a second overflow, or nothing left to fold, propagates the LLMError)."""
        try:
            return self._researcher_turn()
        except LLMError as exc:
            if exc.kind != "context_overflow":
                raise
            if exc.context_tokens:
                self.context_limit_tokens = exc.context_tokens
            if not self._compact("overflow"):
                raise
        return self._researcher_turn()

    def _count_unusable(self, step: StepResult) -> bool:
        """Count turns without a tool call that ran; True once there are too many in a row."""
        if step.completion is None or any(not o.is_error for o in step.outcomes):
            self._unusable = 0
            return False
        self._unusable += 1
        return self._unusable >= self.max_unusable_turns

    def _baseline_score(self) -> float | None:
        """The baseline's score: the journal's, else the workspace's (a reopened workspace)."""
        score = self._state.baseline_score
        return score if score is not None else self.workspace.baseline_score

    def _open_study(self) -> None:
        """Evaluate the baseline (if wanted and not yet known), then hand over the task."""
        if self.run_baseline and self.workspace.baseline_score is None and self._state.baseline is None:
            baseline = wiring.run_baseline(self.toolbox.inner)
            if baseline is not None:
                self._log(baseline)
        self._deliver("task", "task", self._task_text())

    def _flush_outbox(self) -> None:
        with self._cond:
            pending = list(self._state.outbox.items())
            last = self._state.messages[-1] if self._state.messages else None
        for source_id, (source, text) in pending:
            self._deliver(source, source_id, text)
        if not pending and last is not None and last.role == "assistant":
            # A turn without tool calls and nobody else speaking: the model needs a user turn.
            self._deliver("loop", "continue", CONTINUE_TEXT)

    def _deliver(self, source: str, source_id: str, text: str) -> None:
        self._log(R.UserMessage(source=source, source_id=source_id, text=_PREFIX.get(source, "") + text))

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
            elif kind == "tool_mode":  # shown live; every llm_call record after it says tool_mode "text"
                self._emit({"type": "tool_mode", "agent": "researcher", **payload})

        with self._cond:
            convo = list(self._state.messages)
        self._emit({"type": "llm_call_started", "agent": "researcher", "call": self.tracker.turns + 1})
        step = self.researcher.step(convo, on_event=on_event)
        if not replied:
            self._log_call("researcher", wiring.call_fields(step))
            self._log_message(step.assistant)
        for m in step.tool_messages:
            if m.tool_call_id not in journaled:
                self._log_message(m)
        return step

    def _after_turn(self, *, finished: bool, idle: bool) -> None:
        """Ask the Supervisor if a trigger fires; act on its decision."""
        st = self._state
        trigger = None
        if self.supervisor is not None:
            trigger = self.supervisor.should_review(ReviewState(
                turn=self.tracker.turns, finished=finished, idle=idle, experiments=len(st.experiments),
                experiments_since_improvement=st.since_improvement,
                experiments_at_last_review=st.experiments_at_review, turn_at_last_review=st.turn_at_review,
            ))
        if trigger is None:
            with self._cond:  # no one to ask: a finish stands (no record: the finished one follows)
                st.finish_unreviewed = False
                st.finish_accepted = st.finish_accepted or finished
            return
        decision = self._review(trigger, finished)
        if not decision.intervenes or (finished and decision.kind == "stop"):
            return  # (a stop on a finish lets the study end: the review record says so)
        with self._cond:
            iv = Intervention(f"iv-{self.journal.next_seq}", decision.kind, decision.message, decision.reason, trigger)
            if self._approval == "auto":
                self._log(R.InterventionApproved(auto=True, **iv.to_dict()))
            else:
                self._log(R.InterventionQueued(**iv.to_dict()))

    def _review(self, trigger: str, finished: bool) -> Decision:
        with self._cond:
            st = self._state
            context = ReviewContext(
                task_text=self._task_text(),
                researcher_text=list(st.researcher_text),
                ledger_summary=wiring.ledger_summary(self.workspace, st.experiments),
                trigger=trigger,
                previous=list(st.interventions_text),
                budget_summary=self.tracker.describe(),
                experiments=[dict(e) for e in st.experiments],
                baseline=dict(st.baseline) if st.baseline else None,
                layer=str(getattr(self.task, "layer", "") or ""),
            )
        try:
            decision = self.supervisor.review(context)  # type: ignore[union-attr]
        except Exception as exc:  # a failed review must not end the study: let it proceed
            decision = Decision("proceed", "", f"review failed: {type(exc).__name__}: {exc}", trigger, "", False)
        for step in getattr(decision, "steps", None) or ([decision.step] if decision.step is not None else []):
            self._log_call("supervisor", wiring.call_fields(step))
        self._log(R.SupervisorReview(
            trigger=trigger, kind=decision.kind, text=decision.text, reason=decision.reason, parsed=decision.parsed,
            raw=None if decision.parsed else decision.raw, experiments=len(self._state.experiments),
            turn=self.tracker.turns, finished_turn=finished))
        return decision

    # ------------------------------------------------------------------ bookkeeping
    def _on_experiment(self, arguments: Mapping[str, Any], result: Any) -> None:
        """Journal and count one experiment the moment run_experiment returns."""
        rec = R.Experiment.from_tool_result(self._edited_arguments(arguments), result)
        if rec is None:  # refused: nothing was simulated
            return
        with self._cond:
            self.tracker.add_simulations(1)  # one simulation per experiment, whatever it ran
            self._log(dataclasses_replace(rec, improved=self._state.is_improvement(rec.score)))

    def _log_call(self, agent: str, fields: dict[str, Any]) -> None:
        """Count and journal one model call (or one rule-based researcher turn)."""
        self.tracker.add_cost(fields["cost_usd"])
        if agent == "researcher":
            self.tracker.add_turn()
        mode = "text" if agent == "researcher" and getattr(self.researcher, "text_tools", False) else ""
        self._log(R.LlmCall(agent=agent, tool_mode=mode, **fields))

    def _log_message(self, message: Message) -> None:
        if message.role == "assistant":
            self._log(R.Assistant(agent="researcher", text=message.content,
                                  tool_calls=tuple(tc.to_dict() for tc in message.tool_calls)))
        else:
            self._log(R.ToolResultRecord(call_id=str(message.tool_call_id), name=message.name,
                                         is_error=message.is_error, text=message.content))

    def _log(self, record: R.Record) -> dict[str, Any]:
        """Append ``record`` (stamped with the active wall time), fold it into the state,
        then tell the subscribers."""
        with self._cond:
            rec = self.journal.write(dataclasses_replace(record, wall_s=round(self.tracker.wall_s, 3)))
            fold(self._state, rec)
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
            best, summary = self._state.best, self._state.summary
        self.tracker.stop_clock()  # the finished record carries the study's final active time
        self._log(R.Finished(status=status, reason=reason, best=best, best_score=(best or {}).get("score"),
                             summary=summary, budget_used=self.tracker.snapshot()))
        self._set_status(status)
        with self._cond:
            self._cond.notify_all()


def _one_line(text: str, limit: int = 400) -> str:
    """The first line of ``text``, at most ``limit`` characters (for a status reason)."""
    line = (text.strip().splitlines() or [""])[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"
