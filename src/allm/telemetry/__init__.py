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

Layout: `_hooks` (registry, request id, current span), `_otel` (settings, tracer,
GenAI attribute mapping), `_spans` (`Span` and the stream wrappers).
"""

from __future__ import annotations

from ._hooks import (
    EVENT_NAMES,
    SPAN_NAMES,
    Handle,
    Handler,
    attach,
    current_request_id,
    detach,
    emit,
    handlers,
    new_request_id,
)
from ._otel import configure
from ._spans import Span, active, aspan_for_stream, span, span_for_stream

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
    "Handler",
    "SPAN_NAMES",
    "EVENT_NAMES",
]
