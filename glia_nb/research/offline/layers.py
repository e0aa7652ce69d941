"""The offline researcher's plans for the other layers of the stack (no LLM, no key).

:class:`glia_nb.research.offline.researcher.OfflineResearcher` handles the A10 routing task with its own
catalogue; for every other task it hands its decisions to a :class:`LayerPlan` from
:func:`plan_for` (a small dispatch hook in ``offline.py``).  A plan is a short, rule-based
research programme written as data: measure the baseline, try the mechanisms of a small
per-layer catalogue (each a complete policy file with its rationale), refine the parameter of
the best one around its value, leave the best design in the policy file and finish.

* batch policy — shortest-prefill-first (the SRPT intuition: short prefills stop queueing
  behind long ones), then ageing variants that bound how long a long prompt can wait;
* autoscaler — a proportional controller on in-flight requests per instance (the paper's
  finding), its set-point tuned for the fewest GPU-hours that keep the slowdown bound, and a
  tuned threshold controller for comparison;
* TTFT-constrained routing — least outstanding prefill tokens (shortest expected TTFT),
  then holding requests globally and releasing shortest prompts first.

Scores are compared with the task's :class:`~glia_nb.tasks.task.Objective`, so constrained
objectives (a violated bound scores the worst value) are handled in one place.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from glia_nb.tasks.layers import LAYERS


def quote_speaker(text: str, limit: int = 200) -> str:
    """Who said a message the session delivered and what, for the Researcher's reply:
    ``[Person steering the study] look at X`` -> 'The person steering the study says:
    "look at X".'; a Supervisor's message (or an unlabelled one) -> 'The Supervisor asks: ...'."""
    text = text.strip()
    who = "The Supervisor asks"
    if text.startswith("[") and "]" in text:
        label, text = text[1:text.index("]")], text[text.index("]") + 1:].strip()
        if label.lower().startswith("person"):
            who = "The person steering the study says"
    first = text.splitlines()[0] if text else ""
    return f'{who}: "{first[:limit]}".'


# ----------------------------------------------------------------------------- catalogue
BATCH_SOURCE = '''"""{title}

{why}
Written by the offline (rule-based) researcher of glia-nb; experiment {name}.
"""

SECONDS_PER_TOKEN = {seconds_per_token!r}  # None: pure shortest-prefill-first


class {cls}:
    def key(self, prompt_tokens, arrived_at):
        """Smaller first.  A virtual deadline: arrival time plus a charge per prompt token
        (large charge = shortest prefill first; zero = arrival order)."""
        if SECONDS_PER_TOKEN is None:
            return float(prompt_tokens)
        return arrived_at + SECONDS_PER_TOKEN * prompt_tokens
'''

PROPORTIONAL_SOURCE = '''"""{title}

{why}
Written by the offline (rule-based) researcher of glia-nb; experiment {name}.
"""
import math

TARGET = {target!r}  # in-flight requests (waiting + running + global queue) per instance
DOWN_DELAY_S = {down_delay_s!r}  # want fewer replicas this long before draining one


class {cls}:
    def reset(self, info, rng):
        self.want_less_since = None

    def decide(self, stats):
        n = stats.num_serving
        demand = float(stats.in_flight.sum() + stats.global_queue_len)
        want = max(1, math.ceil(demand / TARGET))
        if want >= n:
            self.want_less_since = None
            return want
        if self.want_less_since is None:
            self.want_less_since = stats.now
        return want if stats.now - self.want_less_since >= DOWN_DELAY_S else n
'''

THRESHOLD_SOURCE = '''"""{title}

{why}
Written by the offline (rule-based) researcher of glia-nb; experiment {name}.
"""
import math

HIGH = {high!r}  # decode tokens/s per active instance above which we add one
LOW = {low!r}
COOLDOWN_S = {cooldown_s!r}


class {cls}:
    def reset(self, info, rng):
        self.last_change = -math.inf

    def decide(self, stats):
        n = stats.num_serving
        active = stats.state == 2
        if stats.now - self.last_change < COOLDOWN_S or not active.any():
            return n
        per_instance = float(stats.decode_tokens_per_s[active].mean())
        if per_instance > HIGH:
            self.last_change = stats.now
            return n + 1
        if per_instance < LOW and n > 1:
            self.last_change = stats.now
            return n - 1
        return n
'''

TTFT_ROUTER_SOURCE = '''"""{title}

