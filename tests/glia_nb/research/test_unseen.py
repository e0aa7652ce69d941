"""The study's confirmation on unseen seeds: seeds drawn when the study ends, and a design
that embeds what the evaluation seeds' telemetry showed gains nothing there."""
from __future__ import annotations

import random

import pytest

from glia_nb.evaluation.harness import evaluate
from glia_nb.research.study import study_text
from glia_nb.research.unseen import confirm_on_unseen_seeds, unseen_fields, unseen_seeds
from glia_nb.tasks import get_task


def test_unseen_seeds_are_distinct_and_outside_the_used_ones():
    used = range(10)
    seeds = unseen_seeds(used, 50)
    assert len(set(seeds)) == 50 and not set(seeds) & set(used)
    # a seeded generator gives the same seeds; the default draws from the system's entropy
    assert unseen_seeds(used, 3, random.Random(1)) == unseen_seeds(used, 3, random.Random(1))
    assert unseen_seeds(used, 3) != unseen_seeds(used, 3)
    with pytest.raises(ValueError, match="at least one"):
        unseen_seeds(used, 0)


# A router that knows each request's decode length from its arrival time, for the traces
# whose telemetry it was shown (the table is filled in below), and is plain HRA elsewhere.
ORACLE = '''
import numpy as np
from sim_core.routers import HeadRoomAdmission, _headroom_route

DECODE = {table!r}


class Oracle(HeadRoomAdmission):
    def reset(self, info, rng):
        self.known = None

    def route(self, view):
        q = view.queue
        if len(q) == 0:
            return ()
        if self.known is None:
            self.known = np.array([DECODE.get(repr(float(a)), -1) for a in view.arrived_at])
        if (self.known[q] < 0).any():
            return super().route(view)
        final = (view.prompt_tokens + np.maximum(self.known, 0)).astype(np.int64)
        accepting = view.accepting if not view.all_accepting else \\
            np.ones(len(view.num_blocks), np.bool_)
        ids, picks = _headroom_route(
            q, final, 1.0, self.shortest_first, view.block_size, self.safety_fraction,
            view.num_blocks, view.allocated_blocks, view.waiting_prompt_tokens,
            view.num_waiting, view.num_running, accepting)
        return list(zip(ids.tolist(), picks.tolist()))
'''


def test_a_design_fitted_to_the_seen_traces_gains_nothing_on_unseen_seeds(tmp_path):
    task = get_task("routing-a10").replace(eval_seeds=(0, 1))
    sc = task.load_scenario()
    table = {}
    for seed in task.seeds:  # what request_metrics.csv showed the Researcher
        tr = sc.trace(seed)
        table.update({repr(float(a)): int(d) for a, d in zip(tr.arrived_at, tr.decode_tokens)})
    design = tmp_path / "policy.py"
    design.write_text(ORACLE.format(table=table))
    seen, hra = evaluate(f"{design}:Oracle", task), evaluate("hra", task)
    assert seen.ok and seen.score < 0.95 * hra.score  # the table pays on the seen seeds
    doc = confirm_on_unseen_seeds(task, f"{design}:Oracle", out_dir=tmp_path / "unseen", n=2)
    unseen = task.replace(eval_seeds=tuple(doc["seeds"]))
    assert doc["error"] is None and not set(doc["seeds"]) & set(task.seeds)
    assert doc["best_score"] == evaluate("hra", unseen).score  # and nothing elsewhere
    assert doc["baseline_score"] == evaluate(task.baseline, unseen).score
    assert doc["improvement"] == pytest.approx(doc["baseline_score"] / doc["best_score"])
    assert doc["best_feasible"] and doc["baseline_feasible"]
    assert (tmp_path / "unseen" / "best" / "metrics.json").is_file()


def test_study_text_shows_the_unseen_seeds_line():
    doc = {"task": "routing-a10", "researcher": "offline", "mode": "SCG", "status": "finished",
           "baseline_score": 50.0, "best_score": 25.0, "improvement": 2.0, "num_experiments": 3,
           "best_experiment": "x", "session_dir": "/tmp/s", "llm_calls": 0, "input_tokens": 0,
           "output_tokens": 0, "cost_usd": 0.0, "cost_known": True,
           **unseen_fields({"seeds": [5, 6], "baseline_score": 40.0, "best_score": 50.0,
                            "baseline_feasible": True, "best_feasible": True,
                            "improvement": 0.8, "error": None})}
    assert "on 2 unseen seeds: baseline 40  best 50  (0.8x: worse than the baseline)" in study_text(doc)
    infeasible = {**doc, "unseen_best_score": None, "unseen_best_feasible": False,
                  "unseen_improvement": None}
    assert "best infeasible  (no finite ratio)" in study_text(infeasible)
    assert set(unseen_fields(None).values()) == {None}
    assert "unseen" not in study_text({**doc, **unseen_fields(None)})


def test_a_design_that_breaks_the_constraint_on_unseen_seeds_has_no_score(tmp_path):
    """On a constrained task an infeasible design's score is infinite inside the harness;
    the confirmation reports None and says it is infeasible (``--json`` never prints
    Infinity)."""
    import json

    task = get_task("routing-a10").replace(duration_s=30, eval_seeds=(0,))
    task = task.replace(objective=task.objective.__class__(
        **{**task.objective.__dict__, "constraint": "mean_e2e_s", "constraint_max": 1e-6}))
    design = tmp_path / "policy.py"
    design.write_text("from sim_core.routers import LeastLoadedQueue as Mine\n")
    doc = confirm_on_unseen_seeds(task, f"{design}:Mine", out_dir=tmp_path / "u", n=1)
    assert doc["best_score"] is None and doc["best_feasible"] is False
    assert doc["improvement"] is None
    json.dumps(unseen_fields(doc), allow_nan=False)
