"""Fake scripts shared by the facade and Fake tests (every entry kind appears)."""

from __future__ import annotations

from typing import Any

from allm.errors import AdapterError
from allm.request import Usage

SECRET = "sk-test-SECRET123"

SCRIPTS: dict[str, list[Any]] = {
    "text": [("text", "Hello, "), ("text", "world"), ("finish", "stop")],
    "text_usage": [
        ("text", "Hi"),
        ("usage", {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}),
        ("finish", "stop"),
    ],
    "no_finish": [("text", "implicit stop")],
    "empty": [],
    "tool_call": [
        ("text", "Let me check."),
        ("tool_call", {"id": "c1", "name": "weather", "arguments": {"city": "Oslo"}}),
        ("finish", "tool_calls"),
    ],
    "tool_call_raw": [
        ("tool_call", {"id": "c1", "name": "f", "arguments": {"a": 1},
                       "raw_arguments": '{ "a": 1 }', "metadata": {"sig": "x"}}),
    ],
    "tool_deltas": [
        ("tool_call_delta", {"id": "c1", "name": "add", "arguments_delta": '{"a":'}),
        ("tool_call_delta", {"id": "c2", "name": "mul", "arguments_delta": '{"b":2}'}),
        ("tool_call_delta", {"id": "c1", "arguments_delta": " 1}"}),
        ("finish", "tool_calls"),
    ],
    "bad_delta_json": [
        ("tool_call_delta", {"id": "c1", "name": "f", "arguments_delta": "{nope"}),
    ],
    "raw_chunks": [
        ("raw_chunk", {"provider": "chunk"}),
        ("text", "x"),
        ("raw_chunk", Usage(input_tokens=7)),
        ("finish", "length"),
    ],
    "delay": [("text", "a"), ("delay", 0.001), ("text", "b"), ("finish", "stop")],
    "after_finish_ignored": [("text", "a"), ("finish", "stop"), ("text", "IGNORED")],
    "ok": [("ok", {"id": "resp_1", "model": "m-2", "output_text": "whole",
                   "tool_calls": [{"id": "t", "name": "n", "arguments": {}}],
                   "usage": {"input_tokens": 1}, "finish_reason": "stop",
                   "metadata": {"k": "v"}})],
    "content_filter": [("text", "no"), ("finish", "content_filter")],
}

ERROR_SCRIPTS: dict[str, list[Any]] = {
    "error_reason": [("text", "partial "), ("error", "rate_limited"), ("text", "more")],
    "error_term": [("text", "p"), ("error", {"weird": 1})],
    "error_instance": [("error", AdapterError("overloaded", status=529))],
    "error_harness": [("text", "p"), ("error", "provider_unavailable", {"status": 503})],
    "error_event": [("text", "p"), ("error_event", "timeout", {"message": "too slow"}),
                    ("usage", {"output_tokens": 1})],
    "stream_error": [("text", "p"), ("stream_error", "malformed_event", {"event_index": 3})],
}

ALL_SCRIPTS = {**SCRIPTS, **ERROR_SCRIPTS}
