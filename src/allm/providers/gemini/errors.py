"""Gemini error mapping: Google's error envelope -> `AdapterError` (one table).

Owns the translation of ``{"error": {"code", "message", "status", "details": [...]}}``
(the google.rpc.Status JSON every Google API returns; Gemini API "Troubleshooting"
guide, https://ai.google.dev/gemini-api/docs/troubleshooting) into allm's reasons,
for HTTP error responses and for errors that arrive inside a 200 stream.

- `status` decides first (the canonical gRPC code name), the HTTP code second.
- An invalid or expired key comes back as 400 INVALID_ARGUMENT with
  ``ErrorInfo.reason == "API_KEY_INVALID"``: that is `authentication_failed`.
- INVALID_ARGUMENT whose message says the input token count exceeds the model's
  limit is `context_length_exceeded`.
- RESOURCE_EXHAUSTED carries ``RetryInfo.retryDelay`` (a Duration string such as
  ``"30s"`` or ``"1.5s"``) in `details`; that becomes `retry_after` (seconds), and a
  `Retry-After` header is the fallback.

Must not do I/O; never puts the API key anywhere (Google echoes no key in errors).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ...errors import AdapterError
from .._errors import adapter_error, parse_body, reason_for_status

__all__ = ["STATUS_REASONS", "map_error", "error_from_payload", "error_in_stream",
           "parse_duration"]

PROVIDER = "gemini"

STATUS_REASONS: dict[str, str] = {
    "INVALID_ARGUMENT": "invalid_request",
    "OUT_OF_RANGE": "invalid_request",
    "ALREADY_EXISTS": "invalid_request",
    "FAILED_PRECONDITION": "permission_denied",  # e.g. "free tier not available in your country"
    "PERMISSION_DENIED": "permission_denied",
    "UNAUTHENTICATED": "authentication_failed",
    "NOT_FOUND": "not_found",
    "RESOURCE_EXHAUSTED": "rate_limited",
    "ABORTED": "provider_unavailable",
    "INTERNAL": "provider_unavailable",
    "UNAVAILABLE": "provider_unavailable",
    "DATA_LOSS": "provider_unavailable",
    "DEADLINE_EXCEEDED": "timeout",
    "UNIMPLEMENTED": "unsupported_feature",
    "CANCELLED": "network_error",
}
"""google.rpc.Code name -> allm reason. UNKNOWN (and a missing status) use the HTTP code."""

_AUTH_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED", "CREDENTIALS_MISSING",
                           "ACCESS_TOKEN_EXPIRED", "ACCESS_TOKEN_TYPE_UNSUPPORTED"})
_CONTEXT_RE = re.compile(
    r"(input token count|token count .*exceeds|exceeds the maximum number of tokens"
    r"|too many tokens|context (window|length))", re.IGNORECASE)
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")
_REQUEST_ID_HEADERS = ("x-request-id", "x-goog-request-id", "request-id")


def parse_duration(value: Any) -> float | None:
    """Seconds from a google.protobuf.Duration in JSON (``"30s"``, ``"1.5s"``) or its
    object form (``{"seconds": 30, "nanos": 5e8}``); None when unparseable."""
    if isinstance(value, str):
        match = _DURATION_RE.match(value)
        return float(match.group(1)) if match else None
    if isinstance(value, Mapping):
        try:
            return float(value.get("seconds", 0) or 0) + float(value.get("nanos", 0) or 0) / 1e9
        except (TypeError, ValueError):
            return None
    return None


def _details(error: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    details = error.get("details")
    if not isinstance(details, list):
        return []
    return [d for d in details if isinstance(d, Mapping)]


def _detail(details: list[Mapping[str, Any]], kind: str) -> Mapping[str, Any] | None:
    suffix = "google.rpc." + kind
    for detail in details:
        if str(detail.get("@type", "")).endswith(suffix):
            return detail
    return None


def error_from_payload(payload: Any, *, status: int | None, headers: Mapping[str, str] | None,
                       body: Any) -> AdapterError:
    """Map a parsed error envelope (or anything else) to an `AdapterError`."""
    if isinstance(payload, list) and payload:  # the non-SSE stream wraps errors in a list
        payload = payload[0]
    error = payload.get("error") if isinstance(payload, Mapping) else None
    if not isinstance(error, Mapping):
        reason = reason_for_status(status) if status is not None else "malformed_response"
        text = body if isinstance(body, str) and body else None
        summary = f"Gemini returned HTTP {status}" + (f": {text[:300]}" if text else "")
        return adapter_error(provider=PROVIDER, status=status, reason=reason, message=summary,
                             headers=headers, body=body, request_id_headers=_REQUEST_ID_HEADERS)

    code = error.get("code")
    http_status = status if status is not None else (code if isinstance(code, int) else None)
    google_status = error.get("status") if isinstance(error.get("status"), str) else None
    message = error.get("message") if isinstance(error.get("message"), str) else None
    details = _details(error)
    info = _detail(details, "ErrorInfo")
    info_reason = info.get("reason") if info is not None else None

    if isinstance(info_reason, str) and info_reason in _AUTH_REASONS:
        reason = "authentication_failed"
    elif google_status in STATUS_REASONS:
        reason = STATUS_REASONS[google_status]
    elif http_status is not None:
        reason = reason_for_status(http_status)
    else:
        reason = "unknown"
    if reason == "invalid_request" and message and _CONTEXT_RE.search(message):
        reason = "context_length_exceeded"
    if reason == "invalid_request" and message and "API key" in message and (
            "not valid" in message or "expired" in message):
        reason = "authentication_failed"

    retry_after = None
    retry_info = _detail(details, "RetryInfo")
    if retry_info is not None:
        retry_after = parse_duration(retry_info.get("retryDelay"))

    metadata: dict[str, Any] = {}
    if google_status:
        metadata["google_status"] = google_status
    if isinstance(info_reason, str):
        metadata["error_info_reason"] = info_reason
    text = f"Gemini error {http_status or ''} {google_status or ''}".strip()
    if message:
        text = f"{text}: {message}"
    return adapter_error(provider=PROVIDER, status=http_status, reason=reason, message=text,
                         headers=headers, body=body, retry_after=retry_after,
                         request_id_headers=_REQUEST_ID_HEADERS, metadata=metadata)


def map_error(status: int, headers: Mapping[str, str], body: bytes) -> AdapterError:
    """`Codec.error`: a non-2xx HTTP response."""
    parsed = parse_body(body)
    return error_from_payload(parsed, status=status, headers=headers, body=parsed)


def error_in_stream(chunk: Mapping[str, Any]) -> AdapterError:
    """An ``{"error": ...}`` object that arrived inside a 200 body."""
    return error_from_payload(chunk, status=None, headers=None, body=dict(chunk))
