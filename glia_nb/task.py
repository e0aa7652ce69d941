"""Research tasks: what the Researcher is asked to improve, how it is scored, and its rules.

A :class:`Task` binds a scenario preset (:mod:`workloads.scenarios`) to a layer of the
serving stack (``"router"``, ``"batch_policy"`` or ``"autoscaler"``), an :class:`Objective`
(optionally with a constraint), the evaluation seeds, the
baseline policy, the file and class the Researcher edits, the rules and a :class:`Budget`.
:meth:`Task.render_text` turns all of that into the Researcher's task text; the parts that
describe code (the router's view, the telemetry columns) are generated from the code so that
the text cannot drift from what the simulator really offers.

    from glia_nb.task import get_task
    task = get_task("routing-a10")
    print(task.render_text(baseline_score=27.7))
"""
from __future__ import annotations

import dataclasses
import inspect
import math
import re
from dataclasses import dataclass, field, replace
from importlib import resources
from string import Template
from types import MappingProxyType
from typing import Any, Mapping

LAYERS = ("router", "batch_policy", "autoscaler")
DIRECTIONS = ("min", "max")

# Columns of SimResult.requests / the CSVs written by SimResult.write_artifacts.  Spelled out
# here (rather than computed by running a simulation) so rendering stays instant; a test
# checks them against a real run.
REQUESTS_COLUMNS = (
    "request_id", "arrived_at", "routed_at", "first_scheduled_at", "first_token_at",
    "completed_at", "replica", "prompt_tokens", "decode_tokens", "final_prompt_tokens",
    "restarts", "tokens_recomputed", "e2e_s", "ttft_s", "tpot_s", "global_queue_s",
    "replica_queue_s", "prefill_s", "decode_s", "lost_to_restarts_s")
GS_LOG_COLUMNS = ("time", "replica_id", "num_pending_requests", "num_active_requests",
                  "num_allocated_blocks", "num_blocks", "state", "memory_usage_percent")
REQS_LOG_COLUMNS = ("time", "replica_id", "request_id", "num_prefill_tokens",
                    "num_decode_tokens")

DEFAULT_ROUTER_RULES = (
    "Change only the router: edit the policy file. Do not modify the simulator, the replica "
    "batch scheduler, the workload or the evaluation.",
    "The router may use only what `reset` and `route` receive. Output (decode) lengths are "
    "unknown in a real system; the view has no such field, and the router must not obtain "
    "them any other way (no reading trace or telemetry files, no per-request values copied "
    "from earlier runs, no inspecting the simulator's internals).",
    "The router must be an online policy: the same code must work on traffic it has never "
    "seen, not only on the evaluation seeds.",
    "No network access and no background processes; keep each evaluation within its time "
    "and memory limits.",
)


