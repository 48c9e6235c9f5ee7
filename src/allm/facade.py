"""One model call: `generate` / `stream_generate` and their async twins.

Owns the call pipeline shared by every entry point (the loop reuses it):

1. `build_request`: check the options (an unknown keyword is a `ValidationError`,
   so a typo never passes silently), the engine and the messages; resolve model,
   tools, params (``engine.params`` < call), retry, timeouts, request id; give back
   the `Request`, the `Call` for the adapter and the stream filters.
2. `model_events` / `amodel_events`: ask the adapter for its stream. The adapter
   does its pre-flight (validation, key lookup, request building) right there, so
   those errors raise at the call site; the returned iterator is lazy and applies
   the filters (``emit_text_deltas``, ``emit_tool_deltas``, ``include_raw_chunks``;
   a usage `RawChunk` always passes) after calling ``on_event`` for each event.
   Closing it early closes the adapter's iterator (which closes the HTTP response).
3. `generate` is the `StreamCollector` fold over exactly that iterator (never a
   second code path). A mid-stream `ErrorEvent` makes it raise a copy of that error
   whose `partial` is the response folded so far.

Around that: the model catalog's capability pre-flight (``preflight=False`` skips
it) runs in `build_request`, `finish_response` fills costs from the catalog's
prices, and when telemetry is on (a hook attached or an OpenTelemetry tracer live)
`generate` runs in a ``generate`` span and streams in a ``stream`` span; when it is
off no span is built at all. Nested calls inherit the outer call's request id.

Differences from the original, on purpose: the engine's tools are sent with
`generate` (the engine is the configuration; `tools=` per call merges by name);
call-level ``adapter_opts`` win over the engine's; ``generate`` uses the provider's
non-streaming endpoint unless ``stream=True`` (same events either way).
`allm.sandbox.get_engine()` is never consulted implicitly: pass the engine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from . import telemetry
from .collector import StreamCollector
from .engine import Engine
from .errors import AdapterError, AllmError, EngineError, ValidationError
from .events import Event, MessageCompleted, RawChunk, TextDelta, ToolCallDelta
from .messages import Message, Thread, coerce_messages
from .providers.base import NEUTRAL_PARAMS, TRANSPORT_PARAMS, Call
from .request import Request, Response
from .retry import resolve_retry
from .tool import Tool

if TYPE_CHECKING:
    from .results import ChatResult, StepResult

__all__ = [
    "generate",
    "agenerate",
    "stream_generate",
    "astream_generate",
    "json_schema",
    "unwrap",
    "build_request",
    "model_events",
    "amodel_events",
    "finish_response",
    "error_with_partial",
    "new_request_id",
    "StreamFilters",
    "MODEL_CALL_OPTS",
    "CALL_OPTS",
]

MessagesArg = Request | Thread | Message | Sequence[Message] | str

MODEL_CALL_OPTS: frozenset[str] = frozenset(
    {
        "model", "tools", "tool_choice", "response_format", "api_key", "request_id",
        "retry", "stream", "adapter_opts", "emit_text_deltas", "emit_tool_deltas",
        "include_raw_chunks", "on_event", "on_retry", "params", "options", "metadata",
        "preflight",
    }
)
"""Keyword options of one model call besides the neutral and transport params."""

CALL_OPTS: frozenset[str] = MODEL_CALL_OPTS | NEUTRAL_PARAMS | TRANSPORT_PARAMS
"""Every keyword `generate` / `stream_generate` accept."""


@dataclass(frozen=True, slots=True)
class StreamFilters:
    """What the caller sees of the adapter's events (reference §2.2)."""

    emit_text_deltas: bool = True
    emit_tool_deltas: bool = True
    include_raw_chunks: bool = False
    on_event: Callable[[Event], Any] | None = None

    @property
    def is_default(self) -> bool:
        return (self.emit_text_deltas and self.emit_tool_deltas
                and not self.include_raw_chunks and self.on_event is None)


DEFAULT_FILTERS = StreamFilters()
_FILTER_OPTS = frozenset({"emit_text_deltas", "emit_tool_deltas", "include_raw_chunks",
                          "on_event"})


def new_request_id() -> str:
    """22 URL-safe base64 characters from 16 random bytes (the original's format).
    (Not `secrets.token_urlsafe`: importing `secrets` pulls in hmac/hashlib.)"""
    return telemetry.new_request_id()


