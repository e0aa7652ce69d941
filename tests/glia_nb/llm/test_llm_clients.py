"""The SDK-backed clients, driven through the real anthropic / openai SDKs with HTTP
mocked at the transport layer (see the ``llm_http`` fixture in conftest.py)."""

from __future__ import annotations

import json

import httpx
import pytest

from glia_nb.llm import (
    AnthropicClient,
    LLMClient,
    LLMConfigError,
    LLMError,
    Message,
    OpenAIClient,
    OpenAICompatibleClient,
    RetryPolicy,
    ToolCall,
    ToolSpec,
    UsageLedger,
    make_client,
    parse_spec,
)

ANTHROPIC_URL = "https://api.anthropic.com/v1/messages"
OPENAI_URL = "https://api.openai.com/v1/chat/completions"
FAST = RetryPolicy(max_retries=2, backoff_s=0.0, max_backoff_s=0.0, jitter=0.0)

RUN_SIM = ToolSpec(
    "run_simulation",
    "Run the cluster simulator with a routing policy.",
    {
        "type": "object",
        "properties": {"policy": {"type": "string"}, "seed": {"type": "integer"}},
        "required": ["policy"],
    },
)

# Response bodies in the shape the two APIs return (ids and fingerprints are made up).
ANTHROPIC_TOOL_USE = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "type": "message",
    "role": "assistant",
    "model": "claude-haiku-4-5-20251001",
    "content": [
        {"type": "text", "text": "I'll run the baseline first."},
        {
            "type": "tool_use",
            "id": "toolu_01A09q90qw90lq917835lq9",
            "name": "run_simulation",
            "input": {"policy": "llq", "seed": 3},
        },
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 1200,
        "output_tokens": 80,
        "cache_read_input_tokens": 300,
        "cache_creation_input_tokens": 0,
    },
}
ANTHROPIC_FINAL = {
    "id": "msg_01Aq9w938a90dw8q",
    "type": "message",
    "role": "assistant",
    "model": "claude-haiku-4-5-20251001",
    "content": [{"type": "text", "text": "Baseline mean latency is 40 s."}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 1400, "output_tokens": 20},
}
ANTHROPIC_ERROR = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


