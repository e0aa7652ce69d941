"""Single-Context Glia: one Researcher conversation, watched by a Supervisor, steered by
a person, journaled record by record.

``start()`` runs the loop in a daemon thread so a notebook kernel stays free for widgets;
``run()`` runs it in the calling thread (CLI, tests). Each event is appended (and fsync-ed)
to ``journal.jsonl`` in the workspace before subscribers hear of it, and
``Session.resume(workspace_dir, ...)`` rebuilds the conversation, the budget counters and
the approval queue from those records alone.

Control methods (``nudge``, ``pause``, ``approve``, ``stop``, ...) may be called from any
thread: they change shared state under a lock and wake the worker, so they return at once
and never wait for a model call.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

from glia_nb.research.session import wiring
from glia_nb.research.agent import AgentConfig, Researcher
from glia_nb.tasks.budget import Budget
from glia_nb.research.journal import Journal, read_journal
from glia_nb.llm.types import Message
from glia_nb.research import records as R
from glia_nb.research.fold import Intervention, StudyState
from glia_nb.research.records import ENDED
from glia_nb.research.session.loop import SessionLoop, check_approval
from glia_nb.research.supervisor import SupervisorConfig

__all__ = ["Intervention", "RESEARCHERS", "Session", "STATUSES"]

JOURNAL_NAME = "journal.jsonl"
STATUSES = ("created", "running", "paused", "waiting_approval", "waiting_step", "stopped", "finished", "failed")

# Rule-based researchers by name. A value is a factory, or "module:attribute" naming one
# (imported on first use, so an entry costs nothing at import). The factory is called as
# factory(task=, toolbox=, workspace=, seed=, budget=) and returns an object with
# step(messages) -> StepResult. The offline researcher's entry is "offline".
RESEARCHERS: dict[str, Callable[..., Researcher] | str] = {"offline": "glia_nb.research.offline.researcher:OfflineResearcher"}

_DEFAULT_SUPERVISOR = SupervisorConfig()  # frozen, so sharing the default is safe


class _hybrid:
    """``Session.resume(dir)`` rebuilds a session from its journal; ``session.resume()``
    un-pauses a live one: one name for both, as a notebook user would guess."""

    def __init__(self, on_class: Any, on_instance: Callable[..., Any]) -> None:
        self._on_class, self._on_instance = on_class, on_instance
        self.__doc__ = on_class.__func__.__doc__

    def __get__(self, obj: Any, cls: type) -> Callable[..., Any]:
        return self._on_class.__get__(None, cls) if obj is None else self._on_instance.__get__(obj, cls)


class Session(SessionLoop):
    """A Single-Context Glia study. Build with :meth:`create` or :meth:`resume`."""

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
        supervisor_config: SupervisorConfig | None = _DEFAULT_SUPERVISOR,
        approval: str = "auto",
        seed: int = 0,
        context_limit_tokens: int | None = None,
        toolbox: Any = None,
        researcher_config: AgentConfig | None = None,
        session_id: str | None = None,
        run_baseline: bool = True,
    ) -> "Session":
        """Start a new study in a fresh workspace ``workspace_root/session_id``.

        ``task``: a Task, a registered task name, or (with spaces) the task text itself.
        ``researcher_client``: an LLM client, a client spec (``"anthropic:claude-opus-4-5"``),
        a name in :data:`RESEARCHERS` (``"offline"``) or an object with ``step(messages)``.
        ``supervisor_client`` defaults to the Researcher's LLM client (none for a rule-based
        researcher); ``supervisor_config=None`` or ``supervisor_client=False`` disables it.
        ``budget`` defaults to the task's; ``context_limit_tokens`` to the client's window.
        ``toolbox``: a ready toolbox or ``callable(workspace, task, budget)`` (default:
        :class:`glia_nb.research.tools.ToolBox`). ``run_baseline``: evaluate the baseline (free)
        before the first turn, so the task text can quote its score.
        """
        b = wiring.build_new(
            task, workspace_root, researcher_client, registry=RESEARCHERS, supervisor_client=supervisor_client,
            budget=budget, supervisor_config=supervisor_config, approval=check_approval(approval), seed=seed,
            context_limit_tokens=context_limit_tokens, toolbox=toolbox, researcher_config=researcher_config,
            session_id=session_id, run_baseline=run_baseline,
        )
        journal = Journal.create(wiring.workspace_dir(b.workspace) / JOURNAL_NAME, b.header,
                                 secrets=b.parts.secrets)
        return cls(task=b.task, workspace=b.workspace, journal=journal, parts=b.parts, tracker=b.tracker,
                   approval=approval, run_baseline=run_baseline)

    @classmethod
    def _from_journal(
        cls,
        workspace_dir: str | Path,
        researcher_client: Any = None,
        *,
        supervisor_client: Any = None,
        budget: Budget | Any = None,
        supervisor_config: SupervisorConfig | None | str = "journal",
        approval: str | None = None,
        context_limit_tokens: int | None = None,
        toolbox: Any = None,
        researcher_config: AgentConfig | None = None,
        task: Any = None,
    ) -> "Session":
        """Rebuild a session from ``workspace_dir/journal.jsonl``, ready to ``start()`` or
        ``run()``: the conversation, the budget counters (simulations from experiment
        records, dollars and turns from llm_call records, active wall time), pending
        interventions and undelivered nudges. Settings default to the journal's;
        ``researcher_client`` to the journal's registered researcher, or ``provider:model``.
        """
        b = wiring.build_resumed(
            Path(workspace_dir) / JOURNAL_NAME, researcher_client, registry=RESEARCHERS,
            supervisor_client=supervisor_client, budget=budget, supervisor_config=supervisor_config,
            context_limit_tokens=context_limit_tokens, toolbox=toolbox, researcher_config=researcher_config, task=task,
        )
        state = b.state
        if approval is not None:
            state.approval = check_approval(approval)
        journal = Journal.open(Path(workspace_dir) / JOURNAL_NAME, secrets=b.parts.secrets)
        session = cls(task=b.task, workspace=b.workspace, journal=journal, parts=b.parts, tracker=b.tracker,
                      approval=b.header.get("approval", "auto"), run_baseline=bool(b.header.get("run_baseline", True)),
                      state=state)
        # The resumed record itself asks an ended study to go on (see glia_nb.research.fold).
        session._log(R.Resumed(dropped_bytes=journal.dropped_bytes, budget_used=b.tracker.snapshot(),
                               pending=tuple(state.pending), undelivered=tuple(state.outbox),
                               approval=session._approval))
        for call in state.unanswered_calls:  # killed mid-step: answer the calls that never returned
            session._log_message(Message.tool_result(
                call.id, "Interrupted: the session stopped before this tool returned.", name=call.name, is_error=True))
        return session

    def _unpause(self) -> None:
        """Let a paused session go on with the Researcher's next turn."""
        with self._cond:
            if not self._pause_requested:
                return
            self._pause_requested = False
            self._log(R.Control(kind="resume"))
            if self._status == "paused":
                self._set_status("running" if self._running else "created")
            self._cond.notify_all()

    resume = _hybrid(_from_journal, _unpause)

    # ------------------------------------------------------------------ state
    @property
    def status(self) -> str:
        """One of :data:`STATUSES`."""
        with self._cond:
            return self._status

    @property
    def path(self) -> Path:
        """The workspace directory (holds ``journal.jsonl``)."""
        return self.journal.path.parent

    @property
    def messages(self) -> list[Message]:
        """A copy of the Researcher's conversation (without the system prompt)."""
        with self._cond:
            return list(self._state.messages)

    @property
    def experiments(self) -> list[dict[str, Any]]:
        """The experiment records so far, oldest first."""
        with self._cond:
            return [dict(e) for e in self._state.experiments]

    @property
    def best(self) -> dict[str, Any] | None:
        """The best result so far, folded from the journal's records (the baseline counts, as
        experiment 0), or None. Costs no file access."""
        with self._cond:
            return self._state.best

    @property
    def baseline_score(self) -> float | None:
        """The baseline's score (the journal's, else the workspace's), or None."""
        with self._cond:
            return self._baseline_score()

    @property
    def lower_is_better(self) -> bool:
        """The objective's direction."""
        return self._state.lower_is_better

    @property
    def state(self) -> StudyState:
        """The folded state (read-only by contract: change it only through the journal)."""
        return self._state

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
        """Why the session ended: ``researcher_finished``, ``budget:<which>``,
        ``context_limit``, ``stop requested`` or ``error: <type>``."""
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
        if self._running:
            raise RuntimeError("this session is already running")
        if self._status in ENDED:  # started again: carry on from where it ended (see the fold)
            self._log(R.Restarted(previous=self._status))
        self._running, self._stop_requested = True, False
        self._set_status("running")

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the worker thread ends (at most ``timeout`` s); True if it has."""
        t = self._thread
        if t is None or t is threading.current_thread():
            return not self._running
        t.join(timeout)
        return not t.is_alive()

    def stop(self) -> None:
        """Ask the study to stop; it ends once the model call in flight (if any) returns."""
        with self._cond:
            if self._status in ENDED or self._stop_requested:
                return
            self._stop_requested = True
            self._log(R.Control(kind="stop"))
            if not self._running:
                self._end("stopped", "stop requested")
            self._cond.notify_all()

    def pause(self) -> None:
        """Hold the Researcher before its next turn until :meth:`resume`."""
        with self._cond:
            if self._pause_requested or self._status in ENDED:
                return
            self._pause_requested = True
            self._log(R.Control(kind="pause"))
            if self._running:
                self._set_status("paused")
            self._cond.notify_all()

    def nudge(self, text: str) -> None:
        """A person's message, delivered to the Researcher before its next turn."""
        text = str(text).strip()
        if not text:
            raise ValueError("empty nudge")
        with self._cond:
            self._log(R.Nudge(text=text))
            self._cond.notify_all()

    def subscribe(self, callback: Callable[[dict[str, Any]], None], *,
                  replay: bool = False) -> Callable[[], None]:
        """Call ``callback(event)`` for every journal record and status change. It runs on
        the thread that caused the event (usually the worker): widget code should only set
        traits or use ``Output.append_*``. Returns a function that unsubscribes.

        With ``replay=True`` the callback first receives every record already in the
        journal, in order, on the calling thread before ``subscribe`` returns, and then the
        live events: each journal record exactly once, in ``seq`` order."""
        target = _ReplayGate(callback) if replay else callback
        with self._cond:
            self._subscribers.append(target)
        if replay:
            # Read after registering, outside the lock: a record written meanwhile arrives
            # both ways and the gate drops the second copy by its seq.
            target.open(read_journal(self.journal.path)[1])

        def unsubscribe() -> None:
            with self._cond:
                if target in self._subscribers:
                    self._subscribers.remove(target)

        return unsubscribe

    # ------------------------------------------------------------------ approval queue
    def pending_interventions(self) -> list[Intervention]:
        """Supervisor interventions waiting for a person (manual approval), oldest first."""
        with self._cond:
            return list(self._state.pending.values())

    def approve(self, intervention_id: str) -> None:
        """Deliver a pending intervention to the Researcher as written."""
        with self._cond:
            iv = self._take_pending(intervention_id)
            self._log(R.InterventionApproved(id=iv.id))
            self._cond.notify_all()

    def edit(self, intervention_id: str, text: str) -> None:
        """Replace a pending intervention's text, then deliver it."""
        text = str(text).strip()
        if not text:
            raise ValueError("empty intervention text; use reject() to drop it")
        with self._cond:
            iv = self._take_pending(intervention_id)
            self._log(R.InterventionEdited(id=iv.id, text=text, original=iv.text))
            self._cond.notify_all()

    def reject(self, intervention_id: str) -> None:
        """Drop a pending intervention. Rejecting one raised when the Researcher called
        finish lets the finish stand (the session ends)."""
        with self._cond:
            iv = self._take_pending(intervention_id)
            self._log(R.InterventionRejected(id=iv.id))  # the fold lets a finish stand
            self._cond.notify_all()

    def set_approval_policy(self, approval: str) -> None:
        """Switch between ``'auto'`` and ``'manual'``; switching to auto approves what is
        pending."""
        with self._cond:
            self._log(R.ApprovalPolicy(approval=check_approval(approval)))
            if self._approval == "auto":
                for iv_id in list(self._state.pending):
                    self.approve(iv_id)
            self._cond.notify_all()

    def _take_pending(self, intervention_id: str) -> Intervention:
        try:
            return self._state.pending[intervention_id]
        except KeyError:
            raise KeyError(f"no pending intervention {intervention_id!r}") from None

    def close(self) -> None:
        """Stop the study (if running), wait for the worker and close the journal."""
        self.stop()
        self.wait(timeout=30)
        self.journal.restore_if_altered()  # whatever untrusted code left behind
        self.journal.close()

    def __repr__(self) -> str:
        return f"Session({str(self.path)!r}, status={self.status!r}, {self.tracker!r})"


class _ReplayGate:
    """A subscriber that holds live events until the journal has been replayed to its
    callback, then passes each journal record on once (by ``seq``) and everything else."""

    def __init__(self, callback: Callable[[dict[str, Any]], None]):
        self._callback = callback
        self._lock = threading.Lock()
        self._held: list[dict[str, Any]] | None = []
        self._last_seq = -1

    def __call__(self, event: dict[str, Any]) -> None:
        with self._lock:
            if self._held is not None:
                self._held.append(event)
            else:
                self._pass(event)

    def open(self, records: list[dict[str, Any]]) -> None:
        """Deliver the journal's records, then the live events held meanwhile."""
        with self._lock:
            held, self._held = self._held or [], None
            for event in [*records, *held]:
                self._pass(event)

    def _pass(self, event: dict[str, Any]) -> None:
        seq = event.get("seq")
        if seq is not None:
            if int(seq) <= self._last_seq:
                return
            self._last_seq = int(seq)
        self._callback(event)
