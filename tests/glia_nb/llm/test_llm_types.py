"""Message types, the scripted client and the usage ledger."""

from __future__ import annotations

import json
import threading

import pytest

from glia_nb.llm import (
    Completion,
    LLMClient,
    LLMError,
    Message,
    ScriptedClient,
    ToolCall,
    ToolSpec,
    Usage,
    UsageLedger,
)
from glia_nb.llm.types import messages_from_dicts, messages_to_dicts, parse_tool_arguments


def test_message_round_trip_through_json():
    call_ok = ToolCall.from_raw("c1", "run", '{"a": [1, 2]}')
    call_bad = ToolCall.from_raw("c2", "run", '{"a": ')
    convo = [
        Message.system("sys"),
        Message.user("hello", name="supervisor"),
        Message.assistant("thinking", [call_ok, call_bad]),
        Message.tool_result("c1", "result", name="run"),
        Message.tool_result("c2", "bad json", is_error=True),
    ]
    text = json.dumps(messages_to_dicts(convo))
    back = messages_from_dicts(json.loads(text))
    assert back == convo
    assert back[2].tool_calls[1].parse_error is not None


def test_completion_round_trip():
    c = Completion(Message.assistant("x"), Usage(3, 4, 1), 0.5, "m", "p", "end_turn", 1.25, cost_known=False, attempts=2)
    assert Completion.from_dict(json.loads(json.dumps(c.to_dict()))) == c


@pytest.mark.parametrize(
    "raw, args, error",
    [
        ('{"x": 1}', {"x": 1}, False),
        ("", {}, False),
        ("   ", {}, False),
        (None, {}, False),
        ('{"x": ', {}, True),
        ("[1, 2]", {}, True),
        ('"text"', {}, True),
        ("{'x': 1}", {}, True),
    ],
)
def test_parse_tool_arguments_never_raises(raw, args, error):
    parsed, err = parse_tool_arguments(raw)
    assert parsed == args and (err is not None) == error


def test_message_validation():
    with pytest.raises(ValueError):
        Message("robot", "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Message("tool", "x")  # no tool_call_id
    with pytest.raises(ValueError):
        Message("user", "x", tool_calls=(ToolCall("c", "n"),))
    with pytest.raises(TypeError):
        Message("user", None)  # type: ignore[arg-type]
    m = Message("assistant", "", tool_calls=[ToolCall("c", "n")])  # list → tuple
    assert isinstance(m.tool_calls, tuple)


def test_tool_spec_validation():
    with pytest.raises(ValueError):
        ToolSpec("bad name", "d", {"type": "object"})
    with pytest.raises(ValueError):
        ToolSpec("ok", "d", {"type": "array"})
    spec = ToolSpec("ok", "d")
    assert ToolSpec.from_dict(spec.to_dict()) == spec


def test_scripted_client():
    ledger = UsageLedger()
    client = ScriptedClient(
        [
            Message.assistant("", [ToolCall.from_arguments("c1", "run", {"p": 1})]),
            lambda msgs, tools: Message.assistant(f"saw {len(msgs)} messages and {len(tools)} tools"),
        ],
        ledger=ledger,
    )
    assert isinstance(client, LLMClient)
    tools = [ToolSpec("run", "d")]
    first = client.complete([Message.user("go")], tools)
    assert first.stop_reason == "tool_use"
    second = client.complete([Message.user("go"), first.message, Message.tool_result("c1", "ok")], tools)
    assert second.message.content == "saw 3 messages and 1 tools"
    assert client.remaining == 0 and len(client.calls) == 2 and ledger.calls == 2
    with pytest.raises(LLMError, match="no reply left"):
        client.complete([Message.user("again")])


def test_usage_ledger_is_thread_safe():
    ledger = UsageLedger()
    done = Completion(Message.assistant("x"), Usage(10, 5, 2), 0.001, "m1", "p", "end_turn", 0.0)
    free = Completion(Message.assistant("x"), Usage(1, 1), 0.0, "local", "p", "end_turn", 0.0, cost_known=False)

    def work():
        for _ in range(500):
            ledger.record(done)
            ledger.record(free)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ledger.calls == 8000
    assert ledger.usage == Usage(8 * 500 * 11, 8 * 500 * 6, 8 * 500 * 2)
    assert ledger.cost_usd == pytest.approx(4000 * 0.001)
    assert ledger.unpriced_models == {"local"}
    snap = json.loads(json.dumps(ledger.snapshot()))
    assert snap["by_model"]["m1"]["calls"] == 4000 and snap["unpriced_models"] == ["local"]