{why}
Written by the offline (rule-based) researcher of glia-nb; experiment {name}.
"""
import numpy as np

HOLD_TOKENS = {hold_tokens!r}  # None: route at once; else hold while every replica has this much prefill queued
SHORTEST_FIRST = {shortest_first!r}  # release the global queue shortest prompt first


class {cls}:
    def reset(self, info, rng):
        self.info = info

    def route(self, view):
        queue = view.queue
        if len(queue) == 0:
            return []
        # Outstanding prefill per replica: waiting prompts plus unprocessed running prompts.
        load = view.waiting_prompt_tokens.astype(float)
        for r in np.flatnonzero(view.num_running):
            run = view.running(int(r))
            load[r] += np.maximum(view.prompt_tokens[run] - view.processed_tokens[run], 0).sum()
        load = np.where(view.accepting, load, np.inf)
        prompts = view.prompt_tokens[queue]
        if SHORTEST_FIRST:
            order = np.lexsort((queue, prompts))
            queue, prompts = queue[order], prompts[order]
        decisions = []
        for request, prompt in zip(queue.tolist(), prompts.tolist()):
            replica = int(np.argmin(load))
            if not np.isfinite(load[replica]):
                break
            if HOLD_TOKENS is not None and load[replica] >= HOLD_TOKENS:
                break
            decisions.append((request, replica))
            load[replica] += prompt
        return decisions
'''


@dataclass(frozen=True)
class Candidate:
    """One design to try: a name, the policy file's source, and why."""

    name: str
    source: str
    why: str
    hypothesis: str
    params: tuple = ()


def _batch(name, sec, why, hyp, cls):
    title = "Shortest prefill first" if sec is None else f"Aged shortest-prefill-first ({sec:g} s/token)"
    return Candidate(name, BATCH_SOURCE.format(title=title, why=why, name=name, cls=cls,
                                               seconds_per_token=sec), why, hyp,
                     (("seconds_per_token", sec),))


def batch_candidates(cls: str, best: Mapping | None = None) -> list[Candidate]:
    """Round 1: pure SPF and two ageing strengths; round 2: halve/double the best ageing."""
    if best is None:
        return [
            _batch("shortest-prefill-first", None,
                   "Requests wait in the replicas' queues behind long prompts: with arrival "
                   "order a 4,000-token prompt at the head delays every short one behind it. "
                   "Ordering by prompt length approximates shortest-job-first, which "
                   "minimises mean completion time.",
                   "Shortest-prefill-first cuts mean e2e by cutting queueing for short "
                   "prompts.", cls),
            _batch("aged-spf-0.01", 0.01,
                   "SPF can starve long prompts; a virtual deadline (arrival + 10 ms per "
                   "prompt token) keeps most of the gain and bounds the wait.",
                   "Ageing keeps most of SPF's gain with a smaller tail.", cls),
            _batch("aged-spf-0.1", 0.1,
                   "A stronger charge per token (100 ms) is closer to pure SPF.",
                   "Between the two.", cls),
        ]
    sec = dict(best.get("params") or ()).get("seconds_per_token")
    if sec is None:
        return []
    return [_batch(f"aged-spf-{s:g}", s, f"Refining the ageing charge around {sec:g} s/token.",
                   "A nearby charge may balance mean and tail better.", cls)
            for s in (round(sec * 0.3, 4), round(sec * 3, 4))]


def _prop(name, target, delay, why, hyp, cls):
    return Candidate(name, PROPORTIONAL_SOURCE.format(
        title=f"Proportional autoscaler (target {target:g} in flight per instance)",
        why=why, name=name, cls=cls, target=float(target), down_delay_s=float(delay)), why, hyp,
        (("kind", "proportional"), ("target", float(target)), ("down_delay_s", float(delay))))


