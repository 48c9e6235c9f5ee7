"""Replay every recording in ../shared/fixtures/openai through the codecs and through
the real adapter (httpx2.MockTransport), and check what allm reports against what
the recording says (expectations derived independently in `recordings.py`)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import httpx2
import pytest

from allm.collector import StreamCollector
from allm.errors import AdapterError
from allm.events import ErrorEvent, MessageCompleted, MessageStarted
from allm.messages import user
from allm.providers.base import Call
from allm.providers.openai import ChatCodec, OpenAI, ResponsesCodec
from allm.request import Request, Response

from .recordings import FILES, Expected, Interaction, expected, load

CHAT = ChatCodec(base_url="https://api.openai.com/v1")
RESPONSES = ResponsesCodec(base_url="https://api.openai.com/v1")


def _ids(path: Any) -> str:
    return str(path.stem).removeprefix("pydantic-ai__")


def codec_events(it: Interaction) -> list[Any]:
    codec = CHAT if it.api == "chat" else RESPONSES
    body = it.body.encode()
    if it.is_stream:
        decoder = codec.stream_decoder(it.headers)
        return [*decoder.feed(body), *decoder.close()]
    return codec.decode(it.status, it.headers, body)


def fold(events: Iterable[Any]) -> Response:
    return StreamCollector().collect(events).to_response()


def expected_error_reason(status: int, code: str | None) -> str:
    if code == "context_length_exceeded":
        return "context_length_exceeded"
    if code == "model_not_found":
        return "not_found"
    return {400: "invalid_request", 401: "authentication_failed", 403: "permission_denied",
            404: "not_found", 429: "rate_limited"}.get(status, "provider_unavailable")


def check_error(error: Any, it: Interaction) -> None:
    body = json.loads(it.body)["error"]
    assert isinstance(error, AdapterError)
    assert error.status == it.status
    assert error.provider == "openai"
    assert error.reason == expected_error_reason(it.status, body.get("code"))
    assert error.message == body["message"]
    assert error.metadata.get("code") == body.get("code")
    assert error.metadata.get("param") == body.get("param")
    assert error.metadata.get("type") == body.get("type")


def check_response(resp: Response, exp: Expected) -> None:
    assert resp.output_text == exp.text
    assert [(c.id, c.name, c.arguments) for c in resp.tool_calls] == exp.tool_calls
    assert resp.finish_reason == exp.finish_reason
    assert resp.usage.input_tokens == exp.input_tokens
    assert resp.usage.output_tokens == exp.output_tokens
    assert resp.usage.cached_input_tokens == exp.cached_tokens
    assert resp.usage.reasoning_tokens == exp.reasoning_tokens
    assert resp.message is not None
    assert resp.message.text == exp.text
    assert [c.id for c in resp.message.tool_calls] == [c[0] for c in exp.tool_calls]


def check_order(events: list[Any]) -> None:
    assert isinstance(events[0], MessageStarted)
    assert isinstance(events[-1], (MessageCompleted, ErrorEvent))
    assert sum(isinstance(e, MessageStarted) for e in events) == 1
    assert sum(isinstance(e, (MessageCompleted, ErrorEvent)) for e in events) == 1


def model_calls(path: Any) -> list[Interaction]:
    calls = [it for it in load(path) if it.is_model_call]
    if not calls:
        pytest.skip("no model call in this recording (only /responses/input_tokens, "
                    "/conversations, /files or /vector_stores, which allm does not call)")
    return calls


@pytest.mark.parametrize("path", FILES, ids=_ids)
def test_codec_replay(path: Any) -> None:
    for it in model_calls(path):
        if it.status >= 400:
            codec = CHAT if it.api == "chat" else RESPONSES
            check_error(codec.error(it.status, it.headers, it.body.encode()), it)
            continue
        exp = expected(it)
        events = codec_events(it)
        check_order(events)
        resp = fold(events)
        if exp.error is not None:
            assert isinstance(resp.error, AdapterError)
            assert resp.error.message == exp.error.get("message")
            continue
        assert resp.error is None
        check_response(resp, exp)


@pytest.mark.parametrize("path", FILES, ids=_ids)
def test_stream_fold_equals_decode(path: Any) -> None:
    """A Responses stream ends with the full response object: decoding that object
    non-streaming must fold to the same Response as the stream did."""
    streams = [it for it in model_calls(path) if it.is_stream and it.status < 400]
    if not any(it.api == "responses" for it in streams):
        pytest.skip("no recorded Responses stream here")
    for it in streams:
        if it.api != "responses":
            continue
        final = None
        from .recordings import naive_sse

        for _, data in naive_sse(it.body):
            obj = json.loads(data)
            if obj.get("type") in ("response.completed", "response.incomplete"):
                final = obj["response"]
        assert final is not None
        streamed = fold(codec_events(it))
        decoded = fold(RESPONSES.decode(200, {}, json.dumps(final).encode()))
        assert streamed.output_text == decoded.output_text
        assert streamed.tool_calls == decoded.tool_calls
        assert streamed.usage == decoded.usage
        assert streamed.finish_reason == decoded.finish_reason
        assert streamed.message == decoded.message
        assert streamed.id == decoded.id


def _serve(it: Interaction, seen: list[httpx2.Request]) -> httpx2.MockTransport:
    headers = {k: v for k, v in it.headers.items()
               if k.lower() not in ("transfer-encoding", "content-encoding", "content-length")}

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(it.status, headers=headers, content=it.body.encode())

    return httpx2.MockTransport(handler)


@pytest.mark.parametrize("path", FILES, ids=_ids)
def test_adapter_replay(path: Any) -> None:
    for it in model_calls(path):
        seen: list[httpx2.Request] = []
        client = httpx2.Client(transport=_serve(it, seen))
        adapter = OpenAI(http_client=client, retry=False, endpoint=it.api,
                         organization="org-test", base_url="https://api.openai.com/v1")
        model = it.request.get("model") or "gpt-4o"
        call = Call(model=model, api_key="sk-test-key", stream=it.is_stream)
        events = list(adapter.stream(Request(messages=(user("hi"),)), call))
        adapter.close()
        assert len(seen) == 1
        sent = seen[0]
        assert sent.method == "POST"
        assert sent.url.path == ("/v1/chat/completions" if it.api == "chat" else "/v1/responses")
        assert sent.headers["authorization"] == "Bearer sk-test-key"
        assert sent.headers["openai-organization"] == "org-test"
        assert json.loads(sent.content)["model"] == model
        assert json.loads(sent.content).get("stream", False) is it.is_stream
        resp = fold(events)
        if it.status >= 400:
            assert isinstance(events[-1], ErrorEvent)
            check_error(events[-1].error, it)
            continue
        exp = expected(it)
        if exp.error is not None:
            assert isinstance(resp.error, AdapterError)
            continue
        assert resp.error is None
        check_response(resp, exp)


@pytest.mark.anyio
async def test_adapter_replay_async() -> None:
    """The async shell replays a stream and a JSON body the same as the sync one."""
    picks = [p for p in FILES if "complex_agent_run.json" in p.name
             or "thinking_with_tool_calls" in p.name]
    assert len(picks) == 2
    for path in picks:
        for it in model_calls(path):
            seen: list[httpx2.Request] = []
            client = httpx2.AsyncClient(transport=_serve(it, seen))
            adapter = OpenAI(async_http_client=client, retry=False)
            call = Call(model=it.request["model"], api_key="sk-test", stream=it.is_stream)
            events = [e async for e in adapter.astream(Request(messages=(user("hi"),)), call)]
            await adapter.aclose()
            await client.aclose()
            check_response(fold(events), expected(it))
            assert fold(events) == fold(codec_events(it))
