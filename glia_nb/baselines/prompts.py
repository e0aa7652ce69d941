"""The prompts of the search baselines, written for this toolkit's simulator.

One detailed problem statement (:func:`problem_statement`) is shared by every method: it
follows the structure of the paper's "LLM as-is" prompt (a role, the objective, a numbered
system model, the interface to implement, what the router may read, and how to answer) but is
written from scratch for ``sim_core``'s router API. The parts that describe code (the view's
members, the cluster facts) are generated from the code, so they cannot drift from what the
simulator offers. The method-specific wrappers (best-shot prompting, the EoH operators) live
with their methods and add to this text.
"""
from __future__ import annotations

import dataclasses
from typing import Any
from glia_nb.tasks import describe_view

ROLE = ("You are an expert in systems algorithms: schedulers, load balancers and admission "
        "control for large computing clusters. You write correct, efficient Python.")


def cluster_facts(task) -> dict[str, Any]:
    """ClusterInfo's fields with the task's values (what ``reset`` receives)."""
    from sim_core.view import ClusterInfo

    cluster = task.load_scenario().cluster
    out = {}
    for f in dataclasses.fields(ClusterInfo):
        src = cluster if f.name == "num_replicas" else cluster.replica
        out[f.name] = getattr(src, f.name, "?")
    return out


def problem_statement(task) -> str:
    """The detailed task description every LLM-driven baseline starts from."""
    facts = cluster_facts(task)
    sc = task.load_scenario()
    obj = task.objective
    goal = "lowest" if obj.direction == "min" else "highest"
    info_lines = "\n".join(f"  - `info.{k}` = {v!r}" for k, v in facts.items())
    return f"""{ROLE}

## Goal
Write the request router (global scheduler) of an LLM inference cluster so that the
{obj.description} is as {goal} as possible ({obj.name}, in {obj.unit}).

## How the cluster works
1. There are {facts['num_replicas']} model replicas ({facts['model']} on {facts['gpu']} GPUs).
   Every request enters one global queue; the router decides which replica serves it and
   when. Every request must eventually be routed. Requests the router does not place stay
   in the global queue and are offered again at the next call.
2. The router is called after every arrival and after every event that completes at least
   one request. It sees each request's arrival time, its prompt length in tokens and how
   many tokens have been processed so far. How many tokens a request will generate (its
   decode length) is NOT known until it finishes.
3. Each replica has a waiting queue (requests holding no GPU memory yet) and a running set
   (requests holding memory, in prefill or in decode). A replica batches work in
   iterations: {_batching(facts)}.
4. Memory is a paged KV cache of {facts['num_blocks']} blocks of {facts['block_size']}
   tokens per replica. A waiting request is admitted only when its prompt's blocks are free
   (keeping {facts['watermark_blocks']} blocks spare). A running request needs one more block
   each time it fills its last one. When a replica runs out of blocks it pre-empts the
   most recently arrived running request: its memory is freed, it goes back to the front of
   the waiting queue and must recompute everything it had processed (a request that was
   decoding re-prefills its prompt plus the tokens it had generated). Pre-emptions waste
   work and are a major source of delay under load.
5. The router can observe the state of every replica and every request at every call.

Workload: {sc.description}

## What to implement
A Python class named `{task.class_name}` (no base class needed) with two methods:

```python
class {task.class_name}:
    def reset(self, info, rng):
        # called once before each simulation: static cluster facts and a seeded
        # numpy Generator; keep whatever state you need on self
        ...

    def route(self, view):
        # return an iterable of (request_id, replica) pairs for the requests to
        # dispatch now; each request_id must be in view.queue, each at most once,
        # and 0 <= replica < info.num_replicas
        ...
```

`info` has these fields:
{info_lines}

`view` is read-only (its NumPy arrays cannot be written; copy them before changing) and
offers:
{describe_view()}

Per-request arrays are indexed by request id; per-replica arrays by replica id. Only
`numpy` and the Python standard library are available. The router may not read files,
use the network or look at the simulator's internals; the same code must work on traffic it
has never seen.

## How to answer
Think about the system model and the objective first and settle on an overall strategy;
then implement it. Answer with the complete code of the `{task.class_name}` class (with its
imports) in a single ```python code block.
"""


def _batching(facts: dict) -> str:
    if facts.get("scheduler") == "vllm":
        return (f"prefill-only iterations first (padded to at most {facts['chunk_size']} "
                f"tokens), otherwise a decode-only iteration of up to {facts['batch_cap']} "
                "requests (scheduler `vllm`)")
    return (f"decodes first, then prefills, within a token budget of {facts['chunk_size']} "
            f"tokens and at most {facts['batch_cap']} requests per iteration (scheduler "
            f"`{facts.get('scheduler')}`, chunked prefill)")


def starting_program(task) -> str:
    """The starting program: the task's least-loaded-queue template."""
    return task.render_policy_template()


def format_score(score: float | None, unit: str = "s") -> str:
    """``35.67 s`` or ``failed`` for prompts."""
    return "failed" if score is None else f"{score:.3f} {unit}"


__all__ = ["ROLE", "cluster_facts", "problem_statement", "starting_program", "format_score"]
