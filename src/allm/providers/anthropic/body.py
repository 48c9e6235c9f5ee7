"""Anthropic non-streaming bodies -> allm events (sans-IO).

Owns the non-streaming wire mode: `decode_message` replays a Messages response JSON
as the stream events the API would have sent (``message_start``, per block
``content_block_start`` / ``..._delta`` / ``content_block_stop``, ``message_delta``,
``message_stop``) through `decode.MessageDecoder`, so both wire modes give the same
event sequence; the common text-only reply takes a direct path that yields the same
events. `JsonBodyDecoder` handles a "stream" that arrived as one JSON body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ...errors import AdapterError
from ...events import (
    ErrorEvent,
    Event,
    MessageCompleted,
    MessageStarted,
    RawChunk,
    TextCompleted,
    TextDelta,
)
from ...messages import Message
from ...request import Usage
from .._common import dumps_compact
from .decode import FINISH_REASONS, MessageDecoder, usage_from
from .errors import error_from_event

__all__ = ["JsonBodyDecoder", "decode_message"]


class JsonBodyDecoder:
    """A "streaming" response that arrived as one JSON message (a proxy or gateway that
    ignored ``"stream": true``): buffered, then decoded like a non-streaming body."""

    __slots__ = ("_chunks", "_headers", "_structured_tool")

    def __init__(
        self, *, structured_tool: str | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        self._chunks: list[bytes] = []
        self._headers = headers
        self._structured_tool = structured_tool

    def feed(self, data: bytes) -> list[Event]:
        self._chunks.append(data)
        return []

    def close(self) -> list[Event]:
        body = b"".join(self._chunks)
        try:
            message = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            message = None
        if isinstance(message, dict) and message.get("type") == "error":
            return [ErrorEvent(error=error_from_event(message, self._headers))]
        if not isinstance(message, dict):
            return [ErrorEvent(error=AdapterError(
                "malformed_response",
                f"Anthropic returned a body that is not a JSON message: {body[:200]!r}",
                provider="anthropic",
            ))]
        return decode_message(message, structured_tool=self._structured_tool,
                              headers=self._headers)


def decode_message(
    message: Mapping[str, Any],
    *,
    structured_tool: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> list[Event]:
    """A non-streaming Messages response -> the events its stream would have given."""
    fast = _decode_text_only(message)
    if fast is not None:
        return fast
    return _decode_replay(message, structured_tool=structured_tool, headers=headers)


def _decode_text_only(message: Mapping[str, Any]) -> list[Event] | None:
    """The common reply (text blocks only, no citations) decoded directly: the same
    events `_decode_replay` gives, without building and re-parsing the stream events
    (~3x cheaper; issue 10, non-streaming target). None: not that shape, replay it."""
    content = message.get("content")
    if type(content) is not list:
        return None
    texts: list[str] = []
    for block in content:
        if (type(block) is not dict or block.get("type") != "text"
                or block.get("citations")):
            return None
        text = block.get("text")
        if text is None:
            continue
        if type(text) is not str:
            return None
        if text:
            texts.append(text)
    msg_id, model = message.get("id"), message.get("model")
    msg_id = msg_id if isinstance(msg_id, str) else None
    model = model if isinstance(model, str) else None
    extra: dict[str, Any] = {}
    for key in ("container", "context_management", "stop_details"):
        if message.get(key) is not None:
            extra[key] = message[key]
    out: list[Event] = [MessageStarted(id=msg_id, model=model)]
    out.extend(TextDelta(delta=t, id=msg_id) for t in texts)
    raw_usage = message.get("usage")
    usage: Usage | None = None
    if isinstance(raw_usage, Mapping):
        # The replay reports usage twice (message_start, message_delta): here both
        # come from the same object, so one frozen `Usage` serves both.
        raw_chunk_usage = usage_from(raw_usage)
        out.append(RawChunk(usage=raw_chunk_usage))
        if raw_usage:
            usage = raw_chunk_usage
    text = "".join(texts)
    if text:
        out.append(TextCompleted(text=text, id=msg_id))
    raw_reason = message.get("stop_reason")
    raw_reason = raw_reason if isinstance(raw_reason, str) else None
    stop_sequence = message.get("stop_sequence")
    response_meta: dict[str, Any] = {}
    if isinstance(stop_sequence, str):
        response_meta["stop_sequence"] = stop_sequence
    if extra:
        response_meta["anthropic"] = extra
    out.append(MessageCompleted(
        message=Message(role="assistant", content=text, tool_calls=(), metadata={}),
        finish_reason=None if raw_reason is None else FINISH_REASONS.get(raw_reason, "other"),
        raw_finish_reason=raw_reason,
        usage=usage,
        id=msg_id,
        model=model,
        metadata=response_meta,
    ))
    return out


def _decode_replay(
    message: Mapping[str, Any],
    *,
    structured_tool: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> list[Event]:
    """Any Messages response: replayed through `MessageDecoder` as its stream."""
    decoder = MessageDecoder(structured_tool=structured_tool, headers=headers)
    start = {k: v for k, v in message.items() if k not in ("content", "stop_reason",
                                                             "stop_sequence")}
    start["content"] = []
    out = decoder.event({"type": "message_start", "message": start})
    content = message.get("content")
    for index, block in enumerate(content if isinstance(content, list) else ()):
        if not isinstance(block, Mapping):
            continue
        out.extend(_replay_block(decoder, index, block))
    delta: dict[str, Any] = {"stop_reason": message.get("stop_reason"),
                             "stop_sequence": message.get("stop_sequence")}
    if message.get("stop_details") is not None:
        delta["stop_details"] = message["stop_details"]
    out.extend(decoder.event({"type": "message_delta", "delta": delta,
                              "usage": message.get("usage")}))
    out.extend(decoder.event({"type": "message_stop"}))
    return out


def _replay_block(decoder: MessageDecoder, index: int, block: Mapping[str, Any]) -> list[Event]:
    kind = block.get("type")
    event = decoder.event
    if kind == "text":
        out = event({"type": "content_block_start", "index": index,
                     "content_block": {**block, "text": ""}})
        out.extend(event({"type": "content_block_delta", "index": index,
                          "delta": {"type": "text_delta", "text": block.get("text") or ""}}))
    elif kind == "tool_use":
        out = event({"type": "content_block_start", "index": index,
                     "content_block": {**block, "input": {}}})
        out.extend(event({"type": "content_block_delta", "index": index,
                          "delta": {"type": "input_json_delta",
                                    "partial_json": dumps_compact(block.get("input") or {})}}))
    elif kind == "thinking":
        out = event({"type": "content_block_start", "index": index,
                     "content_block": {**block, "thinking": "", "signature": ""}})
        out.extend(event({"type": "content_block_delta", "index": index,
                          "delta": {"type": "thinking_delta",
                                    "thinking": block.get("thinking") or ""}}))
        out.extend(event({"type": "content_block_delta", "index": index,
                          "delta": {"type": "signature_delta",
                                    "signature": block.get("signature") or ""}}))
    else:
        out = event({"type": "content_block_start", "index": index, "content_block": block})
    out.extend(event({"type": "content_block_stop", "index": index}))
    return out
