"""A plain-text tool protocol for models and servers without native tool calls.

Many local setups (llama.cpp's servers with a model whose chat template has no tool
section, small instruction-tuned models) drop the ``tools`` parameter and answer in prose.
For them the tools are described in the system prompt and the model acts by writing one
JSON object in a fenced block::

    ```json
    {"tool": "run_experiment", "arguments": {"name": "llq", "hypothesis": "..."}}
    ```

:func:`parse_actions` reads such blocks tolerantly (other key names, the tool name as the
key, arguments inline, Python-style literals, an unfenced object); a block that looks like
an action but cannot be read becomes a :class:`ToolCall` with ``parse_error`` set, so the
agent loop answers it with an error the model can correct. :func:`to_text_conversation`
renders a conversation for such a model: tool results become user turns.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any, Iterable, Sequence

from glia_nb.llm.types import Message, ToolCall, ToolSpec

__all__ = ["INVALID_ACTION", "REMINDER", "TEXT_ID_PREFIX", "parse_actions", "render_protocol", "to_text_conversation"]

TEXT_ID_PREFIX = "txt"  # ids of calls read from text start with it (their text is in the turn)
INVALID_ACTION = "invalid_action"  # the name of a ToolCall that could not be read
MAX_ACTIONS = 4  # per reply: a model that floods actions is more likely confused than productive
REMINDER = 'Act with exactly one fenced block: ```json {"tool": "NAME", "arguments": {...}} ```'
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_NAME_KEYS = ("tool", "name", "action", "function", "tool_name")
_ARG_KEYS = ("arguments", "args", "parameters", "input", "params")


def render_protocol(tools: Sequence[ToolSpec]) -> str:
    """The system-prompt section that teaches the protocol and lists ``tools`` briefly."""
    lines = [
        "## How to use tools",
        "To use a tool, write ONE fenced JSON block in your reply, like this:",
        "```json",
        '{"tool": "read_file", "arguments": {"path": "TASK.md"}}',
        "```",
        "Then stop and wait: the tool's result comes back in the next message. Tools:",
    ]
    for t in tools:
        props = dict(t.parameters.get("properties") or {})
        required = set(t.parameters.get("required") or ())
        args = ", ".join(f"{k}{'' if k in required else '?'}: {(v or {}).get('type', 'any')}"
                         for k, v in props.items())
        first = t.description.split(". ")[0].strip().rstrip(".")
        lines.append(f"- {t.name}({args}): {first}.")
    return "\n".join(lines)


def _loads(text: str) -> Any:
    """JSON, else a Python literal (single quotes, True/None), else a trailing-comma fix."""
    text = text.strip()
    for attempt in (text, re.sub(r",\s*([}\]])", r"\1", text)):
        try:
            return json.loads(attempt)
        except (json.JSONDecodeError, RecursionError):
            pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        pass
    raise ValueError("not a JSON object")


def _objects(text: str) -> Iterable[tuple[str, bool]]:
    """Candidate action texts: fenced blocks (json or untagged, or any that start with
    '{'), else balanced top-level ``{...}`` spans of the prose. The flag says fenced."""
    fenced = [(lang.lower(), body) for lang, body in _FENCE.findall(text)]
    found = False
    for lang, body in fenced:
        if lang in ("json", "tool", "action", "") or body.lstrip().startswith("{"):
            if body.strip().startswith("{") or lang in ("json", "tool", "action"):
                found = True
                yield body, True
    if found:
        return
    depth, start, in_str, esc = 0, -1, False, False
    for i, ch in enumerate(text):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"' and depth:
            in_str = True
        elif ch == "{":
            start = i if depth == 0 else start
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
            if depth == 0:
                yield text[start:i + 1], False


def _to_call(obj: Any, names: set[str]) -> tuple[str, dict[str, Any]] | None:
    """(tool, arguments) from a decoded object, or None when it is not an action."""
    if not isinstance(obj, dict):
        return None
    name = next((obj[k] for k in _NAME_KEYS if isinstance(obj.get(k), str)), None)
    if name is None and len(obj) == 1:  # {"shell": {"command": "ls"}}
        (key, value), = obj.items()
        if key in names and isinstance(value, dict):
            return key, value
    if name is None:
        return None
    args = next((obj[k] for k in _ARG_KEYS if isinstance(obj.get(k), dict)), None)
    if args is None:  # {"tool": "shell", "command": "ls"}
        args = {k: v for k, v in obj.items() if k not in _NAME_KEYS and k not in _ARG_KEYS}
    return name.strip(), dict(args)


def parse_actions(text: str, tools: Sequence[ToolSpec], id_prefix: str) -> list[ToolCall]:
    """The actions in a reply (at most :data:`MAX_ACTIONS`). Unreadable fenced blocks
    give a call named :data:`INVALID_ACTION` with ``parse_error`` saying what to fix."""
    names = {t.name for t in tools}
    calls: list[ToolCall] = []
    for body, fenced in _objects(text or ""):
        if len(calls) >= MAX_ACTIONS:
            break
        cid = f"{id_prefix}_{len(calls)}"
        try:
            found = _to_call(_loads(body), names)
        except ValueError:
            if fenced:
                calls.append(ToolCall(cid, INVALID_ACTION, {}, body.strip()[:2000],
                                      'the block is not a JSON object; write {"tool": "NAME", "arguments": {...}}'))
            continue
        if found is None:
            if fenced:
                calls.append(ToolCall(cid, INVALID_ACTION, {}, body.strip()[:2000],
                                      'the object names no tool; write {"tool": "NAME", "arguments": {...}}'))
            continue
        name, args = found
        calls.append(ToolCall.from_arguments(cid, name, args))
    return calls


def _as_block(call: ToolCall) -> str:
    return "```json\n" + json.dumps({"tool": call.name, "arguments": dict(call.arguments)}) + "\n```"


def to_text_conversation(messages: Sequence[Message]) -> list[Message]:
    """``messages`` for a model without native tools: an assistant turn keeps its text (and
    shows native calls as blocks, if any slipped in), tool results become one user turn."""
    out: list[Message] = []
    results: list[str] = []

    def flush() -> None:
        if results:
            out.append(Message.user("\n\n".join(results)))
            results.clear()

    for m in messages:
        if m.role == "tool":
            label = "Error from" if m.is_error else "Result of"
            results.append(f"{label} {m.name or 'tool'}:\n{m.content}")
            continue
        flush()
        if m.role == "assistant":
            text = m.content
            missing = [c for c in m.tool_calls if not c.id.startswith(TEXT_ID_PREFIX)]
            if missing:
                text = "\n\n".join([text, *(_as_block(c) for c in missing)]).strip()
            out.append(Message.assistant(text or "(no reply)"))
        else:
            out.append(Message(m.role, m.content, name=m.name))
    flush()
    return out
