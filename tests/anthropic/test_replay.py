"""Every recording in ../shared/fixtures/anthropic replayed through the codec and the
real adapter (httpx2.MockTransport): text, tool calls, thinking, usage, finish reason
and errors must equal what the recording says, and the request allm builds (turn 1
from the recorded request, turn N+1 from our own turn-N result) must match the
recorded one (parsed JSON, normalised)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx2
import pytest

from allm.collector import StreamCollector
from allm.errors import AdapterError
from allm.events import (
    ErrorEvent,
    MessageCompleted,
    MessageStarted,
    RawChunk,
    TextCompleted,
    TextDelta,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
)
from allm.messages import Message
from allm.providers.anthropic import Anthropic
from allm.providers.anthropic.codec import AnthropicCodec
from allm.providers.base import Call
from allm.request import Response

from .recordings import (
    FILES,
    Expected,
    Interaction,
    Unrepresentable,
    expected,
    load,
    naive_sse,
    normalize,
    recorded_message,
    wire_messages,
    wire_request,
)

# The error type each status documents (https://docs.anthropic.com/en/api/errors) and
# the allm reason it must become.
ERROR_REASONS = {
    "invalid_request_error": "invalid_request",
    "authentication_error": "authentication_failed",
    "permission_error": "permission_denied",
    "not_found_error": "not_found",
    "request_too_large": "request_too_large",
    "rate_limit_error": "rate_limited",
    "api_error": "provider_unavailable",
    "overloaded_error": "overloaded",
    "billing_error": "permission_denied",
    "timeout_error": "timeout",
}
STATUS_REASONS = {400: "invalid_request", 401: "authentication_failed", 403: "permission_denied",
                  404: "not_found", 413: "request_too_large", 429: "rate_limited",
                  500: "provider_unavailable", 529: "overloaded"}


def expected_reason(status: int | None, error: dict[str, Any]) -> str:
    message = (error.get("message") or "").lower()
    if "prompt is too long" in message:
        return "context_length_exceeded"
    if error.get("type") in ERROR_REASONS:
        return ERROR_REASONS[error["type"]]
    if status is None:
        return "provider_unavailable"
    return STATUS_REASONS.get(status, "provider_unavailable" if status >= 500
                              else "invalid_request")


def _ids(path: Path) -> str:
    return path.stem.removeprefix("pydantic-ai__")


def fold(events: Iterable[Any]) -> Response:
    return StreamCollector().collect(events).to_response()


def codec_events(it: Interaction, chunk: int | None = None) -> list[Any]:
    codec = AnthropicCodec()
    if not it.is_stream:
        return codec.decode(it.status, it.headers, it.body.encode())
    data = it.body.encode()
    decoder = codec.stream_decoder(it.headers)
    events: list[Any] = []
    step = chunk or len(data) or 1
    for i in range(0, len(data), step):
        events.extend(decoder.feed(data[i:i + step]))
    events.extend(decoder.close())
    return events


def check_order(events: list[Any]) -> None:
    assert isinstance(events[0], MessageStarted)
    assert isinstance(events[-1], MessageCompleted)
    assert sum(isinstance(e, MessageCompleted) for e in events) == 1
    started: set[str] = set()
    for e in events:
        if isinstance(e, ToolCallStarted):
            started.add(e.id)
        elif isinstance(e, ToolCallDelta | ToolCallCompleted):
            assert e.id in started
    texts = [i for i, e in enumerate(events) if isinstance(e, TextCompleted)]
    deltas = [i for i, e in enumerate(events) if isinstance(e, TextDelta)]
    if texts:
        assert len(texts) == 1 and all(d < texts[0] for d in deltas)


def check_response(resp: Response, exp: Expected) -> None:
    assert resp.id == exp.id
    assert resp.model == exp.model
    assert resp.output_text == exp.text
    assert [(c.id, c.name, c.arguments) for c in resp.tool_calls] == exp.tool_calls
    assert resp.finish_reason == exp.finish_reason
    assert resp.raw_finish_reason == exp.raw_finish_reason
    assert resp.usage.input_tokens == exp.input_tokens
    assert resp.usage.output_tokens == exp.output_tokens
    assert resp.usage.total == exp.input_tokens + exp.output_tokens
    assert resp.usage.cached_input_tokens == exp.cache_read
    assert resp.usage.cache_write_tokens == exp.cache_write
    assert resp.message is not None
    meta = resp.message.metadata
    plain = all(t in ("text", "tool_use") for t in exp.block_types) and not exp.citations
    if plain:
        assert "anthropic" not in meta
    else:
        kept = meta["anthropic"]["content"]
        assert [b["type"] for b in kept] == exp.block_types
        assert [b for b in kept if b["type"] in ("thinking", "redacted_thinking")] == exp.thinking
    thoughts = [b["thinking"] for b in exp.thinking if b["type"] == "thinking" and b["thinking"]]
    assert resp.reasoning == ("\n\n".join(thoughts) if thoughts else None)


def check_error(error: Any, it: Interaction) -> None:
    try:
        body = json.loads(it.body)
    except ValueError:
        body = {}
    info = body.get("error") if isinstance(body, dict) else None
    info = info if isinstance(info, dict) else {}
    assert isinstance(error, AdapterError)
    assert error.status == it.status
    assert error.reason == expected_reason(it.status, info)
    assert (info.get("message") or "") in error.message
    request_id = it.headers.get("request-id") or body.get("request_id")
    assert error.request_id == request_id
    assert error.provider == "anthropic"


def stream_error(it: Interaction) -> dict[str, Any] | None:
    """The payload of an ``error`` event inside a recorded 200 stream, if any."""
    if not it.is_stream:
        return None
    for ev in naive_sse(it.body):
        if ev.get("type") == "error":
            return ev
    return None


def messages_calls(path: Path) -> list[Interaction]:
    return [it for it in load(path) if it.is_messages_call]


@pytest.mark.parametrize("path", FILES, ids=_ids)
def test_codec_replay(path: Path) -> None:
    its = load(path)
    checked = 0
    for it in its:
        if it.status != 200:
            check_error(AnthropicCodec().error(it.status, it.headers, it.body.encode()), it)
            checked += 1
            continue
        if not it.is_messages_call:
            continue  # /v1/messages/count_tokens: not a call this adapter makes
        events = codec_events(it)
        failure = stream_error(it)
        if failure is not None:  # an error event inside a 200 stream
            assert isinstance(events[-1], ErrorEvent)
            err = events[-1].error
            assert isinstance(err, AdapterError)
            assert err.reason == expected_reason(None, failure.get("error") or {})
            assert fold(events).output_text == expected(it).text
        else:
            check_order(events)
            check_response(fold(events), expected(it))
        checked += 1
    if not checked:
        pytest.skip("only /v1/messages/count_tokens calls (an endpoint allm does not use)")


@pytest.mark.parametrize("path", [p for p in FILES if '"event: ' in p.read_text()], ids=_ids)
def test_stream_fold_equals_decode(path: Path) -> None:
    """Any chunking of a recorded stream folds to what decode() of the same message
    (assembled from the recording by hand) folds to."""
    for it in messages_calls(path):
        if not it.is_stream or stream_error(it) is not None or it.status != 200:
            continue
        whole = fold(codec_events(it))
        for chunk in (1, 7, 4096):
            assert fold(codec_events(it, chunk)) == whole
        body = json.dumps(recorded_message(it)).encode()
        decoded = fold(AnthropicCodec().decode(200, {}, body))
        assert decoded == whole


def _build(request: Any, stream: bool) -> dict[str, Any]:
    codec = AnthropicCodec()
    http = codec.build(request, Call(model=request.model, stream=stream), api_key="sk-test",
                       stream=stream)
    assert http.url == "https://api.anthropic.com/v1/messages"
    assert http.headers["x-api-key"] == "sk-test"
    assert http.headers["anthropic-version"] == "2023-06-01"
    return json.loads(http.content)  # type: ignore[no-any-return]


@pytest.mark.parametrize("path", FILES, ids=_ids)
def test_request_replay(path: Path) -> None:
    prev: tuple[Interaction, list[Message], Response] | None = None
    compared = 0
    unrepresentable: list[str] = []
    for it in messages_calls(path):
        history: list[Message] | None = None
        try:
            if prev is not None:
                p_it, p_messages, p_resp = prev
                k = len(p_it.request["messages"])
                rec = it.request["messages"]
                if (rec[:k] == p_it.request["messages"] and len(rec) > k
                        and rec[k]["role"] == "assistant" and p_resp.message is not None):
                    # Turn N+1 from our own turn-N result plus the recorded new turns.
                    history = [*p_messages, p_resp.message, *wire_messages(rec[k + 1:])]
            request, stream = wire_request(it.request, history)
        except Unrepresentable as exc:
            # Only the fable_5 recording: a role "system" message inside `messages`
            # (tool_addition blocks). allm hoists system messages into `system`.
            unrepresentable.append(f"#{it.index}: {exc}")
            prev = None
            continue
        built = _build(request, stream)
        assert normalize(built) == normalize(it.request), f"{it.file}#{it.index}"
        compared += 1
        if it.status == 200:
            messages = [m for m in request.messages if m.role != "system"]
            prev = (it, messages, fold(codec_events(it)))
        else:
            prev = None
    if not compared and unrepresentable:
        pytest.skip(f"no turn allm can express: {unrepresentable}")
    if not compared:
        pytest.skip("only /v1/messages/count_tokens calls")


def _serve(its: list[Interaction], seen: list[httpx2.Request]) -> httpx2.MockTransport:
    queue = list(its)

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        it = queue.pop(0)
        return httpx2.Response(it.status, headers=it.headers, content=it.body.encode())

    return httpx2.MockTransport(handler)


def _adapter_cases() -> list[Path]:
    return [p for p in FILES if messages_calls(p)]


def _check_adapter_events(it: Interaction, events: list[Any]) -> None:
    if it.status != 200:
        errors = [e for e in events if isinstance(e, ErrorEvent)]
        assert len(errors) == 1
        check_error(errors[0].error, it)
        return
    failure = stream_error(it)
    if failure is not None:
        errors = [e for e in events if isinstance(e, ErrorEvent)]
        assert errors and errors[-1].error.reason == expected_reason(
            None, failure.get("error") or {})
        return
    assert not any(isinstance(e, ErrorEvent) for e in events)
    check_response(fold(e for e in events if not isinstance(e, RawChunk) or e.usage), expected(it))


def request_for(it: Interaction) -> tuple[Any, bool]:
    """The request to send (the response side is what these tests check)."""
    try:
        return wire_request(it.request)
    except Unrepresentable:
        body = dict(it.request)
        body["messages"] = [m for m in body["messages"] if m["role"] != "system"]
        try:
            return wire_request(body)
        except Unrepresentable:
            minimal = {"model": it.request["model"], "max_tokens": 1024,
                       "messages": [{"role": "user", "content": "hi"}],
                       "stream": bool(it.request.get("stream"))}
            return wire_request(minimal)


@pytest.mark.parametrize("path", _adapter_cases(), ids=_ids)
def test_adapter_replay(path: Path) -> None:
    its = messages_calls(path)
    seen: list[httpx2.Request] = []
    client = httpx2.Client(transport=_serve(its, seen))
    adapter = Anthropic(http_client=client, retry=False)
    for it in its:
        request, stream = request_for(it)
        call = Call(model=request.model, api_key="sk-test", stream=stream)
        try:
            events = list(adapter.stream(request, call))
        except AdapterError as exc:  # pragma: no cover - the runtime may raise instead
            events = [ErrorEvent(error=exc)]
        _check_adapter_events(it, events)
    assert len(seen) == len(its)
    for req in seen:
        assert str(req.url) == "https://api.anthropic.com/v1/messages"
        assert req.headers["x-api-key"] == "sk-test"
        assert req.headers["anthropic-version"] == "2023-06-01"
    adapter.close()


@pytest.mark.anyio
@pytest.mark.parametrize("path", _adapter_cases(), ids=_ids)
async def test_adapter_replay_async(path: Path) -> None:
    its = messages_calls(path)
    seen: list[httpx2.Request] = []
    client = httpx2.AsyncClient(transport=_serve(its, seen))
    adapter = Anthropic(async_http_client=client, retry=False)
    for it in its:
        request, stream = request_for(it)
        call = Call(model=request.model, api_key="sk-test", stream=stream)
        try:
            events = [e async for e in adapter.astream(request, call)]
        except AdapterError as exc:  # pragma: no cover
            events = [ErrorEvent(error=exc)]
        _check_adapter_events(it, events)
    assert len(seen) == len(its)
    await adapter.aclose()
