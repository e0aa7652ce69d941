"""The layers of the serving stack a task can put under design: one table.

Each :class:`Layer` says everything the package needs to know about a layer (its noun, the
``glia simulate`` flag, the ``simulate`` keyword, the policy's method, the default class
name, the starting-file template, the rules, the stack's default); :data:`LAYERS` maps a
layer's name to it. Code that used to switch on layer strings reads this table instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Mapping

from sim_core.policies import POLICY_METHODS

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


BATCH_RULES = (
    "Change only the batch policy: edit the policy file. Do not modify the simulator, the "
    "router, the workload or the evaluation.",
    "The policy may use only the two arguments of `key`: the prompt length and the arrival "
    "time. Output (decode) lengths are unknown in a real system and must not be obtained any "
    "other way (no reading trace or telemetry files, no values copied from earlier runs).",
    "The policy must be online and general: the same code must work on traffic it has never "
    "seen, not only on the evaluation seeds.",
    "No network access and no background processes; keep each evaluation within its limits.",
)

AUTOSCALER_RULES = (
    "Change only the autoscaler: edit the policy file. Do not modify the simulator, the "
    "router, the batch policy, the workload or the evaluation.",
    "The autoscaler may use only what `reset` and `decide` receive. It must not read the "
    "trace, telemetry files or the simulator's internals, and must not know the arrival "
    "pattern in advance (no schedules keyed to the evaluation's sinusoid).",
    "Cold starts are real: a replica costs GPU time from the moment it starts.",
    "No network access and no background processes; keep each evaluation within its limits.",
)




@dataclass(frozen=True)
class Layer:
    """One layer of the serving stack under design."""

    name: str                  # "router", "batch_policy", "autoscaler"
    noun: str                  # in prose: "batch policy"
    title: str                 # what the layer decides, for the task text
    cli_flag: str              # the `glia simulate` option that sets it
    simulate_kw: str           # the sim_core.simulate keyword that takes it
    signature: str             # the policy's method with its arguments
    default_class: str         # the class name the Researcher edits
    template: str              # the starting file in glia_nb/prompts
    rules: tuple[str, ...]
    stack_default: str | None  # what the simulator uses when the layer is not set

    @property
    def method(self) -> str:
        """The method a policy of this layer must have (``route``, ``key``, ``decide``)."""
        return POLICY_METHODS[self.name]

    def maker(self) -> Callable:
        """The registry's spec → policy function (``make_router`` …). Imported on call:
        the router registry loads the numba engine, which describing a task must not."""
        if self.name == "batch_policy":
            from sim_core.batch_policies import make_batch_policy
            return make_batch_policy
        if self.name == "autoscaler":
            from sim_core.autoscale import make_autoscaler
            return make_autoscaler
        from sim_core.routers import make_router
        return make_router


LAYERS: Mapping[str, Layer] = MappingProxyType({layer.name: layer for layer in (
    Layer("router", "router", "router (which replica serves each request, and when)",
          "--router", "router", "route(view)", "CustomRouter", "router_policy.py.tmpl",
          DEFAULT_ROUTER_RULES, "llq"),
    Layer("batch_policy", "batch policy",
          "batch-scheduler policy (the order of each replica's waiting queue)",
          "--batch-policy", "batch_policy", "key(prompt_tokens, arrived_at)",
          "CustomBatchPolicy", "batch_policy.py.tmpl", BATCH_RULES, None),
    Layer("autoscaler", "autoscaler", "autoscaler (how many replicas serve, over time)",
          "--autoscaler", "autoscaler", "decide(stats)", "CustomAutoscaler",
          "autoscaler.py.tmpl", AUTOSCALER_RULES, None),
)})


__all__ = ["Layer", "LAYERS", "DEFAULT_ROUTER_RULES", "BATCH_RULES", "AUTOSCALER_RULES"]