def openai_body(message: dict, finish_reason: str, model: str = "gpt-4o-mini-2024-07-18", usage=None) -> dict:
    return {
        "id": "chatcmpl-9xYz",
        "object": "chat.completion",
        "created": 1730000000,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        "usage": usage
        or {
            "prompt_tokens": 1000,
            "completion_tokens": 50,
            "total_tokens": 1050,
            "prompt_tokens_details": {"cached_tokens": 200, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
        "system_fingerprint": "fp_0ba0d124f1",
    }


def openai_tool_call(arguments: str, call_id: str = "call_abc123") -> dict:
    return {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": "run_simulation", "arguments": arguments}}
        ],
    }


OPENAI_ERROR = {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in (
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "ANTHROPIC_BASE_URL",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
        "GLIA_MODEL",
    ):
        monkeypatch.delenv(var, raising=False)


def body_of(route, i: int = -1) -> dict:
    return json.loads(route.calls[i].request.content)


# --------------------------------------------------------------------------- Anthropic


def test_anthropic_tool_use_exchange(llm_http):
    route = llm_http.post(ANTHROPIC_URL)
    route.side_effect = [httpx.Response(200, json=ANTHROPIC_TOOL_USE), httpx.Response(200, json=ANTHROPIC_FINAL)]
    ledger = UsageLedger()
    client = AnthropicClient("claude-haiku-4-5", api_key="sk-test", retry=FAST, ledger=ledger)
    assert isinstance(client, LLMClient)

    convo = [Message.system("You are the Researcher."), Message.user("Improve the router.")]
    first = client.complete(convo, [RUN_SIM], max_tokens=512)

    (call,) = first.message.tool_calls
    assert (call.id, call.name, dict(call.arguments), call.parse_error) == (
        "toolu_01A09q90qw90lq917835lq9",
        "run_simulation",
        {"policy": "llq", "seed": 3},
        None,
    )
    assert first.message.content == "I'll run the baseline first."
    assert first.stop_reason == "tool_use"
    assert first.provider == "anthropic" and first.model == "claude-haiku-4-5-20251001"
    # Anthropic's input_tokens excludes cache reads; the neutral count includes them.
    assert (first.usage.input_tokens, first.usage.cache_read_tokens, first.usage.output_tokens) == (1500, 300, 80)
    assert first.cost_known
    assert first.cost_usd == pytest.approx((1200 * 1.00 + 300 * 0.10 + 80 * 5.00) / 1e6)

    sent = body_of(route, 0)
    assert sent["system"] == "You are the Researcher."
    assert sent["max_tokens"] == 512 and sent["model"] == "claude-haiku-4-5"
    assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Improve the router."}]}]
    assert sent["tools"][0]["input_schema"] == RUN_SIM.parameters
    assert "temperature" not in sent

    convo += [first.message, Message.tool_result(call.id, "mean latency 40.1 s", name="run_simulation")]
    second = client.complete(convo, [RUN_SIM], temperature=0.2)
    assert second.stop_reason == "end_turn" and second.message.tool_calls == ()
    assert second.message.content == "Baseline mean latency is 40 s."

    sent = body_of(route, 1)
    assert sent["temperature"] == 0.2
    assert sent["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "I'll run the baseline first."},
            {"type": "tool_use", "id": call.id, "name": "run_simulation", "input": {"policy": "llq", "seed": 3}},
        ],
    }
    assert sent["messages"][2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "mean latency 40.1 s"}],
    }

    assert route.call_count == 2
    assert ledger.calls == 2
    assert ledger.usage.input_tokens == 1500 + 1400
    assert ledger.usage.output_tokens == 100
    assert ledger.cost_usd == pytest.approx(first.cost_usd + second.cost_usd)
    assert ledger.cost_usd == pytest.approx((1630 + 1400 * 1.0 + 20 * 5.0) / 1e6)


def test_anthropic_merges_parallel_tool_results_into_one_user_turn(llm_http):
    route = llm_http.post(ANTHROPIC_URL).respond(200, json=ANTHROPIC_FINAL)
    client = AnthropicClient("claude-haiku-4-5", api_key="sk-test", retry=FAST)
    calls = (
        ToolCall.from_arguments("t1", "run_simulation", {"policy": "a"}),
        ToolCall.from_arguments("t2", "run_simulation", {"policy": "b"}),
    )
    convo = [
        Message.system("sys A"),
        Message.user("go"),
        Message.assistant("", calls),
        Message.tool_result("t1", "ok a"),
        Message.tool_result("t2", "boom", is_error=True),
        Message.user("Supervisor: compare the two.", name="supervisor"),
    ]
    client.complete(convo, [RUN_SIM])
    sent = body_of(route)
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert [b["type"] for b in sent["messages"][1]["content"]] == ["tool_use", "tool_use"]
    last = sent["messages"][2]["content"]
    assert [b["type"] for b in last] == ["tool_result", "tool_result", "text"]
    assert last[1] == {"type": "tool_result", "tool_use_id": "t2", "content": "boom", "is_error": True}


