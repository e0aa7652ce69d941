"""FunSearch-style search: best-shot prompting over an island model (paper §3.2, Table 1).

The program database is ``num_islands`` islands (default 6), each holding at most
``island_capacity`` programs (default 20; when an island is full its worst program is
dropped). Every island starts with the starting LLQ program and its (free) score. One step:

1. pick an island uniformly at random;
2. sample ``k`` (default 3) distinct programs from it, favouring better scores (a softmax of
   the normalised score with ``temperature``);
3. show them to the model with their scores, ordered from worst to best, and ask for a
   better version (best-shot prompting);
4. evaluate the reply (one simulation) and, if it ran, add it to that island.

Every ``reset_interval`` simulations (default ``max(10, budget // 4)``) the worse half of
the islands (by their best score) are emptied and re-seeded with the best program of a
randomly chosen island from the better half, as FunSearch does periodically.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from glia_nb.baselines.common import MethodContext, extract_candidate
from glia_nb.baselines.prompts import ROLE, format_score, problem_statement
from glia_nb.tasks.objective import Objective

NAME = "funsearch"


@dataclass
class Program:
    """A program in the database with its score (lower is better for a ``min`` task)."""

    code: str
    score: float
    label: str
    code_hash: str = ""


@dataclass
class Island:
    """A bounded list of programs ranked by the task's ``objective``."""

    capacity: int
    objective: Objective = field(default_factory=Objective)
    programs: list = field(default_factory=list)

    def _key(self, p: Program) -> float:
        return self.objective.loss(p.score)

    def add(self, p: Program) -> None:
        """Add ``p`` (unless the same code is already here); drop the worst beyond capacity."""
        if p.code_hash and any(q.code_hash == p.code_hash for q in self.programs):
            return
        self.programs.append(p)
        if len(self.programs) > self.capacity:
            self.programs.remove(max(self.programs, key=self._key))

    def best(self) -> Program | None:
        return min(self.programs, key=self._key) if self.programs else None

    def sample(self, k: int, rng, temperature: float) -> list[Program]:
        """Up to ``k`` distinct programs, better ones likelier; returned worst first."""
        pool = list(self.programs)
        keys = [self._key(p) for p in pool]
        lo, hi = min(keys), max(keys)
        spread = (hi - lo) or 1.0
        chosen = []
        for _ in range(min(k, len(pool))):
            weights = [math.exp((hi - self._key(p)) / spread / max(temperature, 1e-6)) for p in pool]
            pick = rng.choices(range(len(pool)), weights=weights, k=1)[0]
            chosen.append(pool.pop(pick))
        return sorted(chosen, key=self._key, reverse=True)


def best_shot_prompt(task, versions: list[Program]) -> str:
    """The problem statement followed by ``versions`` (worst first) and the request."""
    obj = task.objective
    better = "lower" if obj.direction == "min" else "higher"
    parts = [problem_statement(task), "## Earlier versions",
             f"These implementations were evaluated on the benchmark; each line gives its "
             f"{obj.name} ({better} is better). The last one is the best so far."]
    for i, p in enumerate(versions, 1):
        parts.append(f"### Version {i} ({obj.name}: {format_score(p.score, obj.unit)})\n"
                     f"```python\n{p.code.strip()}\n```")
    parts.append(f"## Your turn\nWrite version {len(versions) + 1}: a complete "
                 f"`{task.class_name}` that does better than all of the above. Answer with "
                 "one ```python code block.")
    return "\n\n".join(parts)


def reset_islands(islands: list[Island], rng) -> list[int]:
    """Empty the worse half of the islands and seed each with the best program of a random
    island from the better half; returns the indices that were reset."""
    if len(islands) < 2:
        return []
    order = sorted(range(len(islands)), key=lambda i: islands[i]._key(islands[i].best())
                   if islands[i].best() else math.inf)
    keep, reset = order[: len(order) // 2 + len(order) % 2], order[len(order) // 2 + len(order) % 2:]
    for i in reset:
        donor = islands[rng.choice(keep)].best()
        islands[i].programs = [donor] if donor else []
    return sorted(reset)


def run(ctx: MethodContext, *, num_islands: int = 6, island_capacity: int = 20, k: int = 3,
        reset_interval: int | None = None, temperature: float = 0.3) -> dict:
    """Search until the run's budget is spent; returns island statistics."""
    if num_islands < 1 or island_capacity < 1 or k < 1:
        raise ValueError("num_islands, island_capacity and k must be >= 1")
    interval = reset_interval or max(10, ctx.ledger.max_sims // 4)
    seed_prog = Program(ctx.baseline_code, ctx.baseline.score if ctx.baseline.ok else math.inf,
                        "start", ctx.baseline.code_hash)
    islands = [Island(island_capacity, ctx.task.objective, [seed_prog]) for _ in range(num_islands)]
    resets, step, next_reset = [], 0, interval
    while not ctx.ledger.exhausted():
        step += 1
        i = ctx.rng.randrange(num_islands)
        versions = islands[i].sample(k, ctx.rng, temperature)
        text = ctx.ask(ROLE, best_shot_prompt(ctx.task, versions))
        if text is None:
            continue
        rec = ctx.evaluate(extract_candidate(text, ctx.task.class_name), f"island{i}-step{step}",
                           meta={"island": i, "parents": [p.label for p in versions]})
        if rec is None:
            break
        if rec.ok and rec.score is not None and rec.code_path:
            code = open(rec.code_path).read()
            islands[i].add(Program(code, rec.score, rec.label, rec.code_hash))
        if ctx.ledger.sims_used >= next_reset and not ctx.ledger.exhausted():
            done = reset_islands(islands, ctx.rng)
            resets.append({"after_sims": ctx.ledger.sims_used, "islands": done})
            ctx.say(f"island reset after {ctx.ledger.sims_used} simulations: {done}")
            next_reset += interval
    return {"islands": [{"size": len(isl.programs),
                         "best": isl.best().score if isl.best() else None} for isl in islands],
            "resets": resets, "reset_interval": interval, "k": k}


__all__ = ["NAME", "run", "Island", "Program", "best_shot_prompt", "reset_islands"]