# -- step 1: build -------------------------------------------------------------------


def _check_opts(opts: Mapping[str, Any]) -> None:
    if CALL_OPTS.issuperset(opts):  # the common case, one C-level pass
        return
    unknown = sorted(k for k in opts if k not in CALL_OPTS)
    if unknown:
        raise ValidationError(
            "invalid_params",
            f"unknown option(s) {', '.join(unknown)}; model calls accept "
            f"{', '.join(sorted(MODEL_CALL_OPTS | TRANSPORT_PARAMS))} and the neutral "
            f"params {', '.join(sorted(NEUTRAL_PARAMS))}",
            errors=[(k, "unknown_option") for k in unknown],
        )


def _check_messages(messages: Sequence[Any]) -> None:
    if not messages:
        raise ValidationError("invalid_thread", "no messages to send",
                              errors=[("messages", "empty")])
    for m in messages:
        if type(m) is not Message and not isinstance(m, Message):
            break
    else:
        return
    bad = [(f"messages.{i}", "not_a_message") for i, m in enumerate(messages)
           if not isinstance(m, Message)]
    if bad:
        raise ValidationError("invalid_thread", errors=bad)


def _check_tools(tools: Sequence[Any]) -> None:
    bad = [(f"tools.{i}", "not_a_tool") for i, t in enumerate(tools) if not isinstance(t, Tool)]
    if bad:
        raise ValidationError("invalid_request", errors=bad)


def _engine_adapter(engine: Any) -> Any:
    if type(engine) is not Engine and not isinstance(engine, Engine):
        raise EngineError(
            "invalid_engine",
            f"expected an allm.Engine, got {type(engine).__name__} "
            "(build one with allm.engine('provider:model'))",
        )
    if engine.adapter is None:
        raise EngineError(
            "missing_adapter",
            "engine.adapter is None; build the engine with allm.engine('provider:model') "
            "or Engine(adapter=...)",
        )
    return engine.adapter


def catalog_preflight(engine: Engine, request: Request) -> None:
    """The model catalog's capability check (tools, native JSON schema, vision), for
    models it knows; unknown models are never blocked. ``preflight=False`` skips it."""
    provider = engine.provider
    if provider is None or provider == "fake" or not request.model:
        return
    if (not request.tools and request.response_format is None
            and all(type(m.content) is str for m in request.messages)):
        return  # no tools, no schema, no images: nothing the catalog could refuse
    from . import catalog

    catalog.preflight(provider, request.model, request)


def build_request(
    engine: Engine, messages: MessagesArg, **opts: Any
) -> tuple[Request, Call, StreamFilters]:
    """Resolve one model call (raises `ValidationError` / `EngineError` on bad input).

    `messages` may be a `Request` (its own fields win over the options; empty ones
    are filled from them and the engine), a `Thread`, messages, or a string.
    ``stream`` (default False) is the wire mode.
    """
    _check_opts(opts)
    _engine_adapter(engine)
    get = opts.get
    call_params: dict[str, Any] = dict(get("params") or {})
    for name in NEUTRAL_PARAMS.intersection(opts):
        call_params[name] = opts[name]
    params = engine.resolve_params(call_params)
    stream = bool(get("stream", False))

    if isinstance(messages, Request):
        req = messages
        _check_messages(req.messages)
        model = req.model or get("model") or engine.model
        request = replace(
            req,
            model=model,
            tools=req.tools or engine.resolve_tools(get("tools")),
            tool_choice=req.tool_choice if req.tool_choice is not None else get("tool_choice"),
            response_format=(req.response_format if req.response_format is not None
                             else get("response_format")),
            params={**params, **req.params},
            stream=stream,
            options=req.options or dict(get("options") or {}),
            metadata=req.metadata or dict(get("metadata") or {}),
        )
    else:
        thread = coerce_messages(messages)
        _check_messages(thread.messages)
        model = get("model") or engine.model
        request = Request(
            messages=thread.messages,
            model=model,
            tools=engine.resolve_tools(get("tools")),
            tool_choice=get("tool_choice"),
            response_format=get("response_format"),
            params=params,
            stream=stream,
            options=dict(get("options") or {}),
            metadata=dict(get("metadata") or {}),
        )
    _check_tools(request.tools)

    if get("preflight", True):
        catalog_preflight(engine, request)

    retry = resolve_retry(opts["retry"]) if "retry" in opts else engine.retry_policy
    read_timeout = get("read_timeout")
    if read_timeout is None:
        read_timeout = get("stream_timeout")
    call = Call(
        model=request.model,
        params=request.params,
        api_key=get("api_key") or None,
        stream=stream,
        retry=retry,
        timeout=get("timeout"),
        connect_timeout=get("connect_timeout"),
        read_timeout=read_timeout,
        adapter_opts={**engine.adapter_opts, **dict(get("adapter_opts") or {})},
        request_id=get("request_id") or telemetry.current_request_id() or new_request_id(),
        on_retry=get("on_retry"),
    )
    filters = DEFAULT_FILTERS if _FILTER_OPTS.isdisjoint(opts) else StreamFilters(
        emit_text_deltas=bool(get("emit_text_deltas", True)),
        emit_tool_deltas=bool(get("emit_tool_deltas", True)),
        include_raw_chunks=bool(get("include_raw_chunks", False)),
        on_event=get("on_event"),
    )
    return request, call, filters


