"""The Researcher on a model without native tool calls, and a session's small-window and
failure paths, with scripted local-server stand-ins (no model needed)."""
from __future__ import annotations

import json

import pytest
from session_fakes import FakeToolBox, ScriptedClient, journal_records

from glia_nb.llm import LLMError, Message
from glia_nb.llm.text_tools import INVALID_ACTION
from glia_nb.research.agent import Agent, AgentConfig
from glia_nb.research.session.session import Session
from glia_nb.research.sizing import compact_task_text, sizing_for
from glia_nb.tasks import get_task

CFG = AgentConfig(name="researcher", system_prompt="SYSTEM PROMPT", max_tokens=200)


class LocalClient(ScriptedClient):
    """A scripted model behind an OpenAI-compatible server: text replies, no tool calls."""

    provider = "openai-compatible"


def block(tool: str, **arguments) -> str:
    return f"Next step.\n```json\n{json.dumps({'tool': tool, 'arguments': arguments})}\n```"


def test_auto_mode_falls_back_to_text_actions_with_the_same_records():
    client = LocalClient([block("run_experiment", name="llq-2", hypothesis="less queueing"),
                          block("shell", command="ls")])
    toolbox, events = FakeToolBox([40.0]), []
    agent = Agent(client, CFG, toolbox)
    first = agent.step([Message.user("task")], on_event=lambda k, p: events.append((k, dict(p))))
    # The server answered the tool offer in prose; the action in it still ran.
    assert [k for k, _ in events] == ["tool_mode", "reply", "tool"] and agent.text_tools
    assert client.calls[0][1] != []  # native tools were offered first
    (call,) = first.assistant.tool_calls
    assert (call.name, dict(call.arguments)) == ("run_experiment", {"name": "llq-2", "hypothesis": "less queueing"})
    assert first.tool_messages[0].tool_call_id == call.id and toolbox.experiments == 1
    # From now on: no tools parameter, the protocol in the system prompt, results as user turns.
    agent.step([Message.user("task"), *first.messages])
    sent, tools = client.calls[1]
    assert tools == [] and "## How to use tools" in sent[0].content and "- shell(" in sent[0].content
    assert sent[-1].role == "user" and sent[-1].content.startswith("Result of run_experiment:")
    assert "Act with exactly one fenced block" in sent[-1].content
    assert all(m.role != "tool" for m in sent)


def test_malformed_text_actions_go_back_as_errors():
    client = LocalClient(['```json\n{"tool": "shell", "arguments": {"command": "ls"\n```'])
    agent = Agent(client, AgentConfig(name="r", system_prompt="S", tool_mode="text"), FakeToolBox())
    step = agent.step([Message.user("task")])
    (call,) = step.assistant.tool_calls
    assert call.name == INVALID_ACTION and step.tool_messages[0].is_error
    assert "not a JSON object" in step.tool_messages[0].content
    assert client.calls[0][1] == []  # text mode never offers native tools


def test_hosted_providers_never_leave_native_tool_calls():
    client = ScriptedClient([block("shell", command="ls")])  # provider "scripted": treated as native
    agent = Agent(client, CFG, FakeToolBox())
    step = agent.step([Message.user("task")])
    assert not agent.text_tools and step.assistant.tool_calls == ()


def test_a_model_that_never_acts_fails_the_session_with_a_reason(tmp_path):
    client = LocalClient(["I like routers."] * 10)
    s = Session.create("route requests well", tmp_path / "ws", client, toolbox=FakeToolBox(), supervisor_config=None)
    s.max_unusable_turns = 3
    s.run()
    assert s.status == "failed" and s.end_reason == "the model produced no usable tool call in 3 turns in a row"
    recs = journal_records(s.journal.path)
    assert [r["type"] for r in recs].count("llm_call") == 3
    assert all("input_tokens" in r["usage"] for r in recs if r["type"] == "llm_call")
    # The server answered in prose, so the Researcher moved to the text protocol, and says so.
    assert [r["tool_mode"] for r in recs if r["type"] == "llm_call"] == ["text"] * 3
    assert recs[-1]["type"] == "finished" and recs[-1]["status"] == "failed"


def test_an_unreachable_model_fails_the_session_in_one_line(tmp_path):
    def dead(messages, tools):
        raise LLMError("cannot reach http://127.0.0.1:9/v1: connection refused", kind="connection")

    s = Session.create("route requests well", tmp_path / "ws", LocalClient([dead]), toolbox=FakeToolBox(),
                       supervisor_config=None)
    s.run()
    assert s.status == "failed" and s.end_reason == "cannot reach http://127.0.0.1:9/v1: connection refused"
    (err,) = [r for r in journal_records(s.journal.path) if r["type"] == "error"]
    assert err["kind"] == "connection"


