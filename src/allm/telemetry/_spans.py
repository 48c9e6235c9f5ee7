"""Telemetry spans: `Span` (hook start/stop/exception plus an optional OTel span),
`span` for a block, `span_for_stream` / `aspan_for_stream` for event streams, and
`active()` so call sites can skip spans when nothing would record them.

Must not know how the facade, loop, tools or image functions work: call sites hand
it plain attributes, responses and events.
"""

from __future__ import annotations

import contextvars
import json
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from . import _hooks
from ._hooks import SPAN_NAMES, _current, _request_id, emit, new_request_id
from ._otel import (
    _clean,
    _Config,
    _content_json,
    _error_type,
    _otel_api,
    _tracer,
    map_attr,
    record_error,
    start_span,
)

T = TypeVar("T")
_SECRET_KEYS = frozenset({"api_key", "apikey", "key", "authorization", "headers", "secret",
                          "token", "password"})


def active() -> bool:
    """True when a span would record something: a hook is attached or an
    OpenTelemetry tracer is live. Call sites may skip spans entirely when False."""
    return bool(_hooks._handlers) or _tracer() is not None


class Span:
    """One timed operation: hook start/stop/exception plus an optional OTel span.

    Use as a context manager (`span`), or drive it by hand for generators:
    `start()`, then `activate()` / `deactivate()` around each resumption, then
    `finish()` or `fail(exc)` exactly once.
    """

    __slots__ = ("_ctx_api", "_done", "_error", "_first", "_otel", "_t0", "_tokens", "data",
                 "name")

    def __init__(self, name: str, attrs: Mapping[str, Any]) -> None:
        if name not in SPAN_NAMES:
            raise ValueError(f"unknown span {name!r}; expected one of {sorted(SPAN_NAMES)}")
        self.name = name
        self.data: dict[str, Any] = {k: v for k, v in attrs.items()
                                     if k.lower() not in _SECRET_KEYS and v is not None}
        self._t0 = 0.0
        self._otel: Any = None
        self._tokens: list[tuple[Any, ...]] = []
        self._done = False
        self._first: float | None = None
        self._error: BaseException | None = None
        self._ctx_api: Any = None

    # -- lifecycle
    def start(self) -> Span:
        rid = _request_id.get() or self.data.get("request_id") or new_request_id()
        self.data["request_id"] = rid
        self._t0 = time.perf_counter()
        tracer = _tracer()
        if tracer is not None:
            self._ctx_api = _otel_api()
            self._otel = start_span(tracer, self.name, self.data)
        if _hooks._handlers:
            emit(f"{self.name}.start", {**self.data, "system_time": time.time()})
        return self

    def activate(self) -> None:
        self._tokens.append((_request_id.set(self.data["request_id"]), _current.set(self)))
        if self._otel is not None:
            api = self._ctx_api
            self._tokens[-1] = (*self._tokens[-1], api.attach(api.set_span_in_context(self._otel)))

    def deactivate(self) -> None:
        tokens = self._tokens.pop()
        if len(tokens) > 2:
            self._ctx_api.detach(tokens[2])
        _current.reset(tokens[1])
        _request_id.reset(tokens[0])

    def finish(self) -> None:
        if self._done:
            return
        self._done = True
        duration = time.perf_counter() - self._t0
        if self._otel is not None:
            if self._error is not None:
                record_error(self._otel, self._error)
            self._otel.end()
        if _hooks._handlers:
            stop = {**self.data, "duration": duration}
            if self._error is not None:
                stop["error"] = self._error
            emit(f"{self.name}.stop", stop)

    def fail(self, exc: BaseException) -> None:
        if self._done:
            return
        self._done = True
        duration = time.perf_counter() - self._t0
        if self._otel is not None:
            record_error(self._otel, exc)
            self._otel.end()
        if _hooks._handlers:
            emit(f"{self.name}.exception", {**self.data, "duration": duration, "error": exc,
                                            "kind": type(exc).__name__})

    def __enter__(self) -> Span:
        self.start()
        self.activate()
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.deactivate()
        if exc is not None and not isinstance(exc, GeneratorExit):
            self.fail(exc)
        else:
            self.finish()

    @property
    def request_id(self) -> str | None:
        value = self.data.get("request_id")
        return value if isinstance(value, str) else None

    # -- recording
    def set(self, **attrs: Any) -> None:
        """Add hook data (and the OTel attributes allm knows how to map)."""
        for key, value in attrs.items():
            if key.lower() in _SECRET_KEYS or value is None:
                continue
            self.data[key] = value
            if self._otel is not None:
                map_attr(self._otel, self.name, key, value)

    def set_response(self, response: Any) -> None:
        """Record a `Response` (id, model, finish reason, usage) and keep it for hooks."""
        self.data["response"] = response
        if self._otel is None:
            return
        otel = self._otel
        for attr, value in (("gen_ai.response.id", getattr(response, "id", None)),
                            ("gen_ai.response.model", getattr(response, "model", None))):
            if value is not None:
                otel.set_attribute(attr, str(value))
        finish = getattr(response, "finish_reason", None)
        if finish is not None:
            otel.set_attribute("gen_ai.response.finish_reasons", [str(finish)])
        self.set_usage(getattr(response, "usage", None))
        if _Config.record_content and getattr(response, "message", None) is not None:
            otel.set_attribute("gen_ai.output.messages", _content_json([response.message]))

    def set_usage(self, usage: Any) -> None:
        if self._otel is None or usage is None:
            return
        for attr, field in (("gen_ai.usage.input_tokens", "input_tokens"),
                            ("gen_ai.usage.output_tokens", "output_tokens"),
                            ("gen_ai.usage.cache_read.input_tokens", "cached_input_tokens"),
                            ("gen_ai.usage.cache_write.input_tokens", "cache_write_tokens"),
                            ("gen_ai.usage.reasoning.output_tokens", "reasoning_tokens"),
                            ("allm.usage.cost", "total_cost")):
            value = getattr(usage, field, None)
            if value is not None:
                self._otel.set_attribute(attr, value)

    def set_result(self, result: Any) -> None:
        """Keep a step/chat/tool/image result for the stop hook (and its usage for OTel)."""
        self.data["result"] = result
        if self.name == "image":
            images = getattr(result, "images", None)
            self.data["image_count"] = len(images) if isinstance(images, tuple | list) else 0
            if self._otel is not None:
                self._otel.set_attribute("allm.image.count", self.data["image_count"])
                for attr, value in (("gen_ai.response.id", getattr(result, "id", None)),
                                    ("gen_ai.response.model", getattr(result, "model", None))):
                    if value is not None:
                        self._otel.set_attribute(attr, str(value))
        if self._otel is not None:
            response = getattr(result, "final_response", None) or getattr(result, "response", None)
            if response is not None and self.name in ("step", "chat"):
                finish = getattr(response, "finish_reason", None)
                if finish is not None:
                    self._otel.set_attribute("gen_ai.response.finish_reasons", [str(finish)])
            self.set_usage(getattr(result, "usage", None))
            if self.name == "tool" and _Config.record_content:
                self._otel.set_attribute("gen_ai.tool.call.result", json.dumps(result, default=str))

    def set_input(self, messages: Any) -> None:
        """Record the input messages, only when content recording is on."""
        if self._otel is not None and _Config.record_content:
            self._otel.set_attribute("gen_ai.input.messages", _content_json(messages))

    def first_chunk(self) -> None:
        """Mark the first streamed chunk (time to first chunk), once."""
        if self._first is None:
            self._first = time.perf_counter() - self._t0
            self.data["time_to_first_chunk"] = self._first
            if self._otel is not None:
                self._otel.set_attribute("gen_ai.response.time_to_first_chunk", self._first)

    def error(self, exc: BaseException) -> None:
        """A failure reported as a value (an `ErrorEvent`): the span ends in error."""
        self._error = exc

    def retry(self, data: Mapping[str, Any]) -> None:
        if self._otel is None:
            return
        attrs = {"allm.retry.attempt": data.get("attempt"), "allm.retry.delay": data.get("delay")}
        err = data.get("error")
        if err is not None:
            attrs["error.type"] = _error_type(err)
        self._otel.add_event("gen_ai.retry", {k: v for k, v in attrs.items() if _clean(v) is not None})

    def observe(self, event: Any) -> None:
        """Update from one stream event (first chunk, response, usage, error)."""
        if self._first is None and self.name in ("stream", "generate"):
            self.first_chunk()
        kind = getattr(event, "type", None)
        if kind == "message_completed":
            if self._otel is not None:
                if event.id is not None:
                    self._otel.set_attribute("gen_ai.response.id", str(event.id))
                if event.model is not None:
                    self._otel.set_attribute("gen_ai.response.model", str(event.model))
                if event.finish_reason is not None:
                    self._otel.set_attribute("gen_ai.response.finish_reasons", [event.finish_reason])
                self.set_usage(event.usage)
        elif kind == "raw_chunk" and event.usage is not None:
            self.set_usage(event.usage)
        elif kind == "error":
            self.error(event.error)
        elif kind == "chat_completed":
            self.set_result(event.result)
        elif kind == "step_completed" and self.name == "step":
            self.set_response(event.response)


