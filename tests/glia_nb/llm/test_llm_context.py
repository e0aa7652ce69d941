"""Context windows, reply sizing and failure kinds of the OpenAI-compatible client, against
respx-mocked servers that speak like vLLM, llama.cpp and llama-cpp-python."""
from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from glia_nb.llm import LLMError, Message, OpenAICompatibleClient, RetryPolicy
from glia_nb.llm.context import (DEFAULT_LOCAL_CONTEXT, TokenMeter, fit_max_tokens, window_from_payloads)
from glia_nb.llm.retry import classify_status

BASE = "http://127.0.0.1:8765/v1"
FAST = RetryPolicy(max_retries=3, backoff_s=0.0, max_backoff_s=0.0, jitter=0.0)


def reply(text="ok", prompt_tokens=100, completion_tokens=5):
    return {"id": "x", "object": "chat.completion", "created": 0, "model": "smollm2",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


def sent(route, i=-1):
    return json.loads(route.calls[i].request.content)


def test_window_from_each_server_kind():
    assert window_from_payloads("qwen", models={"data": [{"id": "qwen", "max_model_len": 32768}]}) == 32768
    assert window_from_payloads("m", props={"default_generation_settings": {"n_ctx": 8192}}) == 8192
    show = {"parameters": "stop <eos>\nnum_ctx 16384", "model_info": {"llama.context_length": 131072}}
    assert window_from_payloads("llama3.1:8b", show=show) == 16384
    # Without num_ctx Ollama runs with its own default, not the trained length.
    assert window_from_payloads("m", show={"model_info": {"llama.context_length": 131072}}) == 4096
    assert window_from_payloads("smollm2", models={"data": [{"id": "smollm2", "object": "model"}]}) is None


def test_client_asks_vllm_for_the_window_and_cuts_max_tokens_to_fit(llm_http):
    llm_http.get(f"{BASE}/models").respond(200, json={"data": [{"id": "smollm2", "max_model_len": 4096}]})
    route = llm_http.post(f"{BASE}/chat/completions").respond(200, json=reply(prompt_tokens=2000))
    client = OpenAICompatibleClient(BASE, "smollm2", retry=FAST)
    assert client.discover_context() == 4096 and client.context_source == "server"
    big = "word " * 1600  # 8,000 characters: about 2,900 tokens by the first (cautious) estimate
    client.complete([Message.user(big)], max_tokens=8192)
    first = sent(route)["max_tokens"]
    assert 128 <= first <= 4096 - 2500  # what the window leaves, not the 8,192 asked for
    # The server's count (2,000 for 8,000 characters) calibrates the next estimate.
    assert client.meter.chars_per_token == pytest.approx(len(big) / 2000, rel=0.01)


def test_llama_cpp_python_overflow_teaches_the_window_and_the_call_is_refitted(llm_http):
    """The user's report: 8,309 prompt + 8,192 completion tokens against an 8,192 window."""
    llm_http.get(f"{BASE}/models").respond(200, json={"data": [{"id": "smollm2"}]})
    llm_http.get("http://127.0.0.1:8765/props").respond(404)
    llm_http.post("http://127.0.0.1:8765/api/show").respond(404)
    overflow = {"error": {"message": "This model's maximum context length is 2048 tokens. However, you requested "
                                     "2600 tokens (1900 in the messages, 700 in the completion). Please reduce the "
                                     "length of the messages or completion.", "type": "invalid_request_error",
                          "code": "context_length_exceeded"}}
    route = llm_http.post(f"{BASE}/chat/completions")
    route.side_effect = [httpx.Response(400, json=overflow), httpx.Response(200, json=reply(prompt_tokens=1900))]
    client = OpenAICompatibleClient(BASE, "smollm2", retry=FAST)
    assert client.discover_context() == DEFAULT_LOCAL_CONTEXT and client.context_source == "default"
    out = client.complete([Message.user("x " * 2000)], max_tokens=700)
    assert out.message.content == "ok" and route.call_count == 2
    assert client.context_window == 2048 and client.context_source == "server error"
    assert sent(route, 1)["max_tokens"] <= 2048 - 1900


def test_a_prompt_that_cannot_fit_is_refused_before_sending(llm_http):
    llm_http.get(f"{BASE}/models").respond(200, json={"data": [{"id": "m", "max_model_len": 1024}]})
    client = OpenAICompatibleClient(BASE, "m", retry=FAST)
    with pytest.raises(LLMError, match="1024-token context window") as info:
        client.complete([Message.user("y" * 20_000)])
    assert info.value.kind == "context_overflow" and info.value.context_tokens == 1024


def test_validation_500_and_auth_errors_are_final_not_retried(llm_http):
    llm_http.get(f"{BASE}/models").respond(200, json={"data": [{"id": "m", "max_model_len": 8192}]})
    body = {"detail": [{"type": "string_type", "loc": ["body", "messages", 1, "content"],
                        "msg": "Input should be a valid string", "input": None}]}
    route = llm_http.post(f"{BASE}/chat/completions").respond(500, json=body)
    client = OpenAICompatibleClient(BASE, "m", retry=FAST)
    with pytest.raises(LLMError) as info:
        client.complete([Message.user("hi")])
    assert route.call_count == 1 and info.value.kind == "invalid_request" and not info.value.retryable
    assert classify_status(401, "invalid api key").kind == "auth"
    assert classify_status(503, "overloaded").retryable and classify_status(429, "slow down").kind == "rate_limit"


def test_a_closed_port_fails_at_once_naming_the_url():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    client = OpenAICompatibleClient(url, "m", retry=RetryPolicy(max_retries=4, backoff_s=2.0))
    t0 = time.perf_counter()
    with pytest.raises(LLMError) as info:
        client.complete([Message.user("hi")])
    assert time.perf_counter() - t0 < 5  # no backoff on a refused connection
    assert info.value.kind == "connection" and str(info.value) == f"cannot reach {url}: connection refused"


def test_fit_and_meter():
    assert fit_max_tokens(8192, 6000, 8192) == 8192 - 6000 - 16
    assert fit_max_tokens(8192, 8100, 8192) == 0
    assert fit_max_tokens(8192, 100, 64) == 64
    meter = TokenMeter()
    before = meter.estimate([Message.user("a" * 3000)])
    meter.observe(3000, 1500)  # a tokenizer that gives 2 characters per token
    assert meter.estimate([Message.user("a" * 3000)]) > before
