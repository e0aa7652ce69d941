"""The one tool-use loop: tools run, errors go back to the model, usage adds up."""

from __future__ import annotations

import pytest
from session_fakes import FakeToolBox, PricedClient, exp, finish

from glia_nb.research.agent import Agent, AgentConfig
from glia_nb.text import load_prompt, truncate_middle
from glia_nb.llm import Message, ScriptedClient, ToolCall, UsageLedger

CFG = AgentConfig(name="researcher", system_prompt="SYSTEM PROMPT", max_tokens=321, temperature=0.3)


def test_tool_calls_run_in_order_and_come_back_as_tool_messages():
    reply = Message.assistant("Baseline first, then a look around.", [
        ToolCall.from_arguments("a", "run_experiment", {"name": "baseline", "hypothesis": "reference"}),
        ToolCall.from_arguments("b", "shell", {"command": "ls experiments"}),
    ])
    client, toolbox = ScriptedClient([reply]), FakeToolBox([40.0])
    events: list[str] = []
    step = Agent(client, CFG, toolbox).step([Message.user("task")], on_event=lambda k, p: events.append(k))

    assert [c[0] for c in toolbox.calls] == ["run_experiment", "shell"]
    assert [m.tool_call_id for m in step.tool_messages] == ["a", "b"]
    assert step.tool_messages[0].content.startswith("Experiment 001: mean_e2e_s = 40.00")
    assert step.tool_messages[1].content.startswith("SHELL-OUTPUT for ls experiments")
    assert not any(m.is_error for m in step.tool_messages)
    assert step.outcomes[0].data["experiment"]["score"] == 40.0
    assert step.messages == (reply, *step.tool_messages)
    assert not step.finished and step.stop_reason == "tool_use"
    assert events == ["reply", "tool", "tool"]  # the reply is reported before any tool runs
    # The system prompt is prepended and the toolbox's specs are offered.
    sent, tools = client.calls[0]
    assert sent[0] == Message.system("SYSTEM PROMPT") and sent[1] == Message.user("task")
    assert [t.name for t in tools] == ["run_experiment", "shell", "finish", "boom"]


def test_malformed_arguments_become_an_error_result_and_the_loop_continues():
    bad = Message.assistant("Running it.", [ToolCall.from_raw("x1", "run_experiment", '{"name": "hra", ')])
    client, toolbox = ScriptedClient([bad, exp(2)]), FakeToolBox([35.0])
    agent = Agent(client, CFG, toolbox)

    first = agent.step([Message.user("task")])
    (msg,) = first.tool_messages
    assert msg.is_error and msg.tool_call_id == "x1"
    assert "not valid JSON" in msg.content
    assert toolbox.calls == []  # never reached the toolbox

    convo = [Message.user("task"), *first.messages]
    second = agent.step(convo)
    assert client.calls[1][0][-1] == msg  # the model saw its own error
    assert not second.tool_messages[0].is_error and toolbox.experiments == 1


def test_tool_errors_and_crashes_come_back_as_error_results():
    reply = Message.assistant("", [
        ToolCall.from_arguments("u", "no_such_tool", {}),
        ToolCall.from_arguments("v", "boom", {}),
        ToolCall.from_arguments("w", "run_experiment", {"hypothesis": "no name"}),
    ])
    step = Agent(ScriptedClient([reply]), CFG, FakeToolBox()).step([Message.user("task")])
    texts = [m.content for m in step.tool_messages]
    assert all(m.is_error for m in step.tool_messages)
    assert "unknown tool" in texts[0]
    assert "crashed: RuntimeError: kaboom" in texts[1]
    assert "missing required argument" in texts[2]


def test_finish_is_detected_with_its_summary():
    step = Agent(ScriptedClient([finish("HRA + SPF: 23 s")]), CFG, FakeToolBox()).step([Message.user("t")])
    assert step.finished and step.finish_summary == "HRA + SPF: 23 s"
    assert step.tool_messages[0].content == "Session marked as finished."


def test_tokens_and_dollars_add_up_across_calls():
    ledger = UsageLedger()
    client = PricedClient([exp(1), exp(2), "thinking", finish()], cost=0.25, input_tokens=[100, 200, 300, 400],
                          ledger=ledger)
    agent = Agent(client, CFG, FakeToolBox())
    convo, total_in, total_out, total_usd = [Message.user("task")], 0, 0, 0.0
    for _ in range(4):
        step = agent.step(convo)
        convo += step.messages
        if not step.assistant.tool_calls:
            convo.append(Message.user("go on"))
        total_in += step.usage.input_tokens
        total_out += step.usage.output_tokens
        total_usd += step.cost_usd
        assert step.prompt_tokens == step.usage.input_tokens
    assert total_in == 1000 and total_usd == pytest.approx(1.0)
    assert ledger.calls == 4
    assert ledger.usage.input_tokens == total_in and ledger.usage.output_tokens == total_out
    assert ledger.cost_usd == pytest.approx(total_usd)


def test_tool_less_configuration_sends_no_tools_and_refuses_calls():
    client = ScriptedClient([Message.assistant("hm", [ToolCall.from_arguments("t", "shell", {"command": "ls"})])])
    cfg = AgentConfig(name="supervisor", system_prompt="S", tools=False)
    agent = Agent(client, cfg, toolbox=FakeToolBox())
    assert agent.toolbox is None
    step = agent.step([Message.user("review")])
    assert client.calls[0][1] == []  # no tool specs offered
    assert step.tool_messages[0].is_error and "has no tools" in step.tool_messages[0].content
    with pytest.raises(ValueError, match="no toolbox"):
        Agent(client, CFG)


def test_long_tool_output_is_clipped_keeping_head_and_tail():
    text = "HEAD" + "x" * 10_000 + "TAIL"
    out = truncate_middle(text, 1000)
    assert out.startswith("HEAD") and out.endswith("TAIL") and len(out) < 1100
    assert "characters omitted" in out
    assert truncate_middle("short", 1000) == "short"


def test_prompts_teach_the_habits_and_the_rules():
    researcher = load_prompt("researcher_system").lower()
    for phrase in ("profile before guessing", "hypothesis", "global queue", "restarts", "memory utilisation",
                   "step back", "compose", "simple", "decode", "only the policy file"):
        assert phrase in researcher, phrase
    supervisor = load_prompt("supervisor_system")
    assert "DECISION:" in supervisor and "cannot see the code" in supervisor
