"""Research tasks: what the Researcher is asked to improve, how it is scored, and its rules.

A :class:`Task` binds a scenario preset (:mod:`workloads.scenarios`) to a layer of the
serving stack (``"router"``, ``"batch_policy"`` or ``"autoscaler"``), an :class:`Objective`
(optionally with a constraint), the evaluation seeds, the
baseline policy, the file and class the Researcher edits, the rules and a :class:`Budget`.
:meth:`Task.render_text` turns all of that into the Researcher's task text; the parts that
describe code (the router's view, the telemetry columns) are generated from the code so that
the text cannot drift from what the simulator really offers.

    from glia_nb.tasks import get_task
    task = get_task("routing-a10")
    print(task.render_text(baseline_score=27.7))
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from workloads import get_scenario

from glia_nb.tasks.budget import Budget
from glia_nb.tasks.layers import DEFAULT_ROUTER_RULES, LAYERS
from glia_nb.tasks.objective import Objective
from glia_nb.tasks.render import render_policy_template, render_task_text


def default_budget() -> Budget:
    """A session's default limits: 30 simulations (evaluations over the task's seeds), $20
    of model usage, three hours, 250 Researcher turns."""
    return Budget(max_simulations=30, max_usd=20.0, max_wall_s=3 * 3600.0, max_turns=250)


@dataclass(frozen=True)
class Task:
    """A research task: scenario + layer + objective + seeds + baseline + rules + budget.

    ``eval_seeds`` defaults to the scenario's first ``num_eval_seeds`` seeds (three keeps
    an experiment to seconds).  ``duration_s`` overrides the scenario's trace duration
    (tests and quick studies use a short one).  ``policy_file`` and ``class_name`` name what
    the Researcher edits; ``baseline`` is a router spec understood by
    :func:`sim_core.routers.make_router`.
    """

    name: str
    scenario: str
    layer: str = "router"
    objective: Objective = field(default_factory=Objective)
    eval_seeds: tuple[int, ...] | None = None
    num_eval_seeds: int = 3
    duration_s: float | None = None
    baseline: str = "llq"
    policy_file: str = "policy.py"
    class_name: str = "CustomRouter"
    rules: tuple[str, ...] = DEFAULT_ROUTER_RULES
    budget: Budget = field(default_factory=default_budget)
    target_improvement: float = 0.25
    title: str = ""
    # The rest of the stack while one layer is under design (registry specs; None: the
    # simulator's default — LLQ routing, arrival order, no autoscaler).
    fixed_router: str | None = None
    fixed_batch_policy: str | None = None
    fixed_autoscaler: str | None = None
    users: int | None = None      # closed-loop scenarios: override the number of users
    notes: str = ""

    def __post_init__(self) -> None:
        if self.layer not in LAYERS:
            raise ValueError(f"unknown layer {self.layer!r}; choose one of {', '.join(LAYERS)}")
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\.py", self.policy_file):
            raise ValueError(f"policy_file must be a plain file name ending in .py, got {self.policy_file!r}")
        if not self.class_name.isidentifier():
            raise ValueError(f"class_name must be a Python identifier, got {self.class_name!r}")
        if self.eval_seeds is not None:
            seeds = tuple(int(s) for s in self.eval_seeds)
            if not seeds or len(set(seeds)) != len(seeds):
                raise ValueError(f"eval_seeds must be distinct and non-empty, got {self.eval_seeds}")
            object.__setattr__(self, "eval_seeds", seeds)
        if self.num_eval_seeds < 1:
            raise ValueError("num_eval_seeds must be >= 1")
        if self.duration_s is not None and not (math.isfinite(self.duration_s) and self.duration_s > 0):
            raise ValueError(f"duration_s must be finite and > 0, got {self.duration_s}")
        object.__setattr__(self, "rules", tuple(self.rules))
        object.__setattr__(self, "budget", Budget.coerce(self.budget))

    # ------------------------------------------------------------------ derived facts
    def load_scenario(self):
        """The :class:`~workloads.scenarios.Scenario`, with ``duration_s`` and (closed loops)
        ``users`` applied."""
        return get_scenario(self.scenario, duration_s=self.duration_s, users=self.users)

    @property
    def seeds(self) -> tuple[int, ...]:
        """The evaluation seeds."""
        if self.eval_seeds is not None:
            return self.eval_seeds
        return tuple(self.load_scenario().seeds[: self.num_eval_seeds])

    @property
    def policy_spec(self) -> str:
        """The router spec of the Researcher's file, relative to the workspace."""
        return f"{self.policy_file}:{self.class_name}"

    def score(self, summary_over_seeds: Mapping[str, Any]) -> float:
        """Shorthand for ``self.objective.score(summary_over_seeds)``."""
        return self.objective.score(summary_over_seeds)

    def stack_for(self, policy) -> dict:
        """``simulate`` keyword arguments with ``policy`` in this task's layer and the fixed
        parts of the stack elsewhere: ``{"router", "batch_policy", "autoscaler"}``."""
        stack = {lay.simulate_kw: getattr(self, f"fixed_{lay.name}") or lay.stack_default
                 for lay in LAYERS.values()}
        stack[LAYERS[self.layer].simulate_kw] = policy
        return stack

    def benchmark_command(self, out_dir: str = "experiments/NNN") -> str:
        """The ``glia simulate`` command equivalent to one evaluation.

        The CLI takes a seed *count* (the scenario's first N seeds); with custom
        ``eval_seeds`` that are not such a prefix the command is only an approximation."""
        flags = {lay.simulate_kw: lay.cli_flag for lay in LAYERS.values()}
        parts = [f"{flags[k]} {v}" for k, v in self.stack_for(self.policy_spec).items() if v]
        cmd = (f"glia simulate --scenario {self.scenario} {' '.join(parts)} "
               f"--seeds {len(self.seeds)} --json")
        if self.users:
            cmd += f" --users {self.users}"
        if self.duration_s:
            cmd += f" --duration {self.duration_s:g}"
        return cmd + f" --out {out_dir}"

    def replace(self, **changes) -> "Task":
        """A copy with some fields changed, e.g. ``task.replace(duration_s=60)``."""
        return replace(self, **changes)

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """A JSON-native dict (round-trips through :meth:`from_dict`)."""
        d = dataclasses.asdict(self)
        d["rules"] = list(self.rules)
        d["eval_seeds"] = list(self.eval_seeds) if self.eval_seeds is not None else None
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Task":
        """Rebuild a task from :meth:`to_dict` output (unknown keys are rejected)."""
        d = dict(d)
        known = {f.name for f in dataclasses.fields(cls)}
        extra = set(d) - known
        if extra:
            raise ValueError(f"unknown task fields: {', '.join(sorted(extra))}")
        if isinstance(d.get("objective"), Mapping):
            d["objective"] = Objective(**d["objective"])
        if isinstance(d.get("budget"), Mapping):
            d["budget"] = Budget.from_dict(d["budget"])
        if d.get("eval_seeds") is not None:
            d["eval_seeds"] = tuple(d["eval_seeds"])
        if "rules" in d:
            d["rules"] = tuple(d["rules"])
        return cls(**d)

    # ------------------------------------------------------------------ task text
    def render_text(self, baseline_score: float | None = None) -> str:
        """The Researcher's task text (Markdown), with the baseline's score if known."""
        return render_task_text(self, baseline_score)

    def render_policy_template(self) -> str:
        """The starting policy file (the baseline, named ``class_name``)."""
        return render_policy_template(self)


__all__ = ["Task", "Budget", "default_budget"]