def test_anthropic_429_then_200_is_retried(llm_http):
    route = llm_http.post(ANTHROPIC_URL)
    route.side_effect = [
        httpx.Response(429, json={"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}},
                       headers={"retry-after": "7"}),
        httpx.Response(200, json=ANTHROPIC_FINAL),
    ]
    sleeps: list[float] = []
    policy = RetryPolicy(max_retries=3, backoff_s=0.0, max_backoff_s=30.0, jitter=0.0)
    client = AnthropicClient("claude-haiku-4-5", api_key="sk-test", retry=policy, sleep=sleeps.append)
    out = client.complete([Message.user("hi")])
    assert out.message.content == "Baseline mean latency is 40 s."
    assert route.call_count == 2 and out.attempts == 2
    assert sleeps == [7.0]  # Retry-After honoured (no real sleeping: sleep is injected)


def test_anthropic_5xx_exhausts_retries_with_clear_error(llm_http):
    route = llm_http.post(ANTHROPIC_URL).respond(529, json=ANTHROPIC_ERROR)
    client = AnthropicClient("claude-haiku-4-5", api_key="sk-test", retry=FAST)
    with pytest.raises(LLMError) as info:
        client.complete([Message.user("hi")])
    err = info.value
    assert route.call_count == 3  # 1 try + max_retries=2
    assert (err.status_code, err.attempts, err.retryable, err.provider) == (529, 3, True, "anthropic")
    assert "anthropic:claude-haiku-4-5" in str(err) and "after 3 attempt(s)" in str(err) and "HTTP 529" in str(err)


def test_anthropic_timeout_is_retried(llm_http, transport_timeout):
    route = llm_http.post(ANTHROPIC_URL)
    route.side_effect = [transport_timeout, httpx.Response(200, json=ANTHROPIC_FINAL)]
    client = AnthropicClient("claude-haiku-4-5", api_key="sk-test", retry=FAST, timeout=5.0)
    out = client.complete([Message.user("hi")])
    assert route.call_count == 2 and out.attempts == 2


def test_anthropic_key_from_env(llm_http, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-from-env")
    route = llm_http.post(ANTHROPIC_URL).respond(200, json=ANTHROPIC_FINAL)
    AnthropicClient("claude-haiku-4-5", retry=FAST).complete([Message.user("hi")])
    headers = route.calls.last.request.headers
    assert "sk-from-env" in (headers.get("x-api-key", "") + headers.get("authorization", ""))


# --------------------------------------------------------------------------- OpenAI


def test_openai_tool_calls_exchange(llm_http):
    route = llm_http.post(OPENAI_URL)
    route.side_effect = [
        httpx.Response(200, json=openai_body(openai_tool_call('{"policy": "llq", "seed": 3}'), "tool_calls")),
        httpx.Response(200, json=openai_body({"role": "assistant", "content": "Done."}, "stop")),
    ]
    ledger = UsageLedger()
    client = OpenAIClient("gpt-4o-mini", api_key="sk-test", retry=FAST, ledger=ledger)
    convo = [Message.system("You are the Researcher."), Message.user("Improve the router.")]
    first = client.complete(convo, [RUN_SIM], max_tokens=300)

    (call,) = first.message.tool_calls
    assert (call.id, call.name, dict(call.arguments), call.parse_error) == (
        "call_abc123",
        "run_simulation",
        {"policy": "llq", "seed": 3},
        None,
    )
    assert first.stop_reason == "tool_use" and first.message.content == ""
    assert (first.usage.input_tokens, first.usage.cache_read_tokens, first.usage.output_tokens) == (1000, 200, 50)
    assert first.cost_usd == pytest.approx((800 * 0.15 + 200 * 0.075 + 50 * 0.60) / 1e6)

    sent = body_of(route, 0)
    assert sent["max_completion_tokens"] == 300 and "max_tokens" not in sent
    assert sent["messages"][0] == {"role": "system", "content": "You are the Researcher."}
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {"name": "run_simulation", "description": RUN_SIM.description, "parameters": RUN_SIM.parameters},
        }
    ]

    convo += [first.message, Message.tool_result(call.id, "mean latency 40.1 s")]
    second = client.complete(convo, [RUN_SIM])
    assert second.stop_reason == "end_turn" and second.message.content == "Done."
    sent = body_of(route, 1)
    assert sent["tool_choice"] == "auto"
    assert sent["messages"][2] == {
        "role": "assistant",
        "content": "",  # never null: llama-cpp-python's server answers null with HTTP 500
        "tool_calls": [
            {
                "id": "call_abc123",
                "type": "function",
                "function": {"name": "run_simulation", "arguments": '{"policy": "llq", "seed": 3}'},
            }
        ],
    }
    assert sent["messages"][3] == {"role": "tool", "tool_call_id": "call_abc123", "content": "mean latency 40.1 s"}
    assert ledger.calls == 2 and ledger.usage.input_tokens == 2000
    assert ledger.cost_usd == pytest.approx(2 * first.cost_usd)