def span(name: str, **attrs: Any) -> Span:
    """A context manager timing one operation (see `Span`)::

        with telemetry.span("generate", provider="openai", model="gpt-4.1") as sp:
            response = ...
            sp.set_response(response)
    """
    return Span(name, attrs)


def span_for_stream(name: str, source: Iterable[T], **attrs: Any) -> Iterator[T]:
    """Wrap an event iterator in a span that starts on the first `next()` and ends
    when the stream is exhausted, raises, or is closed (generator ``finally``).
    Each resumption runs inside the span, so nested spans and retries attach to it;
    between resumptions nothing leaks into the caller's context."""
    sp = Span(name, attrs)
    it = iter(source)
    sp.start()
    # Each resumption runs in a private copy of the caller's context with the span
    # active (one C call per item instead of three set/reset pairs); whatever the
    # source changes in its context stays there.
    ctx = contextvars.copy_context()
    ctx.run(sp.activate)
    run = ctx.run
    done: Any = object()
    try:
        while True:
            item = run(next, it, done)
            if item is done:
                break
            sp.observe(item)
            yield item
    except GeneratorExit:
        close = getattr(it, "close", None)
        if close is not None:
            run(close)
        sp.finish()
        raise
    except BaseException as exc:
        sp.fail(exc)
        raise
    sp.finish()


async def aspan_for_stream(name: str, source: AsyncIterator[T] | Any, **attrs: Any) -> AsyncIterator[T]:
    """The async twin of `span_for_stream` (closing it closes `source` via ``aclose``)."""
    sp = Span(name, attrs)
    it = source.__aiter__()
    sp.start()
    try:
        while True:
            sp.activate()
            try:
                item = await it.__anext__()
            except StopAsyncIteration:
                break
            finally:
                sp.deactivate()
            sp.observe(item)
            yield item
    except GeneratorExit:
        aclose = getattr(it, "aclose", None)
        if aclose is not None:
            sp.activate()
            try:
                await aclose()
            finally:
                sp.deactivate()
        sp.finish()
        raise
    except BaseException as exc:
        sp.fail(exc)
        raise
    sp.finish()

