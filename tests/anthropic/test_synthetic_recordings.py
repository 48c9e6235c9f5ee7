"""The replay tests themselves, run on recordings written here in the fixtures format
with shapes the shared recordings lack (the adapter is also checked against
recordings we have not seen): system blocks and messages with cache breakpoints,
tools without descriptions, tool results without `is_error`, a `max_tokens` stop, an
error event inside a 200 stream, an HTML 529 body."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from . import test_replay


def sse(*events: dict[str, Any]) -> str:
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}  \n\n" for e in events)


def interaction(request: dict[str, Any], status: int, body: str,
                headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {"request": {"method": "POST", "url": "https://api.anthropic.com/v1/messages",
                        "headers": {}, "body": json.dumps(request)},
            "response": {"status": status, "headers": headers or {}, "body": body}}


TOOLS = [{"name": "lookup", "input_schema": {"type": "object", "properties": {}}},
         {"name": "other", "input_schema": {"type": "object"},
          "cache_control": {"type": "ephemeral"}}]
SYSTEM = [{"type": "text", "text": "You are terse."},
          {"type": "text", "text": "Cite sources.", "cache_control": {"type": "ephemeral",
                                                                     "ttl": "1h"}}]
TURN1: dict[str, Any] = {"model": "claude-sonnet-4-5", "max_tokens": 512, "stream": True, "system": SYSTEM,
         "tools": TOOLS, "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
         "messages": [{"role": "user", "content": "Look it up."}]}
START = {"type": "message_start", "message": {
    "id": "msg_a", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
    "content": [], "stop_reason": None, "usage": {"input_tokens": 30, "output_tokens": 1}}}
STREAM1 = sse(
    START,
    {"type": "content_block_start", "index": 0, "content_block": {
        "type": "tool_use", "id": "toolu_a", "name": "lookup", "input": {}}},
    {"type": "content_block_delta", "index": 0,
     "delta": {"type": "input_json_delta", "partial_json": ""}},
    {"type": "content_block_stop", "index": 0},
    {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
     "usage": {"output_tokens": 9}},
    {"type": "message_stop"},
)
TURN2 = {**TURN1, "stream": False, "messages": [
    *TURN1["messages"],
    {"role": "assistant", "content": [
        {"type": "tool_use", "id": "toolu_a", "name": "lookup", "input": {}}]},
    {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_a", "content": "42"},
        {"type": "text", "text": "Thanks", "cache_control": {"type": "ephemeral"}}]},
]}
BODY2 = {"id": "msg_b", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
         "content": [{"type": "text", "text": "It is 42"}], "stop_reason": "max_tokens",
         "stop_sequence": None,
         "usage": {"input_tokens": 40, "output_tokens": 512, "cache_read_input_tokens": 7,
                   "cache_creation_input_tokens": 3}}
BROKEN = sse(
    START,
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Par"}},
    {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
)


@pytest.fixture
def recordings(tmp_path: Path) -> list[Path]:
    files = {
        "synthetic__conversation.json": [
            interaction(TURN1, 200, STREAM1, {"content-type": "text/event-stream"}),
            interaction(TURN2, 200, json.dumps(BODY2), {"content-type": "application/json"})],
        "synthetic__stream_error.json": [
            interaction({**TURN1, "tools": [], "tool_choice": None}, 200, BROKEN,
                        {"content-type": "text/event-stream"})],
        "synthetic__overloaded_html.json": [
            interaction({**TURN1, "stream": False}, 529, "<html>overloaded</html>",
                        {"request-id": "req_x"})],
    }
    paths = []
    for name, its in files.items():
        path = tmp_path / name
        path.write_text(json.dumps({"source": {}, "provider": "anthropic",
                                    "api": "anthropic-messages", "interactions": its}))
        paths.append(path)
    return paths


def test_replay_tests_on_synthetic_recordings(recordings: list[Path]) -> None:
    for path in recordings:
        test_replay.test_codec_replay(path)
        test_replay.test_adapter_replay(path)
    test_replay.test_stream_fold_equals_decode(recordings[0])
    test_replay.test_request_replay(recordings[0])