def test_openai_malformed_tool_arguments_do_not_raise(llm_http):
    bad = '{"policy": "llq", "seed": '
    llm_http.post(OPENAI_URL).respond(200, json=openai_body(openai_tool_call(bad), "tool_calls"))
    client = OpenAIClient("gpt-4o-mini", api_key="sk-test", retry=FAST)
    out = client.complete([Message.user("go")], [RUN_SIM])
    (call,) = out.message.tool_calls
    assert call.raw_arguments == bad
    assert dict(call.arguments) == {}
    assert call.parse_error and "not valid JSON" in call.parse_error
    assert not call.ok


def test_openai_429_then_200_is_retried(llm_http):
    route = llm_http.post(OPENAI_URL)
    route.side_effect = [
        httpx.Response(429, json=OPENAI_ERROR),
        httpx.Response(200, json=openai_body({"role": "assistant", "content": "ok"}, "stop")),
    ]
    sleeps: list[float] = []
    client = OpenAIClient("gpt-4o-mini", api_key="sk-test", retry=FAST, sleep=sleeps.append)
    out = client.complete([Message.user("hi")])
    assert out.message.content == "ok"
    assert route.call_count == 2 and out.attempts == 2 and sleeps == [0.0]


def test_openai_500_exhausts_retries(llm_http):
    route = llm_http.post(OPENAI_URL).respond(500, json={"error": {"message": "The server had an error"}})
    client = OpenAIClient("gpt-4o-mini", api_key="sk-test", retry=FAST)
    with pytest.raises(LLMError, match=r"openai:gpt-4o-mini request failed after 3 attempt\(s\): HTTP 500") as info:
        client.complete([Message.user("hi")])
    assert route.call_count == 3 and info.value.status_code == 500


def test_openai_400_is_not_retried(llm_http):
    route = llm_http.post(OPENAI_URL).respond(400, json={"error": {"message": "bad request"}})
    client = OpenAIClient("gpt-4o-mini", api_key="sk-test", retry=FAST)
    with pytest.raises(LLMError, match="not retried") as info:
        client.complete([Message.user("hi")])
    assert route.call_count == 1 and not info.value.retryable and info.value.status_code == 400


def test_openai_compatible_hits_local_base_url(llm_http):
    route = llm_http.post("http://127.0.0.1:8000/v1/chat/completions").respond(
        200,
        json=openai_body(
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "", "type": "function", "function": {"name": "run_simulation", "arguments": ""}}]},
            "stop",  # llama.cpp-style: "stop" even when calling a tool
            model="qwen2.5-coder-7b",
            usage={"prompt_tokens": 900, "completion_tokens": 40, "total_tokens": 940},
        ),
    )
    client = OpenAICompatibleClient("http://127.0.0.1:8000/v1", "qwen2.5-coder-7b", retry=FAST)
    out = client.complete([Message.user("go")], [RUN_SIM], max_tokens=64)
    sent = body_of(route)
    assert sent["max_tokens"] == 64 and "max_completion_tokens" not in sent
    assert route.calls.last.request.headers["authorization"] == "Bearer not-needed"
    (call,) = out.message.tool_calls
    assert call.id == "call_0" and dict(call.arguments) == {} and call.parse_error is None
    assert out.stop_reason == "tool_use"
    assert out.provider == "openai-compatible"
    assert (out.cost_usd, out.cost_known) == (0.0, False)
    assert out.usage.input_tokens == 900


def test_openai_compatible_ignores_builtin_prices_unless_given(llm_http):
    llm_http.post("http://127.0.0.1:9000/v1/chat/completions").respond(
        200, json=openai_body({"role": "assistant", "content": "hi"}, "stop", model="gpt-4o")
    )
    free = OpenAICompatibleClient("http://127.0.0.1:9000/v1", "gpt-4o", retry=FAST).complete([Message.user("x")])
    assert free.cost_usd == 0.0 and not free.cost_known
    paid = OpenAICompatibleClient(
        "http://127.0.0.1:9000/v1", "gpt-4o", retry=FAST, prices={"gpt-4o": (1.0, 2.0)}
    ).complete([Message.user("x")])
    assert paid.cost_known and paid.cost_usd == pytest.approx((1000 * 1.0 + 50 * 2.0) / 1e6)


