"""Fakes shared by the agent / supervisor / session tests: a toolbox with the real
ToolBox's data shapes but no simulator, scripted replies, and a priced scripted client."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from glia_nb.research.agent import StepResult
from glia_nb.llm import Message, ScriptedClient, ToolCall, ToolSpec, Usage


@dataclass(frozen=True)
class FakeResult:
    text: str
    is_error: bool = False
    data: Any = None


class FakeToolBox:
    """``run_experiment`` returns the next score (ToolBox-shaped data), ``finish`` and
    ``shell`` answer trivially, ``boom`` raises. ``log_path`` gets one fsync-ed line per
    experiment run (the crash test's ground truth); ``delay_s`` slows experiments down."""

    def __init__(self, scores: Iterable[float] = (), *, sims: int = 3, delay_s: float = 0.0,
                 log_path: str | None = None) -> None:
        self.scores = list(scores)
        self.sims, self.delay_s, self.log_path = sims, delay_s, log_path
        self.calls: list[tuple[str, dict]] = []
        self.experiments = 0

    def specs(self) -> list[ToolSpec]:
        obj = {"type": "object", "properties": {}}
        return [
            ToolSpec("run_experiment", "Evaluate the policy.", {
                "type": "object",
                "properties": {"name": {"type": "string"}, "hypothesis": {"type": "string"}},
                "required": ["name", "hypothesis"],
            }),
            ToolSpec("shell", "Run a command.", {"type": "object", "properties": {"command": {"type": "string"}}}),
            ToolSpec("finish", "End the study.", {"type": "object", "properties": {"summary": {"type": "string"}}}),
            ToolSpec("boom", "Always raises.", obj),
        ]

    def call(self, name: str, arguments: dict) -> FakeResult:
        self.calls.append((name, dict(arguments)))
        if name == "run_experiment":
            if "name" not in arguments:
                return FakeResult("bad arguments for run_experiment: missing required argument(s) name", True)
            if self.delay_s:
                time.sleep(self.delay_s)
            self.experiments += 1
            n = self.experiments
            score = self.scores[n - 1] if n <= len(self.scores) else 50.0 + n
            if self.log_path:
                with open(self.log_path, "a") as fh:
                    fh.write(f"{n}\n")
                    fh.flush()
                    os.fsync(fh.fileno())
            row = {"id": n, "name": arguments["name"], "hypothesis": arguments.get("hypothesis", ""), "status": "ok",
                   "score": score, "seeds": self.sims, "folder": f"experiments/{n:03d}"}
            return FakeResult(f"Experiment {n:03d}: mean_e2e_s = {score:.2f} s",
                              data={"experiment": row, "result": {"summary": {"mean_e2e_s": score}}})
        if name == "finish":
            return FakeResult("Session marked as finished.", data={"best": None})
        if name == "shell":
            return FakeResult(f"SHELL-OUTPUT for {arguments.get('command')}\n[exit code 0]")
        if name == "boom":
            raise RuntimeError("kaboom")
        return FakeResult(f"unknown tool {name!r}", True)


# ---------------------------------------------------------------------- scripted replies
def exp(i: int, text: str | None = None, name: str | None = None) -> Message:
    """An assistant turn that runs one experiment."""
    args = {"name": name or f"idea-{i}", "hypothesis": f"hypothesis {i}"}
    return Message.assistant(text if text is not None else f"Idea {i}: testing it.",
                             [ToolCall.from_arguments(f"call-{i}", "run_experiment", args)])


def finish(summary: str = "best design found", call_id: str = "call-finish") -> Message:
    """An assistant turn that calls finish."""
    return Message.assistant("I am done.", [ToolCall.from_arguments(call_id, "finish", {"summary": summary})])


def decision(kind: str, text: str = "") -> str:
    """A Supervisor reply in the requested format."""
    return f"DECISION: {kind}\nREASON: test\nMESSAGE:\n{text}"


class PricedClient(ScriptedClient):
    """A ScriptedClient whose calls cost ``cost`` dollars and report ``input_tokens``
    (a fixed number, or one per call) so budgets and context limits can be tested."""

    def __init__(self, replies: Sequence[Any], *, cost: float = 0.0, input_tokens: Any = None,
                 model: str = "scripted", context_window: int = 200_000, ledger: Any = None) -> None:
        super().__init__(replies, model=model, context_window=context_window)
        self.cost, self.input_tokens, self.priced_ledger = cost, input_tokens, ledger

    def complete(self, messages, tools=None, **kw):  # type: ignore[override]
        c = super().complete(messages, tools, **kw)
        tokens = self.input_tokens
        if isinstance(tokens, (list, tuple)):
            tokens = tokens[min(len(self.calls) - 1, len(tokens) - 1)]
        usage = c.usage if tokens is None else Usage(int(tokens), c.usage.output_tokens)
        c = dataclasses.replace(c, cost_usd=self.cost, usage=usage)
        if self.priced_ledger is not None:
            self.priced_ledger.record(c)
        return c


class Gate:
    """A reply that blocks the model call until released (to hold the worker mid-call)."""

    def __init__(self, reply: Message | str) -> None:
        self.reply = reply
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, messages, tools):
        self.entered.set()
        assert self.release.wait(10), "gate never released"
        return self.reply if isinstance(self.reply, Message) else Message.assistant(self.reply)


class RuleResearcher:
    """A stand-in for the offline researcher: calls toolbox tools directly and returns
    zero-cost StepResults (it implements the plain ``step(messages)`` protocol)."""

    model = "rule-based"

    def __init__(self, toolbox: Any, plan: Sequence[str] = ("run", "run", "finish")) -> None:
        self.toolbox, self.plan, self.turn = toolbox, list(plan), 0

    def step(self, messages, on_event=None):
        action = self.plan[min(self.turn, len(self.plan) - 1)]
        self.turn += 1
        cid = f"rule-{self.turn}"
        if action == "run":
            args = {"name": f"rule-{self.turn}", "hypothesis": "rules say so"}
            call = ToolCall.from_arguments(cid, "run_experiment", args)
        else:
            call = ToolCall.from_arguments(cid, "finish", {"summary": "rule-based summary"})
        result = self.toolbox.call(call.name, dict(call.arguments))
        assistant = Message.assistant(f"Rule step {self.turn}: {action}", [call])
        tool_msg = Message.tool_result(cid, result.text, name=call.name, is_error=result.is_error)
        return StepResult(assistant=assistant, tool_messages=(tool_msg,), usage=Usage(), cost_usd=0.0,
                          model=self.model, stop_reason="offline", finished=action == "finish",
                          finish_summary="rule-based summary" if action == "finish" else None)


def journal_records(path) -> list[dict]:
    """All records of a journal file, header first (complete lines only)."""
    out = []
    for line in open(path, encoding="utf-8"):
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def make_rule_researcher(*, toolbox: Any, **_: Any) -> RuleResearcher:
    """A RESEARCHERS factory (also reachable as the string "session_fakes:make_rule_researcher")."""
    return RuleResearcher(toolbox)


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.005) -> bool:
    """Poll ``predicate`` until it is true (True) or ``timeout`` passes (False)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
