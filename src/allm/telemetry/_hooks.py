"""Telemetry hooks: the handler registry (`attach` / `detach` / `emit`) and the
context every span shares (the outer call's `request_id`, the current span).

Must not know about OpenTelemetry or what a span records (`_spans`, `_otel`).
"""

from __future__ import annotations

import base64
import contextvars
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._spans import Span

Handler = Callable[[str, dict[str, Any]], Any]

SPAN_NAMES: frozenset[str] = frozenset({"generate", "stream", "step", "chat", "tool", "image"})
EVENT_NAMES: frozenset[str] = frozenset(
    {f"{s}.{p}" for s in SPAN_NAMES for p in ("start", "stop", "exception")} | {"adapter.retry"}
)


@dataclass(frozen=True, slots=True, eq=False)
class Handle:
    """What `attach` returns; pass it (or the handler) to `detach`."""

    handler: Handler
    events: frozenset[str] | None


_handlers: tuple[Handle, ...] = ()  # copy-on-write: emit reads without a lock
_lock = threading.Lock()
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "allm_request_id", default=None
)
_current: contextvars.ContextVar[Span | None] = contextvars.ContextVar(
    "allm_span", default=None
)


def _logger() -> Any:
    import logging  # lazily: keeps `import allm.telemetry` cheap

    return logging.getLogger("allm.telemetry")


def _expand(events: Iterable[str] | str | None) -> frozenset[str] | None:
    if events is None:
        return None
    names = [events] if isinstance(events, str) else list(events)
    out: set[str] = set()
    for name in names:
        if name in SPAN_NAMES:  # "generate" -> its start/stop/exception
            out.update(f"{name}.{p}" for p in ("start", "stop", "exception"))
        elif name in EVENT_NAMES:
            out.add(name)
        else:
            raise ValueError(f"unknown telemetry event {name!r}; expected one of {sorted(EVENT_NAMES)}")
    return frozenset(out)


def attach(handler: Handler, events: Iterable[str] | str | None = None) -> Handle:
    """Call ``handler(event_name, data)`` for `events` (all when None). A span name
    (``"tool"``) stands for its start/stop/exception events."""
    global _handlers
    handle = Handle(handler=handler, events=_expand(events))
    with _lock:
        _handlers = (*_handlers, handle)
    return handle


def detach(handle_or_handler: Handle | Handler) -> bool:
    """Remove a handler (by handle, or every registration of a callable)."""
    global _handlers
    with _lock:
        before = _handlers
        _handlers = tuple(
            h for h in before if h is not handle_or_handler and h.handler is not handle_or_handler
        )
        return len(_handlers) != len(before)


def handlers() -> tuple[Handle, ...]:
    return _handlers


def emit(name: str, data: dict[str, Any]) -> None:
    """Send one event to the attached handlers (``adapter.retry`` also becomes a
    span event on the current span). Never raises because of a handler."""
    if name == "adapter.retry":
        current = _current.get()
        if current is not None:
            current.retry(data)
    registered = _handlers
    if not registered:
        return
    if "request_id" not in data:
        data = {**data, "request_id": _request_id.get()}
    for handle in registered:
        if handle.events is not None and name not in handle.events:
            continue
        try:
            handle.handler(name, data)
        except Exception:
            _logger().exception("telemetry handler %r raised on %s; detaching it",
                                handle.handler, name)
            detach(handle)


def current_request_id() -> str | None:
    """The request id of the outer call in progress (None outside any call)."""
    return _request_id.get()


def new_request_id() -> str:
    """22-char URL-safe id (128 random bits), like the original's."""
    return base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode("ascii")

