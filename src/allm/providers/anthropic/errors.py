"""Anthropic error mapping: one table from the API's error `type` (and HTTP status) to
`AdapterError` reasons (sans-IO).

Owns the table and the two entry points: `error_from_response` (a non-2xx HTTP
response) and `error_from_event` (an ``event: error`` inside a 200 stream). Both build
the same `AdapterError`, so a caller never needs to know where the failure surfaced.

Wire shape (https://docs.anthropic.com/en/api/errors)::

    {"type": "error", "error": {"type": "not_found_error", "message": "..."},
     "request_id": "req_..."}

Statuses: 400 invalid_request_error, 401 authentication_error, 402 billing_error,
403 permission_error, 404 not_found_error, 413 request_too_large, 429
rate_limit_error, 500 api_error, 504 timeout_error, 529 overloaded_error. The request
id comes from the ``request-id`` header, else from the body's ``request_id``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...errors import AdapterError
from .._errors import adapter_error, parse_body, reason_for_status

__all__ = ["TYPE_REASONS", "error_from_response", "error_from_event", "reason_for"]

PROVIDER = "anthropic"

TYPE_REASONS: dict[str, str] = {
    "invalid_request_error": "invalid_request",
    "authentication_error": "authentication_failed",
    "billing_error": "permission_denied",
    "permission_error": "permission_denied",
    "not_found_error": "not_found",
    "request_too_large": "request_too_large",
    "rate_limit_error": "rate_limited",
    "api_error": "provider_unavailable",
    "timeout_error": "timeout",
    "overloaded_error": "overloaded",
}
"""The API's `error.type` -> allm reason. Unknown types fall back to the status table."""

# Messages the API uses when the prompt does not fit the context window, e.g.
# "prompt is too long: 208310 tokens > 200000 maximum" and
# "input length and `max_tokens` exceed context limit: 198000 + 4096 > 200000".
_CONTEXT_MARKERS = (
    "prompt is too long",
    "exceed context limit",
    "context window",
    "context length",
)


def reason_for(status: int | None, error_type: str | None, message: str | None) -> str:
    """The allm reason for an Anthropic error (status may be None for stream errors)."""
    if message:
        lowered = message.lower()
        if any(marker in lowered for marker in _CONTEXT_MARKERS):
            return "context_length_exceeded"
    if error_type and error_type in TYPE_REASONS:
        return TYPE_REASONS[error_type]
    if status is None:
        return "provider_unavailable"
    return reason_for_status(status)


def _fields(body: Any) -> tuple[str | None, str | None, str | None]:
    """(type, message, request_id) from a parsed error body (tolerant)."""
    if not isinstance(body, Mapping):
        return None, (body if isinstance(body, str) and body else None), None
    request_id = body.get("request_id")
    err = body.get("error")
    if isinstance(err, Mapping):
        etype = err.get("type")
        msg = err.get("message")
        return (
            etype if isinstance(etype, str) else None,
            msg if isinstance(msg, str) else None,
            request_id if isinstance(request_id, str) else None,
        )
    return None, None, request_id if isinstance(request_id, str) else None


def _build(
    status: int | None, headers: Mapping[str, str] | None, body: Any
) -> AdapterError:
    etype, msg, body_request_id = _fields(body)
    reason = reason_for(status, etype, msg)
    where = f"HTTP {status}" if status is not None else "stream error"
    text = f"Anthropic {where}"
    if etype:
        text += f" ({etype})"
    if msg:
        text += f": {msg}"
    err = adapter_error(
        provider=PROVIDER,
        status=status,
        reason=reason,
        message=text,
        headers=headers,
        body=body,
        request_id_headers=("request-id", "x-request-id"),
        metadata={"anthropic_type": etype} if etype else None,
    )
    if err.request_id is None and body_request_id:
        err.request_id = body_request_id
    return err


def error_from_response(status: int, headers: Mapping[str, str], body: bytes) -> AdapterError:
    """Map a non-2xx HTTP response to an `AdapterError`."""
    return _build(status, headers, parse_body(body))


def error_from_event(data: Any, headers: Mapping[str, str] | None = None) -> AdapterError:
    """Map the payload of an ``event: error`` received inside a 200 stream (no status;
    ``overloaded_error`` mid-stream is the common case)."""
    return _build(None, headers, data)
