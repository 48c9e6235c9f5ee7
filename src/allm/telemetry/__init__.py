"""Observability: in-process hooks and OpenTelemetry GenAI spans.

Owns the hook registry (`attach` / `detach` / `emit`), the `request_id` shared by
everything one outer call does (`current_request_id`), and `span` / `span_for_stream`
/ `aspan_for_stream`, which the facade, the loop, the tool executor and the image
functions wrap their work in. Must not know how those work: call sites hand it
plain attributes, responses and events.

Hooks: ``handler(event_name, data)`` for ``generate|stream|step|chat|tool|image``
``.start|.stop|.exception`` and ``adapter.retry`` (names as in the original,
reference §13). ``data`` always has ``request_id``; stop/exception add ``duration``
(seconds); stop adds ``response`` / ``result`` when the call site set them,
exception adds ``error`` and ``kind``. A handler that raises is logged on the
``allm.telemetry`` logger and detached; it never breaks the call.

OpenTelemetry (optional extra ``allm[otel]``): never imported by this module at
import time. With ``configure(otel="auto")`` (default) a span is created only when
the application has imported ``opentelemetry.trace`` *and* installed a real tracer
provider, so an app without OTel pays one dict lookup per span. ``otel=True`` always
goes through the API (no-op tracer included), ``otel=False`` never. Spans follow the
GenAI semantic conventions (development status, checked against
semantic-conventions-genai ``client-inference.md`` / ``execute-tool.md``):

- model call: ``chat {model}`` (``generate_content {model}`` for Gemini), kind
  CLIENT, ``gen_ai.operation.name``, ``gen_ai.provider.name``,
  ``gen_ai.request.model`` / ``.stream`` / ``.temperature`` / ``.max_tokens`` / ...,
  ``gen_ai.response.model`` / ``.id`` / ``.finish_reasons``,
  ``gen_ai.usage.input_tokens`` / ``output_tokens`` / ``cache_read.input_tokens`` /
  ``cache_write.input_tokens`` / ``reasoning.output_tokens``,
  ``gen_ai.response.time_to_first_chunk`` (streaming), retries as ``gen_ai.retry``
  span events, ``error.type`` on failure;
- chat loop: ``invoke_agent {name}`` (operation ``invoke_agent``), kind INTERNAL;
- one loop step: ``step {model}`` (allm-specific, ``allm.operation = "step"``);
- tool: ``execute_tool {tool}`` with ``gen_ai.tool.name`` / ``.call.id`` / ``.type``;
- image: ``generate_content {model}`` with ``gen_ai.output.type = "image"``.

Message content (``gen_ai.input.messages``, ``gen_ai.output.messages``, tool
arguments and results) is recorded only after ``configure(record_content=True)``.
No attribute ever carries an API key: attributes named like one are dropped.
"""

from __future__ import annotations

import base64
import contextvars
import json
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = [
    "attach",
    "detach",
    "emit",
    "handlers",
    "active",
    "configure",
    "current_request_id",
    "new_request_id",
    "span",
    "span_for_stream",
    "aspan_for_stream",
    "Span",
    "Handle",
    "SPAN_NAMES",
    "EVENT_NAMES",
]

T = TypeVar("T")
Handler = Callable[[str, dict[str, Any]], Any]

SPAN_NAMES: frozenset[str] = frozenset({"generate", "stream", "step", "chat", "tool", "image"})
EVENT_NAMES: frozenset[str] = frozenset(
    {f"{s}.{p}" for s in SPAN_NAMES for p in ("start", "stop", "exception")} | {"adapter.retry"}
)
_SECRET_KEYS = frozenset({"api_key", "apikey", "key", "authorization", "headers", "secret",
                          "token", "password"})


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


class _Config:
    record_content = False
    otel = "auto"  # "auto" | "on" | "off"
    tracer_provider: Any = None  # an explicit provider (else the global one)


def _logger() -> Any:
    import logging  # lazily: keeps `import allm.telemetry` cheap

    return logging.getLogger("allm.telemetry")