def autoscaler_candidates(cls: str, best: Mapping | None = None) -> list[Candidate]:
    """Round 1: a proportional controller at three set-points; round 2: around the best."""
    why = ("Decode throughput per instance is a lagging, load-mix-dependent signal: it "
           "saturates when replicas are overloaded, so the threshold controller adds capacity "
           "late and removes it late. In-flight requests per instance (waiting + running + "
           "global queue) measure the backlog directly; a proportional controller sizes the "
           "pool to keep each instance at a set-point.")
    if best is None:
        # Scaling down at once follows the load closest; a delay of half or one cold start
        # keeps the pool from shedding a replica it will need again within the ramp.  The
        # bound must hold in every seed.
        return [_prop(f"proportional-{t}-{d}", t, d, why if t == 35 else
                      f"Set-point {t}: trades GPU-hours against queueing.",
                      "Sizing by in-flight requests meets the slowdown bound with fewer "
                      "GPU-hours than throughput thresholds.", cls)
                for t, d in ((35, 0), (30, 30), (45, 60))]
    p = dict(best.get("params") or ())
    if p.get("kind") != "proportional":
        return []
    t, d = p["target"], p["down_delay_s"]
    return [_prop(f"proportional-{t * f:g}-{dd:g}", round(t * f, 1), dd,
                  f"Refining around target {t:g}: the cheapest set-point that keeps the bound.",
                  "A nearby set-point or drain delay is cheaper at equal slowdown.", cls)
            for f, dd in ((1.15, d), (1.3, d), (1.0, d + 30))]


def _ttft(name, hold, spf, why, hyp, cls):
    return Candidate(name, TTFT_ROUTER_SOURCE.format(
        title="TTFT-aware router" + (" with global hold" if hold else ""), why=why, name=name,
        cls=cls, hold_tokens=hold, shortest_first=spf), why, hyp,
        (("hold_tokens", hold), ("shortest_first", spf)))


def ttft_router_candidates(cls: str, best: Mapping | None = None) -> list[Candidate]:
    """Least outstanding prefill, then hold + shortest-first variants."""
    if best is None:
        return [
            _ttft("least-outstanding-prefill", None, False,
                  "Prompts are ~70x longer than outputs here, so TTFT is the prefill work "
                  "queued ahead of a request. Balancing request counts (LLQ) or KV memory "
                  "(HRA) ignores that; placing each request where the fewest prompt tokens "
                  "remain to prefill approximates shortest expected TTFT.",
                  "Balancing outstanding prefill cuts P90 TTFT at equal throughput.", cls),
            _ttft("prefill-hold-spf", 8192, True,
                  "Hold requests in the global queue while every replica already has a chunk "
                  "of prefill queued, and release the shortest prompts first.",
                  "Shortest-first release cuts the TTFT of the many short prompts.", cls),
        ]
    p = dict(best.get("params") or ())
    if p.get("hold_tokens") is None:
        return [_ttft("least-prefill-spf", None, True, "Route at once, shortest prompts first.",
                      "Ordering helps within a routing call.", cls)]
    h = p["hold_tokens"]
    return [_ttft(f"prefill-hold-{int(h * f)}", int(h * f), True,
                  f"Refining the hold threshold around {h} tokens.", "A nearby threshold "
                  "balances queueing at the router and at the replicas better.", cls)
            for f in (0.5, 2.0)]


def plan_for(task) -> "LayerPlan | None":
    """The plan for ``task``, or None for the A10 routing task (the classic catalogue)."""
    layer = getattr(task, "layer", "router")
    cls = getattr(task, "class_name", LAYERS[layer].default_class)
    obj = getattr(task, "objective", None)
    if layer == "batch_policy":
        return LayerPlan(LAYERS[layer].noun, lambda best: batch_candidates(cls, best))
    if layer == "autoscaler":
        return LayerPlan(LAYERS[layer].noun, lambda best: autoscaler_candidates(cls, best))
    if layer == "router" and getattr(obj, "constraint", None) == "p90_ttft_s":
        return LayerPlan("TTFT-aware router", lambda best: ttft_router_candidates(cls, best))
    return None


# ----------------------------------------------------------------------------- the plan
def _key(params) -> str:
    """Parameters as a comparable string (tuples and JSON lists alike)."""
    return json.dumps([list(p) for p in params or ()])


