"""What a session's parts must provide: small protocols, checked once when a session is built.

A :class:`~glia_nb.research.session.session.Session` is assembled from a toolbox, a
Researcher, an optional Supervisor and a workspace. Each is named here by the methods and
attributes the session calls, so a stand-in (a test fake, a rule-based researcher, the
offline Supervisor) knows what to implement and the session never probes names or
signatures at run time.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

from glia_nb.llm.types import Message, ToolSpec

__all__ = ["BaselineRunner", "PlainWorkspace", "ResearcherLike", "SupervisorLike", "ToolBoxLike", "ToolResultLike",
           "WorkspaceLike", "require"]


@runtime_checkable
class ToolResultLike(Protocol):
    """What a tool returns: text for the model, an error flag and optional data
    (``run_experiment``'s data is read by :meth:`glia_nb.research.records.Experiment.from_tool_result`)."""

    text: str
    is_error: bool
    data: Any


@runtime_checkable
class ToolBoxLike(Protocol):
    """The Researcher's tools (:class:`glia_nb.research.tools.ToolBox` is one)."""

    def specs(self) -> list[ToolSpec]: ...

    def call(self, name: str, arguments: Mapping[str, Any]) -> ToolResultLike: ...


@runtime_checkable
class BaselineRunner(Protocol):
    """A toolbox that can also evaluate the task's baseline (free of the budget); its
    result has ``ok``, ``score``, ``simulations``, ``error`` and ``summary``."""

    def run_baseline(self) -> Any: ...


@runtime_checkable
class ResearcherLike(Protocol):
    """One Researcher step over the conversation so far. ``on_event`` (may be ignored)
    hears ``("reply", {"completion"})`` and ``("tool", {"message", ...})`` as they happen."""

    def step(self, messages: Sequence[Message], on_event: Any = None) -> Any: ...


@runtime_checkable
class SupervisorLike(Protocol):
    """Decides when to review (a trigger name or None) and reviews
    (:class:`glia_nb.research.supervisor.Supervisor` and the offline one are two)."""

    provider: str
    model: str

    def should_review(self, state: Any) -> str | None: ...

    def review(self, context: Any) -> Any: ...


@runtime_checkable
class WorkspaceLike(Protocol):
    """The session's folder: where the journal goes, the baseline score it knows (None when
    unknown) and its experiment ledger as text for the Supervisor ("" when it keeps none)."""

    path: Path

    @property
    def baseline_score(self) -> float | None: ...

    def ledger_text(self) -> str: ...


@dataclass(frozen=True)
class PlainWorkspace:
    """The workspace of a plain-text task (quick experiments, tests): a folder and nothing
    else; the Supervisor's ledger is built from the journal's experiment records."""

    path: Path
    baseline_score: float | None = None

    def ledger_text(self) -> str:
        """No ledger of its own."""
        return ""


_NEEDS = {"ToolBoxLike": ("specs", "call"), "ResearcherLike": ("step",),
          "SupervisorLike": ("should_review", "review", "provider", "model"),
          "WorkspaceLike": ("path", "baseline_score", "ledger_text")}


def require(obj: Any, protocol: type, what: str) -> Any:
    """``obj`` if it provides ``protocol``; else a one-line TypeError naming what is missing."""
    if isinstance(obj, protocol):
        return obj
    missing = [n for n in _NEEDS.get(protocol.__name__, ()) if not hasattr(obj, n)]
    raise TypeError(f"{what} ({type(obj).__name__}) lacks {', '.join(missing) or protocol.__name__}: "
                    f"see glia_nb.research.session.contracts.{protocol.__name__}")
