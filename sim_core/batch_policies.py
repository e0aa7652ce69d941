"""Batch-scheduler policies: the order of each replica's waiting queue.

A replica admits new requests from the head of its waiting queue (Sarathi: within the chunk
and batch caps, the head blocks the rest).  A *batch policy* decides that order with a
priority key computed from what a real scheduler knows about a request when it reaches the
replica — its prompt length and its arrival time, never its decode length::

    class BatchPolicy(Protocol):
        def key(self, prompt_tokens: int, arrived_at: float) -> float | None: ...

Smaller keys are admitted first; ties keep the order in which requests were routed.  A
policy whose ``key`` is ``None`` (``fifo``) leaves the engine's plain arrival-order queue in
place.  Pre-empted requests always return to the front of the queue, whatever the policy, and
no request routed later is ordered ahead of them.

:data:`BATCH_POLICIES` is the registry (flat ``name -> class``); :func:`make_batch_policy`
accepts a registry name with parameters (``"aged_spf:seconds_per_token=0.01"``), a
``path/to/file.py:Name`` spec (a class or a plain function ``(prompt_tokens, arrived_at) ->
key``), a class, an instance or a function.  :func:`queue_key_of` turns any of them into the
``queue_key`` callable that :func:`sim_core.simulate` hands to the engine.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Callable, Optional, Protocol, runtime_checkable

from sim_core.policies import (MissingPolicyClassError, PolicyLoadError, UnknownPolicyError,
                               instantiate, load_policy_class, parse_params, split_file_spec)

QueueKey = Callable[[int, float], float]


# The older name of the policy-loading errors' base class (sim_core.policies).
BatchPolicyLoadError = PolicyLoadError


@runtime_checkable
class BatchPolicy(Protocol):
    """The batch-scheduler layer's extension point: a priority key per request."""

    def key(self, prompt_tokens: int, arrived_at: float) -> Optional[float]:
        """Priority of a request entering a replica's waiting queue (smaller = earlier)."""


class ArrivalOrder:
    """``fifo``: arrival (routing) order — vLLM's and Sarathi's default."""

    name = "fifo"
    key = None  # the engine's native FIFO queue, no key evaluated


class ShortestPrefillFirst:
    """``shortest_prefill_first``: fewest prompt tokens first (approximates shortest job
    first for the prefill phase); ties in arrival order."""

    name = "shortest_prefill_first"

    def key(self, prompt_tokens: int, arrived_at: float) -> float:
        return float(prompt_tokens)


class AgedShortestPrefillFirst:
    """``aged_spf``: shortest prefill first with ageing, so no prompt waits forever.

    The key is a virtual deadline ``arrived_at + seconds_per_token * prompt_tokens``:
    ``seconds_per_token = 0`` is arrival order, a large value is shortest-prefill-first."""

    name = "aged_spf"

    def __init__(self, seconds_per_token: float = 0.01):
        if not seconds_per_token >= 0:
            raise ValueError("seconds_per_token must be >= 0")
        self.seconds_per_token = float(seconds_per_token)

    def key(self, prompt_tokens: int, arrived_at: float) -> float:
        return float(arrived_at) + self.seconds_per_token * float(prompt_tokens)


class _FunctionPolicy:
    """Wraps a plain function ``(prompt_tokens, arrived_at) -> key`` as a policy."""

    def __init__(self, fn: QueueKey):
        self.key = fn
        self.name = getattr(fn, "__name__", "custom")


BATCH_POLICIES: dict[str, type] = {
    "fifo": ArrivalOrder,
    "arrival": ArrivalOrder,
    "shortest_prefill_first": ShortestPrefillFirst,
    "spf": ShortestPrefillFirst,
    "aged_spf": AgedShortestPrefillFirst,
}


def make_batch_policy(spec=None, **params):
    """Build a batch policy from a registry name (``"fifo"``, ``"spf"``,
    ``"aged_spf:seconds_per_token=0.02"``), a ``path/to/file.py:Name`` spec, a class, an
    instance or a function ``(prompt_tokens, arrived_at) -> key``.  ``None`` is ``fifo``."""
    if spec is None:
        return ArrivalOrder()
    if isinstance(spec, (str, Path)):
        spec = str(spec)
        file_spec = split_file_spec(spec)
        if file_spec:
            obj = load_policy_class(*file_spec)
            if not callable(obj):
                raise MissingPolicyClassError(f"{file_spec[1]!r} in policy file {file_spec[0]} "
                                              "is not a class or function")
        else:
            name, _, ptxt = spec.partition(":")
            if name not in BATCH_POLICIES:
                raise UnknownPolicyError(f"unknown batch policy {name!r}; known: "
                                         f"{', '.join(BATCH_POLICIES)} or path/to/file.py:Name")
            return instantiate(BATCH_POLICIES[name],
                               {**parse_params(ptxt, "batch_policy", name), **params},
                               "batch_policy", name)
    else:
        obj = spec
    if inspect.isclass(obj):
        obj = instantiate(obj, params, "batch_policy")
    elif callable(obj) and not hasattr(obj, "key"):
        return _FunctionPolicy(obj)
    if not hasattr(obj, "key") or (obj.key is not None and not callable(obj.key)):
        raise MissingPolicyClassError(f"{type(obj).__name__} has no key(prompt_tokens, "
                                      "arrived_at) method")
    return obj


class BatchPolicyError(RuntimeError):
    """A batch policy's ``key`` raised or returned something that is not a number."""


def queue_key_of(policy) -> Optional[QueueKey]:
    """The engine's ``queue_key`` for ``policy`` (anything :func:`make_batch_policy` takes):
    ``None`` for arrival order, else a function ``(prompt_tokens, arrived_at) -> float``
    whose errors name the batch policy (not the router that was routing at the time)."""
    p = make_batch_policy(policy)
    if p.key is None:
        return None
    key, name = p.key, batch_policy_name(p)

    def guarded(prompt_tokens: int, arrived_at: float) -> float:
        try:
            return float(key(prompt_tokens, arrived_at))
        except Exception as exc:  # user code may raise anything
            raise BatchPolicyError(f"batch policy {name}.key({prompt_tokens}, {arrived_at:.3f}) "
                                   f"raised {type(exc).__name__}: {exc}") from exc
    return guarded


def batch_policy_name(policy) -> str:
    """A short display name."""
    return getattr(policy, "name", None) or type(policy).__name__


__all__ = ["BatchPolicy", "BATCH_POLICIES", "make_batch_policy", "queue_key_of",
           "batch_policy_name", "ArrivalOrder", "ShortestPrefillFirst",
           "AgedShortestPrefillFirst", "BatchPolicyLoadError", "BatchPolicyError"]
