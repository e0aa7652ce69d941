"""The plain-text tool protocol: what small local models actually write, parsed tolerantly."""
from __future__ import annotations

import pytest

from glia_nb.llm.text_tools import INVALID_ACTION, parse_actions, render_protocol, to_text_conversation
from glia_nb.llm.types import Message, ToolCall, ToolSpec

TOOLS = [
    ToolSpec("shell", "Run a bash command in the workspace. Long output is cut.",
             {"type": "object", "properties": {"command": {"type": "string"}, "timeout_s": {"type": "integer"}},
              "required": ["command"]}),
    ToolSpec("finish", "End the study.", {"type": "object", "properties": {"summary": {"type": "string"}},
                                          "required": ["summary"]}),
]


def test_protocol_lists_every_tool_with_its_arguments():
    text = render_protocol(TOOLS)
    assert "- shell(command: string, timeout_s?: integer): Run a bash command in the workspace." in text
    assert "- finish(summary: string): End the study." in text and "```json" in text


@pytest.mark.parametrize("reply, name, args", [
    ('Let me look.\n```json\n{"tool": "shell", "arguments": {"command": "ls"}}\n```', "shell", {"command": "ls"}),
    ('```\n{"name": "shell", "args": {"command": "ls -l"}}\n```', "shell", {"command": "ls -l"}),
    ('```json\n{"shell": {"command": "pwd"}}\n```', "shell", {"command": "pwd"}),
    ('```json\n{"tool": "shell", "command": "cat TASK.md",}\n```', "shell", {"command": "cat TASK.md"}),
    ("```json\n{'tool': 'finish', 'arguments': {'summary': 'done'}}\n```", "finish", {"summary": "done"}),
    ('I will run {"action": "shell", "input": {"command": "echo {}"}} now', "shell", {"command": "echo {}"}),
    ('```json\n{"tool": "finish", "arguments": {"summary": "x"}}', "finish", {"summary": "x"}),  # unclosed
])
def test_actions_are_read_tolerantly(reply, name, args):
    (call,) = parse_actions(reply, TOOLS, "txt1")
    assert (call.name, dict(call.arguments), call.parse_error) == (name, args, None)
    assert call.id == "txt1_0"


def test_unreadable_blocks_become_error_calls_and_prose_is_no_action():
    (bad,) = parse_actions('```json\n{"tool": shell, args: }\n```', TOOLS, "t")
    assert bad.name == INVALID_ACTION and "not a JSON object" in bad.parse_error
    (nameless,) = parse_actions('```json\n{"command": "ls"}\n```', TOOLS, "t")
    assert nameless.name == INVALID_ACTION and "names no tool" in nameless.parse_error
    assert parse_actions("I think the router should balance load.", TOOLS, "t") == []
    assert parse_actions("```python\nprint(1)\n```", TOOLS, "t") == []  # code is not an action


def test_text_conversation_turns_tool_results_into_user_turns():
    native = ToolCall.from_arguments("call_1", "shell", {"command": "ls"})
    text_call = ToolCall.from_arguments("txt9_0", "shell", {"command": "pwd"})
    convo = to_text_conversation([
        Message.user("task"),
        Message.assistant("", [native]),
        Message.tool_result("call_1", "a.py", name="shell"),
        Message.assistant('```json\n{"tool": "shell", "arguments": {"command": "pwd"}}\n```', [text_call]),
        Message.tool_result("txt9_0", "no such dir", name="shell", is_error=True),
    ])
    assert [m.role for m in convo] == ["user", "assistant", "user", "assistant", "user"]
    assert '"tool": "shell"' in convo[1].content and not convo[1].tool_calls  # native call shown as a block
    assert convo[2].content == "Result of shell:\na.py"
    assert convo[3].content.count("```json") == 1  # a text call is not repeated
    assert convo[4].content.startswith("Error from shell:")
