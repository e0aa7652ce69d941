"""The layers of the serving stack a task can put under design, and each layer's rules.

A layer is named once here; everything that needs to know about layers reads :data:`LAYERS`.
"""
from __future__ import annotations

LAYERS = ("router", "batch_policy", "autoscaler")

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


__all__ = ["LAYERS", "DEFAULT_ROUTER_RULES", "BATCH_RULES", "AUTOSCALER_RULES"]
