"""OpenAI Chat Completions codec (sans-IO): `Request` -> HTTP request, bytes -> events.

Owns the `/chat/completions` wire format both ways
(https://platform.openai.com/docs/api-reference/chat): messages (system/developer,
multi-part user content with images, assistant tool calls, tool results), tools and
`tool_choice`, `response_format` JSON schema, neutral params (renamed per model
family), `stream_options.include_usage`; and the answer as allm events.

One fold for both wire modes: `decode()` turns a non-streaming completion into the
single chunk a stream would have sent and runs it through the same `_ChatFold` the
stream decoder uses, so both produce the same event sequence.

Works against any OpenAI-compatible server through `base_url` (Ollama, vLLM, LM
Studio, OpenRouter, Groq, Together): unknown fields are ignored, missing ones are
tolerated (tool-call chunks without `index`, `stop` reported with tool calls,
`reasoning_content` deltas from DeepSeek-style servers kept as reasoning). Gemini's
OpenAI-compatible endpoint puts a thought signature on each tool call as
``extra_content: {"google": {"thought_signature": ...}}`` and Gemini 3 rejects the
next request unless it comes back on that call
(https://ai.google.dev/gemini-api/docs/thought-signatures#openai): a call's
`extra_content` is kept verbatim in ``ToolCall.metadata["openai_compat"]`` and sent
back as it came (a message-level `extra_content` is kept in the message's metadata).
Must not do I/O or import httpx2.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...errors import AdapterError, ValidationError
from ...events import (
    ErrorEvent,
    Event,
    MessageCompleted,
    MessageStarted,
    TextCompleted,
    TextDelta,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
)
from ...messages import Message, TextPart, ToolCall
from .._common import parse_arguments
from ._shared import (
    CodecBase,
    SSEJsonDecoder,
    accepts_reasoning,
    image_url,
    load_json,
    sampling_params,
    system_role_for,
    usage_from_chat,
    wants_max_completion_tokens,
)
from .errors import PROVIDER, error_from_payload
from .params import merged_params, tool_choice_name

if TYPE_CHECKING:
    from ...request import Request, Usage
    from ..base import Call

__all__ = ["ChatCodec", "ChatStreamDecoder", "encode_messages", "encode_body"]

COMPAT_KEY = "openai_compat"  # metadata of compatible servers' extra fields

_FINISH = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


# ----------------------------------------------------------------------------- encode
def _content_text(message: Message) -> str:
    return message.text


def _user_content(message: Message) -> str | list[dict[str, Any]]:
    content = message.content
    if isinstance(content, str):
        return content
    if len(content) == 1 and isinstance(content[0], TextPart):
        return content[0].text
    blocks: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, TextPart):
            blocks.append({"type": "text", "text": part.text})
        else:
            img: dict[str, Any] = {"url": image_url(part)}
            if part.detail != "auto":
                img["detail"] = part.detail
            blocks.append({"type": "image_url", "image_url": img})
    return blocks


def encode_messages(messages: tuple[Message, ...], model: str | None) -> list[dict[str, Any]]:
    """allm messages -> Chat Completions `messages`."""
    out: list[dict[str, Any]] = []
    system_role = system_role_for(model)
    for message in messages:
        role = message.role
        item: dict[str, Any]
        if role == "system":
            item = {"role": system_role, "content": _content_text(message)}
        elif role == "user":
            item = {"role": "user", "content": _user_content(message)}
        elif role == "assistant":
            text = _content_text(message)
            item = {"role": "assistant"}
            if message.tool_calls:
                item["content"] = text or None
                item["tool_calls"] = [_tool_call(call) for call in message.tool_calls]
            else:
                item["content"] = text
        elif role == "tool":
            item = {
                "role": "tool",
                "tool_call_id": message.tool_call_id or "",
                "content": _content_text(message),
            }
        else:  # pragma: no cover - Message validates roles
            continue
        if message.name and role in ("system", "user", "assistant"):
            item["name"] = message.name
        out.append(item)
    return out


def _tool_call(call: ToolCall) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments_json},
    }
    compat = call.metadata.get(COMPAT_KEY) if call.metadata else None
    if isinstance(compat, dict) and isinstance(compat.get("extra_content"), dict):
        out["extra_content"] = compat["extra_content"]  # verbatim (thought signature)
    return out


def _tools(request: Request) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    for tool in request.tools:
        fn: dict[str, Any] = {"name": tool.name, "parameters": tool.parameters}
        if tool.description:
            fn["description"] = tool.description
        if tool.strict is not None:
            fn["strict"] = tool.strict
        tools.append({"type": "function", "function": fn})
    return tools


def _tool_choice(choice: str | dict[str, Any]) -> Any:
    name = tool_choice_name(choice)
    if name is None:
        return choice
    return {"type": "function", "function": {"name": name}}


def _response_format(fmt: str | dict[str, Any] | None) -> dict[str, Any] | None:
    if fmt is None or fmt == "text":
        return None
    if isinstance(fmt, str):
        if fmt == "json_object":
            return {"type": "json_object"}
        raise ValidationError(
            "invalid_request", f"unknown response_format {fmt!r}",
            errors=[("response_format", "unsupported_value")], provider=PROVIDER,
        )
    if fmt.get("type") == "json_schema" and "json_schema" not in fmt:
        spec: dict[str, Any] = {"name": fmt.get("name") or "response", "schema": fmt.get("schema")}
        if fmt.get("description"):
            spec["description"] = fmt["description"]
        if fmt.get("strict") is not None:
            spec["strict"] = fmt["strict"]
        return {"type": "json_schema", "json_schema": spec}
    return dict(fmt)


def encode_body(request: Request, call: Call, *, stream: bool) -> dict[str, Any]:
    """The JSON body for `/chat/completions` (without transport headers)."""
    model = call.model or request.model
    params = merged_params(request, call)
    body: dict[str, Any] = {"model": model, "messages": encode_messages(request.messages, model)}
    if request.tools:
        body["tools"] = _tools(request)
        if params.get("parallel_tool_calls") is not None:
            body["parallel_tool_calls"] = bool(params["parallel_tool_calls"])
    if request.tool_choice is not None:
        body["tool_choice"] = _tool_choice(request.tool_choice)
    fmt = _response_format(request.response_format)
    if fmt is not None:
        body["response_format"] = fmt
    names = [*sampling_params(model), "seed", "presence_penalty", "frequency_penalty",
             "user", "service_tier"]
    if accepts_reasoning(model):
        names.append("reasoning_effort")
    for name in names:
        if params.get(name) is not None:
            body[name] = params[name]
    if params.get("stop") is not None:
        stop = params["stop"]
        body["stop"] = stop if isinstance(stop, str) else list(stop)
    if params.get("max_tokens") is not None:
        key = "max_completion_tokens" if wants_max_completion_tokens(model) else "max_tokens"
        body[key] = int(params["max_tokens"])
    logprobs = params.get("logprobs")
    if logprobs is not None and logprobs is not False:
        body["logprobs"] = True
        if isinstance(logprobs, int) and not isinstance(logprobs, bool):
            body["top_logprobs"] = logprobs
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    body.update(request.options)
    extra = params.get("extra_body")
    if isinstance(extra, Mapping):
        body.update(extra)
    return body


# ----------------------------------------------------------------------------- decode
@dataclass(slots=True)
class _Call:
    index: int
    id: str
    name: str = ""
    arguments: str = ""
    started: bool = False
    completed: bool = False
    extra: dict[str, Any] | None = None  # the call's `extra_content` (Gemini)
    parsed: dict[str, Any] = field(default_factory=dict)  # set on completion

    def metadata(self, ok: bool = True) -> dict[str, Any]:
        meta: dict[str, Any] = {} if ok else {"invalid_arguments": True}
        if self.extra:
            meta[COMPAT_KEY] = {"extra_content": self.extra}
        return meta


@dataclass(slots=True)
class _ChatFold:
    """State of one Chat Completions answer, fed chunk by chunk (stream) or with the
    one synthesized chunk of a non-streaming body."""

    headers: Mapping[str, str] = field(default_factory=dict)
    started: bool = False
    finished: bool = False
    id: str | None = None
    model: str | None = None
    text: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    calls: dict[int, _Call] = field(default_factory=dict)
    finish_reason: str | None = None
    usage: Usage | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] | None = None  # a message-level `extra_content` (Gemini)

    def chunk(self, obj: Any) -> list[Event]:
        if self.finished:
            return []
        if not isinstance(obj, dict):
            return []
        if obj.get("error") is not None:
            self.finished = True
            return [ErrorEvent(error=error_from_payload(obj, headers=self.headers))]
        out: list[Event] = []
        if not self.started:
            self.started = True
            self.id = obj.get("id") if isinstance(obj.get("id"), str) else None
            self.model = obj.get("model") if isinstance(obj.get("model"), str) else None
            out.append(MessageStarted(id=self.id, model=self.model))
        metadata = self.metadata
        for key in ("system_fingerprint", "service_tier"):
            value = obj.get(key)
            if type(value) is str and metadata.get(key) != value:
                metadata[key] = value
        raw_usage = obj.get("usage")
        if raw_usage is not None:  # `null` on every chunk but the last with include_usage
            usage = usage_from_chat(raw_usage)
            if usage is not None:
                self.usage = usage
        choices = obj.get("choices")
        if type(choices) is list:
            for choice in choices:
                if type(choice) is dict and choice.get("index", 0) in (0, None):
                    self._choice(choice, out)
        return out

    def _choice(self, choice: Mapping[str, Any], out: list[Event]) -> None:
        delta = choice.get("delta")
        if type(delta) is dict and len(delta) == 1:
            # Hot path: almost every chunk of a text answer is `{"content": "..."}`.
            content = delta.get("content")
            if type(content) is str:
                if content:
                    self.text.append(content)
                    out.append(TextDelta(delta=content))
                reason = choice.get("finish_reason")
                if type(reason) is str and reason:
                    self.finish_reason = reason
                    self._complete_calls(out)
                return
        if isinstance(delta, dict):
            content = delta.get("content")
            if isinstance(content, list):  # some compatible servers send parts
                content = "".join(
                    p.get("text", "") for p in content
                    if isinstance(p, dict) and isinstance(p.get("text"), str)
                )
            if isinstance(content, str) and content:
                self.text.append(content)
                out.append(TextDelta(delta=content))
            refusal = delta.get("refusal")
            if isinstance(refusal, str) and refusal:
                self.refusal.append(refusal)
            for key in ("reasoning_content", "reasoning"):
                value = delta.get(key)
                if isinstance(value, str) and value:
                    self.reasoning.append(value)
                    break
            annotations = delta.get("annotations")
            if isinstance(annotations, list) and annotations:
                self.metadata.setdefault("annotations", []).extend(annotations)
            extra = delta.get("extra_content")
            if type(extra) is dict and extra:
                self.extra = extra if self.extra is None else {**self.extra, **extra}
            tool_calls = delta.get("tool_calls")
            if isinstance(tool_calls, list):
                for position, tc in enumerate(tool_calls):
                    if isinstance(tc, dict):
                        self._tool_delta(position, tc, out)
        reason = choice.get("finish_reason")
        if isinstance(reason, str) and reason:
            self.finish_reason = reason
            self._complete_calls(out)

    def _tool_delta(self, position: int, tc: Mapping[str, Any], out: list[Event]) -> None:
        index = tc.get("index")
        tc_id = tc.get("id") if isinstance(tc.get("id"), str) and tc.get("id") else None
        if not isinstance(index, int):
            index = position
        existing = self.calls.get(index)
        if existing is not None and tc_id is not None and tc_id != existing.id:
            # Some compatible servers send every call whole, all at index 0 (or with no
            # index): a new id means a new call. OpenAI sends the id only once per index.
            index = max(self.calls) + 1
        fn = tc.get("function")
        fn = fn if isinstance(fn, dict) else {}
        entry = self.calls.get(index)
        if entry is None:
            entry = _Call(index=index, id=tc_id or f"call_{index}")
            self.calls[index] = entry
        name = fn.get("name")
        if isinstance(name, str) and name and not entry.name:
            entry.name = name
        extra = tc.get("extra_content")
        if type(extra) is dict and extra:
            entry.extra = extra if entry.extra is None else {**entry.extra, **extra}
        args = fn.get("arguments")
        if isinstance(args, (dict, list)):  # a few servers send parsed arguments
            args = json.dumps(args, ensure_ascii=False)
        if not entry.started and entry.name:
            entry.started = True
            out.append(ToolCallStarted(id=entry.id, name=entry.name))
            if entry.arguments:  # fragments that arrived before the name
                out.append(ToolCallDelta(id=entry.id, arguments_delta=entry.arguments))
        if isinstance(args, str) and args:
            entry.arguments += args
            if entry.started:
                out.append(ToolCallDelta(id=entry.id, arguments_delta=args))

    def _complete_calls(self, out: list[Event]) -> None:
        for entry in sorted(self.calls.values(), key=lambda c: c.index):
            if entry.completed:
                continue
            if not entry.started:
                entry.started = True
                out.append(ToolCallStarted(id=entry.id, name=entry.name))
                if entry.arguments:
                    out.append(ToolCallDelta(id=entry.id, arguments_delta=entry.arguments))
            entry.completed = True
            arguments, ok = parse_arguments(entry.arguments)
            entry.parsed = arguments
            out.append(ToolCallCompleted(
                id=entry.id, name=entry.name, arguments=arguments,
                raw_arguments=entry.arguments, metadata=entry.metadata(ok),
            ))

    def finish(self) -> list[Event]:
        """The answer is over (`[DONE]`, or the end of a non-streaming body)."""
        if self.finished:
            return []
        self.finished = True
        out: list[Event] = []
        if not self.started:
            self.started = True
            out.append(MessageStarted(id=None, model=None))
        self._complete_calls(out)
        text = "".join(self.text)
        if text:
            out.append(TextCompleted(text=text))
        raw = self.finish_reason
        reason = _FINISH.get(raw, "other") if raw is not None else None
        metadata = dict(self.metadata)
        message_meta: dict[str, Any] = {}
        if self.refusal:
            refusal = "".join(self.refusal)
            metadata["refusal"] = refusal
            message_meta["refusal"] = refusal
            if reason in ("stop", None):
                reason = "refusal"
        if self.calls and reason in ("stop", None):
            reason = "tool_calls"  # compatible servers often say "stop" here
        if self.reasoning:
            message_meta["reasoning"] = "".join(self.reasoning)
        if self.extra:
            message_meta[COMPAT_KEY] = {"extra_content": self.extra}
        calls = tuple(  # every call is completed (and parsed) by now
            ToolCall(id=c.id, name=c.name, arguments=c.parsed, raw_arguments=c.arguments,
                     metadata=c.metadata())
            for c in sorted(self.calls.values(), key=lambda c: c.index)
        )
        message = Message(role="assistant", content=text, tool_calls=calls, metadata=message_meta)
        out.append(MessageCompleted(
            message=message, finish_reason=reason, raw_finish_reason=raw, usage=self.usage,
            id=self.id, model=self.model, metadata=metadata,
        ))
        return out

    def truncated(self) -> list[Event]:
        """The body ended without `[DONE]` or a finish reason."""
        if self.finished:
            return []
        if self.finish_reason is not None:
            return self.finish()  # lenient: some compatible servers omit [DONE]
        self.finished = True
        return [ErrorEvent(error=AdapterError(
            "network_error", "the OpenAI stream ended before the answer was complete",
            provider=PROVIDER,
        ))]


def decode_replay(body: Mapping[str, Any], headers: Mapping[str, str]) -> list[Event]:
    """A non-streaming body replayed through the stream fold as its one chunk."""
    fold = _ChatFold(headers=dict(headers))
    events = fold.chunk(_as_chunk(body))
    events.extend(fold.finish())
    return events


# Message keys the fold reads besides `content`: a falsy value is ignored by it.
_QUIET_KEYS = ("refusal", "reasoning_content", "reasoning", "annotations", "extra_content",
               "tool_calls")


def decode_text_only(body: Mapping[str, Any]) -> list[Event] | None:
    """A non-streaming body with one plain-text choice, decoded directly: the same
    events `decode_replay` gives, without synthesizing and folding a chunk (issue 10,
    non-streaming target). None: any other shape (calls, refusals, reasoning,
    annotations, several choices, an error), which the caller replays."""
    if body.get("error") is not None:
        return None
    choices = body.get("choices")
    if type(choices) is not list or len(choices) != 1:
        return None
    choice = choices[0]
    if type(choice) is not dict or choice.get("index", 0) not in (0, None):
        return None
    message = choice.get("message")
    if type(message) is not dict or message.get("function_call") is not None:
        return None
    for key in _QUIET_KEYS:
        if message.get(key):
            return None
    content = message.get("content")
    if content is not None and type(content) is not str:
        return None
    resp_id, model = body.get("id"), body.get("model")
    resp_id = resp_id if isinstance(resp_id, str) else None
    model = model if isinstance(model, str) else None
    out: list[Event] = [MessageStarted(id=resp_id, model=model)]
    metadata: dict[str, Any] = {}
    for key in ("system_fingerprint", "service_tier"):
        value = body.get(key)
        if type(value) is str:
            metadata[key] = value
    raw_usage = body.get("usage")
    usage = usage_from_chat(raw_usage) if raw_usage is not None else None
    text = content or ""
    if text:
        out.append(TextDelta(delta=text))
        out.append(TextCompleted(text=text))
    raw = choice.get("finish_reason")
    raw = raw if isinstance(raw, str) and raw else None
    reason = _FINISH.get(raw, "other") if raw is not None else None
    out.append(MessageCompleted(
        message=Message(role="assistant", content=text, tool_calls=(), metadata={}),
        finish_reason=reason, raw_finish_reason=raw, usage=usage,
        id=resp_id, model=model, metadata=metadata,
    ))
    return out


def _as_chunk(body: Mapping[str, Any]) -> dict[str, Any]:
    """A non-streaming `chat.completion` as the one chunk a stream would have sent."""
    choices = []
    listed = body.get("choices")
    for choice in listed if isinstance(listed, list) else ():  # e.g. true (fuzzing)
        if not isinstance(choice, dict):
            continue
        message = choice.get("message")
        message = message if isinstance(message, dict) else {}
        delta = dict(message)
        calls = message.get("tool_calls")
        if isinstance(calls, list):
            delta["tool_calls"] = [
                {**tc, "index": i} for i, tc in enumerate(calls) if isinstance(tc, dict)
            ]
        legacy = message.get("function_call")
        if isinstance(legacy, dict) and not calls:
            delta["tool_calls"] = [{"index": 0, "id": "call_0", "function": legacy}]
        choices.append({"index": choice.get("index", 0), "delta": delta,
                        "finish_reason": choice.get("finish_reason")})
    return {**body, "choices": choices}


class ChatStreamDecoder(SSEJsonDecoder):
    """Incremental decoder for one `/chat/completions` SSE body."""

    def __init__(self, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(_ChatFold(headers=dict(headers or {})))

    def _done(self) -> list[Event]:
        return self._fold.finish()  # type: ignore[no-any-return]

    def _handle(self, obj: Any, sse: Any) -> list[Event]:
        return self._fold.chunk(obj)  # type: ignore[no-any-return]


class ChatCodec(CodecBase):
    """The Codec for `POST {base_url}/chat/completions`."""

    path = "/chat/completions"

    def encode_body(self, request: Request, call: Call, *, stream: bool) -> dict[str, Any]:
        body = encode_body(request, call, stream=stream)
        if "//api.openai.com" in self.base_url:
            # `extra_content` (Gemini's thought signatures) is a Gemini-compat
            # extension: never send it to OpenAI itself, e.g. when a conversation
            # moves from a Gemini-compatible server to api.openai.com.
            for message in body["messages"]:
                for tool_call in message.get("tool_calls") or ():
                    tool_call.pop("extra_content", None)
        return body

    def decode(self, status: int, headers: Mapping[str, str], body: bytes) -> list[Event]:
        obj = load_json(body, "chat completion")
        if not isinstance(obj, dict):
            raise AdapterError("malformed_response", "OpenAI returned a non-object body",
                               provider=PROVIDER)
        fast = decode_text_only(obj)
        if fast is not None:
            return fast
        return decode_replay(obj, headers)

    def stream_decoder(self, headers: Mapping[str, str]) -> ChatStreamDecoder:
        return ChatStreamDecoder(headers)
