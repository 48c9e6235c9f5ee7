"""The OpenAI error table, from the documented error shapes
(https://platform.openai.com/docs/guides/error-codes): HTTP errors, and errors that
arrive inside a 200 stream (Responses `error` / `response.failed`, a Chat chunk)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from allm.errors import AdapterError
from allm.events import ErrorEvent, MessageStarted, TextDelta
from allm.providers.openai import ChatCodec, ResponsesCodec
from allm.providers.openai.errors import error_from_response, reason_for

CHAT = ChatCodec(base_url="https://api.openai.com/v1")
RESPONSES = ResponsesCodec(base_url="https://api.openai.com/v1")


def body(message: str, type_: str | None, code: str | None, param: str | None = None) -> bytes:
    return json.dumps({"error": {"message": message, "type": type_, "code": code,
                                 "param": param}}).encode()


def test_401_invalid_api_key() -> None:
    err = error_from_response(
        401, {"x-request-id": "req_abc"},
        body("Incorrect API key provided: sk-abc***.", "invalid_request_error",
             "invalid_api_key"))
    assert err.reason == "authentication_failed"
    assert err.status == 401
    assert err.request_id == "req_abc"
    assert err.provider == "openai"
    assert err.metadata == {"code": "invalid_api_key", "type": "invalid_request_error"}
    assert err.body["error"]["code"] == "invalid_api_key"
    assert not err.retryable


def test_429_rate_limit_with_retry_after_ms() -> None:
    err = error_from_response(
        429, {"retry-after-ms": "1500", "Retry-After": "2", "X-Request-Id": "req_1"},
        body("Rate limit reached for gpt-4o on tokens per min (TPM).", "tokens",
             "rate_limit_exceeded"))
    assert err.reason == "rate_limited"
    assert err.retry_after == 1.5  # retry-after-ms wins over Retry-After
    assert err.request_id == "req_1"
    assert err.retryable
    assert "insufficient_quota" not in err.metadata


def test_429_retry_after_seconds() -> None:
    err = error_from_response(429, {"retry-after": "3"}, body("slow down", "requests", None))
    assert err.reason == "rate_limited"
    assert err.retry_after == 3.0


@pytest.mark.parametrize("code", ["insufficient_quota", "credit_balance_exhausted",
                                  "project_spend_limit_exceeded"])
def test_429_insufficient_quota_is_flagged(code: str) -> None:
    err = error_from_response(
        429, {}, body("You exceeded your current quota, please check your plan and billing "
                      "details.", "insufficient_quota", code))
    assert err.reason == "rate_limited"
    assert err.metadata["insufficient_quota"] is True
    assert err.metadata["code"] == code


def test_400_context_length_exceeded() -> None:
    err = error_from_response(
        400, {},
        body("This model's maximum context length is 128000 tokens. However, your messages "
             "resulted in 130000 tokens.", "invalid_request_error", "context_length_exceeded",
             "messages"))
    assert err.reason == "context_length_exceeded"
    assert err.metadata["param"] == "messages"
    assert err.message.startswith("This model's maximum context length")


def test_400_content_policy_violation() -> None:
    err = error_from_response(
        400, {}, body("Your request was rejected as a result of our safety system.",
                      "invalid_request_error", "content_policy_violation"))
    assert err.reason == "content_filter"


def test_400_plain_invalid_request() -> None:
    err = error_from_response(
        400, {}, body("Invalid 'temperature': decimal below minimum value.",
                      "invalid_request_error", "decimal_below_min_value", "temperature"))
    assert err.reason == "invalid_request"
    assert err.metadata["param"] == "temperature"


@pytest.mark.parametrize(("status", "reason"), [
    (500, "provider_unavailable"), (502, "provider_unavailable"),
    (503, "provider_unavailable"), (504, "timeout"), (404, "not_found"),
    (403, "permission_denied"), (413, "request_too_large"), (408, "timeout"),
    (409, "provider_unavailable"), (422, "invalid_request"),
])
def test_status_fallbacks(status: int, reason: str) -> None:
    err = error_from_response(status, {}, body("boom", None, None))
    assert err.reason == reason
    assert err.status == status


def test_500_server_error_is_retryable() -> None:
    err = error_from_response(
        500, {"x-request-id": "req_5"},
        body("The server had an error while processing your request.", "server_error", None))
    assert err.reason == "provider_unavailable"
    assert err.retryable
    assert err.request_id == "req_5"


def test_503_overloaded_code() -> None:
    err = error_from_response(503, {}, body("overloaded", "service_unavailable_error",
                                            "server_is_overloaded"))
    assert err.reason == "overloaded"


@pytest.mark.parametrize("raw", [b"", b"<html>Bad gateway</html>", b"not json", b"[1,2]"])
def test_non_json_error_bodies(raw: bytes) -> None:
    err = error_from_response(502, {}, raw)
    assert err.reason == "provider_unavailable"
    assert err.status == 502
    assert "502" in err.message


def test_model_not_found_is_not_found_on_both_endpoints() -> None:
    b = body("The model `gpt-9` does not exist", "invalid_request_error", "model_not_found")
    assert CHAT.error(404, {}, b).reason == "not_found"
    assert RESPONSES.error(400, {}, b).reason == "not_found"


def test_error_never_carries_the_key() -> None:
    err = error_from_response(401, {"authorization": "Bearer sk-secret"},
                              body("Incorrect API key provided: sk-sec***", None,
                                   "invalid_api_key"))
    assert "sk-secret" not in repr(err) and "sk-secret" not in str(err.to_fields())


# ------------------------------------------------------------------ errors in a stream
def _sse(*events: dict[str, Any]) -> bytes:
    out = []
    for ev in events:
        name = ev.get("type")
        out.append((f"event: {name}\n" if name else "") + f"data: {json.dumps(ev)}\n\n")
    return "".join(out).encode()


def _stream(codec: Any, raw: bytes) -> list[Any]:
    dec = codec.stream_decoder({"x-request-id": "req_s"})
    return [*dec.feed(raw), *dec.close()]


def test_responses_error_event_maps_with_the_table() -> None:
    raw = _sse(
        {"type": "response.created", "response": {"id": "resp_1", "model": "gpt-5"}},
        {"type": "response.output_text.delta", "item_id": "msg_1", "delta": "Hal"},
        {"type": "error", "code": "rate_limit_exceeded", "message": "Rate limit reached",
         "param": None, "sequence_number": 3},
    )
    events = _stream(RESPONSES, raw)
    assert [type(e) for e in events] == [MessageStarted, TextDelta, ErrorEvent]
    err = events[-1].error
    assert isinstance(err, AdapterError)
    assert err.reason == "rate_limited"
    assert err.status is None
    assert err.message == "Rate limit reached"
    assert err.request_id == "req_s"


def test_responses_nested_error_event() -> None:
    raw = _sse({"type": "error", "error": {"type": "invalid_request_error",
                                           "code": "context_length_exceeded",
                                           "message": "Your input exceeds the context window"}})
    events = _stream(RESPONSES, raw)
    assert events[-1].error.reason == "context_length_exceeded"


def test_responses_failed() -> None:
    raw = _sse(
        {"type": "response.created", "response": {"id": "resp_1", "model": "gpt-5"}},
        {"type": "response.failed", "response": {
            "id": "resp_1", "status": "failed",
            "error": {"code": "server_error", "message": "The model failed"}}},
    )
    events = _stream(RESPONSES, raw)
    err = events[-1].error
    assert err.reason == "provider_unavailable"
    assert err.message == "The model failed"
    assert err.metadata["code"] == "server_error"


def test_responses_failed_non_streaming_body() -> None:
    raw = json.dumps({"id": "resp_1", "object": "response", "status": "failed", "output": [],
                      "error": {"code": "invalid_prompt", "message": "bad prompt"}}).encode()
    events = RESPONSES.decode(200, {}, raw)
    assert isinstance(events[-1], ErrorEvent)
    assert events[-1].error.reason == "invalid_request"


def test_chat_error_chunk() -> None:
    raw = (b'data: {"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hi"}}]}'
           b'\n\ndata: {"error":{"message":"The server had an error","type":"server_error",'
           b'"code":null}}\n\n')
    events = _stream(CHAT, raw)
    assert [type(e) for e in events] == [MessageStarted, TextDelta, ErrorEvent]
    assert events[-1].error.reason == "provider_unavailable"
    assert events[-1].error.message == "The server had an error"


def test_reason_for_unknown_in_stream_code() -> None:
    assert reason_for(None, "something_new", None) == "provider_unavailable"
    assert reason_for(None, None, "rate_limit_error") == "rate_limited"