# --------------------------------------------------------------------------- make_client


@pytest.mark.parametrize(
    "spec, provider, model, base_url",
    [
        ("anthropic:claude-haiku-4-5", "anthropic", "claude-haiku-4-5", None),
        ("openai:gpt-5-mini", "openai", "gpt-5-mini", None),
        ("openai-compatible:http://127.0.0.1:8000/v1:qwen", "openai-compatible", "qwen", "http://127.0.0.1:8000/v1"),
        ("openai-compatible:http://localhost:11434/v1:llama3.1:8b", "openai-compatible", "llama3.1:8b",
         "http://localhost:11434/v1"),
        ("openai-compatible:http://127.0.0.1:8000:qwen", "openai-compatible", "qwen", "http://127.0.0.1:8000"),
        ("openai-compatible:https://[::1]:8443/api/v1/:my-model", "openai-compatible", "my-model",
         "https://[::1]:8443/api/v1"),
        ("openai-compatible:http://gpu-box/v1:Qwen/Qwen2.5-7B-Instruct", "openai-compatible",
         "Qwen/Qwen2.5-7B-Instruct", "http://gpu-box/v1"),
    ],
)
def test_parse_spec(spec, provider, model, base_url):
    parsed = parse_spec(spec)
    assert (parsed.provider, parsed.model, parsed.base_url) == (provider, model, base_url)


def test_parse_spec_defaults_and_env(monkeypatch):
    assert parse_spec("anthropic").model and parse_spec("openai").model
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8080/v1")
    assert parse_spec("openai-compatible:qwen").base_url == "http://127.0.0.1:8080/v1"


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "   ",
        "claude-haiku-4-5",
        "gemini:pro",
        "anthropic:",
        "openai:  ",
        "openai-compatible:",
        "openai-compatible:http://127.0.0.1:8000",  # no model
        "openai-compatible:http://127.0.0.1:8000/v1",  # no model
        "openai-compatible:ftp://host/v1:model",
        "openai-compatible:qwen",  # no URL and no $OPENAI_BASE_URL
    ],
)
def test_parse_spec_errors(spec):
    with pytest.raises(ValueError, match="expected 'anthropic:MODEL'"):
        parse_spec(spec)


def test_make_client_builds_each_kind(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "a")
    monkeypatch.setenv("OPENAI_API_KEY", "o")
    a = make_client("anthropic:claude-haiku-4-5", retry=FAST)
    o = make_client("openai:gpt-5-mini", timeout=5.0)
    c = make_client("openai-compatible:http://127.0.0.1:8000/v1:qwen", context_window=32768)
    assert isinstance(a, AnthropicClient) and a.model == "claude-haiku-4-5" and a.context_window == 200_000
    assert isinstance(o, OpenAIClient) and o.model == "gpt-5-mini" and o.context_window == 400_000
    assert isinstance(c, OpenAICompatibleClient) and c.base_url == "http://127.0.0.1:8000/v1"
    assert all(isinstance(x, LLMClient) for x in (a, o, c))
    monkeypatch.setenv("GLIA_MODEL", "openai:gpt-4o")
    assert make_client().model == "gpt-4o"


def test_make_client_missing_keys_and_spec():
    with pytest.raises(LLMConfigError, match="ANTHROPIC_API_KEY"):
        make_client("anthropic:claude-haiku-4-5")
    with pytest.raises(LLMConfigError, match="OPENAI_API_KEY"):
        make_client("openai:gpt-5")
    with pytest.raises(ValueError, match="GLIA_MODEL"):
        make_client()
    # Local servers need no key.
    assert make_client("openai-compatible:http://127.0.0.1:8000/v1:qwen").model == "qwen"