def configure(*, record_content: bool | None = None, otel: bool | str | None = None,
              tracer_provider: Any = None) -> None:
    """Telemetry settings: `record_content` (message text in spans, default off);
    `otel`: "auto" (default: only with a configured tracer provider), True, False;
    `tracer_provider`: use this OTel provider instead of the global one (``False``
    to go back to the global one)."""
    if tracer_provider is not None:
        _Config.tracer_provider = tracer_provider or None
        _tracers.clear()
    if record_content is not None:
        _Config.record_content = bool(record_content)
    if otel is not None:
        mode = "on" if otel is True else "off" if otel is False else otel
        if mode not in {"auto", "on", "off"}:
            raise ValueError("otel must be True, False or 'auto'")
        _Config.otel = mode


# ---------------------------------------------------------------- hooks


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


def active() -> bool:
    """True when a span would record something: a hook is attached or an
    OpenTelemetry tracer is live. Call sites may skip spans entirely when False."""
    return bool(_handlers) or _tracer() is not None


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


# ---------------------------------------------------------------- OpenTelemetry

_PROVIDER_NAMES = {"gemini": "gcp.gemini", "google": "gcp.gemini", "vertex": "gcp.vertex_ai",
                   "openai": "openai", "anthropic": "anthropic"}
_tracers: dict[int, Any] = {}


def _tracer() -> Any:
    """The OTel tracer to use now, or None (see the module docstring)."""
    mode = _Config.otel
    if mode == "off":
        return None
    explicit = _Config.tracer_provider
    if explicit is not None:
        tracer = _tracers.get(id(explicit))
        if tracer is None:
            tracer = _tracers[id(explicit)] = explicit.get_tracer("allm", _version())
        return tracer
    trace: Any = sys.modules.get("opentelemetry.trace")
    if trace is None:
        if mode != "on":
            return None
        try:
            import opentelemetry.trace as otel_trace
        except ImportError:
            _Config.otel = "off"
            return None
        trace = otel_trace
    provider = trace.get_tracer_provider()
    if mode == "auto" and type(provider).__name__ in ("ProxyTracerProvider", "NoOpTracerProvider"):
        return None
    tracer = _tracers.get(id(provider))
    if tracer is None:
        tracer = trace.get_tracer("allm", _version())
        _tracers.clear()
        _tracers[id(provider)] = tracer
    return tracer


def _version() -> str:
    from . import __version__

    return __version__


class _OtelApi:
    """The three OTel context functions a span needs, looked up once."""

    __slots__ = ("attach", "detach", "set_span_in_context")

    def __init__(self) -> None:
        from opentelemetry import context, trace

        self.attach = context.attach
        self.detach = context.detach
        self.set_span_in_context = trace.set_span_in_context


_api: _OtelApi | None = None


def _otel_api() -> _OtelApi:
    global _api
    if _api is None:
        _api = _OtelApi()
    return _api


def _clean(value: Any) -> Any:
    """An OTel-legal attribute value, or None to skip it."""
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _content_json(messages: Any) -> str:
    out = []
    for m in messages or ():
        content = getattr(m, "content", m)
        if isinstance(content, str):
            parts = [{"type": "text", "content": content}]
        else:
            parts = [{"type": "text", "content": p.text} if hasattr(p, "text")
                     else {"type": type(p).__name__} for p in content]
        for call in getattr(m, "tool_calls", ()) or ():
            parts.append({"type": "tool_call", "id": call.id, "name": call.name,
                          "arguments": call.arguments})
        out.append({"role": getattr(m, "role", "user"), "parts": parts})
    return json.dumps(out, default=str)


# ---------------------------------------------------------------- spans