class LayerPlan:
    """Measure the baseline, try round-1 candidates, refine the best once, restore, finish.

    State lives in the researcher's notes (``notes["plan"]``), so a resumed session goes on."""

    def __init__(self, label: str, candidates: Callable[[Mapping | None], list[Candidate]]):
        self.label = label
        self.candidates = candidates

    def _state(self, r) -> dict:
        st = r.notes.setdefault("plan", {})
        if not st:
            st.update(stage="baseline", queue=[], tried=[], best=None, round=1)
            st["queue"] = [c.__dict__ for c in self.candidates(None)]
        return st

    def decide(self, r, supervisor: list[str]) -> tuple[str, str, dict]:
        st = self._state(r)
        pre = (f"{quote_speaker(supervisor[-1], 200)} I answer with "
               "measurements: each experiment below tests one mechanism, and I keep the best "
               "measured design.\n\n") if supervisor else ""
        if st["stage"] == "baseline":
            row = r._recorded_baseline()
            if row:
                st["best"] = {"name": row.get("name") or "baseline", "score": row["score"],
                              "source": None, "params": ()}
                st["baseline"] = row["score"]
                st["stage"] = "write" if st["queue"] else "finish"
            else:
                return (pre + f"Measuring the unchanged {self.label} (the baseline) first.",
                        "run_experiment", {"name": "baseline", "hypothesis": "Reference "
                                           "measurement of the baseline; no change expected."})
        if st["stage"] == "write":
            c = st["queue"][0]
            return pre + c["why"], "write_file", {"path": r._policy_file(), "content": c["source"]}
        if st["stage"] == "run":
            c = st["queue"][0]
            return (pre + f"Testing: {c['hypothesis']}", "run_experiment",
                    {"name": c["name"], "hypothesis": c["hypothesis"]})
        if st["stage"] == "restore":
            return (pre + "Leaving the best measured design in the policy file.", "write_file",
                    {"path": r._policy_file(), "content": st["best"]["source"]})
        return pre + "I am done: the catalogue for this layer is covered.", "finish", {
            "summary": self.summary(r)}

    def observe(self, r, tool: str, args: Mapping, result: Any) -> None:
        st = self._state(r)
        data = getattr(result, "data", None) or {}
        if tool == "write_file":
            st["stage"] = {"write": "run", "restore": "finish"}.get(st["stage"], st["stage"])
            return
        if tool != "run_experiment":
            return
        row = (data.get("experiment") or {}) if isinstance(data, Mapping) else {}
        if isinstance(data, Mapping) and data.get("budget_exhausted"):
            st["queue"] = []
            self._wrap_up(st)
            return
        score = row.get("score") if not getattr(result, "is_error", False) else None
        if st["stage"] == "baseline":
            st["baseline"] = score
            st["best"] = {"name": "baseline", "score": score, "source": None, "params": ()}
            st["stage"] = "write" if st["queue"] else "finish"
            return
        item = st["queue"].pop(0)
        item["score"] = score
        st["tried"].append(item)
        obj = r.task.objective
        best = st["best"]
        if score is not None and (best is None or best.get("score") is None
                                  or obj.is_better(float(score), float(best["score"]))):
            st["best"] = {k: item[k] for k in ("name", "score", "source", "params")}
        if not st["queue"] and st["round"] == 1:
            st["round"] = 2
            if st["best"].get("source"):
                seen = {_key(t["params"]) for t in st["tried"]}
                st["queue"] = [c.__dict__ for c in self.candidates(st["best"])
                               if _key(c.params) not in seen]
        if st["queue"]:
            st["stage"] = "write"
        else:
            self._wrap_up(st)

    def _wrap_up(self, st: dict) -> None:
        last = st["tried"][-1]["source"] if st["tried"] else None
        best = st.get("best") or {}
        st["stage"] = "restore" if best.get("source") and best["source"] != last else "finish"

    def summary(self, r) -> str:
        st = self._state(r)
        best, base = st.get("best") or {}, st.get("baseline")
        obj = r.task.objective
        lines = [f"Best {self.label}: {best.get('name')} with {obj.name} = {best.get('score')}"
                 + (f" against {base} for the baseline" if base is not None else "") + "."]
        if obj.constraint:
            lines.append(f"Scores respect {obj.constraint} <= {obj.constraint_max:g} (a "
                         "violation scores the worst value).")
        for t in st["tried"]:
            lines.append(f"- {t['name']}: {t.get('score')}")
        lines.append(f"Experiments: {len(st['tried']) + 1} (including the baseline).")
        return "\n".join(lines)


__all__ = ["LayerPlan", "Candidate", "plan_for", "batch_candidates", "autoscaler_candidates",
           "ttft_router_candidates"]
