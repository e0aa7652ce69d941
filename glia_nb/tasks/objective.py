"""The objective of a task: which metric, which direction, which constraint.

:class:`Objective` is the one place that says which score is better (:meth:`Objective.is_better`),
how a summary becomes a score and how two scores form an improvement.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, TypeVar

DIRECTIONS = ("min", "max")


@dataclass(frozen=True)
class Objective:
    """The metric to optimise: a key of the aggregate summary and a direction.

    ``name`` is looked up in the summary over seeds (see :func:`glia_nb.evaluation.harness.aggregate`);
    ``direction`` is ``"min"`` (lower is better) or ``"max"``.
    """

    name: str = "mean_e2e_s"
    direction: str = "min"
    description: str = ("mean end-to-end latency (arrival to last output token), averaged over "
                        "requests within a seed and then over the evaluation seeds")
    unit: str = "s"
    constraint: str | None = None          # a summary metric that must stay <= constraint_max
    constraint_max: float | None = None
    constraint_description: str = ""

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"objective direction must be one of {DIRECTIONS}, got {self.direction!r}")
        if not self.name:
            raise ValueError("objective needs a metric name")
        if (self.constraint is None) != (self.constraint_max is None):
            raise ValueError("a constraint needs both a metric name and constraint_max")

    def feasible(self, summary_over_seeds: Mapping[str, Any]) -> bool:
        """True when there is no constraint or its metric is within ``constraint_max``."""
        if self.constraint is None:
            return True
        value = float(summary_over_seeds.get(self.constraint, float("nan")))
        return math.isfinite(value) and value <= self.constraint_max

    def score(self, summary_over_seeds: Mapping[str, Any]) -> float:
        """The objective's value in ``summary_over_seeds`` (NaN stays NaN).  With a
        constraint, a design that violates it scores the worst value there is (``inf`` when
        minimising, ``-inf`` when maximising), so it is never better than a feasible one."""
        if self.name not in summary_over_seeds:
            raise KeyError(f"objective {self.name!r} is not in the summary; available: "
                           f"{', '.join(sorted(summary_over_seeds))}")
        if not self.feasible(summary_over_seeds):
            return math.inf if self.direction == "min" else -math.inf
        return float(summary_over_seeds[self.name])

    def text(self) -> str:
        """One sentence: what is optimised, and subject to what."""
        direction = "lower" if self.direction == "min" else "higher"
        out = (("Minimise" if self.direction == "min" else "Maximise")
               + f" **{self.name}**: the {self.description} ({self.unit}; {direction} is better).")
        if self.constraint:
            out += (f" Subject to **{self.constraint} <= {self.constraint_max:g}**"
                    + (f" ({self.constraint_description})" if self.constraint_description else "")
                    + ": a design that violates it scores "
                    + ("+inf" if self.direction == "min" else "-inf") + ".")
        return out

    # -------------------------------------------------------------- comparing scores
    # Every "which score is better" question in the package is answered here, so that a
    # maximising task (throughput) is never ranked as if lower were better.
    @property
    def lower_is_better(self) -> bool:
        """True for a minimised objective."""
        return self.direction == "min"

    @property
    def worst(self) -> float:
        """The worst score there is (what a constraint violation scores)."""
        return math.inf if self.lower_is_better else -math.inf

    def is_better(self, a: float | None, b: float | None) -> bool:
        """True when score ``a`` is strictly better than ``b``.  A missing or non-finite
        ``a`` is never better; any finite ``a`` beats a missing or non-finite ``b``."""
        if not _finite(a):
            return False
        if not _finite(b):
            return True
        return a < b if self.lower_is_better else a > b

    def reaches(self, score: float | None, target: float | None) -> bool:
        """True when ``score`` is at least as good as ``target`` (False without a target)."""
        if target is None or not _finite(score):
            return False
        return score <= target if self.lower_is_better else score >= target

    def sort_key(self, score: float | None) -> tuple[int, float]:
        """A key that sorts scores best first (missing and non-finite scores last)."""
        if not _finite(score):
            return (1, 0.0)
        return (0, float(score) if self.lower_is_better else -float(score))

    def loss(self, score: float | None) -> float:
        """``score`` turned into a number where lower is better (``inf`` for a missing or
        non-finite score): for numeric search over designs (softmax sampling, sorting)."""
        if not _finite(score):
            return math.inf
        return float(score) if self.lower_is_better else -float(score)

    def best_of(self, items: Iterable[T], score: Callable[[T], Any] = lambda x: x) -> T | None:
        """The item with the best finite ``score(item)`` (the earliest on ties), or None."""
        best, best_score = None, None
        for item in items:
            s = score(item)
            if best is None and _finite(s) or self.is_better(s, best_score):
                best, best_score = item, s
        return best

    def ranked(self, items: Iterable[T], score: Callable[[T], Any] = lambda x: x) -> list[T]:
        """``items`` best first (stable; missing and non-finite scores last)."""
        return sorted(items, key=lambda item: self.sort_key(score(item)))

    def best_so_far(self, scores: Iterable[float | None], start: float | None = None) -> list[float]:
        """The running best of ``scores`` (NaN until a finite score is known), one value
        per score; ``start`` is the best known before the first score."""
        cur = float(start) if _finite(start) else math.nan
        out = []
        for s in scores:
            if self.is_better(s, cur):
                cur = float(s)
            out.append(cur)
        return out

    def improvement(self, score: float | None, baseline: float | None) -> float | None:
        """Relative improvement over ``baseline``: positive is better, 0.25 means 25 %
        (None when either score is missing or not finite, or the baseline is 0)."""
        if not (_finite(score) and _finite(baseline)) or baseline == 0:
            return None
        gain = (baseline - score) if self.lower_is_better else (score - baseline)
        return gain / abs(baseline)

    def ratio(self, score: float | None, baseline: float | None) -> float | None:
        """How many times better ``score`` is than ``baseline`` (2.0: twice as good, below 1:
        worse); None when either is missing, not finite or not positive."""
        if not (_finite(score) and _finite(baseline)) or score <= 0 or baseline <= 0:
            return None
        return baseline / score if self.lower_is_better else score / baseline


T = TypeVar("T")


def _finite(x: Any) -> bool:
    try:
        return x is not None and not isinstance(x, bool) and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


__all__ = ["Objective", "DIRECTIONS"]
