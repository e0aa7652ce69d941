"""The objective of a task: which metric, which direction, which constraint.

:class:`Objective` is the one place that says which score is better (:meth:`Objective.is_better`),
how a summary becomes a score and how two scores form an improvement.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

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

    def is_better(self, a: float, b: float) -> bool:
        """True when score ``a`` is strictly better than ``b`` (NaN is never better)."""
        if not math.isfinite(a):
            return False
        if not math.isfinite(b):
            return True
        return a < b if self.direction == "min" else a > b

    def improvement(self, score: float, baseline: float) -> float:
        """Relative improvement over ``baseline``: positive is better, 0.25 means 25 %."""
        if not (math.isfinite(score) and math.isfinite(baseline)) or baseline == 0:
            return float("nan")
        gain = (baseline - score) if self.direction == "min" else (score - baseline)
        return gain / abs(baseline)


__all__ = ["Objective", "DIRECTIONS"]
