"""The `allm.testing` conformance suite on the Anthropic adapter, sync and async.

Scenarios come from the recordings: every recorded Messages call is served in both
wire modes. A recorded stream is paired with the message it assembles to (a JSON
body); a recorded JSON body is paired with the SSE stream the API would have sent for
it (built here from the documented event shapes, independently of the decoder)."""

from __future__ import annotations

import json
from typing import Any, cast

from allm.providers.anthropic import Anthropic
from allm.providers.base import Adapter, Call
from allm.testing import AdapterConformance, Recorded, Scenario, Wire

from .recordings import FILES, load, recorded_message
from .test_replay import request_for, stream_error


def _sse(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


def message_to_sse(message: dict[str, Any]) -> str:
    """The stream for a non-streaming message (Anthropic streaming docs)."""
    start = {k: v for k, v in message.items() if k not in ("content", "stop_reason")}
    usage = dict(message.get("usage") or {})
    start["content"] = []
    start["stop_reason"] = None
    start["usage"] = {**usage, "output_tokens": 1}
    out = [_sse("message_start", {"type": "message_start", "message": start}),
           _sse("ping", {"type": "ping"})]
    for i, block in enumerate(message.get("content") or []):
        kind = block["type"]
        if kind == "text":
            out.append(_sse("content_block_start", {"type": "content_block_start", "index": i,
                                                    "content_block": {"type": "text", "text": ""}}))
            text = block["text"]
            for j in range(0, len(text), 5):
                out.append(_sse("content_block_delta", {
                    "type": "content_block_delta", "index": i,
                    "delta": {"type": "text_delta", "text": text[j:j + 5]}}))
        elif kind == "tool_use":
            out.append(_sse("content_block_start", {
                "type": "content_block_start", "index": i,
                "content_block": {**block, "input": {}}}))
            args = json.dumps(block["input"])
            for j in range(0, len(args), 4):
                out.append(_sse("content_block_delta", {
                    "type": "content_block_delta", "index": i,
                    "delta": {"type": "input_json_delta", "partial_json": args[j:j + 4]}}))
        elif kind == "thinking":
            out.append(_sse("content_block_start", {
                "type": "content_block_start", "index": i,
                "content_block": {"type": "thinking", "thinking": "", "signature": ""}}))
            out.append(_sse("content_block_delta", {
                "type": "content_block_delta", "index": i,
                "delta": {"type": "thinking_delta", "thinking": block["thinking"]}}))
            out.append(_sse("content_block_delta", {
                "type": "content_block_delta", "index": i,
                "delta": {"type": "signature_delta", "signature": block["signature"]}}))
        else:
            out.append(_sse("content_block_start", {"type": "content_block_start", "index": i,
                                                    "content_block": block}))
        out.append(_sse("content_block_stop", {"type": "content_block_stop", "index": i}))
    out.append(_sse("message_delta", {
        "type": "message_delta",
        "delta": {"stop_reason": message.get("stop_reason"),
                  "stop_sequence": message.get("stop_sequence")},
        "usage": usage}))
    out.append(_sse("message_stop", {"type": "message_stop"}))
    return "".join(out)


SSE_HEADERS = {"content-type": "text/event-stream; charset=utf-8"}
JSON_HEADERS = {"content-type": "application/json"}


def scenarios() -> list[Scenario]:
    out = []
    for path in FILES:
        for it in load(path):
            if not it.is_messages_call:
                continue
            request, _ = request_for(it)
            name = f"{path.stem.removeprefix('pydantic-ai__')}#{it.index}"
            call = Call(model=request.model, api_key="sk-test")
            if it.status != 200 or stream_error(it) is not None:
                rec = Recorded(status=it.status, headers=it.headers, body=it.body,
                               chunk_size=97 if it.is_stream else 0)
                out.append(Scenario(name=name, request=request, call=call, stream=[rec],
                                    non_stream=[rec], expect_error=True))
                continue
            message = recorded_message(it)
            if it.is_stream:
                stream = Recorded(headers=SSE_HEADERS, body=it.body, chunk_size=97)
            else:
                stream = Recorded(headers=SSE_HEADERS, body=message_to_sse(message),
                                  chunk_size=97)
            non_stream = Recorded(headers=JSON_HEADERS, body=json.dumps(message))
            out.append(Scenario(name=name, request=request, call=call, stream=[stream],
                                non_stream=[non_stream]))
    return out


SCENARIOS = scenarios()


class TestAnthropicConformance(AdapterConformance):
    def make_adapter(self, wire: Wire) -> Adapter:
        adapter = Anthropic(http_client=wire.http_client,
                            async_http_client=wire.async_http_client, retry=False)
        # HttpAdapter declares `provider` as a ClassVar, the Adapter protocol as an
        # instance attribute: structurally equal at runtime, not to mypy.
        return cast(Adapter, adapter)

    def scenarios(self) -> list[Scenario]:
        return SCENARIOS


def test_scenarios_cover_every_messages_call() -> None:
    calls = sum(1 for p in FILES for it in load(p) if it.is_messages_call)
    assert len(SCENARIOS) == calls
    assert sum(s.expect_error for s in SCENARIOS) >= 2  # the recorded 400 and 404
