"""Budgets of a study (simulations, dollars, wall time, Researcher turns) and a
thread-safe tracker of what has been spent.

The tracker only counts; the session decides what to do when a limit is reached. Every
counter can be seeded from a journal (``BudgetTracker.restore``) so that a resumed study
keeps spending from where it stopped rather than starting afresh.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping

__all__ = ["Budget", "BudgetTracker"]


@dataclass(frozen=True)
class Budget:
    """Limits of one study; ``None`` means unlimited.

    ``max_simulations`` counts experiments run through the toolbox (the paper's unit),
    ``max_usd`` model dollars of Researcher and Supervisor together, ``max_wall_s`` seconds
    the study is actively running (paused time and time waiting for a person's approval do
    not count: that is the person's time, not the team's), ``max_turns`` Researcher calls.
    """

    max_simulations: int | None = None
    max_usd: float | None = None
    max_wall_s: float | None = None
    max_turns: int | None = None

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value is not None and value < 0:
                raise ValueError(f"Budget.{name} must be >= 0 or None, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-native dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "Budget":
        """Rebuild from :meth:`to_dict` output (unknown keys are ignored)."""
        d = dict(d or {})
        return cls(**{k: d.get(k) for k in _FIELDS})

    @classmethod
    def coerce(cls, value: Any) -> "Budget":
        """A Budget from None (unlimited), a Budget, a mapping, or any object with the same
        attribute names, such as a task's default budget (whose ``max_dollars`` means
        ``max_usd``)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        d = dict(value) if isinstance(value, Mapping) else {
            k: getattr(value, k) for k in (*_FIELDS, "max_dollars") if hasattr(value, k)
        }
        if d.get("max_usd") is None and d.get("max_dollars") is not None:
            d["max_usd"] = d["max_dollars"]
        return cls.from_dict(d)


_FIELDS = ("max_simulations", "max_usd", "max_wall_s", "max_turns")


class BudgetTracker:
    """Counts simulations, dollars, turns and active wall time against a :class:`Budget`.

    All methods are safe to call from any thread (the session's worker adds, a notebook
    widget reads). The wall clock runs only between :meth:`start_clock` and
    :meth:`stop_clock`.
    """

    def __init__(self, budget: Budget | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.budget = budget or Budget()
        self._clock = clock
        self._lock = threading.Lock()
        self._simulations = 0
        self._usd = 0.0
        self._turns = 0
        self._calls = 0
        self._wall_before = 0.0  # seconds banked by earlier clock intervals (and earlier runs)
        self._started_at: float | None = None

    # -- counting --------------------------------------------------------------------------
    def add_simulations(self, n: int = 1) -> None:
        """Count ``n`` simulations (called once per recorded experiment)."""
        with self._lock:
            self._simulations += int(n)

    def add_cost(self, usd: float) -> None:
        """Count one model call and its dollar cost."""
        with self._lock:
            self._usd += float(usd)
            self._calls += 1

    def add_turn(self) -> None:
        """Count one Researcher turn."""
        with self._lock:
            self._turns += 1

    def restore(self, *, simulations: int = 0, usd: float = 0.0, turns: int = 0, calls: int = 0, wall_s: float = 0.0) -> None:
        """Set the counters to values replayed from a journal (resume)."""
        with self._lock:
            self._simulations, self._usd, self._turns, self._calls = int(simulations), float(usd), int(turns), int(calls)
            self._wall_before = float(wall_s)
            if self._started_at is not None:
                self._started_at = self._clock()

    # -- wall clock ------------------------------------------------------------------------
    def start_clock(self) -> None:
        """Start (or keep) the wall clock running."""
        with self._lock:
            if self._started_at is None:
                self._started_at = self._clock()

    def stop_clock(self) -> None:
        """Stop the wall clock, banking the elapsed interval."""
        with self._lock:
            if self._started_at is not None:
                self._wall_before += self._clock() - self._started_at
                self._started_at = None

    # -- reading ---------------------------------------------------------------------------
    @property
    def simulations(self) -> int:
        with self._lock:
            return self._simulations

    @property
    def usd(self) -> float:
        with self._lock:
            return self._usd

    @property
    def turns(self) -> int:
        with self._lock:
            return self._turns

    @property
    def wall_s(self) -> float:
        with self._lock:
            return self._wall_locked()

    def _wall_locked(self) -> float:
        running = self._clock() - self._started_at if self._started_at is not None else 0.0
        return self._wall_before + running

    def simulations_left(self) -> int | None:
        """Simulations still allowed (None when unlimited)."""
        with self._lock:
            cap = self.budget.max_simulations
            return None if cap is None else max(0, cap - self._simulations)

    def exhausted(self) -> str | None:
        """The first limit reached, as a short reason (``"simulations"``, ``"dollars"``,
        ``"wall_time"``, ``"turns"``), or None while every limit has room."""
        b = self.budget
        with self._lock:
            if b.max_simulations is not None and self._simulations >= b.max_simulations:
                return "simulations"
            if b.max_usd is not None and self._usd >= b.max_usd:
                return "dollars"
            if b.max_wall_s is not None and self._wall_locked() >= b.max_wall_s:
                return "wall_time"
            if b.max_turns is not None and self._turns >= b.max_turns:
                return "turns"
        return None

    def snapshot(self) -> dict[str, Any]:
        """Used and limit of every counter, JSON-native (for the journal and widgets)."""
        with self._lock:
            used = {
                "simulations": self._simulations,
                "usd": self._usd,
                "turns": self._turns,
                "llm_calls": self._calls,
                "wall_s": round(self._wall_locked(), 3),
            }
        return {**used, "limits": self.budget.to_dict()}

    def describe(self) -> str:
        """One line of used / limit, e.g. for the Supervisor's context."""
        s, lim = self.snapshot(), self.budget

        def part(label: str, used: str, cap: Any, fmt: str) -> str:
            return f"{label} {used}" + ("" if cap is None else f" of {format(cap, fmt)}")

        return ", ".join([
            part("simulations", str(s["simulations"]), lim.max_simulations, "d"),
            part("dollars", f"{s['usd']:.2f}", lim.max_usd, ".2f"),
            part("turns", str(s["turns"]), lim.max_turns, "d"),
            part("seconds", f"{s['wall_s']:.0f}", lim.max_wall_s, ".0f"),
        ])

    def __repr__(self) -> str:
        s = self.snapshot()
        return (
            f"BudgetTracker(simulations={s['simulations']}, usd={s['usd']:.4f}, "
            f"turns={s['turns']}, wall_s={s['wall_s']:.1f})"
        )
