"""The offline researcher and Supervisor: rule-based, deterministic, no LLM, no API key.

They run the same loop, tools and journal as the LLM agents, so that a first try, the test
suite and Binder work without a key.  The researcher follows the systems-research habit the
LLM Researcher is taught: measure the baseline, profile where time goes from the telemetry,
state the hypothesis the numbers support, try mechanisms from a small catalogue (balancing
variants, head-room admission, shortest-prompt-first), tune their parameters and compose
what worked.  Every action is one tool call, taken through the toolbox like an LLM's.

Its working state lives in ``offline_notes.json`` in the workspace, so a resumed session
continues where it stopped.
"""
from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from glia_nb.research.agent import StepResult, ToolOutcome
from glia_nb.llm.types import Message, ToolCall
from glia_nb.research.offline.catalogue import ANALYSIS_SCRIPT, Design, router_source
from glia_nb.research.offline.layers import plan_for
from glia_nb.tasks.objective import Objective

NOTES = "offline_notes.json"
ANALYSIS = "analyze.py"
NAME = "offline rule-based researcher"
_PLATEAU = 0.03        # a change under 3% is "no improvement"


class OfflineResearcher:
    """A deterministic stand-in for the LLM Researcher (``researcher="offline"``)."""

    model = "offline-rule-based"

    def __init__(self, *, toolbox: Any, workspace: Any, task: Any = None, seed: int = 0, **_: Any):
        self.seed = int(seed)
        self.toolbox = toolbox
        self.workspace = workspace
        self.task = task
        # The classic catalogue is A10 routing (lower is better); the task's Objective decides.
        objective = getattr(task, "objective", None)
        self._objective = objective if isinstance(objective, Objective) else Objective()
        self._ids = itertools.count(1)
        self._path = Path(getattr(workspace, "path", workspace)) / NOTES
        self.notes = self._load()
        # Tasks other than A10 routing follow a per-layer plan (offline/layers.py).
        self._layer_plan = plan_for(task) if task is not None else None

    # ----------------------------------------------------------------- state
    def _load(self) -> dict:
        if self._path.exists():
            return json.loads(self._path.read_text())
        return {"stage": "setup", "tried": [], "best": None, "queue": [], "profile": None,
                "answered": 0}

    def _save(self) -> None:
        self._path.write_text(json.dumps(self.notes, indent=1))

    # ----------------------------------------------------------------- loop
    def step(self, messages: Sequence[Message], on_event=None) -> StepResult:
        """Take the next action of the plan as one tool call and return its result."""
        supervisor = _new_supervisor_messages(messages, self.notes["answered"])
        if supervisor:
            self.notes["answered"] += len(supervisor)
        text, tool, args = self._decide(supervisor)
        call = ToolCall.from_arguments(f"offline-{len(messages)}-{next(self._ids)}", tool, args)
        assistant = Message.assistant(text, (call,))
        result = self.toolbox.call(tool, args)
        is_error = bool(getattr(result, "is_error", False))
        out_text = str(getattr(result, "text", result))
        tool_msg = Message.tool_result(call.id, out_text, name=tool, is_error=is_error)
        outcome = ToolOutcome(call.id, tool, args, out_text, is_error, getattr(result, "data", None))
        if on_event is not None:
            on_event("tool", {"call": call, "message": tool_msg, "outcome": outcome})
        self._observe(tool, args, result)
        self._save()
        finished = tool == "finish" and not is_error
        return StepResult(assistant=assistant, tool_messages=(tool_msg,), outcomes=(outcome,),
                          model=self.model, stop_reason="tool_use", finished=finished,
                          finish_summary=args.get("summary") if finished else None)

    # ----------------------------------------------------------------- policy
    def _decide(self, supervisor: list[str]) -> tuple[str, str, dict]:
        if self._layer_plan is not None:
            return self._layer_plan.decide(self, supervisor)
        n = self.notes
        pre = ""
        if supervisor:
            pre = self._answer_supervisor(supervisor) + "\n\n"
        if n["stage"] == "setup":
            return (pre + "First I measure before changing anything. I write a small analysis "
                    "script that splits each request's time into global queue, replica queue, "
                    "prefill, decode and time lost to restarts, and reads memory use from the "
                    "scheduling log.", "write_file", {"path": ANALYSIS, "content": ANALYSIS_SCRIPT})
        if n["stage"] == "baseline" and self._recorded_baseline():
            row = self._recorded_baseline()
            n["baseline"] = row["score"]
            n["best"] = {"design": Design().to_dict(), "score": row["score"],
                         "name": row.get("name") or "baseline", "why": "the baseline"}
            n["last_dir"] = row.get("folder", "")
            n["stage"] = "profile"
        if n["stage"] == "baseline":
            return (pre + "Running the unchanged policy (the LLQ baseline) to have a measured "
                    "reference and telemetry to profile.", "run_experiment",
                    {"name": "baseline-llq", "hypothesis": "Reference measurement of the "
                     "baseline; no change expected."})
        if n["stage"] == "profile":
            return (pre + f"Profiling {n['last_dir']}: where does the time go?", "shell",
                    {"command": f"python {ANALYSIS} {n['last_dir']}", "timeout_s": 120})
        if n["stage"] == "write":
            design = Design(**n["queue"][0]["design"])
            item = n["queue"][0]
            return (pre + item["why"], "write_file", {"path": self._policy_file(), "content":
                    router_source(design, title=design.label(), rationale=item["why"],
                                  experiment=item["name"])})
        if n["stage"] == "run":
            item = n["queue"][0]
            return (pre + f"Testing: {item['hypothesis']}", "run_experiment",
                    {"name": item["name"], "hypothesis": item["hypothesis"]})
        if n["stage"] == "restore":
            best = Design(**n["best"]["design"])
            return (pre + "Leaving the best design measured in the policy file.", "write_file",
                    {"path": self._policy_file(), "content": router_source(
                        best, title=best.label(), rationale=n["best"]["why"],
                        experiment=n["best"]["name"])})
        return (pre + "I am done: the design space I can reason about is covered.", "finish",
                {"summary": self._summary()})

    def _recorded_baseline(self) -> dict | None:
        """The workspace's own baseline run (experiment 0), if it keeps one."""
        rows = getattr(self.workspace, "ledger_rows", None)
        for row in (rows() if callable(rows) else []):
            if row.get("id") == 0 and row.get("status") == "ok" and row.get("folder"):
                return row
        return None

    def _policy_file(self) -> str:
        return getattr(self.task, "policy_file", None) or "policy.py"

    def _observe(self, tool: str, args: Mapping, result: Any) -> None:
        if self._layer_plan is not None:
            return self._layer_plan.observe(self, tool, args, result)
        n = self.notes
        data = getattr(result, "data", None) or {}
        if tool == "write_file" and n["stage"] == "setup":
            n["stage"] = "baseline"
        elif tool == "run_experiment":
            row = (data.get("experiment") or {}) if isinstance(data, Mapping) else {}
            budget_out = isinstance(data, Mapping) and data.get("budget_exhausted")
            if budget_out:
                n["queue"] = []
                n["stage"] = "restore" if n["best"] else "finish"
                return
            score = row.get("score") if not getattr(result, "is_error", False) else None
            if n["stage"] == "baseline":
                n["baseline"] = score
                n["best"] = {"design": Design().to_dict(), "score": score, "name": "baseline-llq",
                             "why": "the baseline"}
                n["last_dir"] = row.get("folder", "")
                n["stage"] = "profile"
                return
            item = n["queue"].pop(0)
            item["score"] = score
            item["folder"] = row.get("folder", "")
            n["tried"].append(item)
            n["last_dir"] = item["folder"]
            if self._objective.is_better(score, n["best"]["score"]):
                n["best"] = {k: item[k] for k in ("design", "score", "name", "why")}
            self._plan_next()
        elif tool == "shell" and n["stage"] == "profile":
            try:
                n["profile"] = json.loads(str(getattr(result, "text", "")).strip().splitlines()[-1])
            except (ValueError, IndexError):
                n["profile"] = None
            self._plan_after_profile()
        elif tool == "write_file" and n["stage"] == "write":
            n["stage"] = "run"
        elif tool == "write_file" and n["stage"] == "restore":
            n["stage"] = "finish"

    # ----------------------------------------------------------------- planning
    def _enqueue(self, design: Design, name: str, why: str, hypothesis: str) -> None:
        if any(Design(**t["design"]) == design for t in self.notes["tried"] + self.notes["queue"]):
            return
        self.notes["queue"].append({"design": design.to_dict(), "name": name, "why": why,
                                    "hypothesis": hypothesis})

    def _plan_after_profile(self) -> None:
        p = self.notes["profile"] or {}
        self.notes["hypothesis"] = _hypothesis(p)
        base = Design()
        self._enqueue(base.but(balance="two_choices"), "two-choices",
                      "Queue imbalance is a cheap first suspect: power-of-two choices balances "
                      "with less herding than a global minimum.",
                      "If replica queues are uneven, sampling two replicas reduces queueing.")
        self._enqueue(base.but(balance="blocks"), "memory-aware-balance",
                      "Restarts come from memory pressure, so I balance on KV blocks held plus "
                      "blocks the waiting prompts will need, instead of request counts.",
                      "Balancing memory rather than counts should spread pressure and cut "
                      "restarts.")
        self.notes["stage"] = "write"

    def _plan_next(self) -> None:
        n = self.notes
        tried = n["tried"]
        if not n["queue"]:
            best = self._best_admission() or Design(**n["best"]["design"])
            if not best.admission and not any(Design(**t["design"]).admission for t in tried):
                self._enqueue(Design(admission=True, growth=0.6, safety=0.03, balance="blocks"),
                              "headroom-admission",
                              "Step back: balancing moved load around but restarts persist, "
                              "because memory grows after admission (decode lengths are "
                              "unknown) and stays near full. So I hold requests in the global "
                              "queue unless a replica keeps head-room for the expected decode "
                              "growth of everything admitted.",
                              "Admission with KV head-room should nearly eliminate restarts and "
                              "the time lost to them.")
            elif not n.get("tuned_growth") and best.admission:
                n["tuned_growth"] = True
                # Each context (seed) probes a shifted grid, so parallel contexts differ.
                shift = 1.0 + 0.2 * (self.seed % 4)
                for g in sorted({round(0.3 * shift, 2), round(1.0 * shift, 2), round(1.5 * shift, 2)}):
                    self._enqueue(best.but(growth=g), f"headroom-growth-{g:g}",
                                  f"Tuning the expected decode growth: {g:g} tokens per prompt "
                                  "token trades held-back queueing against restarts.",
                                  f"Growth {g:g} changes how much is held back; the best value "
                                  "balances global queueing and restarts.")
            elif not n.get("tuned_safety") and best.admission:
                n["tuned_safety"] = True
                for m in (0.0, 0.08):
                    self._enqueue(best.but(safety=m), f"headroom-safety-{m:g}",
                                  f"Tuning the safety fraction to {m:g} of the pool.",
                                  "A larger margin absorbs growth bursts; a smaller one admits "
                                  "more work.")
            elif not n.get("composed") and best.admission:
                n["composed"] = True
                self._enqueue(best.but(order="shortest_prompt"), "headroom+spf",
                              "Compose with an idea measured earlier in the profile: waiting "
                              "time is spent mostly by short prompts stuck behind long ones. "
                              "Serving the global queue shortest-prompt-first approximates "
                              "shortest-job-first, which minimises mean completion time.",
                              "Shortest-prompt-first on top of head-room admission cuts mean "
                              "queueing further.")
            elif not n.get("retuned") and best.admission and best.order == "shortest_prompt":
                n["retuned"] = True
                for g in sorted({round(best.growth * 0.5, 3), round(best.growth * 1.5, 3)}):
                    self._enqueue(best.but(growth=g), f"headroom+spf-growth-{g:g}",
                                  "Re-tuning the growth once ordering changed what is held back.",
                                  f"With shortest-prompt-first, growth {g:g} may fit better.")
        if n["queue"]:
            n["stage"] = "write"
        else:
            current = n["tried"][-1]["design"] if n["tried"] else None
            n["stage"] = "restore" if current != n["best"]["design"] else "finish"

    def _best_admission(self) -> Design | None:
        """The best-scoring head-room design so far: the mechanism being refined."""
        scored = [t for t in self.notes["tried"] if t["design"]["admission"]
                  and t.get("score") is not None]
        best = self._objective.best_of(scored, lambda t: t["score"])
        return Design(**best["design"]) if best else None

    # ----------------------------------------------------------------- text
    def _answer_supervisor(self, texts: list[str]) -> str:
        from glia_nb.research.offline.layers import quote_speaker
        p = self.notes.get("profile") or {}
        rf = p.get("restart_fraction")
        mem = p.get("mean_memory_use")
        facts = []
        if rf is not None:
            facts.append(f"{rf:.0%} of requests were pre-empted in the baseline")
        if mem is not None:
            facts.append(f"mean KV-cache use was {mem:.0%}")
        return (f"{quote_speaker(texts[-1])} Answer from the measurements: "
                + ("; ".join(facts) + ". " if facts else "")
                + "Memory is allocated as decodes grow, after the router has decided, so "
                "balancing at admission cannot prevent pre-emptions when pools run near full. "
                "The structural fix is to keep head-room at admission, not to balance better.")

    def _summary(self) -> str:
        n = self.notes
        best = n["best"]
        base = n.get("baseline")
        ratio = (base / best["score"]) if base and best.get("score") else None
        lines = [f"Best design: {Design(**best['design']).label()} (experiment "
                 f"{best['name']}), mean e2e {best['score']:.2f} s"
                 + (f" vs {base:.2f} s for the baseline ({ratio:.2f}x better)." if ratio else ".")]
        if n.get("hypothesis"):
            lines.append("Profile of the baseline: " + n["hypothesis"])
        lines.append("Why it works: requests wait in the global queue until a replica has "
                     "KV-cache head-room for their expected growth, so pre-emptions (and the "
                     "recomputation they cause) become rare; shortest-prompt-first ordering of "
                     "that queue approximates shortest-job-first and cuts mean waiting time.")
        lines.append(f"Experiments: {len(n['tried']) + 1} (including the baseline).")
        return "\n".join(lines)


