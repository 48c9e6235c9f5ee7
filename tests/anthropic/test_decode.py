"""Decoding edge cases the recordings do not contain (shapes from Anthropic's docs):
error statuses and in-stream errors, stop reasons, cut-off streams, invalid tool JSON,
redacted thinking, structured output through the synthetic tool, cache usage."""

from __future__ import annotations

import json
from typing import Any

import pytest

from allm.collector import StreamCollector
from allm.errors import AdapterError
from allm.events import ErrorEvent, MessageCompleted, TextDelta, ToolCallCompleted
from allm.providers.anthropic.body import decode_message
from allm.providers.anthropic.codec import AnthropicCodec
from allm.providers.anthropic.decode import MessageDecoder, usage_from
from allm.request import Response


def sse(*events: dict[str, Any]) -> bytes:
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()


START = {"type": "message_start", "message": {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x", "content": [],
    "stop_reason": None, "usage": {"input_tokens": 10, "output_tokens": 1}}}


def text_block(i: int, text: str) -> list[dict[str, Any]]:
    return [{"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}},
            {"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": text}},
            {"type": "content_block_stop", "index": i}]


def end(reason: str = "end_turn", **usage: int) -> list[dict[str, Any]]:
    return [{"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": None},
             "usage": {"output_tokens": 5, **usage}},
            {"type": "message_stop"}]


def run(body: bytes, codec: AnthropicCodec | None = None) -> list[Any]:
    dec = (codec or AnthropicCodec()).stream_decoder({})
    return dec.feed(body) + dec.close()


def fold(events: list[Any]) -> Response:
    return StreamCollector().collect(events).to_response()


@pytest.mark.parametrize(("status", "etype", "reason"), [
    (400, "invalid_request_error", "invalid_request"),
    (401, "authentication_error", "authentication_failed"),
    (402, "billing_error", "permission_denied"),
    (403, "permission_error", "permission_denied"),
    (404, "not_found_error", "not_found"),
    (413, "request_too_large", "request_too_large"),
    (429, "rate_limit_error", "rate_limited"),
    (500, "api_error", "provider_unavailable"),
    (504, "timeout_error", "timeout"),
    (529, "overloaded_error", "overloaded"),
])
def test_error_table(status: int, etype: str, reason: str) -> None:
    body = json.dumps({"type": "error", "error": {"type": etype, "message": "nope"},
                       "request_id": "req_body"}).encode()
    err = AnthropicCodec().error(status, {"request-id": "req_hdr", "retry-after": "3"}, body)
    assert (err.reason, err.status, err.request_id, err.retry_after) == (reason, status,
                                                                         "req_hdr", 3.0)
    assert err.metadata == {"anthropic_type": etype}
    assert "nope" in err.message and err.provider == "anthropic"
    assert err.retryable is (status in (429, 500, 504, 529))


def test_error_fallbacks() -> None:
    codec = AnthropicCodec()
    too_long = json.dumps({"type": "error", "error": {
        "type": "invalid_request_error",
        "message": "prompt is too long: 208310 tokens > 200000 maximum"}}).encode()
    assert codec.error(400, {}, too_long).reason == "context_length_exceeded"
    assert codec.error(502, {}, b"<html>bad gateway</html>").reason == "provider_unavailable"
    assert codec.error(529, {}, b"").reason == "overloaded"
    err = codec.error(404, {}, json.dumps({"type": "error", "error": {
        "type": "not_found_error", "message": "model: x"}, "request_id": "req_9"}).encode())
    assert err.request_id == "req_9"


def test_error_event_inside_a_200_stream() -> None:
    body = sse(START, *text_block(0, "Hel"),
               {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    events = run(body)
    errors = [e for e in events if isinstance(e, ErrorEvent)]
    assert len(errors) == 1 and errors[0] is events[-1]
    err = errors[0].error
    assert isinstance(err, AdapterError)
    assert (err.reason, err.status, err.retryable) == ("overloaded", None, True)
    resp = fold(events)
    assert resp.finish_reason == "error" and resp.output_text == "Hel"


def test_cut_off_stream_is_an_error_with_the_text_kept() -> None:
    events = run(sse(START, *text_block(0, "partial")))
    assert isinstance(events[-1], ErrorEvent)
    assert events[-1].error.reason == "malformed_response"
    assert fold(events).output_text == "partial"
    assert isinstance(run(b"")[-1], ErrorEvent)


def test_non_json_data_and_error_body_in_200() -> None:
    events = run(b"event: message_start\ndata: {not json\n\n")
    assert isinstance(events[0], ErrorEvent)
    codec = AnthropicCodec()
    [ev] = codec.decode(200, {}, b"oops")
    assert isinstance(ev, ErrorEvent) and ev.error.reason == "malformed_response"
    [ev] = codec.decode(200, {}, json.dumps({"type": "error", "error": {
        "type": "overloaded_error", "message": "Overloaded"}}).encode())
    assert isinstance(ev, ErrorEvent) and ev.error.reason == "overloaded"


@pytest.mark.parametrize(("raw", "finish"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"),
    ("tool_use", "tool_calls"), ("pause_turn", "pause"), ("refusal", "refusal"),
    ("model_context_window_exceeded", "length"), ("something_new", "other"),
])
def test_stop_reasons(raw: str, finish: str) -> None:
    resp = fold(run(sse(START, *text_block(0, "x"), *end(raw))))
    assert (resp.finish_reason, resp.raw_finish_reason) == (finish, raw)


def test_usage_sums_cache_and_keeps_raw() -> None:
    usage = usage_from({"input_tokens": 3, "cache_read_input_tokens": 1111,
                        "cache_creation_input_tokens": 418, "output_tokens": 33,
                        "service_tier": "standard",
                        "output_tokens_details": {"thinking_tokens": 12}})
    assert (usage.input_tokens, usage.cached_input_tokens, usage.cache_write_tokens) == (
        1532, 1111, 418)
    assert (usage.output_tokens, usage.total, usage.reasoning_tokens) == (33, 1565, 12)
    assert usage.extra["uncached_input_tokens"] == 3
    assert usage.extra["service_tier"] == "standard"


def test_invalid_tool_json_is_kept_raw() -> None:
    body = sse(START,
               {"type": "content_block_start", "index": 0, "content_block": {
                   "type": "tool_use", "id": "t1", "name": "f", "input": {}}},
               {"type": "content_block_delta", "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": '{"a": '}},
               {"type": "content_block_stop", "index": 0}, *end("tool_use"))
    done = [e for e in run(body) if isinstance(e, ToolCallCompleted)]
    assert done[0].arguments == {} and done[0].raw_arguments == '{"a": '
    assert done[0].metadata == {"invalid_arguments": True}


def test_no_argument_tool_call() -> None:
    body = sse(START,
               {"type": "content_block_start", "index": 0, "content_block": {
                   "type": "tool_use", "id": "t1", "name": "f", "input": {}}},
               {"type": "content_block_delta", "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": ""}},
               {"type": "content_block_stop", "index": 0}, *end("tool_use"))
    [call] = fold(run(body)).tool_calls
    assert (call.arguments, call.raw_arguments) == ({}, "{}")