@dataclass(frozen=True)
class Objective:
    """The metric to optimise: a key of the aggregate summary and a direction.

    ``name`` is looked up in the summary over seeds (see :func:`glia_nb.sandbox.aggregate`);
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


@dataclass(frozen=True)
class Budget:
    """Default limits of one research session (the session may override them)."""

    max_simulations: int = 90      # seeds simulated through run_experiment
    max_dollars: float = 20.0      # LLM spend
    max_wall_s: float = 3 * 3600.0
    max_turns: int = 250           # Researcher turns

    def __post_init__(self) -> None:
        if self.max_simulations < 0 or self.max_dollars < 0 or self.max_wall_s <= 0 \
                or self.max_turns < 1:
            raise ValueError(f"invalid budget {self}")


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
    budget: Budget = field(default_factory=Budget)
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
            raise ValueError(f"unknown layer {self.layer!r}; choose one of {LAYERS}")
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

    # ------------------------------------------------------------------ derived facts
    def load_scenario(self):
        """The :class:`~workloads.scenarios.Scenario`, with ``duration_s`` and (closed loops)
        ``users`` applied."""
        from glia_nb.stack import get_scenario

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
        stack = {"router": self.fixed_router or "llq", "batch_policy": self.fixed_batch_policy,
                 "autoscaler": self.fixed_autoscaler}
        stack[self.layer] = policy
        return stack

    def benchmark_command(self, out_dir: str = "experiments/NNN") -> str:
        """The ``glia simulate`` command equivalent to one evaluation.

        The CLI takes a seed *count* (the scenario's first N seeds); with custom
        ``eval_seeds`` that are not such a prefix the command is only an approximation."""
        flags = {"router": "--router", "batch_policy": "--batch-policy",
                 "autoscaler": "--autoscaler"}
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
            d["budget"] = Budget(**d["budget"])
        if d.get("eval_seeds") is not None:
            d["eval_seeds"] = tuple(d["eval_seeds"])
        if "rules" in d:
            d["rules"] = tuple(d["rules"])
        return cls(**d)

    # ------------------------------------------------------------------ task text
    def render_text(self, baseline_score: float | None = None) -> str:
        """The Researcher's task text (Markdown), with the baseline's score if known."""
        if self.layer != "router":
            from glia_nb.task_layers import render_layer_text

            return render_layer_text(self, baseline_score)
        sc = self.load_scenario()
        rc = sc.cluster.replica
        seeds = self.seeds
        info = _info_values(sc.cluster)
        obj = self.objective
        if baseline_score is not None and math.isfinite(baseline_score):
            baseline_text = (f"The baseline router `{self.baseline}` scores **{baseline_score:.2f} "
                             f"{obj.unit}** ({obj.name}) on these seeds. Its telemetry, if it "
                             f"was recorded, is in the first folder under `experiments/`.")
        else:
            baseline_text = (f"The baseline router is `{self.baseline}` (your starting "
                             f"`{self.policy_file}` implements it); its score has not been "
                             f"measured yet — run an experiment on the unmodified file first.")
        b = self.budget
        budget_text = (f"At most {b.max_simulations} simulations through `run_experiment` "
                       f"({b.max_simulations // max(1, len(seeds))} experiments of "
                       f"{len(seeds)} seeds); the session also stops after {b.max_turns} turns, "
                       f"{b.max_wall_s / 3600:g} h or ${b.max_dollars:g} of model usage. "
                       f"Spend simulations on experiments that test a clear hypothesis.")
        values = {
            "title": self.title or f"{self.name}: a better router",
            "num_replicas": sc.cluster.num_replicas, "model": rc.model, "gpu": rc.gpu,
            "tp": rc.tp, "scheduler": rc.scheduler, "batch_cap": rc.batch_cap,
            "chunk_size": rc.chunk_size, "block_size": rc.block_size,
            "num_blocks": rc.num_blocks, "watermark_blocks": rc.watermark_blocks,
            "max_replica": sc.cluster.num_replicas - 1,
            "scenario_description": f"Scenario `{sc.name}`: {sc.description} "
                                    f"Workload: {sc.workload.describe()}.",
            "duration_text": f"{sc.duration_s:g} s",
            "seeds_text": ", ".join(str(s) for s in seeds), "num_seeds": len(seeds),
            "objective_text": obj.text(),
            "policy_file": self.policy_file, "class_name": self.class_name,
            "info_fields": "\n".join(f"* `{k}` = {v!r}" for k, v in info.items()),
            "view_doc": _view_docstring(), "view_fields": describe_view(),
            "state_codes": _state_codes(),
            "benchmark_command": self.benchmark_command(),
            "artifact_seed": seeds[0],
            "requests_columns": ", ".join(f"`{c}`" for c in REQUESTS_COLUMNS),
            "time_parts": _time_parts(),
            "gs_log_columns": ", ".join(f"`{c}`" for c in GS_LOG_COLUMNS),
            "reqs_log_columns": ", ".join(f"`{c}`" for c in REQS_LOG_COLUMNS),
            "baseline_text": baseline_text,
            "rules": "\n".join(f"{i}. {r}" for i, r in enumerate(self.rules, 1)),
            "budget_text": budget_text,
            "expect_text": self._target_text(),
            "task_name": self.name,
        }
        return load_prompt("router_task.md").substitute(values)

    def _target_text(self) -> str:
        """What the router text promises: a percentage, or (constrained tasks whose baseline
        breaks the constraint) a design that meets it."""
        o = self.objective
        if o.constraint and self.target_improvement == 0:
            return (f"The baseline breaks the constraint {o.constraint} <= {o.constraint_max:g}; "
                    "designs that keep it exist. Among those, "
                    f"{'lower' if o.direction == 'min' else 'higher'} {o.name} is better.")
        return (f"It is possible to do much better than the baseline: a reduction of at least "
                f"{self.target_improvement:.0%} in\nthe objective should be reachable.")

    def render_policy_template(self) -> str:
        """The starting policy file: a small readable LLQ router named ``class_name`` (for
        the other layers: arrival order, or the threshold autoscaler)."""
        if self.layer != "router":
            from glia_nb.task_layers import render_layer_template

            return render_layer_template(self)
        return load_prompt("router_policy.py.tmpl").substitute(
            class_name=self.class_name, task_name=self.name)


def load_prompt(name: str) -> Template:
    """A text template shipped in ``glia_nb/prompts`` (``$name`` placeholders)."""
    return Template(resources.files("glia_nb.prompts").joinpath(name).read_text(encoding="utf-8"))


# ---------------------------------------------------------------------- generated parts
def _info_values(cluster) -> dict[str, Any]:
    """ClusterInfo's fields with this cluster's values (mirrors facade.cluster_info without
    importing the numba engine)."""
    from sim_core.view import ClusterInfo

    out = {}
    for f in dataclasses.fields(ClusterInfo):
        src = cluster if f.name == "num_replicas" else cluster.replica
        out[f.name] = getattr(src, f.name, "?")
    return out


def _clean_rst(text: str) -> str:
    text = re.sub(r":\w+:`([^`]*)`", r"`\1`", text)
    return text.replace("``", "`")


def _view_docstring() -> str:
    from sim_core.view import ClusterView

    doc = inspect.cleandoc(ClusterView.__doc__ or "")
    return "\n".join("> " + line if line else ">" for line in _clean_rst(doc).splitlines())


def view_members() -> dict[str, str]:
    """Public members of :class:`~sim_core.view.ClusterView` → a short description.

    Descriptions come from the member's own docstring, else from the ``name`` (…) remark
    in the class docstring, else from the docstring paragraph that mentions it."""
    from sim_core.view import ClusterInfo, ClusterView

    doc = inspect.cleandoc(ClusterView.__doc__ or "")
    paragraphs = [p.replace("\n", " ") for p in doc.split("\n\n")]
    names = [n for n in ClusterView.__slots__ if not n.startswith("_")]
    names += [n for n, v in vars(ClusterView).items()
              if not n.startswith("_") and n not in names and (isinstance(v, property) or callable(v))]
    info_fields = {f.name for f in dataclasses.fields(ClusterInfo)}
    out = {}
    for n in names:
        member = vars(ClusterView).get(n)
        own = inspect.getdoc(member) if isinstance(member, property) or callable(member) else None
        m = re.search(rf"``{re.escape(n)}``\s*\(([^()]*)\)", doc.replace("\n", " "))
        group = next((p.split(":", 1)[0] for p in paragraphs if f"``{n}``" in p), "")
        if own:
            desc = own.splitlines()[0]
        elif m:
            desc = m.group(1)
        else:
            desc = _clause_about(n, paragraphs)
        if not desc and not group and n in info_fields:
            desc = f"same as `info.{n}`"
        if n == "info":
            desc = desc or "the ClusterInfo given to reset"
        if group and group.lower().startswith("per "):
            desc = f"[{group.split('(')[0].strip().lower()}] {desc}".strip()
        if callable(member) and not isinstance(member, property):
            params = ", ".join(list(inspect.signature(member).parameters)[1:])
            n = f"{n}({params})"
        out[n] = _clean_rst(desc)
    return out


def _clause_about(name: str, paragraphs: list[str]) -> str:
    """The first clause of a prose paragraph (not a ``Per ...:`` list) that mentions ``name``."""
    for p in paragraphs:
        if p.lower().startswith("per "):
            continue
        for clause in re.split(r"(?<=[.;])\s+|\s+and\s+(?=``)", p):
            if f"``{name}``" in clause and not clause.rstrip().endswith(":"):
                if ":" in clause:  # drop a lead-in such as "The global queue:"
                    clause = clause.split(":", 1)[1]
                return clause.strip().rstrip(".;")
    return ""


def describe_view() -> str:
    """The Markdown list of the view's members used in the task text."""
    return "\n".join(f"* `view.{n}`" + (f" — {d}" if d else "") for n, d in view_members().items())


def _state_codes() -> str:
    from sim_core import state as S

    codes = sorted((v, k) for k, v in vars(S).items()
                   if k.startswith("ST_") and k != "ST_MARK" and isinstance(v, int))
    return ", ".join(f"{v} = {k[3:].lower()}" for v, k in codes)


def _time_parts() -> str:
    from sim_core.results import TIME_PARTS

    return " + ".join(f"`{p}`" for p in TIME_PARTS)


# ---------------------------------------------------------------------- registry
def _stack_tasks() -> dict:
    """batch-a10, autoscale-a10 and routing-h100-prefill (defined in task_layers)."""
    from glia_nb.task_layers import stack_tasks

    return stack_tasks()


TASKS: Mapping[str, Task] = MappingProxyType({
    "routing-a10": Task(
        name="routing-a10", scenario="routing-a10", layer="router",
        title="routing-a10 — route LLM requests across four A10 replicas",
        # Ten seeds per experiment, as in the paper: the log-normal bursts make single
        # seeds differ by 4x, so fewer seeds rank designs unreliably.
        num_eval_seeds=10, budget=Budget(max_simulations=300),
        target_improvement=0.25),
    **_stack_tasks(),
})


class UnknownTaskError(KeyError):
    """No task of that name; the message lists the known ones."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def get_task(name: str) -> Task:
    """The registered task ``name``; raises :class:`UnknownTaskError` listing known names."""
    try:
        return TASKS[name]
    except KeyError:
        raise UnknownTaskError(f"unknown task {name!r}; known tasks: "
                               f"{', '.join(sorted(TASKS))}") from None


__all__ = ["Task", "Objective", "Budget", "TASKS", "get_task", "UnknownTaskError", "LAYERS",
           "load_prompt", "describe_view", "view_members", "REQUESTS_COLUMNS",
           "GS_LOG_COLUMNS", "REQS_LOG_COLUMNS", "DEFAULT_ROUTER_RULES"]