def _hypothesis(p: Mapping) -> str:
    """The hypothesis the profile supports, stated with its numbers."""
    if not p:
        return "the profile could not be read; testing balancing first."
    share_q = p.get("share_global_queue_s", 0) + p.get("share_replica_queue_s", 0)
    text = (f"{share_q:.0%} of request time is queueing, {p.get('share_decode_s', 0):.0%} "
            f"decoding and {p.get('share_lost_to_restarts_s', 0):.0%} lost to restarts; "
            f"{p.get('restart_fraction', 0):.0%} of requests restarted")
    if p.get("mean_e2e_restarted_s") is not None:
        text += (f" (mean e2e {p['mean_e2e_restarted_s']:.1f} s restarted vs "
                 f"{p.get('mean_e2e_not_restarted_s', 0):.1f} s not)")
    if p.get("mean_memory_use") is not None:
        text += f"; KV-cache use averages {p['mean_memory_use']:.0%}"
    text += (". Hypothesis: memory pressure causes pre-emptions, which waste work and inflate "
             "queueing; short prompts also wait behind long ones.")
    return text


def _new_supervisor_messages(messages: Sequence[Message], seen: int) -> list[str]:
    """Supervisor interventions and a person's nudges not yet answered (the session's own
    "continue" and "resumed" prompts are not questions to answer)."""
    users = [m.content for m in messages
             if m.role == "user" and getattr(m, "name", None) in ("supervisor", "person")]
    return users[seen:]