def test_small_windows_get_compact_prompts_and_large_ones_do_not():
    task = get_task("routing-a10")
    text = compact_task_text(task, 35.67)
    assert len(text) < 2000 and "TASK.md" in text and "35.670" in text and "policy.py" in text
    assert len(task.render_text(35.67)) > 4 * len(text)
    small, large = sizing_for(8192), sizing_for(200_000)
    assert small.compact and not large.compact
    assert small.max_tokens <= 1024 and small.max_tool_chars < large.max_tool_chars
    assert 4096 <= small.compact_at < 8192 and large.compact_at > 150_000


@pytest.mark.parametrize("window", [8192])
def test_a_session_on_an_8k_model_opens_with_a_prompt_that_fits(tmp_path, window):
    from session_fakes import finish

    client = LocalClient([finish()], context_window=window)
    s = Session.create("routing-a10", tmp_path / "ws", client, toolbox=FakeToolBox(), supervisor_config=None,
                       run_baseline=False)
    s.run()
    sent, _ = client.calls[0]
    chars = sum(len(m.content) for m in sent)
    assert chars < 3.0 * window * 0.4  # system prompt + task: well under half the window
    assert "TASK.md" in sent[1].content


def test_glia_study_on_a_closed_port_exits_nonzero_within_seconds_naming_the_url(tmp_path):
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    t0 = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "glia_nb.cli", "study", "routing-a10", "--researcher",
                          f"openai-compatible:{url}:smollm2", "--budget-sims", "3", "--out", str(tmp_path / "o"),
                          "--json"], capture_output=True, text=True, timeout=60)
    assert time.monotonic() - t0 < 30 and run.returncode == 1
    said = [line for line in run.stderr.strip().splitlines() if line.startswith("glia")]
    assert said == [f"glia: study failed: cannot reach {url}: connection refused"]  # one line, besides the bar
    assert "Traceback" not in run.stderr
    doc = json.loads(run.stdout)
    assert (doc["status"], doc["reason"]) == ("failed", f"cannot reach {url}: connection refused")


def test_resume_rebuilds_the_openai_compatible_client_from_the_journal_header(tmp_path):
    from standin_llm import StandInLLM

    from glia_nb.llm import OpenAICompatibleClient, make_client
    from glia_nb.tasks.budget import Budget

    with StandInLLM(max_experiments=1) as llm:
        client = make_client(llm.spec, context_window=16_000)
        s = Session.create("route requests well", tmp_path / "ws", client, toolbox=FakeToolBox([40.0]),
                           supervisor_config=None, budget=Budget(max_turns=1))
        s.run()
        header = journal_records(s.journal.path)[0]
        assert header["researcher"]["base_url"] == llm.url and header["researcher"]["context_window"] == 16_000
        s.journal.close()
        again = Session.resume(s.path, toolbox=FakeToolBox([39.0]), budget=Budget(max_turns=3))
        rebuilt = again.researcher.client
        assert isinstance(rebuilt, OpenAICompatibleClient) and rebuilt.base_url == llm.url
        assert rebuilt.model == "standin" and rebuilt.context_window == 16_000
        again.run()  # the rebuilt client really talks to the server
        calls = [r for r in journal_records(s.journal.path) if r["type"] == "llm_call"]
        assert len(calls) >= 2 and all(c["provider"] == "openai-compatible" for c in calls)


def test_sigterm_ends_a_study_with_an_end_record_and_exit_130(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "o"
    proc = subprocess.Popen([sys.executable, "-m", "glia_nb.cli", "study", "routing-a10", "--budget-sims", "20",
                             "--eval-seeds", "2", "--workers", "1", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 600  # a cold numba cache compiles the engine first
        journal = None
        while time.monotonic() < deadline:  # wait for the study to be under way
            found = list(out.glob("context0/*/journal.jsonl"))
            if found and any(r["type"] == "user_message" for r in journal_records(found[0])):
                journal = found[0]
                break
            time.sleep(0.2)
        assert journal is not None, "the study never started"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "interrupted" in err
    last = journal_records(journal)[-1]
    assert (last["type"], last["status"], last["reason"]) == ("finished", "stopped", "interrupted")
