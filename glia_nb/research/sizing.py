"""Sizing the Researcher's and Supervisor's prompts to the model's context window.

A hosted model with a 200k window takes the full task text (about 3k tokens), the full
system prompt and 20k-character tool results. A local model served with 8k tokens cannot:
the task text alone would take a third of it. For windows up to :data:`SMALL_WINDOW` the
session uses a compact task text that points to ``TASK.md`` in the workspace, a compact
system prompt, shorter tool results and a shorter Supervisor review.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from glia_nb.research.agent import AgentConfig
from glia_nb.text import load_prompt
from glia_nb.research.supervisor import SupervisorConfig

__all__ = ["SMALL_WINDOW", "PromptSizing", "compact_task_text", "researcher_config_for", "sizing_for",
           "supervisor_config_for", "supervisor_prompt_for"]

SMALL_WINDOW = 16_384


@dataclass(frozen=True)
class PromptSizing:
    """How large each part of the conversation may be for one context window.

    ``compact``: use the compact task text and system prompt. ``max_tool_chars``: cap of a
    tool result sent back. ``max_tokens``: cap of one Researcher reply (the client cuts it
    further to what the window leaves). ``supervisor_chars``: the Researcher text a review
    quotes; ``supervisor_max_tokens``: cap of one Supervisor reply. ``compact_at``: prompt
    tokens beyond which older turns are folded into a research digest.
    """

    window: int
    compact: bool
    max_tool_chars: int
    max_tokens: int
    supervisor_chars: int
    supervisor_max_tokens: int
    compact_at: int


def sizing_for(window: int | None) -> PromptSizing:
    """The sizing for a ``window`` of tokens (None: treated as a large hosted window)."""
    w = int(window or 200_000)
    small = w <= SMALL_WINDOW
    # Leave a quarter of a small window (at most 4k tokens) for the reply and the next tool result.
    reserve = min(4096, max(w // 4, 512)) if small else max(w // 10, 8192)
    return PromptSizing(
        window=w,
        compact=small,
        max_tool_chars=max(1500, min(20_000, int(w * 0.4))),
        max_tokens=min(8192, max(256, w // 8 if small else w // 4)),
        supervisor_chars=max(2000, min(40_000, int(w * (0.3 if small else 0.8)))),
        supervisor_max_tokens=min(2048, max(256, w // 16)),
        compact_at=max(w // 2, w - reserve),
    )


def researcher_config_for(window: int | None) -> AgentConfig:
    """The Researcher's loop configuration for a context window: the compact system prompt,
    reply cap and tool-result cap when the window is small."""
    sizing = sizing_for(window)
    prompt = load_prompt("researcher_compact" if sizing.compact else "researcher_system")
    return AgentConfig(name="researcher", system_prompt=prompt, max_tokens=sizing.max_tokens,
                       max_tool_chars=sizing.max_tool_chars)


def supervisor_config_for(config: SupervisorConfig, window: int | None) -> SupervisorConfig:
    """``config`` with its review length and reply cap cut to a small window."""
    sizing = sizing_for(window)
    if not sizing.compact:
        return config
    return replace(config, max_context_chars=min(config.max_context_chars, sizing.supervisor_chars),
                   max_tokens=min(config.max_tokens, sizing.supervisor_max_tokens))


def supervisor_prompt_for(window: int | None) -> str:
    """The Supervisor's system prompt: the compact one for a small window."""
    return load_prompt("supervisor_compact" if sizing_for(window).compact else "supervisor_system")


def compact_task_text(task: Any, baseline_score: float | None = None) -> str:
    """A short task text (about 1.5k characters) that names the goal, the objective, the
    file to change, the baseline's score and the budget, and sends the model to
    ``TASK.md`` for the cluster, the policy interface, the telemetry and the rules."""
    objective = getattr(task, "objective", None)
    if objective is None or not hasattr(task, "policy_file"):
        return str(task)
    layer = str(getattr(task, "layer", "policy")).replace("_", " ")
    better = "lower" if objective.direction == "min" else "higher"
    lines = [
        f"# Task: {getattr(task, 'title', task.name)}",
        f"Design a better {layer} for a simulated LLM-serving cluster and show with experiments that it beats "
        f"the baseline `{task.baseline}`.",
        f"Objective: {objective.name} ({objective.unit}, {better} is better): {objective.description}.",
    ]
    if getattr(objective, "constraint", None):
        lines.append(f"Constraint: {objective.constraint} <= {objective.constraint_max:g}.")
    if baseline_score is not None:
        lines.append(f"The baseline scores {baseline_score:.3f} {objective.unit}.")
    lines += [
        f"Edit `{task.policy_file}` (class `{task.class_name}`); it starts as the baseline. Then call "
        f"run_experiment(name, hypothesis) to score it.",
        "Details (the cluster, the policy interface, telemetry files, the rules) are in `TASK.md` in your "
        "workspace: read it with read_file when you need them.",
        "Main rule: change only the policy file; the policy never learns output lengths.",
    ]
    lines.append(f"Each experiment spends {len(task.seeds)} simulations (one per evaluation seed).")
    lines.append("When done, call finish(summary) with the best design and its score.")
    return "\n".join(lines)
