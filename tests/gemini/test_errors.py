"""Google's error envelope -> AdapterError, for HTTP errors and errors inside a 200 stream.
Shapes from the Gemini API troubleshooting guide and google.rpc error details."""

from __future__ import annotations

import json
from typing import Any

import pytest

from allm.errors import AdapterError
from allm.events import ErrorEvent, MessageStarted, TextDelta
from allm.providers.gemini.codec import GeminiCodec
from allm.providers.gemini.decode import GeminiStreamDecoder
from allm.providers.gemini.errors import parse_duration

CODEC = GeminiCodec()


def envelope(code: int, status: str, message: str, *details: dict[str, Any]) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = list(details)
    return json.dumps({"error": error}).encode()


RETRY = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "39s"}
QUOTA = {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
    {"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
     "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]}
KEY_INVALID = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
               "domain": "googleapis.com",
               "metadata": {"service": "generativelanguage.googleapis.com"}}


@pytest.mark.parametrize(("status", "body", "reason"), [
    (400, envelope(400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
     "invalid_request"),
    (400, envelope(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.",
                   KEY_INVALID), "authentication_failed"),
    (400, envelope(400, "INVALID_ARGUMENT", "The input token count (1200000) exceeds the "
                   "maximum number of tokens allowed (1048576)."), "context_length_exceeded"),
    (400, envelope(400, "FAILED_PRECONDITION", "User location is not supported for the API "
                   "use."), "permission_denied"),
    (403, envelope(403, "PERMISSION_DENIED", "Your API key doesn't have the required "
                   "permissions."), "permission_denied"),
    (401, envelope(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."),
     "authentication_failed"),
    (404, envelope(404, "NOT_FOUND", "models/nope is not found for API version v1beta"),
     "not_found"),
    (429, envelope(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", QUOTA, RETRY),
     "rate_limited"),
    (500, envelope(500, "INTERNAL", "An internal error has occurred."), "provider_unavailable"),
    (503, envelope(503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
     "provider_unavailable"),
    (504, envelope(504, "DEADLINE_EXCEEDED", "Deadline expired before operation could "
                   "complete."), "timeout"),
    (500, envelope(500, "UNKNOWN", "?"), "provider_unavailable"),
    (502, b"<html>Bad Gateway</html>", "provider_unavailable"),
    (418, b"", "invalid_request"),
])
def test_error_table(status: int, body: bytes, reason: str) -> None:
    err = CODEC.error(status, {"x-request-id": "rq-1"}, body)
    assert isinstance(err, AdapterError)
    assert err.reason == reason
    assert err.status == status
    assert err.provider == "gemini"
    assert err.request_id == "rq-1"
    try:
        parsed = json.loads(body)
    except ValueError:
        return
    assert err.body == parsed
    assert parsed["error"]["message"] in err.message
    assert err.metadata["google_status"] == parsed["error"]["status"]


def test_retry_delay_from_retry_info() -> None:
    err = CODEC.error(429, {}, envelope(429, "RESOURCE_EXHAUSTED", "quota", QUOTA, RETRY))
    assert err.retry_after == 39.0
    assert err.retryable
    frac = dict(RETRY, retryDelay="1.5s")
    assert CODEC.error(429, {}, envelope(429, "RESOURCE_EXHAUSTED", "q", frac)).retry_after == 1.5


def test_retry_after_header_is_the_fallback() -> None:
    err = CODEC.error(429, {"Retry-After": "7"}, envelope(429, "RESOURCE_EXHAUSTED", "quota"))
    assert err.retry_after == 7.0


def test_error_info_reason_kept() -> None:
    err = CODEC.error(400, {}, envelope(400, "INVALID_ARGUMENT", "bad key", KEY_INVALID))
    assert err.metadata["error_info_reason"] == "API_KEY_INVALID"


def test_list_wrapped_error_body() -> None:
    """streamGenerateContent without alt=sse answers errors as a JSON array."""
    body = json.dumps([json.loads(envelope(503, "UNAVAILABLE", "overloaded"))]).encode()
    err = CODEC.error(503, {}, body)
    assert err.reason == "provider_unavailable" and "overloaded" in err.message


@pytest.mark.parametrize(("value", "seconds"), [
    ("30s", 30.0), ("1.5s", 1.5), ("0s", 0.0), ({"seconds": 2, "nanos": 500_000_000}, 2.5),
    ("soon", None), (None, None),
])
def test_parse_duration(value: Any, seconds: float | None) -> None:
    assert parse_duration(value) == seconds


def test_error_inside_200_stream() -> None:
    text = (b'data: {"candidates": [{"content": {"parts": [{"text": "Hel"}], "role": "model"}}],'
            b' "responseId": "r1", "modelVersion": "gemini-2.5-flash"}\r\n\r\n'
            b'data: {"error": {"code": 503, "message": "The model is overloaded.", '
            b'"status": "UNAVAILABLE"}}\r\n\r\n')
    decoder = GeminiStreamDecoder()
    events = decoder.feed(text) + decoder.close()
    assert [type(e) for e in events] == [MessageStarted, TextDelta, ErrorEvent]
    error = events[-1].error  # type: ignore[union-attr]
    assert isinstance(error, AdapterError)
    assert error.reason == "provider_unavailable"
    assert error.status == 503
    assert error.retryable


def test_truncated_or_garbage_stream() -> None:
    decoder = GeminiStreamDecoder()
    events = decoder.feed(b"data: {not json\r\n\r\n") + decoder.close()
    assert len(events) == 1 and isinstance(events[0], ErrorEvent)
    assert events[0].error.reason == "malformed_response"
    decoder = GeminiStreamDecoder()
    events = decoder.close()
    assert len(events) == 1 and isinstance(events[0], ErrorEvent)
    assert events[0].error.reason == "malformed_response"
