"""OpenAI error mapping: the one table from an OpenAI error to an `AdapterError`.

Owns how an OpenAI error (an HTTP status plus the JSON body
``{"error": {"message", "type", "code", "param"}}``, or an error that arrives inside a
200 stream: the Responses ``error`` event, ``response.failed``, a Chat Completions
``{"error": ...}`` chunk) becomes an `AdapterError` reason. The provider's message,
type, code and param are kept in `AdapterError.metadata` and the parsed body in
`AdapterError.body`; `x-request-id` and `retry-after-ms` / `Retry-After` come from
the shared helpers in `providers/_errors.py`. Sans-IO: bytes and dicts in, errors out.

Decisions (https://platform.openai.com/docs/guides/error-codes):

- ``code == "context_length_exceeded"`` (any status) -> ``context_length_exceeded``.
- ``content_policy_violation`` / ``content_filter`` codes or types ->
  ``content_filter``.
- ``model_not_found`` (OpenAI answers 404 on Chat Completions but 400 on Responses)
  -> ``not_found`` either way, so callers can branch on one reason.
- ``insufficient_quota`` (HTTP 429, type or code, plus the billing codes
  ``credit_balance_exhausted`` / ``*_spend_limit_exceeded`` /
  ``organization_usage_limit_exceeded``) -> ``rate_limited`` like every 429, with
  ``metadata["insufficient_quota"] = True``. OpenAI documents that retrying does
  not help; the flag lets a caller (or a retry policy) stop early. It stays
  ``rate_limited`` because the status is 429 and the default retry policy keys on
  the status too.
- Errors inside a stream have no HTTP status: their ``code`` decides
  (``rate_limit_exceeded`` -> ``rate_limited``, ``server_error`` ->
  ``provider_unavailable``, ``invalid_prompt`` -> ``invalid_request``, ...);
  an unknown code is ``provider_unavailable`` (the server failed mid-answer).
- Everything else falls back to the shared HTTP-status table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...errors import AdapterError
from .._errors import adapter_error, parse_body, reason_for_status

__all__ = ["PROVIDER", "error_from_response", "error_from_payload", "reason_for"]

PROVIDER = "openai"

_BILLING_CODES = frozenset(
    {
        "insufficient_quota",
        "credit_balance_exhausted",
        "organization_spend_limit_exceeded",
        "project_spend_limit_exceeded",
        "organization_usage_limit_exceeded",
        "billing_hard_limit_reached",
        "billing_not_active",
    }
)

# error.code -> reason, whatever the status (most specific first).
_CODE_REASONS: dict[str, str] = {
    "context_length_exceeded": "context_length_exceeded",
    "string_above_max_length": "context_length_exceeded",
    "content_policy_violation": "content_filter",
    "content_filter": "content_filter",
    "model_not_found": "not_found",
    "invalid_api_key": "authentication_failed",
    "invalid_organization": "authentication_failed",
    "unsupported_country_region_territory": "permission_denied",
    "rate_limit_exceeded": "rate_limited",
    "slow_down": "rate_limited",
    "server_is_overloaded": "overloaded",
    "server_error": "provider_unavailable",
    "invalid_prompt": "invalid_request",
    "vector_store_timeout": "timeout",
    "invalid_image": "invalid_request",
    "invalid_image_format": "invalid_request",
    "image_too_large": "invalid_request",
}

# error.type -> reason when the code said nothing.
_TYPE_REASONS: dict[str, str] = {
    "authentication_error": "authentication_failed",
    "permission_error": "permission_denied",
    "rate_limit_error": "rate_limited",
    "tokens": "rate_limited",
    "requests": "rate_limited",
    "server_error": "provider_unavailable",
    "service_unavailable_error": "provider_unavailable",
    "api_error": "provider_unavailable",
    "not_found_error": "not_found",
}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def reason_for(status: int | None, code: str | None, type_: str | None) -> str:
    """The allm reason for an OpenAI error (status None = reported inside a stream)."""
    if code in _BILLING_CODES or type_ in _BILLING_CODES:
        return "rate_limited"
    if code is not None and code in _CODE_REASONS:
        return _CODE_REASONS[code]
    if type_ is not None and ("content_filter" in type_ or "content_policy" in type_):
        return "content_filter"
    if status is None:
        if type_ is not None and type_ in _TYPE_REASONS:
            return _TYPE_REASONS[type_]
        return "provider_unavailable"
    if status == 429:
        return "rate_limited"
    reason = reason_for_status(status)
    if reason in ("invalid_request", "unknown") and type_ is not None and type_ in _TYPE_REASONS:
        return _TYPE_REASONS[type_]
    return reason


def _error_fields(body: Any) -> dict[str, Any]:
    """``{"error": {...}}`` (or a bare error object) -> the error object, else {}."""
    if isinstance(body, Mapping):
        inner = body.get("error")
        if isinstance(inner, Mapping):
            return dict(inner)
        if isinstance(inner, str):
            return {"message": inner}
        if "message" in body or "code" in body:
            return dict(body)
    return {}


def _build(
    status: int | None,
    fields: Mapping[str, Any],
    *,
    headers: Mapping[str, str] | None,
    body: Any,
    default_message: str,
) -> AdapterError:
    raw_code = fields.get("code")
    code = str(raw_code) if isinstance(raw_code, int) else _str(raw_code)
    type_ = _str(fields.get("type"))
    param = _str(fields.get("param"))
    message = _str(fields.get("message")) or default_message
    reason = reason_for(status, code, type_)
    metadata: dict[str, Any] = {}
    if code is not None:
        metadata["code"] = code
    if type_ is not None:
        metadata["type"] = type_
    if param is not None:
        metadata["param"] = param
    if code in _BILLING_CODES or type_ in _BILLING_CODES:
        metadata["insufficient_quota"] = True
        metadata["retryable"] = False
    return adapter_error(
        provider=PROVIDER,
        status=status,
        reason=reason,
        message=message,
        headers=headers,
        body=body,
        metadata=metadata,
    )


def error_from_response(status: int, headers: Mapping[str, str], body: bytes) -> AdapterError:
    """Map a non-2xx HTTP response to an `AdapterError`."""
    parsed = parse_body(body)
    fields = _error_fields(parsed)
    if not fields and isinstance(parsed, str) and parsed.strip():
        fields = {"message": f"OpenAI HTTP {status}: {parsed.strip()[:500]}"}
    return _build(status, fields, headers=headers, body=parsed,
                  default_message=f"OpenAI HTTP {status}")


def error_from_payload(
    payload: Mapping[str, Any],
    *,
    headers: Mapping[str, str] | None = None,
) -> AdapterError:
    """Map an error reported inside a 200 stream (or a 200 body with ``status:
    failed``): a Responses ``error`` event (``{"type": "error", "code", "message",
    "param"}``, sometimes nested under ``"error"``), the ``response.error`` object of
    ``response.failed``, or a Chat Completions ``{"error": {...}}`` chunk."""
    fields = _error_fields(payload)
    return _build(None, fields, headers=headers, body=dict(payload),
                  default_message="OpenAI reported an error mid-stream")
