"""Evolution of Heuristics (EoH): a population of (thought, code) pairs evolved with five
prompt operators (paper §5, Table 1: population 20).

* Initialisation: ``pop_size`` individuals, each from an independent "design a router"
  prompt (one simulation each; with a budget below ``pop_size`` the whole run is this).
* Generations: each operator produces ``offspring_per_operator`` children (default
  ``pop_size // 5``, so a generation costs about ``pop_size`` simulations), then the best
  ``pop_size`` distinct individuals of parents and children survive.

  - **E1** (explore): from ``parents`` individuals, a router whose idea differs from all.
  - **E2** (recombine): find the idea the parents share and build a new router on it.
  - **M1** (modify): change one individual to do better.
  - **M2** (re-parameterise): keep the idea, change its parameters.
  - **M3** (simplify): remove what is redundant.

Parents are drawn by rank, ``p(rank r) ∝ 1 / (r + pop_size)`` (r = 0 is the best). Every
reply must give a one-sentence *thought* in braces and then the code; both are kept and
shown to later operators.
"""
from __future__ import annotations

from dataclasses import dataclass

from glia_nb.baselines.common import MethodContext, extract_candidate, extract_thought
from glia_nb.baselines.prompts import ROLE, format_score, problem_statement
from glia_nb.tasks.objective import Objective

NAME = "eoh"
OPERATORS = ("E1", "E2", "M1", "M2", "M3")

ANSWER_FORMAT = ("Answer in two parts. First describe the idea of your router in one or two "
                 "sentences inside braces, {like this}. Then give the complete class in one "
                 "```python code block.")

OPERATOR_TASKS = {
    "I1": "Design a new router for this problem.",
    "E1": ("Here are {n} existing routers with their ideas and scores. Design a new router "
           "whose idea is as different as possible from every one of them."),
    "E2": ("Here are {n} existing routers with their ideas and scores. First work out the "
           "idea they have in common. Then design a new router that builds on that common "
           "idea but differs in form from each of them, aiming for a better score."),
    "M1": ("Here is a router with its idea and score. Create a modified version of it that "
           "should achieve a better score."),
    "M2": ("Here is a router with its idea and score. Identify its main parameters "
           "(thresholds, weights, constants, margins) and write a version that keeps the idea "
           "but uses different parameter settings that should score better."),
    "M3": ("Here is a router with its idea and score. Simplify it: remove components that "
           "are redundant or do not help, keeping what drives its performance. The result "
           "should be shorter and score at least as well."),
}


@dataclass
class Individual:
    """One member of the population."""

    code: str
    score: float
    thought: str
    label: str
    code_hash: str = ""


def operator_prompt(task, op: str, parents: list[Individual]) -> str:
    """The problem statement, the operator's request and its parents, and the answer format."""
    obj = task.objective
    parts = [problem_statement(task), "## Your task", OPERATOR_TASKS[op].format(n=len(parents))]
    for i, p in enumerate(parents, 1):
        parts.append(f"### Router {i}\nIdea: {p.thought or '(not stated)'}\n"
                     f"{obj.name}: {format_score(p.score, obj.unit)} "
                     f"({'lower' if obj.direction == 'min' else 'higher'} is better)\n"
                     f"```python\n{p.code.strip()}\n```")
    parts.append(ANSWER_FORMAT)
    return "\n\n".join(parts)


def select_parents(pop: list[Individual], n: int, rng, objective: Objective) -> list[Individual]:
    """``n`` distinct parents drawn by rank (``p ∝ 1 / (rank + len(pop))``)."""
    ranked = objective.ranked(pop, lambda p: p.score)
    pool = list(range(len(ranked)))
    out = []
    for _ in range(min(n, len(ranked))):
        weights = [1.0 / (r + len(ranked)) for r in pool]
        pick = rng.choices(range(len(pool)), weights=weights, k=1)[0]
        out.append(ranked[pool.pop(pick)])
    return out


def manage(pop: list[Individual], size: int, objective: Objective) -> list[Individual]:
    """The best ``size`` individuals with distinct code."""
    seen, out = set(), []
    for p in objective.ranked(pop, lambda p: p.score):
        if p.code_hash in seen:
            continue
        seen.add(p.code_hash)
        out.append(p)
    return out[:size]


def _offspring(ctx: MethodContext, op: str, parents: list[Individual], label: str) -> Individual | None:
    text = ctx.ask(ROLE, operator_prompt(ctx.task, op, parents))
    if text is None:
        return None
    thought = extract_thought(text)
    rec = ctx.evaluate(extract_candidate(text, ctx.task.class_name), label,
                       meta={"operator": op, "thought": thought,
                             "parents": [p.label for p in parents]})
    if rec is None or not rec.ok or rec.score is None or not rec.code_path:
        return None
    return Individual(open(rec.code_path).read(), rec.score, thought, label, rec.code_hash)


def run(ctx: MethodContext, *, pop_size: int = 20, parents: int = 2,
        offspring_per_operator: int | None = None, operators=OPERATORS) -> dict:
    """Evolve until the run's budget is spent; returns the population and operator stats."""
    if pop_size < 1 or parents < 1:
        raise ValueError("pop_size and parents must be >= 1")
    if not operators:
        raise ValueError("EoH needs at least one operator")
    unknown = set(operators) - set(OPERATORS)
    if unknown:
        raise ValueError(f"unknown EoH operators {sorted(unknown)}; known: {OPERATORS}")
    objective = ctx.task.objective
    per_op = offspring_per_operator or max(1, pop_size // 5)
    stats = {op: {"tried": 0, "valid": 0} for op in ("I1", *operators)}
    pop: list[Individual] = []
    k = 0
    while len(pop) < pop_size and not ctx.ledger.exhausted():
        k += 1
        stats["I1"]["tried"] += 1
        child = _offspring(ctx, "I1", [], f"init-{k}")
        if child is not None:
            stats["I1"]["valid"] += 1
            pop = manage(pop + [child], pop_size, objective)
    gen = 0
    while pop and not ctx.ledger.exhausted():
        gen += 1
        children = []
        for op in operators:
            for j in range(per_op):
                if ctx.ledger.exhausted():
                    break
                n = parents if op in ("E1", "E2") else 1
                stats[op]["tried"] += 1
                child = _offspring(ctx, op, select_parents(pop, n, ctx.rng, objective),
                                   f"gen{gen}-{op}-{j + 1}")
                if child is not None:
                    stats[op]["valid"] += 1
                    children.append(child)
        pop = manage(pop + children, pop_size, objective)
    return {"generations": gen, "operators": stats,
            "population": [{"label": p.label, "score": p.score, "thought": p.thought} for p in pop]}


__all__ = ["NAME", "OPERATORS", "run", "operator_prompt", "select_parents", "manage", "Individual"]