def test_redacted_thinking_and_unknown_blocks_are_kept() -> None:
    message = {"id": "m", "model": "c", "type": "message", "role": "assistant",
               "stop_reason": "end_turn", "usage": {"input_tokens": 1, "output_tokens": 2},
               "content": [{"type": "redacted_thinking", "data": "ENC"},
                           {"type": "brand_new_block", "x": 1},
                           {"type": "text", "text": "hi"}]}
    resp = fold(decode_message(message))
    assert resp.output_text == "hi"
    assert resp.message is not None
    assert resp.message.metadata["anthropic"]["content"] == message["content"]
    assert resp.reasoning is None


def test_structured_output_tool_becomes_text() -> None:
    codec = AnthropicCodec()
    codec.structured_tool = "respond_with_json_city"
    body = sse(START,
               {"type": "content_block_start", "index": 0, "content_block": {
                   "type": "tool_use", "id": "t1", "name": "respond_with_json_city", "input": {}}},
               {"type": "content_block_delta", "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": '{"city":'}},
               {"type": "content_block_delta", "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": ' "Oslo"}'}},
               {"type": "content_block_stop", "index": 0}, *end("tool_use"))
    events = run(body, codec)
    assert [e.delta for e in events if isinstance(e, TextDelta)] == ['{"city":', ' "Oslo"}']
    resp = fold(events)
    assert resp.output_text == '{"city": "Oslo"}'
    assert resp.tool_calls == () and resp.finish_reason == "stop"
    assert resp.message is not None and resp.message.metadata["structured_output_tool"] is True
    # the non-streaming body gives the same fold
    message = {"id": "msg_1", "model": "claude-x", "type": "message", "role": "assistant",
               "stop_reason": "tool_use", "usage": {"input_tokens": 10, "output_tokens": 5},
               "content": [{"type": "tool_use", "id": "t1", "name": "respond_with_json_city",
                            "input": {"city": "Oslo"}}]}
    decoded = fold(codec.decode(200, {}, json.dumps(message).encode()))
    assert decoded.output_text == '{"city":"Oslo"}'
    assert (decoded.finish_reason, decoded.tool_calls) == ("stop", ())


def test_events_after_message_stop_are_ignored() -> None:
    dec = MessageDecoder()
    for ev in [START, *text_block(0, "x"), *end()]:
        dec.event(ev)
    assert dec.done
    assert dec.event(START) == []
    assert dec.close() == []
    assert isinstance(dec.completed(), MessageCompleted)


def test_json_body_on_the_streaming_path() -> None:
    """A gateway that ignores "stream": true and answers JSON still decodes."""
    message = {"id": "m", "model": "c", "type": "message", "role": "assistant",
               "stop_reason": "end_turn", "usage": {"input_tokens": 1, "output_tokens": 2},
               "content": [{"type": "text", "text": "hello"}]}
    dec = AnthropicCodec().stream_decoder({"Content-Type": "application/json"})
    events = dec.feed(json.dumps(message).encode()[:10])
    events += dec.feed(json.dumps(message).encode()[10:]) + dec.close()
    assert fold(events).output_text == "hello"
    dec = AnthropicCodec().stream_decoder({"content-type": "application/json"})
    [ev] = dec.feed(b"<html>") + dec.close()
    assert isinstance(ev, ErrorEvent)


def test_empty_messages_rejected_before_sending() -> None:
    from allm.errors import ValidationError
    from allm.providers.base import Call
    from allm.request import Request

    with pytest.raises(ValidationError) as exc:
        AnthropicCodec().build(Request(messages=(), model="claude-haiku-4-5"),
                               Call(model="claude-haiku-4-5"), api_key="k", stream=False)
    assert exc.value.errors == [("messages", "empty")]
