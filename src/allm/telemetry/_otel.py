"""Telemetry's OpenTelemetry side: settings (`configure`), finding the live tracer,
and how allm span data maps to GenAI semantic-convention spans and attributes.

Never imports OpenTelemetry at import time: only once a tracer is live.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any


class _Config:
    record_content = False
    otel = "auto"  # "auto" | "on" | "off"
    tracer_provider: Any = None  # an explicit provider (else the global one)


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
    from .. import __version__

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


_PARAM_ATTRS = {"temperature": "gen_ai.request.temperature", "max_tokens": "gen_ai.request.max_tokens",
                "top_p": "gen_ai.request.top_p", "top_k": "gen_ai.request.top_k",
                "seed": "gen_ai.request.seed", "presence_penalty": "gen_ai.request.presence_penalty",
                "frequency_penalty": "gen_ai.request.frequency_penalty",
                "reasoning_effort": "gen_ai.request.reasoning.level"}


def start_span(tracer: Any, name: str, d: Mapping[str, Any]) -> Any:
    """Start the OTel span for allm span `name` with hook data `d` (GenAI names)."""
    from opentelemetry import trace

    model, provider = d.get("model"), d.get("provider")
    gen_provider = _PROVIDER_NAMES.get(str(provider), str(provider)) if provider else None
    attrs: dict[str, Any] = {"allm.operation": name, "allm.request_id": d["request_id"]}
    kind = trace.SpanKind.INTERNAL
    if name in ("generate", "stream"):
        op = "generate_content" if gen_provider == "gcp.gemini" else "chat"
        title = f"{op} {model}" if model else op
        attrs["gen_ai.operation.name"] = op
        wire = d.get("stream")  # the wire mode when the call site knows it
        attrs["gen_ai.request.stream"] = bool(wire) if wire is not None else name == "stream"
        kind = trace.SpanKind.CLIENT
    elif name == "tool":
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
    elif name == "chat":
        agent = d.get("agent_name") or "allm.chat"
        title = f"invoke_agent {agent}"
        attrs["gen_ai.operation.name"] = "invoke_agent"
        attrs["gen_ai.agent.name"] = str(agent)
    elif name == "image":
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
    if _Config.record_content and d.get("input_messages"):
        attrs["gen_ai.input.messages"] = _content_json(d["input_messages"])
    otel = tracer.start_span(title, kind=kind, attributes=attrs)
    for key, value in d.items():
        if key not in ("model", "provider", "request_id"):
            map_attr(otel, name, key, value)
    return otel


def map_attr(otel: Any, span_name: str, key: str, value: Any) -> None:
    """Set the OTel attributes allm knows for one hook-data item (others: none)."""
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
    elif key in ("operation", "n", "size", "quality") and span_name == "image":
        v = _clean(value)
        if v is not None:
            otel.set_attribute(f"allm.image.{key}", v)


def record_error(otel: Any, exc: BaseException) -> None:
    """Mark the OTel span failed: `error.type`, an ERROR status and an exception event."""
    from opentelemetry.trace import Status, StatusCode

    etype = _error_type(exc)
    otel.set_attribute("error.type", etype)
    # The description names the error class and reason only: messages can echo
    # user content, which is not recorded by default.
    otel.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {etype}"))
    otel.add_event("exception", {"exception.type": type(exc).__qualname__})


def _error_type(exc: Any) -> str:
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str) and reason:
        return reason
    return type(exc).__qualname__