# -- step 2: the event iterator -------------------------------------------------------


Price = tuple[str, str | None]
"""(provider, model) whose catalog prices go on streamed usage (`stream_generate`)."""


def _pump(it: Iterator[Event], f: StreamFilters, price: Price | None = None) -> Iterator[Event]:
    # One generator layer does the filters and the pricing: every layer costs a
    # generator round trip per streamed chunk (benchmarks/, issue 10).
    try:
        if f.is_default and price is None:
            for event in it:
                if type(event) is RawChunk and event.usage is None:
                    continue
                yield event
        else:
            on_event = f.on_event
            drop_text = not f.emit_text_deltas
            drop_tool = not f.emit_tool_deltas
            keep_raw = f.include_raw_chunks
            for event in it:
                if on_event is not None:
                    on_event(event)
                cls = type(event)
                if cls is TextDelta:
                    if drop_text:
                        continue
                elif cls is ToolCallDelta:
                    if drop_tool:
                        continue
                elif cls is RawChunk:
                    if not keep_raw and event.usage is None:  # type: ignore[union-attr]
                        continue
                    if price is not None:
                        event = _price_event(event, *price)
                elif cls is MessageCompleted and price is not None:
                    event = _price_event(event, *price)
                yield event
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()


async def _apump(
    it: AsyncIterator[Event], f: StreamFilters, price: Price | None = None
) -> AsyncIterator[Event]:
    try:
        if f.is_default and price is None:
            async for event in it:
                if type(event) is RawChunk and event.usage is None:
                    continue
                yield event
            return
        on_event = f.on_event
        drop_text = not f.emit_text_deltas
        drop_tool = not f.emit_tool_deltas
        keep_raw = f.include_raw_chunks
        async for event in it:
            if on_event is not None:
                on_event(event)
            cls = type(event)
            if cls is TextDelta:
                if drop_text:
                    continue
            elif cls is ToolCallDelta:
                if drop_tool:
                    continue
            elif cls is RawChunk:
                if not keep_raw and event.usage is None:  # type: ignore[union-attr]
                    continue
                if price is not None:
                    event = _price_event(event, *price)
            elif cls is MessageCompleted and price is not None:
                event = _price_event(event, *price)
            yield event
    finally:
        aclose = getattr(it, "aclose", None)
        if aclose is not None:
            await aclose()


def _telemetry_on() -> bool:
    """True when a hook is attached or an OpenTelemetry tracer is live. When off,
    spans are skipped entirely: they would record nothing, and wrapping a stream
    costs about a microsecond per event."""
    return telemetry.active()


def _span_attrs(engine: Engine, request: Request, call: Call) -> dict[str, Any]:
    return {"provider": engine.provider, "model": request.model,
            "request_id": call.request_id, "params": request.params, "stream": call.stream,
            "input_messages": request.messages}


