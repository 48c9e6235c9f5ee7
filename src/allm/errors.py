"""The exception tree: every error allm raises or emits.

Owns: `AllmError` and its seven subclasses, each with a closed set of `reason`
strings (ported from the original's error structs, reference §15) and the fields a
caller needs to act (provider, HTTP status, retry delay, request id, the provider's
error body). Errors are plain data: they serialize through `allm.dumps` and carry no
API key, client, or callable. Must not know about transports or providers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

__all__ = [
    "AllmError",
    "AdapterError",
    "EngineError",
    "ImageAdapterError",
    "SessionError",
    "StreamError",
    "ToolError",
    "ValidationError",
    "FieldError",
]


class AllmError(Exception):
    """Root of every allm error. `reason` is a short machine-readable string."""

    kind: ClassVar[str] = "allm"
    reasons: ClassVar[frozenset[str]] = frozenset()
    # Extra constructor fields a subclass accepts (besides the common ones).
    extra_fields: ClassVar[tuple[str, ...]] = ()

    reason: str
    message: str
    provider: str | None
    cause: Any
    metadata: dict[str, Any]

    def __init__(
        self,
        reason: str,
        message: str | None = None,
        *,
        provider: str | None = None,
        cause: Any = None,
        metadata: Mapping[str, Any] | None = None,
        **extra: Any,
    ) -> None:
        if self.reasons and reason not in self.reasons:
            raise ValueError(
                f"{type(self).__name__}: unknown reason {reason!r}; "
                f"expected one of {sorted(self.reasons)}"
            )
        unknown = set(extra) - set(self.extra_fields)
        if unknown:
            raise TypeError(f"{type(self).__name__}: unexpected fields {sorted(unknown)}")
        self.reason = reason
        self.provider = provider
        self.cause = cause
        self.metadata = dict(metadata or {})
        for name in self.extra_fields:
            setattr(self, name, extra.get(name, _default_for(name)))
        self.message = message or self._default_message()
        super().__init__(self.message)

    def _default_message(self) -> str:
        where = f" ({self.provider})" if self.provider else ""
        return f"{self.kind} error{where}: {self.reason}"

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        parts = [f"reason={self.reason!r}", f"message={self.message!r}"]
        if self.provider:
            parts.append(f"provider={self.provider!r}")
        for name in self.extra_fields:
            value = getattr(self, name)
            if value not in (None, [], ()) and name != "partial":
                parts.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.to_fields() == other.to_fields()  # type: ignore[attr-defined]

    __hash__ = Exception.__hash__

    def to_fields(self) -> dict[str, Any]:
        """Every field as a plain mapping (the serializer's view of this error)."""
        out: dict[str, Any] = {
            "reason": self.reason,
            "message": self.message,
            "provider": self.provider,
            "cause": self.cause,
            "metadata": self.metadata,
        }
        for name in self.extra_fields:
            out[name] = getattr(self, name)
        return out

    @classmethod
    def from_fields(cls, data: Mapping[str, Any]) -> AllmError:
        kwargs = {k: data.get(k) for k in cls.extra_fields if k in data}
        return cls(
            str(data["reason"]),
            data.get("message"),
            provider=data.get("provider"),
            cause=data.get("cause"),
            metadata=data.get("metadata") or {},
            **kwargs,
        )


def _default_for(name: str) -> Any:
    return [] if name == "errors" else None


_TRANSPORT_REASONS = frozenset(
    {
        "rate_limited",
        "authentication_failed",
        "permission_denied",
        "invalid_request",
        "not_found",
        "request_too_large",
        "provider_unavailable",
        "overloaded",
        "context_length_exceeded",
        "content_filter",
        "timeout",
        "network_error",
        "malformed_response",
        "unsupported_feature",
        "unknown",
    }
)


class AdapterError(AllmError):
    """A provider call failed (HTTP status, transport, or a malformed response).

    `partial` holds the `Response` folded so far when the failure happened mid-stream
    (set by `allm.generate`), so nothing already received is lost.
    `retry_after` is in seconds (from `Retry-After`, `retry-after-ms`, or Google's
    `RetryInfo.retryDelay`). `body` is the provider's parsed error body.
    """

    kind = "adapter"
    reasons = _TRANSPORT_REASONS | {"no_scripted_response"}
    extra_fields = ("status", "retry_after", "request_id", "body", "partial")

    status: int | None
    retry_after: float | None
    request_id: str | None
    body: Any
    partial: Any

    @property
    def retryable(self) -> bool:
        """True for failures worth retrying (the default retry policy's view)."""
        return self.reason in {"rate_limited", "provider_unavailable", "overloaded",
                               "timeout", "network_error"} or self.status in RETRYABLE_STATUS


RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


class ImageAdapterError(AllmError):
    """An image generation / edit / variation call failed."""

    kind = "image adapter"
    reasons = _TRANSPORT_REASONS | {"unsupported_operation"}
    extra_fields = ("status", "retry_after", "request_id", "body")

    status: int | None
    retry_after: float | None
    request_id: str | None
    body: Any

    @property
    def retryable(self) -> bool:
        return self.reason in {"rate_limited", "provider_unavailable", "overloaded",
                               "timeout", "network_error"} or self.status in RETRYABLE_STATUS


class EngineError(AllmError):
    """The engine cannot make the call (no adapter, no key, unknown provider, ...)."""

    kind = "engine"
    reasons = frozenset(
        {
            "missing_adapter",
            "missing_stream_adapter",
            "missing_model",
            "missing_key",
            "unknown_tool",
            "unknown_provider",
            "invalid_engine",
            "unsupported_response_format",
            "no_image_adapter",
        }
    )


class SessionError(AllmError):
    """An illegal session transition; the session is left untouched."""

    kind = "session"
    reasons = frozenset(
        {
            "session_in_error_state",
            "session_completed",
            "invalid_status_for_operation",
            "no_pending_tool_call",
            "unknown_tool_call_id",
            "missing_tool_results",
        }
    )


class StreamError(AllmError):
    """A stream broke for a transport reason (cancelled, timeout, malformed event)."""

    kind = "stream"
    reasons = frozenset({"adapter_error", "cancelled", "timeout", "malformed_event", "unknown"})
    extra_fields = ("event_index", "partial")

    event_index: int | None
    partial: Any


class ToolError(AllmError):
    """A tool call failed; fed back to the model as a tool result by default."""

    kind = "tool"
    reasons = frozenset(
        {
            "handler_raised",
            "handler_exit",
            "timeout",
            "invalid_return",
            "invalid_arguments",
            "not_found",
            "encoding_failed",
            "tool_error",
            "too_many_tool_calls",
        }
    )
    extra_fields = ("tool_name", "tool_call_id")

    tool_name: str | None
    tool_call_id: str | None

    def _default_message(self) -> str:
        where = f" ({self.tool_name})" if self.tool_name else ""
        return f"tool error{where}: {self.reason}"


FieldError = tuple[str, str]
"""One validation failure: (dotted path such as ``messages.0.content``, reason)."""


class ValidationError(AllmError, ValueError):
    """Bad input, with every offending field named in `errors` as (path, reason)."""

    kind = "validation"
    reasons = frozenset(
        {
            "invalid_request",
            "invalid_message",
            "invalid_tool",
            "invalid_thread",
            "invalid_session",
            "invalid_session_input",
            "unsupported_capability",
            "invalid_image_request",
            "invalid_image",
            "invalid_json",
            "invalid_params",
            "invalid_script",
            "invalid_output",
        }
    )
    extra_fields = ("errors",)

    errors: list[FieldError]

    def __init__(
        self,
        reason: str,
        message: str | None = None,
        *,
        errors: Sequence[FieldError | Sequence[str]] = (),
        provider: str | None = None,
        cause: Any = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        normalized = [(str(p), str(r)) for p, r in errors]
        super().__init__(
            reason, message, provider=provider, cause=cause, metadata=metadata,
            errors=normalized,
        )

    def _default_message(self) -> str:
        if self.errors:
            shown = "; ".join(f"{p}: {r}" for p, r in self.errors[:5])
            more = f" (+{len(self.errors) - 5} more)" if len(self.errors) > 5 else ""
            return f"validation failed: {self.reason}: {shown}{more}"
        return f"validation failed: {self.reason}"

    @classmethod
    def from_fields(cls, data: Mapping[str, Any]) -> AllmError:
        return cls(
            str(data["reason"]),
            data.get("message"),
            errors=[tuple(e) for e in data.get("errors") or []],  # type: ignore[misc]
            provider=data.get("provider"),
            cause=data.get("cause"),
            metadata=data.get("metadata") or {},
        )


ERROR_TYPES: dict[str, type[AllmError]] = {
    cls.__name__: cls
    for cls in (AdapterError, EngineError, ImageAdapterError, SessionError, StreamError,
                ToolError, ValidationError)
}
