"""The `OpenAI` adapter: routing, configuration, and end-to-end calls through the
facade over an httpx2.MockTransport (JSON and SSE wire modes, retries, errors)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from allm.engine import make_engine
from allm.errors import AdapterError, ValidationError
from allm.events import ErrorEvent
from allm.facade import generate, stream_generate
from allm.messages import tool_result, user
from allm.providers.base import Adapter, Call
from allm.providers.openai import ChatCodec, OpenAI, ResponsesCodec
from allm.request import Request

CHAT_BODY = {
    "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-2024-08-06",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "Hello there"}}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
}
CHAT_STREAM = (
    'data: {"id":"chatcmpl-1","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hello"}}]}\n\n'
    'data: {"id":"chatcmpl-1","model":"gpt-4o","choices":[{"index":0,"delta":{"content":" there"},'
    '"finish_reason":"stop"}]}\n\n'
    'data: {"id":"chatcmpl-1","model":"gpt-4o","choices":[],"usage":{"prompt_tokens":5,'
    '"completion_tokens":2,"total_tokens":7}}\n\n'
    "data: [DONE]\n\n"
)


def mock(handler: Callable[[httpx2.Request], httpx2.Response]) -> httpx2.Client:
    return httpx2.Client(transport=httpx2.MockTransport(handler))


def test_is_an_adapter_and_routes_by_model() -> None:
    adapter = OpenAI()
    assert isinstance(adapter, Adapter)
    assert adapter.provider == "openai"
    r = Request(messages=(user("hi"),))
    for model, endpoint in [("gpt-5", "responses"), ("gpt-5-mini", "responses"),
                            ("o3", "responses"), ("o4-mini", "responses"),
                            ("gpt-4o", "chat"), ("gpt-4.1-mini", "chat"),
                            ("llama3.1", "chat"), (None, "chat")]:
        assert adapter.endpoint_for(r, Call(model=model)) == endpoint
        codec = adapter.codec_for(r, Call(model=model))
        assert isinstance(codec, ResponsesCodec if endpoint == "responses" else ChatCodec)
    forced = OpenAI(endpoint="chat")
    assert forced.endpoint_for(r, Call(model="gpt-5")) == "chat"
    assert OpenAI(endpoint="responses").endpoint_for(r, Call(model="gpt-4o")) == "responses"
    per_call = Call(model="gpt-4o", adapter_opts={"endpoint": "responses"})
    assert forced.endpoint_for(r, per_call) == "responses"
    assert adapter.endpoint_for(r, Call(model="o3", adapter_opts={"endpoint": "chat_completions"})) == "chat"


def test_invalid_endpoint() -> None:
    with pytest.raises(ValidationError):
        OpenAI(endpoint="assistants")
    with pytest.raises(ValidationError):
        OpenAI().endpoint_for(Request(messages=(user("x"),)),
                              Call(model="gpt-4o", adapter_opts={"endpoint": "nope"}))


def test_base_url_default_env_and_explicit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert OpenAI().base_url == "https://api.openai.com/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:11434/v1/")
    assert OpenAI().base_url == "http://localhost:11434/v1"
    assert OpenAI(base_url="https://openrouter.ai/api/v1").base_url == "https://openrouter.ai/api/v1"


def test_generate_non_streaming_json_and_streaming_sse_fold_the_same() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        seen.append(body)
        assert request.url == "http://compat.local/v1/chat/completions"
        assert request.headers["authorization"] == "Bearer sk-local"
        if body.get("stream"):
            return httpx2.Response(200, headers={"content-type": "text/event-stream"},
                                   content=CHAT_STREAM.encode())
        return httpx2.Response(200, json=CHAT_BODY)

    adapter = OpenAI(base_url="http://compat.local/v1", http_client=mock(handler), retry=False)
    engine = make_engine(adapter=adapter, model="gpt-4o")
    plain = generate(engine, [user("hi")], api_key="sk-local")
    streamed = generate(engine, [user("hi")], api_key="sk-local", stream=True)
    assert plain.output_text == streamed.output_text == "Hello there"
    assert plain.finish_reason == streamed.finish_reason == "stop"
    assert plain.usage.input_tokens == streamed.usage.input_tokens == 5
    assert seen[0].get("stream") is None and seen[1]["stream"] is True
    assert seen[1]["stream_options"] == {"include_usage": True}
    events = list(stream_generate(engine, [user("hi")], api_key="sk-local"))
    assert [e.type for e in events][0] == "message_started"
    assert events[-1].type == "message_completed"


def test_retry_on_429_with_retry_after_ms_then_success() -> None:
    calls: list[int] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(1)
        if len(calls) == 1:
            return httpx2.Response(
                429, headers={"retry-after-ms": "10", "x-request-id": "req_1"},
                json={"error": {"message": "Rate limit reached", "type": "requests",
                                "code": "rate_limit_exceeded", "param": None}})
        return httpx2.Response(200, json=CHAT_BODY)

    adapter = OpenAI(http_client=mock(handler), retry={"max_attempts": 3, "jitter": 0})
    engine = make_engine(adapter=adapter, model="gpt-4o")
    assert generate(engine, [user("hi")], api_key="sk-x").output_text == "Hello there"
    assert len(calls) == 2


def test_errors_raise_typed_with_request_id() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            400, headers={"x-request-id": "req_9"},
            json={"error": {"message": "This model's maximum context length is 8192 tokens",
                            "type": "invalid_request_error", "code": "context_length_exceeded",
                            "param": "messages"}})

    adapter = OpenAI(http_client=mock(handler), retry=False)
    engine = make_engine(adapter=adapter, model="gpt-4o")
    with pytest.raises(AdapterError) as info:
        generate(engine, [user("hi")], api_key="sk-x")
    err = info.value
    assert err.reason == "context_length_exceeded"
    assert err.status == 400 and err.request_id == "req_9"
    assert err.metadata["param"] == "messages"


def test_responses_endpoint_end_to_end_with_replay() -> None:
    bodies: list[dict[str, Any]] = []
    turn1 = {"id": "resp_1", "object": "response", "model": "gpt-5", "status": "completed",
             "output": [
                 {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "E"},
                 {"type": "function_call", "id": "fc_1", "call_id": "call_1",
                  "name": "get_weather", "arguments": '{"city":"Oslo"}', "status": "completed"}],
             "usage": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}}

    def handler(request: httpx2.Request) -> httpx2.Response:
        assert request.url.path == "/v1/responses"
        bodies.append(json.loads(request.content))
        return httpx2.Response(200, json=turn1)

    adapter = OpenAI(http_client=mock(handler), retry=False, project="proj_1")
    engine = make_engine(adapter=adapter, model="gpt-5")
    resp = generate(engine, [user("Weather in Oslo?")], api_key="sk-x")
    assert resp.finish_reason == "tool_calls"
    assert [(c.id, c.name, c.arguments) for c in resp.tool_calls] == [
        ("call_1", "get_weather", {"city": "Oslo"})]
    assert resp.message is not None
    thread = [user("Weather in Oslo?"), resp.message,
              tool_result("call_1", "3C")]
    generate(engine, thread, api_key="sk-x")
    assert bodies[1]["input"][1:] == [
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "E"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather",
         "arguments": '{"city":"Oslo"}', "id": "fc_1"},
        {"type": "function_call_output", "call_id": "call_1", "output": "3C"},
    ]


def test_repr_and_events_never_show_the_key() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(401, json={"error": {"message": "Incorrect API key provided",
                                                    "type": "invalid_request_error",
                                                    "code": "invalid_api_key"}})

    adapter = OpenAI(http_client=mock(handler), retry=False)
    assert "sk-" not in repr(adapter)
    events = list(adapter.stream(Request(messages=(user("x"),)),
                                 Call(model="gpt-4o", api_key="sk-very-secret")))
    last = events[-1]
    assert isinstance(last, ErrorEvent)
    assert last.error.reason == "authentication_failed"
    assert "sk-very-secret" not in repr(events)
    assert "sk-very-secret" not in str(last.error.to_fields())


def test_engine_spec_and_lazy_provider_name() -> None:
    import allm.providers

    # allm.providers names its lazy exports only in a computed __all__ (mypy cannot see it).
    assert allm.providers.OpenAI is OpenAI  # type: ignore[attr-defined]

    def handler(request: httpx2.Request) -> httpx2.Response:
        assert request.url == "http://localhost:11434/v1/chat/completions"
        assert json.loads(request.content)["model"] == "llama3.1:8b"
        return httpx2.Response(200, json=CHAT_BODY)

    engine = make_engine("openai:llama3.1:8b", base_url="http://localhost:11434/v1",
                         endpoint="chat", http_client=mock(handler), retry=False)
    assert isinstance(engine.adapter, OpenAI)
    assert generate(engine, [user("hi")], api_key="ollama").output_text == "Hello there"
