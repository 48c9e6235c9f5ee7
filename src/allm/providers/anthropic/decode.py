"""Anthropic Messages responses -> allm events (sans-IO).

Owns the one state machine that turns the API's stream events into allm events, and
the two ways bytes reach it:

- `StreamDecoder` (a streaming body): `allm._http.sse.SSEDecoder` splits the bytes
  into SSE events, each ``data`` is parsed as JSON and fed to `MessageDecoder`.
- `body.decode_message` (a non-streaming body, in `body.py`): the message JSON is
  replayed as the stream events the API would have sent through the same
  `MessageDecoder`, so both wire modes give the same event sequence.

Mapping (https://docs.anthropic.com/en/docs/build-with-claude/streaming):

- ``message_start`` -> `MessageStarted(id, model)`.
- text blocks -> `TextDelta`; one `TextCompleted` with the whole message text (all
  text blocks joined, as the API's content is one reply split around citations and
  tool blocks) right before `MessageCompleted`.
- ``tool_use`` -> `ToolCallStarted`, `ToolCallDelta` per ``input_json_delta``,
  `ToolCallCompleted` at ``content_block_stop``.
- ``thinking`` / ``redacted_thinking`` -> no neutral event (a `RawChunk` carries each
  thinking delta for UIs that show it live); the full blocks with their ``signature``
  go to the message metadata (below) so the next turn can send them back verbatim,
  which the API requires when thinking is combined with tool use.
- server-tool blocks (``server_tool_use``, ``web_search_tool_result``, ``mcp_*``,
  ...) and block types we do not know: assembled generically (string deltas are
  appended to the field of the same name, ``input_json_delta`` builds ``input``,
  ``citations_delta`` appends to ``citations``) and kept in metadata; no events.
- ``message_delta`` -> stop reason and cumulative usage (`RawChunk(usage=...)`);
  ``message_stop`` -> `TextCompleted?`, `MessageCompleted`; ``ping`` is dropped;
  ``error`` -> `ErrorEvent` (same table as HTTP errors); unknown events are ignored.

Assistant message metadata (what `MessageCompleted.message.metadata` carries)::

    {"anthropic": {"content": [<the raw content blocks>]},  # only when the reply has
                                                           # blocks beyond text/tool_use
                                                           # (or citations)
     "reasoning": "<thinking text>"}                        # when the model thought

Structured output through a synthetic tool (see `encode`): that tool's input deltas
become `TextDelta`s, it produces no tool call, the finish reason is ``stop`` and the
message metadata says ``structured_output_tool: True``.
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
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
)
from ...messages import Message, ToolCall
from ...request import Usage
from .._common import dumps_compact, parse_arguments
from .errors import error_from_event

__all__ = [
    "MessageDecoder",
    "StreamDecoder",
    "usage_from",
    "FINISH_REASONS",
    "PLAIN_BLOCKS",
]

FINISH_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    # Documented for Claude 4.5+: generation hit the context window, not max_tokens.
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "pause_turn": "pause",
    "refusal": "refusal",
}
"""Anthropic `stop_reason` -> allm finish reason (anything else -> ``other``)."""

PLAIN_BLOCKS = frozenset({"text", "tool_use"})
"""Block types a neutral `Message` represents fully; any other block (or a text block
with citations) makes the decoder keep the raw content for verbatim replay."""

_USAGE_KEYS = frozenset(
    {"input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"}
)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def usage_from(raw: Mapping[str, Any]) -> Usage:
    """allm `Usage` from the API's usage object.

    Anthropic's ``input_tokens`` excludes prompt-cache reads and writes; allm's
    `input_tokens` includes them (see `Usage`), so they are summed. The raw uncached
    count is kept as ``extra["uncached_input_tokens"]`` with every field we do not map
    (``cache_creation`` by TTL, ``server_tool_use``, ``service_tier``, ...).
    """
    uncached = _int(raw.get("input_tokens"))
    write = _int(raw.get("cache_creation_input_tokens"))
    read = _int(raw.get("cache_read_input_tokens"))
    output = _int(raw.get("output_tokens"))
    total_in: int | None = None
    if uncached is not None or write is not None or read is not None:
        total_in = (uncached or 0) + (write or 0) + (read or 0)
    reasoning = None
    details = raw.get("output_tokens_details")
    if details is not None and isinstance(details, Mapping):
        reasoning = _int(details.get("thinking_tokens"))
    extra = {k: v for k, v in raw.items() if k not in _USAGE_KEYS}
    if uncached is not None:
        extra["uncached_input_tokens"] = uncached
    total = total_in + output if total_in is not None and output is not None else None
    return Usage(
        input_tokens=total_in,
        output_tokens=output,
        total_tokens=total,
        cached_input_tokens=read,
        cache_write_tokens=write,
        reasoning_tokens=reasoning,
        extra=extra,
    )


class _Block:
    """One content block being assembled (mutable, internal)."""

    __slots__ = ("json_parts", "kind", "parts", "raw")

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.kind: str = raw.get("type") or "unknown"
        self.json_parts: list[str] = []
        # text / thinking deltas, joined once (`flush`): appending to the block's
        # string per delta would copy the whole text every time (quadratic).
        self.parts: list[str] = []

    def flush(self) -> None:
        if self.parts:
            key = "thinking" if self.kind == "thinking" else "text"
            self.raw[key] = (self.raw.get(key) or "") + "".join(self.parts)
            self.parts = []


class MessageDecoder:
    """The stream state machine: parsed Anthropic events in, allm events out.

    `structured_tool` names the synthetic tool used for JSON output on models without
    native structured outputs (its input becomes the message text).
    """

    __slots__ = (
        "_blocks",
        "_calls",
        "_done",
        "_extra",
        "_id",
        "_model",
        "_started",
        "_stop_reason",
        "_stop_sequence",
        "_structured_used",
        "_text",
        "_thinking",
        "_usage",
        "headers",
        "structured_tool",
    )

    def __init__(
        self, *, structured_tool: str | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        self.structured_tool = structured_tool
        self.headers = headers
        self._id: str | None = None
        self._model: str | None = None
        self._blocks: dict[int, _Block] = {}
        self._text: list[str] = []
        self._calls: list[ToolCall] = []
        self._usage: dict[str, Any] = {}
        self._stop_reason: str | None = None
        self._stop_sequence: str | None = None
        self._extra: dict[str, Any] = {}
        self._done = False
        self._started = False
        self._structured_used = False
        self._thinking: list[str] = []

    @property
    def done(self) -> bool:
        """True once ``message_stop`` or ``error`` was seen."""
        return self._done

    # -- events ----------------------------------------------------------------------

    def event(self, data: Mapping[str, Any]) -> list[Event]:
        """Feed one parsed stream event (its ``type`` field decides)."""
        if self._done:
            return []
        kind = data.get("type")
        if kind == "content_block_delta":
            return self._delta(data)
        if kind == "content_block_start":
            return self._start(data)
        if kind == "content_block_stop":
            return self._stop(data)
        if kind == "message_start":
            return self._message_start(data)
        if kind == "message_delta":
            return self._message_delta(data)
        if kind == "message_stop":
            return self._message_stop()
        if kind == "error":
            self._done = True
            return [ErrorEvent(error=error_from_event(data, self.headers))]
        return []  # ping, and event types added after this was written

    def _message_start(self, data: Mapping[str, Any]) -> list[Event]:
        message = data.get("message")
        if not isinstance(message, Mapping):
            message = {}
        self._started = True
        msg_id, model = message.get("id"), message.get("model")
        self._id = msg_id if isinstance(msg_id, str) else None
        self._model = model if isinstance(model, str) else None
        usage = message.get("usage")
        if isinstance(usage, Mapping):
            self._usage.update(usage)
        for key in ("container", "context_management"):
            if message.get(key) is not None:
                self._extra[key] = message[key]
        return [MessageStarted(id=self._id, model=self._model)]

    def _start(self, data: Mapping[str, Any]) -> list[Event]:
        block = data.get("content_block")
        raw = dict(block) if isinstance(block, Mapping) else {"type": "unknown"}
        index = data.get("index")
        b = _Block(raw)
        self._blocks[index if isinstance(index, int) else len(self._blocks)] = b
        kind = b.kind
        if kind == "text":
            text = raw.get("text") or ""
            raw["text"] = text
            if text:
                self._text.append(text)
                return [TextDelta(delta=text, id=self._id)]
            return []
        if kind == "tool_use":
            name = raw.get("name") or ""
            if name and name == self.structured_tool:
                self._structured_used = True
                return []
            return [ToolCallStarted(id=raw.get("id") or "", name=name)]
        if kind == "thinking":
            raw["thinking"] = raw.get("thinking") or ""
            raw["signature"] = raw.get("signature") or ""
        return []

    def _delta(self, data: Mapping[str, Any]) -> list[Event]:
        index = data.get("index")
        b = self._blocks.get(index) if isinstance(index, int) else None  # (fuzzing)
        delta = data.get("delta")
        if b is None or type(delta) is not dict:
            return []
        dtype = delta.get("type")
        if dtype == "text_delta":  # the hot path
            text = delta.get("text")
            if not text:
                return []
            b.parts.append(text)
            self._text.append(text)
            return [TextDelta(delta=text, id=self._id)]
        raw = b.raw
        if dtype == "input_json_delta":
            part = delta.get("partial_json") or ""
            b.json_parts.append(part)
            if not part or b.kind != "tool_use":
                return []
            if raw.get("name") == self.structured_tool and self.structured_tool:
                self._text.append(part)
                return [TextDelta(delta=part, id=self._id)]
            return [ToolCallDelta(id=raw.get("id") or "", arguments_delta=part)]
        if dtype == "thinking_delta":
            text = delta.get("thinking") or ""
            if text:
                b.parts.append(text)
                return [RawChunk(data={"type": "thinking_delta", "delta": text})]
            return []
        if dtype == "citations_delta":
            citation = delta.get("citation")
            citations = raw.get("citations")
            if not isinstance(citations, list):
                citations = raw["citations"] = []
            citations.append(citation)
            return []
        # signature_delta, compaction_delta and future string deltas: append each
        # string field to the block field of the same name.
        for key, value in delta.items():
            if key != "type" and isinstance(value, str):
                prev = raw.get(key)
                raw[key] = (prev if isinstance(prev, str) else "") + value
        return []

    def _stop(self, data: Mapping[str, Any]) -> list[Event]:
        index = data.get("index")
        # A non-int index (hostile or broken server) matches no block (fuzzing found
        # a dict index raising TypeError: unhashable).
        b = self._blocks.get(index) if isinstance(index, int) else None
        if b is None:
            return []
        b.flush()
        raw = b.raw
        kind = b.kind
        if b.json_parts:
            text = "".join(b.json_parts)
            args, ok = parse_arguments(text)
            raw["input"] = args  # replayable even when the model's JSON was not
        else:
            value = raw.get("input")
            ok = isinstance(value, dict) or value is None
            args = value if isinstance(value, dict) else {}
            text = dumps_compact(value if value is not None else {})
        if kind == "thinking":
            thought = raw.get("thinking")
            if thought:
                self._thinking.append(thought)
            return []
        if kind != "tool_use":
            return []
        name = raw.get("name")
        name = name if isinstance(name, str) else ""
        if self.structured_tool and name == self.structured_tool:
            if not b.json_parts:  # the whole input arrived in content_block_start
                self._text.append(text)
                return [TextDelta(delta=text, id=self._id)]
            return []
        if not text.strip():
            text = "{}"
        meta: dict[str, Any] = {} if ok else {"invalid_arguments": True}
        call_id = raw.get("id")
        call = ToolCall(id=call_id if isinstance(call_id, str) else "", name=name, arguments=args,
                        raw_arguments=text, metadata=meta)
        self._calls.append(call)
        return [ToolCallCompleted(id=call.id, name=name, arguments=args, raw_arguments=text,
                                  metadata=dict(meta))]

    def _message_delta(self, data: Mapping[str, Any]) -> list[Event]:
        delta = data.get("delta")
        if isinstance(delta, Mapping):
            # Strings only: a list here crashed the finish-reason lookup (fuzzing).
            if isinstance(delta.get("stop_reason"), str):
                self._stop_reason = delta["stop_reason"]
            if isinstance(delta.get("stop_sequence"), str):
                self._stop_sequence = delta["stop_sequence"]
            for key in ("stop_details", "container"):
                if delta.get(key) is not None:
                    self._extra[key] = delta[key]
        usage = data.get("usage")
        if isinstance(usage, Mapping):
            # message_delta usage is cumulative; fields it omits keep message_start's.
            self._usage.update({k: v for k, v in usage.items() if v is not None})
            return [RawChunk(usage=usage_from(self._usage))]
        return []

    def _message_stop(self) -> list[Event]:
        self._done = True
        out: list[Event] = []
        text = "".join(self._text)
        if text:
            out.append(TextCompleted(text=text, id=self._id))
        out.append(self.completed())
        return out

    # -- results ---------------------------------------------------------------------

    def completed(self) -> MessageCompleted:
        """The `MessageCompleted` for what was decoded so far."""
        raw_reason = self._stop_reason
        finish = None if raw_reason is None else FINISH_REASONS.get(raw_reason, "other")
        meta: dict[str, Any] = {}
        for block in self._blocks.values():
            block.flush()  # blocks a cut-off stream never stopped
        content = [self._blocks[i].raw for i in sorted(self._blocks)]
        if any(b.kind not in PLAIN_BLOCKS or b.raw.get("citations")
               for b in self._blocks.values()):
            meta["anthropic"] = {"content": content}
        if self._thinking:
            meta["reasoning"] = "\n\n".join(self._thinking)
        calls = tuple(self._calls)
        if self._structured_used:
            meta["structured_output_tool"] = True
            if finish == "tool_calls" and not calls:
                finish = "stop"
        response_meta: dict[str, Any] = {}
        if self._stop_sequence is not None:
            response_meta["stop_sequence"] = self._stop_sequence
        if self._extra:
            response_meta["anthropic"] = dict(self._extra)
        if self._structured_used:
            response_meta["structured_output_tool"] = True
        message = Message(role="assistant", content="".join(self._text), tool_calls=calls,
                          metadata=meta)
        return MessageCompleted(
            message=message,
            finish_reason=finish,
            raw_finish_reason=raw_reason,
            usage=usage_from(self._usage) if self._usage else None,
            id=self._id,
            model=self._model,
            metadata=response_meta,
        )

    def close(self) -> list[Event]:
        """The body ended. A stream that never sent ``message_stop`` (nor ``error``)
        was cut short: report it, keeping what arrived."""
        if self._done:
            return []
        self._done = True
        what = "before message_start" if not self._started else "before message_stop"
        return [ErrorEvent(error=AdapterError(
            "malformed_response",
            f"Anthropic stream ended {what}",
            provider="anthropic",
        ))]


class StreamDecoder:
    """Bytes of one streaming body -> allm events (`allm._http.sse` + `MessageDecoder`)."""

    __slots__ = ("_messages", "_sse")

    def __init__(
        self, *, structured_tool: str | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        from ..._http.sse import SSEDecoder  # sans-IO; kept lazy so codecs import fast

        self._sse = SSEDecoder()
        self._messages = MessageDecoder(structured_tool=structured_tool, headers=headers)

    def _events(self, sse_events: list[Any]) -> list[Event]:
        out: list[Event] = []
        decoder = self._messages
        loads = json.loads
        for sse in sse_events:
            data = sse.data
            if not data or data == "[DONE]":
                continue
            try:
                parsed = loads(data)
            except ValueError:
                if not decoder.done:
                    out.append(ErrorEvent(error=AdapterError(
                        "malformed_response",
                        f"Anthropic sent an event whose data is not JSON: {data[:200]!r}",
                        provider="anthropic",
                    )))
                continue
            if isinstance(parsed, dict):
                if "type" not in parsed and sse.event:
                    parsed["type"] = sse.event
                out.extend(decoder.event(parsed))
        return out

    def feed(self, data: bytes) -> list[Event]:
        return self._events(self._sse.feed(data))

    def close(self) -> list[Event]:
        out = self._events(self._sse.close())
        out.extend(self._messages.close())
        return out
