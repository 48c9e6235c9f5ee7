"""Shared pieces of provider error mapping (sans-IO).

Owns the HTTP-status fallback table and header parsing (`Retry-After`,
`retry-after-ms`, request ids) that every provider's error table builds on. Each
provider keeps its own table (status + error type/code -> reason) in its package and
calls `adapter_error` to build the exception, so every error carries the same fields.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from ..errors import AdapterError, AllmError, ImageAdapterError

__all__ = [
    "STATUS_REASONS",
    "parse_retry_after",
    "header",
    "parse_body",
    "adapter_error",
    "reason_for_status",
    "image_error",
]

STATUS_REASONS: dict[int, str] = {
    400: "invalid_request",
    401: "authentication_failed",
    403: "permission_denied",
    404: "not_found",
    408: "timeout",
    409: "provider_unavailable",
    413: "request_too_large",
    422: "invalid_request",
    429: "rate_limited",
    500: "provider_unavailable",
    502: "provider_unavailable",
    503: "provider_unavailable",
    504: "timeout",
    529: "overloaded",
}
"""Fallback when a provider's body says nothing more specific."""


def reason_for_status(status: int) -> str:
    if status in STATUS_REASONS:
        return STATUS_REASONS[status]
    if 500 <= status < 600:
        return "provider_unavailable"
    if 400 <= status < 500:
        return "invalid_request"
    return "unknown"


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup that works on plain dicts too."""
    value = headers.get(name)
    if value is not None:
        return value
    lname = name.lower()
    for key, val in headers.items():
        if key.lower() == lname:
            return val
    return None


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait, from `retry-after-ms` (OpenAI, Anthropic) or `Retry-After`
    (seconds, or an HTTP date per RFC 9110 §10.2.3). None when absent or unparseable."""
    ms = header(headers, "retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = header(headers, "retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def parse_body(body: bytes) -> Any:
    """The error body as JSON when it is JSON, else the text (truncated), else None."""
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        text = body[:2000].decode("utf-8", errors="replace")
        return text


def first_header(headers: Mapping[str, str], names: Iterable[str]) -> str | None:
    for name in names:
        value = header(headers, name)
        if value:
            return value
    return None


def adapter_error(
    *,
    provider: str,
    status: int | None,
    reason: str,
    message: str | None,
    headers: Mapping[str, str] | None = None,
    body: Any = None,
    request_id_headers: Iterable[str] = ("x-request-id", "request-id"),
    retry_after: float | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> AdapterError:
    """Build an `AdapterError` with the fields every provider fills the same way."""
    hdrs = headers or {}
    if retry_after is None and hdrs:
        retry_after = parse_retry_after(hdrs)
    return AdapterError(
        reason,
        message,
        provider=provider,
        status=status,
        retry_after=retry_after,
        request_id=first_header(hdrs, request_id_headers) if hdrs else None,
        body=body,
        metadata=metadata,
    )


def image_error(error: AllmError, provider: str | None = None) -> ImageAdapterError:
    """An error from the chat error tables or the HTTP runtime (`AdapterError`) as the
    `ImageAdapterError` image adapters raise: same reason (``unknown`` when image errors
    have no such reason), message, status, retry delay, request id and body."""
    if isinstance(error, ImageAdapterError):
        return error
    reason = error.reason if error.reason in ImageAdapterError.reasons else "unknown"
    return ImageAdapterError(
        reason, error.message, provider=error.provider or provider, cause=error.cause,
        metadata=error.metadata, status=getattr(error, "status", None),
        retry_after=getattr(error, "retry_after", None),
        request_id=getattr(error, "request_id", None), body=getattr(error, "body", None),
    )