_PARAM_ATTRS = {"temperature": "gen_ai.request.temperature", "max_tokens": "gen_ai.request.max_tokens",
                "top_p": "gen_ai.request.top_p", "top_k": "gen_ai.request.top_k",
                "seed": "gen_ai.request.seed", "presence_penalty": "gen_ai.request.presence_penalty",
                "frequency_penalty": "gen_ai.request.frequency_penalty",
                "reasoning_effort": "gen_ai.request.reasoning.level"}


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
            self._start_otel(tracer)
        if _handlers:
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
                self._otel_error(self._error)
            self._otel.end()
        if _handlers:
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
            self._otel_error(exc)
            self._otel.end()
        if _handlers:
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
                self._map_attr(key, value)

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

    # -- OTel internals
    def _start_otel(self, tracer: Any) -> None:
        from opentelemetry import trace

        self._ctx_api = _otel_api()
        d = self.data
        model, provider = d.get("model"), d.get("provider")
        gen_provider = _PROVIDER_NAMES.get(str(provider), str(provider)) if provider else None
        attrs: dict[str, Any] = {"allm.operation": self.name, "allm.request_id": d["request_id"]}
        kind = trace.SpanKind.INTERNAL
        if self.name in ("generate", "stream"):
            op = "generate_content" if gen_provider == "gcp.gemini" else "chat"
            title = f"{op} {model}" if model else op
            attrs["gen_ai.operation.name"] = op
            wire = d.get("stream")  # the wire mode when the call site knows it
            attrs["gen_ai.request.stream"] = bool(wire) if wire is not None else self.name == "stream"
            kind = trace.SpanKind.CLIENT
        elif self.name == "tool":
            tool = d.get("tool_name") or d.get("tool")
            tool = getattr(tool, "name", tool)
            title = f"execute_tool {tool}" if tool else "execute_tool"
            attrs["gen_ai.operation.name"] = "execute_tool"
            attrs["gen_ai.tool.type"] = "function"
            if tool:
                attrs["gen_ai.tool.name"] = str(tool)
            call_id = d.get("tool_call_id") or getattr(d.get("tool_call"), "id", None)
            if call_id:
                attrs["gen_ai.tool.call.id"] = str(call_id)
            if _Config.record_content:
                args = getattr(d.get("tool_call"), "arguments", None)
                if args is not None:
                    attrs["gen_ai.tool.call.arguments"] = json.dumps(args, default=str)
        elif self.name == "chat":
            agent = d.get("agent_name") or "allm.chat"
            title = f"invoke_agent {agent}"
            attrs["gen_ai.operation.name"] = "invoke_agent"
            attrs["gen_ai.agent.name"] = str(agent)
        elif self.name == "image":
            title = f"generate_content {model}" if model else "generate_content"
            attrs["gen_ai.operation.name"] = "generate_content"
            attrs["gen_ai.output.type"] = "image"
            kind = trace.SpanKind.CLIENT
        else:  # step
            title = f"step {model}" if model else "step"
        if gen_provider:
            attrs["gen_ai.provider.name"] = gen_provider
        if d.get("session_id"):
            attrs["gen_ai.conversation.id"] = str(d["session_id"])
        if model:
            attrs["gen_ai.request.model"] = str(model)
        self._otel = tracer.start_span(title, kind=kind, attributes=attrs)
        for key, value in d.items():
            if key not in ("model", "provider", "request_id"):
                self._map_attr(key, value)

    def _map_attr(self, key: str, value: Any) -> None:
        otel = self._otel
        if key == "params" and isinstance(value, Mapping):
            for name, attr in _PARAM_ATTRS.items():
                v = _clean(value.get(name))
                if v is not None:
                    otel.set_attribute(attr, v)
            stop = value.get("stop")
            if isinstance(stop, str):
                otel.set_attribute("gen_ai.request.stop_sequences", [stop])
            elif isinstance(stop, list | tuple) and all(isinstance(s, str) for s in stop):
                otel.set_attribute("gen_ai.request.stop_sequences", list(stop))
        elif key in ("turn", "step", "max_turns", "mode", "attempt"):
            v = _clean(value)
            if v is not None:
                otel.set_attribute(f"allm.{key}", v)
        elif key in ("operation", "n", "size", "quality") and self.name == "image":
            v = _clean(value)
            if v is not None:
                otel.set_attribute(f"allm.image.{key}", v)

    def _otel_error(self, exc: BaseException) -> None:
        from opentelemetry.trace import Status, StatusCode

        etype = _error_type(exc)
        self._otel.set_attribute("error.type", etype)
        # The description names the error class and reason only: messages can echo
        # user content, which is not recorded by default.
        self._otel.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {etype}"))
        self._otel.add_event("exception", {"exception.type": type(exc).__qualname__})


def _error_type(exc: Any) -> str:
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str) and reason:
        return reason
    return type(exc).__qualname__


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
