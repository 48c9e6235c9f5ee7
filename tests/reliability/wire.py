"""The four wire formats the fault server speaks: OpenAI Chat Completions, OpenAI
Responses, Anthropic Messages and Gemini generateContent.

For each: how to build an adapter against the loopback server, a model id, which
header carries the key, a good answer (SSE chunks and a JSON body) and the
provider's error bodies (rate limit, overload, RESOURCE_EXHAUSTED with RetryInfo).
Minimal but shaped like the providers' documented payloads.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import allm
from allm.providers import Anthropic, Gemini, OpenAI

__all__ = ["Wire", "WIRES", "WIRE_IDS", "sse", "key_of"]


def _j(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def sse(obj: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + _j(obj) + b"\n\n"


@dataclass(frozen=True)
class Wire:
    name: str
    model: str
    auth_header: str  # where the key goes
    make_adapter: Callable[[str], Any]  # base url -> adapter
    text_delta: Callable[[str], bytes]  # one SSE event carrying a text delta
    stream_head: Callable[[], list[bytes]]  # events before the first delta
    stream_tail: Callable[[str], list[bytes]]  # closing events (given the full text)
    json_body: Callable[[str], bytes]  # a whole non-streamed answer
    rate_limited: bytes  # 429 body
    server_error: bytes  # 5xx body

    def adapter(self, url: str) -> Any:
        return self.make_adapter(url)

    def engine(self, url: str, **kw: Any) -> allm.Engine:
        return allm.engine(adapter=self.adapter(url), model=self.model, **kw)

    def stream_chunks(self, words: list[str], *, complete: bool = True) -> list[bytes]:
        out = list(self.stream_head())
        out += [self.text_delta(w) for w in words]
        if complete:
            out += self.stream_tail("".join(words))
        return out


def key_of(wire: Wire, headers: dict[str, str]) -> str | None:
    value = headers.get(wire.auth_header)
    if value is None:
        return None
    return value.removeprefix("Bearer ") if wire.auth_header == "authorization" else value


# -- OpenAI Chat Completions -----------------------------------------------------------

def _chat_chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    return sse({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                "model": "gpt-4.1-mini",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


OPENAI_CHAT = Wire(
    name="openai-chat",
    model="gpt-4.1-mini",
    auth_header="authorization",
    make_adapter=lambda url: OpenAI(base_url=url + "/v1", endpoint="chat"),
    stream_head=lambda: [_chat_chunk({"role": "assistant", "content": ""})],
    text_delta=lambda t: _chat_chunk({"content": t}),
    stream_tail=lambda _t: [_chat_chunk({}, "stop"), b"data: [DONE]\n\n"],
    json_body=lambda t: _j({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4.1-mini",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": t}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}),
    rate_limited=_j({"error": {"message": "Rate limit reached", "type": "requests",
                               "code": "rate_limit_exceeded", "param": None}}),
    server_error=_j({"error": {"message": "The server had an error", "type": "server_error",
                               "code": None, "param": None}}),
)


# -- OpenAI Responses -------------------------------------------------------------------

def _resp_obj(text: str, status: str) -> dict[str, Any]:
    output = [] if status != "completed" else [
        {"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
         "content": [{"type": "output_text", "text": text, "annotations": []}]}]
    return {"id": "resp_1", "object": "response", "created_at": 1, "status": status,
            "model": "gpt-5-mini", "output": output,
            "usage": {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}
            if status == "completed" else None}


OPENAI_RESPONSES = Wire(
    name="openai-responses",
    model="gpt-5-mini",
    auth_header="authorization",
    make_adapter=lambda url: OpenAI(base_url=url + "/v1", endpoint="responses"),
    stream_head=lambda: [
        sse({"type": "response.created", "sequence_number": 0,
             "response": _resp_obj("", "in_progress")}, "response.created"),
        sse({"type": "response.output_item.added", "output_index": 0, "sequence_number": 1,
             "item": {"type": "message", "id": "msg_1", "status": "in_progress",
                      "role": "assistant", "content": []}}, "response.output_item.added"),
    ],
    text_delta=lambda t: sse({"type": "response.output_text.delta", "item_id": "msg_1",
                              "output_index": 0, "content_index": 0, "delta": t,
                              "sequence_number": 2}, "response.output_text.delta"),
    stream_tail=lambda t: [sse({"type": "response.completed", "sequence_number": 3,
                                "response": _resp_obj(t, "completed")},
                               "response.completed")],
    json_body=lambda t: _j(_resp_obj(t, "completed")),
    rate_limited=OPENAI_CHAT.rate_limited,
    server_error=OPENAI_CHAT.server_error,
)


# -- Anthropic Messages -----------------------------------------------------------------

def _anth_msg(text: str | None) -> dict[str, Any]:
    return {"id": "msg_1", "type": "message", "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [] if text is None else [{"type": "text", "text": text}],
            "stop_reason": None if text is None else "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 3, "output_tokens": 2}}


ANTHROPIC = Wire(
    name="anthropic",
    model="claude-sonnet-4-5",
    auth_header="x-api-key",
    make_adapter=lambda url: Anthropic(base_url=url),
    stream_head=lambda: [
        sse({"type": "message_start", "message": _anth_msg(None)}, "message_start"),
        sse({"type": "content_block_start", "index": 0,
             "content_block": {"type": "text", "text": ""}}, "content_block_start"),
    ],
    text_delta=lambda t: sse({"type": "content_block_delta", "index": 0,
                              "delta": {"type": "text_delta", "text": t}},
                             "content_block_delta"),
    stream_tail=lambda _t: [
        sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        sse({"type": "message_delta", "delta": {"stop_reason": "end_turn",
                                                "stop_sequence": None},
             "usage": {"output_tokens": 2}}, "message_delta"),
        sse({"type": "message_stop"}, "message_stop"),
    ],
    json_body=lambda t: _j(_anth_msg(t)),
    rate_limited=_j({"type": "error", "error": {"type": "rate_limit_error",
                                                "message": "Number of requests exceeded"}}),
    server_error=_j({"type": "error", "error": {"type": "overloaded_error",
                                                "message": "Overloaded"}}),
)


# -- Gemini generateContent -------------------------------------------------------------

def _gem(text: str, finish: str | None = None) -> dict[str, Any]:
    cand: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]},
                            "index": 0}
    if finish:
        cand["finishReason"] = finish
    return {"candidates": [cand], "modelVersion": "gemini-2.5-flash",
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2,
                              "totalTokenCount": 5}}


def _gem_sse(obj: Any) -> bytes:
    return b"data: " + _j(obj) + b"\r\n\r\n"  # Gemini separates events with CRLF


GEMINI = Wire(
    name="gemini",
    model="gemini-2.5-flash",
    auth_header="x-goog-api-key",
    make_adapter=lambda url: Gemini(base_url=url),
    stream_head=lambda: [],
    text_delta=lambda t: _gem_sse(_gem(t)),
    stream_tail=lambda _t: [_gem_sse(_gem("", "STOP"))],
    json_body=lambda t: _j(_gem(t, "STOP")),
    rate_limited=_j({"error": {
        "code": 429, "message": "Resource has been exhausted (e.g. check quota).",
        "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                     "retryDelay": "0.2s"}]}}),
    server_error=_j({"error": {"code": 503, "message": "The model is overloaded.",
                               "status": "UNAVAILABLE"}}),
)

WIRES = [OPENAI_CHAT, OPENAI_RESPONSES, ANTHROPIC, GEMINI]
WIRE_IDS = [w.name for w in WIRES]
