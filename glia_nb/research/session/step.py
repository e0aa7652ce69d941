"""A pace a person can follow: step mode and a minimum turn length for a session.

``session.pause_before_experiment = True`` holds each ``run_experiment`` call before it
runs: the session journals a ``step_hold`` record (the experiment's name, hypothesis and
the policy's change since the last experiment), shows status ``waiting_step`` and waits
for :meth:`StepMode.release_step`: run it (with the hypothesis a person edited) or skip it
(the Researcher gets the person's reason as the tool's result). ``session.pace_s`` makes
each Researcher turn last at least that many seconds. Both can change while it runs.

The two record types are views' events (the transcript, a replay); the study's fold does
not need them, so a resumed session ignores them like any type it does not know.
"""
from __future__ import annotations

import difflib
import time
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping

from glia_nb.research import records as R
from glia_nb.research.session import wiring

__all__ = ["StepHold", "StepReleased", "StepGate", "StepMode"]


@dataclass(frozen=True)
class StepHold(R.Record):
    """Step mode held an experiment for a person."""

    TYPE: ClassVar[str] = "step_hold"
    name: str = ""
    hypothesis: str = ""
    diff: str = ""


@dataclass(frozen=True)
class StepReleased(StepHold):
    """A person let the held experiment run (``action`` "run") or skipped it (``note`` says why)."""

    TYPE: ClassVar[str] = "step_released"
    action: str = "run"
    note: str | None = None


class StepGate:
    """Between the budget guard and the toolbox: lets the session hold a ``run_experiment``
    call, which then runs with the arguments it returns, or not at all."""

    def __init__(self, inner: Any, before: Callable[[Mapping[str, Any]], Any]) -> None:
        self.inner, self.before = inner, before

    def call(self, name: str, arguments: Mapping[str, Any]) -> Any:
        """Run the tool, after the session's hold for an experiment."""
        if name == wiring.RUN_EXPERIMENT:
            arguments = self.before(arguments)
            if isinstance(arguments, wiring.ToolResult):
                return arguments
        return self.inner.call(name, arguments)

    def __getattr__(self, item: str) -> Any:
        return getattr(self.inner, item)


class StepMode:
    """Mixed into the session loop, which provides ``_cond``, ``_log``, ``_set_status``,
    ``_stop_requested``, ``_pause_requested``, ``tracker``, ``workspace`` and ``journal``."""

    def _init_step_mode(self, toolbox: Any) -> None:
        self.pause_before_experiment = False
        self.pace_s = 0.0
        self._step: tuple[str, str] | None = None
        self._holding = False
        self._step_hypothesis: str | None = None
        self._last_turn_at = 0.0
        toolbox.inner = StepGate(toolbox.inner, self._before_experiment)

    def _keep_pace(self) -> None:
        """Wait until pace_s has passed since the last turn began (a stop or pause ends it)."""
        with self._cond:
            deadline = self._last_turn_at + float(self.pace_s or 0.0)
            while not (self._stop_requested or self._pause_requested) and time.monotonic() < deadline:
                self._cond.wait(deadline - time.monotonic())
            self._last_turn_at = time.monotonic()

    def _before_experiment(self, arguments: Mapping[str, Any]) -> Any:
        """In step mode, journal the experiment the Researcher wants to run, wait for
        :meth:`release_step`, and run it (with an edited hypothesis) or say why not."""
        if not self.pause_before_experiment:
            return arguments
        name, hypothesis = str(arguments.get("name", "")), str(arguments.get("hypothesis", ""))
        with self._cond:  # held before anyone hears of it: a release may come at once
            self._holding, self._step = True, None
        self._log(StepHold(name=name, hypothesis=hypothesis, diff=self._policy_diff()))
        with self._cond:
            while self._step is None and not self._stop_requested and self.pause_before_experiment:
                self.tracker.stop_clock()  # a person's time is not the team's budget
                self._set_status("waiting_step")
                self._cond.wait(timeout=1.0)
            action, text = self._step or ("stop" if self._stop_requested else "run", hypothesis)
            self._holding, self._step = False, None
            self.tracker.start_clock()
            self._set_status("running")
        text = text.strip() or hypothesis
        self._log(StepReleased(name=name, hypothesis=text if action == "run" else hypothesis, action=action,
                               note=text if action == "skip" else None))
        if action == "stop":
            return wiring.ToolResult("The study is stopping; the experiment was not run.", True)
        if action == "skip":
            return wiring.ToolResult(f"A person steering the study held this experiment and skipped it: {text}", True)
        self._step_hypothesis = text  # the experiment's record carries the edited hypothesis
        return {**arguments, "hypothesis": text}

    def _edited_arguments(self, arguments: Mapping[str, Any]) -> Mapping[str, Any]:
        """``arguments`` with the hypothesis a person set in step mode (once)."""
        edited, self._step_hypothesis = self._step_hypothesis, None
        return {**arguments, "hypothesis": edited} if edited else arguments

    def release_step(self, action: str = "run", *, hypothesis: str | None = None, note: str | None = None) -> None:
        """Let the experiment held in step mode run (``hypothesis`` replaces its hypothesis)
        or skip it (``note`` tells the Researcher why)."""
        if action not in ("run", "skip"):
            raise ValueError(f"action must be 'run' or 'skip', got {action!r}")
        if action == "skip" and not (note or "").strip():
            raise ValueError("say why the experiment is skipped; the Researcher reads it")
        with self._cond:
            if not self._holding:
                raise RuntimeError("no experiment is held (step mode holds the next one)")
            self._step = (action, str((hypothesis if action == "run" else note) or ""))
            self._cond.notify_all()

    def _policy_diff(self, limit: int = 120) -> str:
        """The policy file's change since the last experiment's snapshot (or the start)."""
        path = getattr(self.workspace, "policy_path", None)
        if path is None or not path.exists():
            return ""
        with self._cond:
            last = self._state.experiments[-1] if self._state.experiments else None
        before: list[str] = []
        if last and last.get("folder"):
            snap = self.journal.path.parent / str(last["folder"]) / path.name
            before = snap.read_text().splitlines() if snap.exists() else []
        lines = list(difflib.unified_diff(before, path.read_text().splitlines(), "last experiment", "to run",
                                          lineterm="", n=1))
        return "\n".join(lines[:limit]) + (f"\n... {len(lines) - limit} more lines" if len(lines) > limit else "")