def model_events(
    engine: Engine, request: Request, call: Call, filters: StreamFilters = DEFAULT_FILTERS,
    *, price: Price | None = None,
) -> Iterator[Event]:
    """The adapter's pre-flight now (raising at the call site), then a lazy filtered
    iterator of its events. Closing the iterator closes the adapter's. With telemetry
    on, the adapter's events run inside a ``stream`` span. `price`: put the catalog's
    costs on streamed usage (`stream_generate`)."""
    adapter = _engine_adapter(engine)
    it: Iterator[Event] = adapter.stream(request, call)
    if _telemetry_on():
        it = telemetry.span_for_stream("stream", it, **_span_attrs(engine, request, call))
    return _pump(it, filters, price)


def amodel_events(
    engine: Engine, request: Request, call: Call, filters: StreamFilters = DEFAULT_FILTERS,
    *, price: Price | None = None,
) -> AsyncIterator[Event]:
    """The async twin of `model_events` (pre-flight is synchronous, at the call site)."""
    adapter = _engine_adapter(engine)
    it: AsyncIterator[Event] = adapter.astream(request, call)
    if _telemetry_on():
        it = telemetry.aspan_for_stream("stream", it, **_span_attrs(engine, request, call))
    return _apump(it, filters, price)


# -- step 3: the fold ------------------------------------------------------------------


def error_with_partial(error: AllmError, partial: Response) -> AllmError:
    """A copy of `error` with ``partial`` set (the event's error object is not mutated)."""
    copy = type(error).from_fields({**error.to_fields(), "partial": partial}
                                   if "partial" in type(error).extra_fields
                                   else error.to_fields())
    copy.partial = partial  # type: ignore[attr-defined]
    return copy


def finish_response(
    collector: StreamCollector,
    request: Request,
    call: Call,
    *,
    raise_error: bool = True,
    provider: str | None = None,
) -> Response:
    """The folded response with `request_id` / `model` filled in and, given the
    `provider`, the usage's costs from the model catalog (when it knows the model's
    prices); raises the stream's error (carrying the partial response) when
    `raise_error`."""
    model = collector.model if collector.model is not None else request.model
    if provider is not None and provider != "fake" and model:
        usage = collector.usage
        if usage.input_tokens is not None or usage.output_tokens is not None:
            from . import catalog

            # Priced before the response is built (no second Response copy).
            collector.usage = catalog.populate_costs(usage, provider, model)
    response = collector.to_response(request_id=call.request_id, model=request.model)
    if raise_error and collector.error is not None:
        raise error_with_partial(collector.error, response)
    return response


def generate(engine: Engine, messages: MessagesArg, **opts: Any) -> Response:
    """One model call, folded into a `Response`.

    Pre-flight errors (bad options, no adapter, missing key, invalid request) raise
    before anything is sent; a failure mid-stream raises the `AdapterError` /
    `StreamError` with ``.partial`` holding what was received.
    """
    request, call, filters = build_request(engine, messages, **opts)
    if _telemetry_on():
        span = telemetry.Span("generate", _span_attrs(engine, request, call))
        span.start()
        span.activate()
        try:
            response = _generate(engine, request, call, filters)
        except BaseException as exc:
            span.deactivate()
            span.fail(exc)
            raise
        span.deactivate()
        span.set_response(response)
        span.finish()
        return response
    return _generate(engine, request, call, filters)


def _generate(engine: Engine, request: Request, call: Call, filters: StreamFilters) -> Response:
    adapter = _engine_adapter(engine)
    it = adapter.stream(request, call)
    # With the default filters the pump would only drop usage-less raw chunks, which
    # the collector ignores anyway: fold the adapter's events directly.
    events = it if filters.is_default else _pump(it, filters)
    collector = StreamCollector()
    apply = collector.apply
    try:
        for event in events:
            apply(event)
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()
    return finish_response(collector, request, call, provider=engine.provider)


async def agenerate(engine: Engine, messages: MessagesArg, **opts: Any) -> Response:
    """The async twin of `generate`."""
    request, call, filters = build_request(engine, messages, **opts)
    if _telemetry_on():
        span = telemetry.Span("generate", _span_attrs(engine, request, call))
        span.start()
        span.activate()
        try:
            response = await _agenerate(engine, request, call, filters)
        except BaseException as exc:
            span.deactivate()
            span.fail(exc)
            raise
        span.deactivate()
        span.set_response(response)
        span.finish()
        return response
    return await _agenerate(engine, request, call, filters)


