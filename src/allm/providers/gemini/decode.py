"""Response decoding for the Gemini API: `GenerateContentResponse` chunks -> allm events.

Owns one state machine, `ResponseState`, fed one parsed `GenerateContentResponse` at a
time. A non-streaming body is one such object and a ``streamGenerateContent?alt=sse``
stream is a sequence of them (one per SSE ``data:`` line, CRLF-delimited), so
`decode_body` and `GeminiStreamDecoder` share every decision and emit the same events:

    message_started, (text_delta | tool_call_started, tool_call_completed | raw_chunk)*,
    text_completed?, message_completed          (or: message_started?, ..., error)

- Only ``candidates[0]`` is read (allm asks for one candidate).
- Text parts -> `TextDelta` per part; ``thought: true`` parts are reasoning, joined into
  ``message.metadata["reasoning"]`` (no delta event exists for reasoning).
- Gemini sends whole function calls, never argument deltas: each `functionCall` part
  -> `ToolCallStarted` + `ToolCallCompleted` at once. Calls without an ``id`` get a
  stable synthesized one, ``"gc_" + sha1(responseId, index, name, args)[:20]``: stable
  for the same response bytes, distinct across turns and within a message.
- Every part is recorded, in order, in ``message.metadata["gemini"]["parts"]`` (text
  and thought lengths, `thoughtSignature`s, function-call ids, and server-side parts
  such as `executableCode` / `toolCall` verbatim) so the encoder can send the turn
  back exactly as it came (Gemini 3 validates signatures by position). Streamed text
  chunks of one kind merge into one part; a chunk carrying a signature starts a new
  part, so the signature stays on the text it was attached to, except an empty chunk
  that only carries the signature of the run before it (how streams end a signed
  run): its signature goes onto that run, as in the non-streamed response. A function call's
  signature is also on its `ToolCall.metadata["gemini"]["thoughtSignature"]`.
- `finishReason`: STOP -> stop (tool_calls when the message has function calls),
  MAX_TOKENS -> length, the safety family -> content_filter, the malformed-call family
  -> error (the model produced an unusable call; nothing was lost in transport, so no
  exception: `raw_finish_reason` and ``metadata["gemini"]["finish_message"]`` say
  which), everything else -> other. `raw_finish_reason` is always the wire value.
- A blocked prompt (``promptFeedback.blockReason``, no candidate) finishes with
  content_filter and the block reason as `raw_finish_reason`, streaming or not.
- ``usageMetadata``: each chunk's report is cumulative; a changed one is emitted as
  `RawChunk(usage=...)` (so a stream that breaks keeps its usage so far) and the last
  one is put on `message_completed` (whose `usage` replaces what was folded). output_tokens = candidates + thoughts (allm's
  Usage counts reasoning inside output); reasoning_tokens = thoughtsTokenCount;
  cached_input_tokens = cachedContentTokenCount; input_tokens = promptTokenCount
  (which already includes the cached part); toolUsePromptTokenCount goes to `extra`.
- ``{"error": {...}}`` inside a 200 body -> `ErrorEvent` and nothing after it.

Must not do I/O or import httpx2.
"""

from __future__ import annotations

import hashlib
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
    ToolCallStarted,
)
from ...messages import Message, ToolCall
from ...request import Usage
from .._common import dumps_compact
from .errors import error_in_stream

__all__ = ["ResponseState", "GeminiStreamDecoder", "decode_body", "map_finish_reason",
           "usage_from_metadata"]

PROVIDER = "gemini"

_CONTENT_FILTER = frozenset({
    "SAFETY", "RECITATION", "LANGUAGE", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
    "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION",
})
_ERROR = frozenset({
    "MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS",
    "MISSING_THOUGHT_SIGNATURE", "MALFORMED_RESPONSE",
})


