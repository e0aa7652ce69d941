"""The budget of a study (simulations, dollars, wall time, Researcher turns) and a
thread-safe tracker of what has been spent.

**One simulation is one evaluation of a design over the task's evaluation seeds** — one
``run_experiment`` of a Glia session, one candidate of a search baseline, one unit of
``glia study --budget-sims`` and ``glia compare --budget-sims``. That is the unit a designer
decides to spend (the paper budgets its methods in it), and it does not change when a task
evaluates over more or fewer seeds; how many seeds an experiment ran is recorded beside it
(the ledger's ``seeds`` column) but is not what the budget counts.

The tracker only counts; the session decides what to do when a limit is reached. Every
counter can be seeded from a journal (``BudgetTracker.restore``) so that a resumed study
keeps spending from where it stopped rather than starting afresh.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Mapping

__all__ = ["Budget", "BudgetTracker"]


@dataclass(frozen=True)
class Budget:
    """Limits of one study; ``None`` (or ``math.inf``, stored as None) means unlimited.

    ``max_simulations`` counts evaluations of a design over the task's seeds (see the
    module docstring), ``max_usd`` model dollars of Researcher and Supervisor together,
    ``max_wall_s`` seconds the study is actively running (paused time and time waiting for a
    person's approval do not count: that is the person's time, not the team's),
    ``max_turns`` Researcher calls.
    """

    max_simulations: int | None = None
    max_usd: float | None = None
    max_wall_s: float | None = None
    max_turns: int | None = None

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
                raise ValueError(f"Budget.{name} must be a number >= 0 or None, got {value!r}")
            if value < 0:
                raise ValueError(f"Budget.{name} must be >= 0 or None, got {value!r}")
            if math.isinf(value):
                object.__setattr__(self, name, None)
            elif name in ("max_simulations", "max_turns"):
                object.__setattr__(self, name, int(value))

    def to_dict(self) -> dict[str, Any]:
        """JSON-native dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "Budget":
        """Rebuild from :meth:`to_dict` output, tolerantly: unknown keys are ignored and the
        older spelling ``max_dollars`` (journals written before the budgets were merged)
        reads as ``max_usd``."""
        d = dict(d or {})
        if d.get("max_usd") is None and d.get("max_dollars") is not None:
            d["max_usd"] = d["max_dollars"]
        return cls(**{k: d.get(k) for k in _FIELDS})

    @classmethod
    def coerce(cls, value: Any) -> "Budget":
        """A Budget from None (unlimited), a Budget or a mapping (see :meth:`from_dict`)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            return cls.from_dict(value)
        raise TypeError(f"a budget must be a Budget, a mapping or None, not {type(value).__name__}")

    def split(self, n: int) -> list["Budget"]:
        """``n`` budgets that together spend this one: simulations as evenly as possible
        (the first ``max_simulations % n`` get one more) and dollars in equal parts; wall
        time and turns stay per-session limits."""
        if n < 1:
            raise ValueError("split needs n >= 1")
        out = []
        for i in range(n):
            sims = None if self.max_simulations is None else \
                self.max_simulations // n + (1 if i < self.max_simulations % n else 0)
            usd = None if self.max_usd is None else self.max_usd / n
            out.append(replace(self, max_simulations=sims, max_usd=usd))
        return out

    def minus(self, simulations: int = 0, usd: float = 0.0) -> "Budget":
        """What is left of this budget after spending ``simulations`` and ``usd`` (never
        below zero)."""
        return replace(
            self,
            max_simulations=None if self.max_simulations is None
            else max(0, self.max_simulations - int(simulations)),
            max_usd=None if self.max_usd is None else max(0.0, self.max_usd - float(usd)))


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
        """Count ``n`` simulations (one per recorded experiment)."""
        with self._lock:
            self._simulations += int(n)

    def claim_simulation(self) -> int | None:
        """Reserve one simulation before running it: its 1-based number, or None when the
        budget is spent (atomic, so concurrent callers can never exceed the budget)."""
        with self._lock:
            cap = self.budget.max_simulations
            if cap is not None and self._simulations >= cap:
                return None
            self._simulations += 1
            return self._simulations

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