# What the recall points at, by the layer under design (the profile's question differs).
_RECALL_FOCUS = {
    "router": "who waits longest",
    "batch_policy": "which requests wait longest for a batch slot and what the batch holds back",
    "autoscaler": "when the pool ran short of replicas and when replicas sat idle",
}


class OfflineSupervisor:
    """A rule-based Supervisor with the same contract as the LLM one
    (:class:`glia_nb.research.session.contracts.SupervisorLike`).

    Like the LLM Supervisor it sees only results, never code: it reads the review's
    structured inputs (the trigger, the experiment records, its earlier interventions, the
    layer under design). On a plateau it asks why restarts persist (or which earlier finding
    is not yet combined); when the Researcher wants to stop after few experiments it points
    at the composition not yet tried; otherwise it says proceed."""

    provider = "offline"
    model = "offline-rule-based"

    def __init__(self, config: Any = None) -> None:
        from glia_nb.research.supervisor import SupervisorConfig

        self.config = config or SupervisorConfig()

    def should_review(self, state: Any) -> str | None:
        """The same triggers as the LLM Supervisor's."""
        from glia_nb.research.supervisor import review_trigger

        return review_trigger(self.config, state)

    def review(self, context: Any) -> Any:
        """A :class:`~glia_nb.research.supervisor.Decision` on ``context`` (a ReviewContext)."""
        from glia_nb.research.supervisor import Decision

        kind, text = self.decide(context)
        raw = f"DECISION: {kind}" + (f"\nMESSAGE: {text}" if text else "")
        return Decision(kind=kind, text=text, reason="rule-based review", trigger=context.trigger, raw=raw)

    def decide(self, context: Any) -> tuple[str, str]:
        """(decision kind, message) for one review."""
        rows = ([context.baseline] if context.baseline else []) + list(context.experiments)
        earlier = "\n".join(context.previous)
        restarts = [float(r["metrics"]["restart_fraction"]) for r in rows
                    if r.get("ok", True) and r.get("score") is not None
                    and (r.get("metrics") or {}).get("restart_fraction") is not None]
        if context.trigger == "stall":
            if restarts and min(restarts) > 0.05 and "restarts" not in earlier:
                return ("question", "It seems we have been unable to reduce the number of "
                        "restarts. Why is that? Is something structural in our approach "
                        "making them hard to limit?")
            if "combined" not in earlier:
                focus = _RECALL_FOCUS.get(context.layer, "where the time goes")
                return ("recall", "Several experiments brought no improvement. Recall what the "
                        f"profile showed about {focus}. Which earlier finding have you "
                        "not yet combined with the current best design?")
            return ("proceed", "")
        if context.trigger == "finish" and len(rows) < 5 and "composing" not in earlier:
            return ("redirect", "Before stopping: you measured several ideas separately. Have "
                    "you tried composing the best ones under the same settings?")
        return ("proceed", "")