def map_finish_reason(raw: str | None, *, has_tool_calls: bool) -> str | None:
    """Gemini `FinishReason` -> allm finish reason (see module docstring)."""
    if raw is None:
        return "tool_calls" if has_tool_calls else None
    if raw == "STOP":
        return "tool_calls" if has_tool_calls else "stop"
    if raw == "MAX_TOKENS":
        return "length"
    if raw in _CONTENT_FILTER:
        return "content_filter"
    if raw in _ERROR:
        return "error"
    return "other"


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def usage_from_metadata(meta: Mapping[str, Any]) -> Usage:
    """allm `Usage` from a `usageMetadata` object."""
    prompt = _int(meta.get("promptTokenCount"))
    candidates = _int(meta.get("candidatesTokenCount"))
    thoughts = _int(meta.get("thoughtsTokenCount"))
    output: int | None = None
    if candidates is not None or thoughts is not None:
        output = (candidates or 0) + (thoughts or 0)
    extra: dict[str, Any] = {}
    tool_use = _int(meta.get("toolUsePromptTokenCount"))
    if tool_use is not None:
        extra["tool_use_prompt_tokens"] = tool_use
    return Usage(
        input_tokens=prompt,
        output_tokens=output,
        total_tokens=_int(meta.get("totalTokenCount")),
        cached_input_tokens=_int(meta.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
        extra=extra,
    )


_CANDIDATE_EXTRAS = (("groundingMetadata", "grounding_metadata"),
                     ("citationMetadata", "citation_metadata"),
                     ("urlContextMetadata", "url_context_metadata"),
                     ("safetyRatings", "safety_ratings"),
                     ("logprobsResult", "logprobs_result"),
                     ("avgLogprobs", "avg_logprobs"))


class ResponseState:
    """Folds `GenerateContentResponse` objects into allm events (see module docstring).

    `feed_chunk(obj)` returns the events that chunk completes; `finish()` returns the
    closing events (`text_completed`, `message_completed`, or an error for an empty
    body). After an error or `finish()`, further input is ignored.
    """

    def __init__(self) -> None:
        self.started = False
        self.done = False
        self.response_id: str | None = None
        self.model_version: str | None = None
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.parts: list[dict[str, Any]] = []
        self.tool_calls: list[ToolCall] = []
        self.finish_reason: str | None = None
        self.finish_message: str | None = None
        self.block_reason: str | None = None
        self.prompt_feedback: Any = None
        self.usage: Mapping[str, Any] | None = None
        self.extras: dict[str, Any] = {}
        self.seen_candidate = False
        # Output media (`inlineData` parts: images from image-capable models), in order,
        # for `GeminiImages`; chat keeps them only as raw parts for replay.
        self.inline_data: list[dict[str, Any]] = []

    # -- input ------------------------------------------------------------------------

    def feed_chunk(self, chunk: Any) -> list[Event]:
        # Hot path (once per streamed chunk): exact-type checks first (JSON gives
        # dicts and lists), the ABC `Mapping` check only as the fallback.
        if self.done:
            return []
        if type(chunk) is not dict and not isinstance(chunk, Mapping):
            return self._fail(AdapterError(
                "malformed_response", "Gemini sent a chunk that is not a JSON object",
                provider=PROVIDER, body=chunk))
        if "error" in chunk:
            return self._fail(error_in_stream(chunk))
        events: list[Event] = []
        value = chunk.get("responseId")
        if type(value) is str:
            self.response_id = value
        value = chunk.get("modelVersion")
        if type(value) is str:
            self.model_version = value
        if not self.started:
            self.started = True
            events.append(MessageStarted(id=self.response_id, model=self.model_version))
        usage = chunk.get("usageMetadata")
        new_usage = (usage is not None and (type(usage) is dict or isinstance(usage, Mapping))
                     and usage != self.usage)
        if new_usage:
            self.usage = usage
        feedback = chunk.get("promptFeedback")
        if feedback is not None and isinstance(feedback, Mapping):
            self.prompt_feedback = dict(feedback)
            if isinstance(feedback.get("blockReason"), str):
                self.block_reason = feedback["blockReason"]
        candidates = chunk.get("candidates")
        if type(candidates) is list and candidates:
            for candidate in candidates:
                if ((type(candidate) is dict or isinstance(candidate, Mapping))
                        and candidate.get("index", 0) == 0):
                    self._candidate(candidate, events)
                    break
        if new_usage and self.usage is not None:
            # Usage so far (cumulative in every chunk), so a stream cut short still
            # reports it; `message_completed` repeats the final figures.
            events.append(RawChunk(usage=usage_from_metadata(self.usage)))
        return events

    def _candidate(self, candidate: Mapping[str, Any], events: list[Event]) -> None:
        self.seen_candidate = True
        content = candidate.get("content")
        parts = (content.get("parts")
                 if type(content) is dict or isinstance(content, Mapping) else None)
        if type(parts) is list:
            for part in parts:
                if type(part) is dict or isinstance(part, Mapping):
                    self._part(part, events)
        if not (len(candidate) == 2 and "content" in candidate and "index" in candidate):
            # (skipped for a bare text delta, which is just `content` and `index`)
            if isinstance(candidate.get("finishReason"), str):
                self.finish_reason = candidate["finishReason"]
            if isinstance(candidate.get("finishMessage"), str):
                self.finish_message = candidate["finishMessage"]
            for key, name in _CANDIDATE_EXTRAS:
                if key in candidate:
                    self.extras[name] = candidate[key]

    def _part(self, part: Mapping[str, Any], events: list[Event]) -> None:
        text = part.get("text")
        if len(part) == 1 and type(text) is str:  # hot path: `{"text": "..."}`
            parts = self.parts
            last = parts[-1] if parts else None
            if last is not None and last["type"] == "text":
                last["chars"] += len(text)
            else:
                parts.append({"type": "text", "chars": len(text)})
            if text:
                self.text.append(text)
                events.append(TextDelta(delta=text))
            return
        sig = part.get("thoughtSignature")
        sig = sig if isinstance(sig, str) and sig else None
        call = part.get("functionCall")
        if isinstance(call, Mapping):
            self._function_call(call, sig, events)
            return
        if isinstance(text, str):
            kind = "thought" if part.get("thought") is True else "text"
            last = self.parts[-1] if self.parts else None
            if last is not None and last["type"] == kind and sig is None:
                last["chars"] += len(text)
            elif (last is not None and last["type"] == kind and not text
                  and "thoughtSignature" not in last):
                # A stream may end a run with an empty part holding only the signature;
                # it belongs to that run (the non-streamed response has it there).
                last["thoughtSignature"] = sig
            else:
                entry: dict[str, Any] = {"type": kind, "chars": len(text)}
                if sig is not None:
                    entry["thoughtSignature"] = sig
                self.parts.append(entry)
            if kind == "thought":
                self.reasoning.append(text)
            elif text:
                self.text.append(text)
                events.append(TextDelta(delta=text))
            return
        # Anything else (executableCode, codeExecutionResult, server-side toolCall /
        # toolResponse, inlineData, a bare signature) is kept verbatim for replay.
        self.parts.append({"type": "raw", "part": dict(part)})
        inline = part.get("inlineData")
        if isinstance(inline, Mapping) and part.get("thought") is not True:
            self.inline_data.append(dict(inline))

    def _function_call(self, call: Mapping[str, Any], sig: str | None,
                       events: list[Event]) -> None:
        name_value = call.get("name")
        name = name_value if isinstance(name_value, str) else ""
        args = call.get("args")
        arguments = dict(args) if isinstance(args, Mapping) else {}
        raw = dumps_compact(args if args is not None else {})
        call_id = call.get("id")
        metadata: dict[str, Any] = {}
        if not isinstance(call_id, str) or not call_id:
            index = len(self.tool_calls)
            seed = f"{self.response_id or ''}\x00{index}\x00{name}\x00{raw}"
            call_id = "gc_" + hashlib.sha1(seed.encode("utf-8")).hexdigest()[:20]
        if sig is not None:
            metadata[PROVIDER] = {"thoughtSignature": sig}
        if not isinstance(args, (Mapping, type(None))):
            metadata["invalid_arguments"] = True
        self.tool_calls.append(ToolCall(id=call_id, name=name, arguments=arguments,
                                        raw_arguments=raw, metadata=metadata))
        self.parts.append({"type": "function_call", "id": call_id})
        events.append(ToolCallStarted(id=call_id, name=name))
        events.append(ToolCallCompleted(id=call_id, name=name, arguments=arguments,
                                        raw_arguments=raw, metadata=metadata))

    def _fail(self, error: AdapterError) -> list[Event]:
        self.done = True
        return [ErrorEvent(error=error)]

    # -- end --------------------------------------------------------------------------

    def finish(self) -> list[Event]:
        if self.done:
            return []
        self.done = True
        if not self.started or (not self.seen_candidate and self.block_reason is None):
            return [ErrorEvent(error=AdapterError(
                "malformed_response",
                "Gemini returned no candidate and no block reason",
                provider=PROVIDER, body=self.prompt_feedback))]
        events: list[Event] = []
        text = "".join(self.text)
        if text:
            events.append(TextCompleted(text=text))
        finish: str | None
        raw: str | None
        if self.block_reason is not None and not self.seen_candidate:
            finish, raw = "content_filter", self.block_reason
        else:
            raw = self.finish_reason
            finish = map_finish_reason(raw, has_tool_calls=bool(self.tool_calls))
        gemini_meta: dict[str, Any] = {"parts": self.parts}
        message_meta: dict[str, Any] = {PROVIDER: gemini_meta}
        if self.reasoning:
            message_meta["reasoning"] = "".join(self.reasoning)
        message = Message(role="assistant", content=text, tool_calls=tuple(self.tool_calls),
                          metadata=message_meta)
        response_meta: dict[str, Any] = dict(self.extras)
        if self.finish_message is not None:
            response_meta["finish_message"] = self.finish_message
        if self.prompt_feedback is not None:
            response_meta["prompt_feedback"] = self.prompt_feedback
        if self.block_reason is not None:
            response_meta["block_reason"] = self.block_reason
        if self.model_version is not None:
            response_meta["model_version"] = self.model_version
        events.append(MessageCompleted(
            message=message,
            finish_reason=finish,
            raw_finish_reason=raw,
            usage=usage_from_metadata(self.usage) if self.usage is not None else None,
            id=self.response_id,
            model=self.model_version,
            metadata={PROVIDER: response_meta} if response_meta else {},
        ))
        return events


def decode_body(body: bytes) -> list[Event]:
    """Events for a complete non-streaming `generateContent` body (the same events the
    stream of that response would give)."""
    state = ResponseState()
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return [ErrorEvent(error=AdapterError(
            "malformed_response", "Gemini returned a body that is not JSON",
            provider=PROVIDER, body=body[:2000].decode("utf-8", errors="replace")))]
    fast = decode_text_only(parsed)
    if fast is not None:
        return fast
    events = state.feed_chunk(parsed)
    return events + state.finish()


def decode_text_only(body: Any) -> list[Event] | None:
    """A non-streaming body whose first candidate is plain text parts only, decoded
    directly: the same events `ResponseState` gives for it (usage computed once, not
    twice), without the per-part dispatch (issue 10, non-streaming target). None: any
    other shape (calls, thoughts, signatures, media, a prompt block, an error), which
    the caller feeds through `ResponseState`."""
    if type(body) is not dict or "error" in body or body.get("promptFeedback") is not None:
        return None
    candidates = body.get("candidates")
    if type(candidates) is not list or not candidates:
        return None
    candidate = candidates[0]
    if type(candidate) is not dict or candidate.get("index", 0) != 0:
        return None
    content = candidate.get("content")
    if type(content) is not dict:
        return None
    parts = content.get("parts")
    if type(parts) is not list:
        return None
    texts: list[str] = []
    for part in parts:
        if type(part) is not dict or len(part) != 1 or type(part.get("text")) is not str:
            return None
        texts.append(part["text"])
    resp_id, model = body.get("responseId"), body.get("modelVersion")
    resp_id = resp_id if type(resp_id) is str else None
    model = model if type(model) is str else None
    events: list[Event] = [MessageStarted(id=resp_id, model=model)]
    events.extend(TextDelta(delta=t) for t in texts if t)
    meta = body.get("usageMetadata")
    usage = (usage_from_metadata(meta)
             if meta is not None and (type(meta) is dict or isinstance(meta, Mapping))
             else None)
    if usage is not None:
        events.append(RawChunk(usage=usage))
    text = "".join(texts)
    if text:
        events.append(TextCompleted(text=text))
    response_meta: dict[str, Any] = {}
    raw = candidate.get("finishReason")
    raw = raw if isinstance(raw, str) else None
    finish_message = candidate.get("finishMessage")
    for key, name in _CANDIDATE_EXTRAS:
        if key in candidate:
            response_meta[name] = candidate[key]
    if isinstance(finish_message, str):
        response_meta["finish_message"] = finish_message
    if model is not None:
        response_meta["model_version"] = model
    gemini_parts = [{"type": "text", "chars": len(text)}] if parts else []
    message = Message(role="assistant", content=text, tool_calls=(),
                      metadata={PROVIDER: {"parts": gemini_parts}})
    events.append(MessageCompleted(
        message=message,
        finish_reason=map_finish_reason(raw, has_tool_calls=False),
        raw_finish_reason=raw,
        usage=usage,
        id=resp_id,
        model=model,
        metadata={PROVIDER: response_meta} if response_meta else {},
    ))
    return events


class GeminiStreamDecoder:
    """`StreamDecoder` for ``streamGenerateContent?alt=sse``: SSE bytes -> events."""

    def __init__(self) -> None:
        from ..._http.sse import SSEDecoder  # sans-IO; lives beside the transports

        self._sse = SSEDecoder()
        self.state = ResponseState()

    def feed(self, data: bytes) -> list[Event]:
        return self._events(self._sse.feed(data))

    def close(self) -> list[Event]:
        events = self._events(self._sse.close())
        return events + self.state.finish()

    def _events(self, sse_events: list[Any]) -> list[Event]:
        out: list[Event] = []
        state = self.state
        for sse in sse_events:
            if state.done:
                break
            data = sse.data
            if not data or data == "[DONE]":
                continue
            try:
                chunk = json.loads(data)
            except ValueError:
                out.extend(state._fail(AdapterError(
                    "malformed_response", "Gemini sent an SSE event that is not JSON",
                    provider=PROVIDER, body=data[:2000])))
                break
            out.extend(state.feed_chunk(chunk))
        return out