async def _agenerate(
    engine: Engine, request: Request, call: Call, filters: StreamFilters
) -> Response:
    adapter = _engine_adapter(engine)
    it = adapter.astream(request, call)
    events = it if filters.is_default else _apump(it, filters)
    collector = StreamCollector()
    apply = collector.apply
    try:
        async for event in events:
            apply(event)
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
    return finish_response(collector, request, call, provider=engine.provider)


def stream_generate(engine: Engine, messages: MessagesArg, **opts: Any) -> Iterator[Event]:
    """One model call as a lazy iterator of events (wire mode streaming unless
    ``stream=False``). Pre-flight errors raise here, not on first iteration; a
    mid-stream failure is an `ErrorEvent`. Close it to stop early."""
    opts.setdefault("stream", True)
    request, call, filters = build_request(engine, messages, **opts)
    provider = _priced_provider(engine, request)
    return model_events(engine, request, call, filters,
                        price=None if provider is None else (provider, request.model))


def astream_generate(
    engine: Engine, messages: MessagesArg, **opts: Any
) -> AsyncIterator[Event]:
    """The async twin of `stream_generate` (an async generator; pre-flight errors
    raise at the call, before the first ``async for``)."""
    opts.setdefault("stream", True)
    request, call, filters = build_request(engine, messages, **opts)
    provider = _priced_provider(engine, request)
    return amodel_events(engine, request, call, filters,
                         price=None if provider is None else (provider, request.model))


# Costs on streamed usage, so a caller folding `stream_generate` itself sees the same
# cost figures `generate` reports. Only wraps the stream when the catalog has prices
# for the model (one lookup per call, none per event).


def _priced_provider(engine: Engine, request: Request) -> str | None:
    provider = engine.provider
    if provider is None or provider == "fake" or not request.model:
        return None
    from . import catalog

    return provider if catalog.price(f"{provider}:{request.model}") else None


def _price_event(event: Event, provider: str, model: str | None) -> Event:
    from . import catalog

    if type(event) is MessageCompleted and event.usage is not None:
        return replace(event, usage=catalog.populate_costs(event.usage, provider, model))
    if type(event) is RawChunk and event.usage is not None:
        return replace(event, usage=catalog.populate_costs(event.usage, provider, model))
    return event


# -- small helpers -----------------------------------------------------------------------


def json_schema(name: str, schema: Any, strict: bool = True) -> dict[str, Any]:
    """A ``response_format`` asking for JSON matching `schema` (a JSON Schema dict, or
    a pydantic model class, converted with its ``model_json_schema()``)."""
    if not isinstance(schema, Mapping):
        to_schema = getattr(schema, "model_json_schema", None)
        if to_schema is None:
            raise ValidationError("invalid_request",
                                  "json_schema needs a JSON Schema dict or a pydantic model",
                                  errors=[("response_format.schema", "invalid_type")])
        schema = to_schema()
    return {"type": "json_schema", "name": name, "schema": dict(schema), "strict": strict}


def unwrap(result: Response | StepResult | ChatResult) -> str:
    """The text of a successful answer, or raise.

    Accepts a `Response` (or a step / chat result: their final response).
    ``finish_reason="error"`` re-raises the stream's error (with ``partial``); any
    other finish than ``"stop"`` raises `ValidationError(reason="invalid_output")`
    naming it (``length``, ``tool_calls``, ``content_filter``, ...).
    """
    response: Response | None
    if isinstance(result, Response):
        response = result
    else:
        response = getattr(result, "final_response", None) or getattr(result, "response", None)
    if not isinstance(response, Response):
        raise ValidationError("invalid_output", "no response to unwrap",
                              errors=[("response", "missing")])
    finish = response.finish_reason
    if finish == "stop":
        return response.output_text
    error = response.metadata.get("error")
    if finish == "error":
        if isinstance(error, AllmError):
            raise error_with_partial(error, response)
        raise AdapterError("unknown", "the response finished with an error",
                           partial=response)
    raise ValidationError(
        "invalid_output",
        f"the response finished with {finish!r}, not 'stop'"
        + (": it asks for tool calls (use allm.chat to run them)"
           if finish == "tool_calls" else ""),
        errors=[("finish_reason", str(finish))],
        metadata={"finish_reason": finish},
    )
