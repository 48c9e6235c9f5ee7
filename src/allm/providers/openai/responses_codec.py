"""OpenAI Responses API codec (sans-IO): `Request` -> HTTP request, bytes -> events.

Owns the `/responses` wire format both ways
(https://platform.openai.com/docs/api-reference/responses): `instructions` (the
leading system messages) and `input` items (messages, `input_image` parts,
`function_call` / `function_call_output` items keyed by `call_id`), flat function
tools, `tool_choice`, `text.format` JSON schema, `reasoning.effort` / `summary`,
`max_output_tokens`; and the answer, streamed as semantic events
(https://platform.openai.com/docs/api-reference/responses-streaming) or returned as
one `response` object, as allm events.

Replay: the output items a model produced are kept so the next turn can send them
back. `Message.metadata["openai"]` holds ``response_id`` and ``items``: the output
in order, reasoning items (with `encrypted_content` when requested) and server-tool
items verbatim, message items as ``{"type": "message", "id", "text", ...}`` and
function calls as references ``{"type": "function_call", "id", "call_id"}``; each
`ToolCall.metadata["openai"]["item_id"]` is its ``fc_...`` id. The reasoning summary
text is also in ``metadata["reasoning"]`` (what `Response.reasoning` reads).

One fold for both wire modes: `decode()` replays a `response` object as the events a
stream would have sent (created, output items with their text/argument deltas,
completed) through the same `_ResponsesFold`. Must not do I/O or import httpx2.
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
from .._codec import HttpRequest
from .._common import parse_arguments
from ._shared import (
    accepts_reasoning,
    build_headers,
    drop_none,
    dumps,
    image_url,
    is_reasoning_model,
    load_json,
    preflight_images,
    sampling_params,
    usage_from_responses,
)
from .errors import PROVIDER, error_from_payload, error_from_response
from .params import merged_params, tool_choice_name

if TYPE_CHECKING:
    from ...request import Request, Usage
    from ..base import Call

__all__ = ["ResponsesCodec", "ResponsesStreamDecoder", "encode_input", "encode_body"]


# ----------------------------------------------------------------------------- encode
def _user_content(message: Message) -> str | list[dict[str, Any]]:
    content = message.content
    if isinstance(content, str):
        return content
    if len(content) == 1 and isinstance(content[0], TextPart):
        return content[0].text
    parts: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, TextPart):
            parts.append({"type": "input_text", "text": part.text})
        else:
            parts.append({"type": "input_image", "image_url": image_url(part),
                          "detail": part.detail})
    return parts


def _function_call(call: ToolCall, item_id: str | None) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "function_call", "call_id": call.id, "name": call.name,
                            "arguments": call.arguments_json}
    if item_id:
        item["id"] = item_id
    return item


def _call_item_id(call: ToolCall) -> str | None:
    meta = call.metadata.get("openai")
    if isinstance(meta, Mapping) and isinstance(meta.get("item_id"), str):
        return str(meta["item_id"])
    return None


def _message_item(ref: Mapping[str, Any], text: str) -> dict[str, Any]:
    item = {k: v for k, v in ref.items() if k not in ("text", "content", "status")}
    item.update({"type": "message", "role": "assistant", "status": "completed",
                 "content": [{"type": "output_text", "text": text, "annotations": []}]})
    return item


def _assistant_items(message: Message) -> list[dict[str, Any]]:
    text = message.text
    calls = {c.id: c for c in message.tool_calls}
    used: set[str] = set()
    out: list[dict[str, Any]] = []
    meta = message.metadata.get("openai")
    items = meta.get("items") if isinstance(meta, Mapping) else None
    text_sent = False
    if isinstance(items, list):
        refs = [i for i in items if isinstance(i, Mapping)]
        stored = "".join(str(i.get("text") or "") for i in refs if i.get("type") == "message")
        unchanged = stored == text
        for item in refs:
            kind = item.get("type")
            if kind == "message":
                if unchanged:
                    out.append(_message_item(item, str(item.get("text") or "")))
                    text_sent = True
                elif not text_sent and text:
                    # The caller edited the text: send it without the old item id.
                    out.append({"role": "assistant", "content": text})
                    text_sent = True
            elif kind == "function_call":
                call = calls.get(str(item.get("call_id")))
                if call is not None and call.id not in used:
                    used.add(call.id)
                    out.append(_function_call(call, _call_item_id(call) or item.get("id")))
            else:
                out.append(drop_none(item))
    if text and not text_sent:
        out.append({"role": "assistant", "content": text})
    for call in message.tool_calls:
        if call.id not in used:
            out.append(_function_call(call, _call_item_id(call)))
    return out


def encode_input(
    messages: tuple[Message, ...], model: str | None
) -> tuple[str | None, list[dict[str, Any]]]:
    """allm messages -> (`instructions`, `input` items). Leading system messages
    become `instructions`; later ones developer (reasoning models) / system items."""
    instructions: list[str] = []
    items: list[dict[str, Any]] = []
    leading = True
    late_system_role = "developer" if is_reasoning_model(model) else "system"
    for message in messages:
        role = message.role
        if role == "system":
            if leading:
                instructions.append(message.text)
            else:
                items.append({"role": late_system_role, "content": message.text})
            continue
        leading = False
        if role == "user":
            items.append({"role": "user", "content": _user_content(message)})
        elif role == "assistant":
            items.extend(_assistant_items(message))
        elif role == "tool":
            items.append({"type": "function_call_output", "call_id": message.tool_call_id or "",
                          "output": message.text})
    return ("\n\n".join(instructions) if instructions else None), items


def _text_format(fmt: str | dict[str, Any] | None) -> dict[str, Any] | None:
    if fmt is None or fmt == "text":
        return None
    if isinstance(fmt, str):
        if fmt == "json_object":
            return {"type": "json_object"}
        raise ValidationError(
            "invalid_request", f"unknown response_format {fmt!r}",
            errors=[("response_format", "unsupported_value")], provider=PROVIDER,
        )
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") if isinstance(fmt.get("json_schema"), Mapping) else fmt
        assert isinstance(spec, Mapping)
        out: dict[str, Any] = {"type": "json_schema", "name": spec.get("name") or "response",
                               "schema": spec.get("schema")}
        if spec.get("description"):
            out["description"] = spec["description"]
        if spec.get("strict") is not None:
            out["strict"] = spec["strict"]
        return out
    return dict(fmt)


def encode_body(request: Request, call: Call, *, stream: bool) -> dict[str, Any]:
    """The JSON body for `/responses` (without transport headers)."""
    model = call.model or request.model
    params = merged_params(request, call)
    instructions, items = encode_input(request.messages, model)
    body: dict[str, Any] = {"model": model, "input": items}
    if instructions is not None:
        body["instructions"] = instructions
    if request.tools:
        # `strict` defaults to true on Responses function tools: send it explicitly so
        # a schema not written for strict mode is not rejected.
        body["tools"] = [
            {"type": "function", "name": t.name, "parameters": t.parameters,
             "strict": bool(t.strict), **({"description": t.description} if t.description else {})}
            for t in request.tools
        ]
        if params.get("parallel_tool_calls") is not None:
            body["parallel_tool_calls"] = bool(params["parallel_tool_calls"])
    if request.tool_choice is not None:
        name = tool_choice_name(request.tool_choice)
        body["tool_choice"] = request.tool_choice if name is None else {
            "type": "function", "name": name}
    fmt = _text_format(request.response_format)
    if fmt is not None:
        body["text"] = {"format": fmt}
    for name in (*sampling_params(model), "user", "service_tier"):
        if params.get(name) is not None:
            body[name] = params[name]
    if params.get("max_tokens") is not None:
        body["max_output_tokens"] = int(params["max_tokens"])
    reasoning: dict[str, Any] = {}
    if params.get("reasoning_effort") is not None:
        reasoning["effort"] = params["reasoning_effort"]
    if params.get("reasoning_summary") is not None:
        reasoning["summary"] = params["reasoning_summary"]
    if reasoning and accepts_reasoning(model):
        body["reasoning"] = reasoning
    include: list[str] = []
    if is_reasoning_model(model):
        # Needed to send reasoning back on the next turn when the response is not
        # stored (store=false / zero data retention).
        include.append("reasoning.encrypted_content")
    logprobs = params.get("logprobs")
    if logprobs is not None and logprobs is not False:
        include.append("message.output_text.logprobs")
        if isinstance(logprobs, int) and not isinstance(logprobs, bool):
            body["top_logprobs"] = logprobs
    if include:
        body["include"] = include
    if stream:
        body["stream"] = True
    body.update(request.options)
    extra = params.get("extra_body")
    if isinstance(extra, Mapping):
        body.update(extra)
    return body


# ----------------------------------------------------------------------------- decode
@dataclass(slots=True)
class _FnCall:
    item_id: str
    call_id: str
    name: str
    arguments: str = ""
    completed: bool = False


def _item_text(item: Mapping[str, Any], kind: str = "output_text") -> str:
    parts = item.get("content")
    if not isinstance(parts, list):
        return ""
    return "".join(
        str(p.get("text" if kind == "output_text" else "refusal") or "")
        for p in parts if isinstance(p, Mapping) and p.get("type") == kind
    )


@dataclass(slots=True)
class _ResponsesFold:
    """State of one Responses answer, fed event by event."""

    headers: Mapping[str, str] = field(default_factory=dict)
    started: bool = False
    finished: bool = False
    id: str | None = None
    model: str | None = None
    texts: dict[str, list[str]] = field(default_factory=dict)  # message item id -> deltas
    text_order: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    summaries: dict[str, list[str]] = field(default_factory=dict)
    calls: dict[str, _FnCall] = field(default_factory=dict)  # item id -> call
    done_items: dict[int, dict[str, Any]] = field(default_factory=dict)
    added_items: dict[int, dict[str, Any]] = field(default_factory=dict)

    def _start(self, response: Any, out: list[Event]) -> None:
        if self.started:
            return
        self.started = True
        if isinstance(response, Mapping):
            self.id = response.get("id") if isinstance(response.get("id"), str) else None
            self.model = response.get("model") if isinstance(response.get("model"), str) else None
        out.append(MessageStarted(id=self.id, model=self.model))

    def event(self, data: Mapping[str, Any]) -> list[Event]:
        if self.finished:
            return []
        out: list[Event] = []
        kind = data.get("type")
        if kind in ("response.created", "response.in_progress", "response.queued"):
            self._start(data.get("response"), out)
            return out
        if kind == "error":
            self.finished = True
            return [ErrorEvent(error=error_from_payload(data, headers=self.headers))]
        if kind == "response.failed":
            self.finished = True
            response = data.get("response")
            err = response.get("error") if isinstance(response, Mapping) else None
            payload = err if isinstance(err, Mapping) else {"message": "the response failed"}
            return [ErrorEvent(error=error_from_payload(payload, headers=self.headers))]
        self._start(None, out)
        if kind == "response.output_item.added":
            item, index = data.get("item"), data.get("output_index")
            if isinstance(item, Mapping):
                self.added_items[index if isinstance(index, int) else -1 - len(
                    self.added_items)] = dict(item)
            self._item_added(item, out)
        elif kind == "response.output_text.delta":
            self._text(str(data.get("item_id") or ""), data.get("delta"), out)
        elif kind == "response.output_text.done":
            item_id = str(data.get("item_id") or "")
            if not self.texts.get(item_id):
                self._text(item_id, data.get("text"), out)
        elif kind == "response.refusal.delta" and isinstance(data.get("delta"), str):
            self.refusals.append(data["delta"])
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            if isinstance(data.get("delta"), str):
                self.summaries.setdefault(str(data.get("item_id") or ""), []).append(
                    data["delta"])
        elif kind == "response.function_call_arguments.delta":
            call = self.calls.get(str(data.get("item_id") or ""))
            delta = data.get("delta")
            if call is not None and isinstance(delta, str) and delta and not call.completed:
                call.arguments += delta
                out.append(ToolCallDelta(id=call.call_id, arguments_delta=delta))
        elif kind == "response.function_call_arguments.done":
            call = self.calls.get(str(data.get("item_id") or ""))
            if call is not None and isinstance(data.get("arguments"), str):
                self._final_arguments(call, data["arguments"], out)
        elif kind == "response.output_item.done":
            self._item_done(data, out)
        elif kind in ("response.completed", "response.incomplete"):
            self._complete(data.get("response"), out)
        return out

    def _text(self, item_id: str, delta: Any, out: list[Event]) -> None:
        if not isinstance(delta, str) or not delta:
            return
        if item_id not in self.texts:
            self.texts[item_id] = []
            self.text_order.append(item_id)
        self.texts[item_id].append(delta)
        out.append(TextDelta(delta=delta, id=item_id or None))

    def _item_added(self, item: Any, out: list[Event]) -> None:
        if not isinstance(item, Mapping) or item.get("type") != "function_call":
            return
        item_id = str(item.get("id") or item.get("call_id") or "")
        if item_id in self.calls:
            return
        call = _FnCall(item_id=item_id, call_id=str(item.get("call_id") or item_id),
                       name=str(item.get("name") or ""))
        self.calls[item_id] = call
        out.append(ToolCallStarted(id=call.call_id, name=call.name))
        args = item.get("arguments")
        if isinstance(args, str) and args:
            call.arguments = args
            out.append(ToolCallDelta(id=call.call_id, arguments_delta=args))

    def _final_arguments(self, call: _FnCall, final: str, out: list[Event]) -> None:
        if final == call.arguments or call.completed:
            return
        if final.startswith(call.arguments):
            rest = final[len(call.arguments):]
            out.append(ToolCallDelta(id=call.call_id, arguments_delta=rest))
        call.arguments = final  # the done event's arguments win

    def _complete_call(self, call: _FnCall, out: list[Event]) -> None:
        if call.completed:
            return
        call.completed = True
        arguments, ok = parse_arguments(call.arguments)
        meta: dict[str, Any] = {"openai": {"item_id": call.item_id}}
        if not ok:
            meta["invalid_arguments"] = True
        out.append(ToolCallCompleted(id=call.call_id, name=call.name, arguments=arguments,
                                     raw_arguments=call.arguments, metadata=meta))

    def _item_done(self, data: Mapping[str, Any], out: list[Event]) -> None:
        item = data.get("item")
        if not isinstance(item, Mapping):
            return
        index = data.get("output_index")
        self.done_items[index if isinstance(index, int) else len(self.done_items)] = dict(item)
        kind = item.get("type")
        if kind == "function_call":
            item_id = str(item.get("id") or item.get("call_id") or "")
            if item_id not in self.calls:
                self._item_added(item, out)
            call = self.calls.get(item_id)
            if call is not None:
                if isinstance(item.get("arguments"), str):
                    self._final_arguments(call, item["arguments"], out)
                self._complete_call(call, out)
        elif kind == "message":
            item_id = str(item.get("id") or "")
            if not self.texts.get(item_id):
                self._text(item_id, _item_text(item), out)
            refusal = _item_text(item, "refusal")
            if refusal and not self.refusals:
                self.refusals.append(refusal)

    def _complete(self, response: Any, out: list[Event]) -> None:
        self.finished = True
        response = response if isinstance(response, Mapping) else {}
        output = response.get("output")
        if isinstance(output, list) and output:
            # The final response object is authoritative for anything a stream
            # skipped (items without added/done events).
            for i, item in enumerate(output):
                if isinstance(item, Mapping) and i not in self.done_items:
                    self._item_done({"item": item, "output_index": i}, out)
        for call in self.calls.values():
            self._complete_call(call, out)
        # Items the stream announced but never finished still count (their text and
        # arguments came as deltas).
        merged = {**self.added_items, **self.done_items}
        items = [merged[i] for i in sorted(merged)]
        if isinstance(output, list) and output:
            # Replay what the final object says (OpenAI re-encrypts reasoning there).
            items = [dict(item) for item in output if isinstance(item, Mapping)]
        text = "".join("".join(self.texts[i]) for i in self.text_order)
        if text:
            out.append(TextCompleted(text=text))
        status = response.get("status")
        details = response.get("incomplete_details")
        detail_reason = details.get("reason") if isinstance(details, Mapping) else None
        reason, raw = _finish(status, detail_reason, bool(self.calls), bool(self.refusals))
        usage: Usage | None = usage_from_responses(response.get("usage"))
        metadata: dict[str, Any] = {}
        if isinstance(status, str):
            metadata["status"] = status
        if detail_reason is not None:
            metadata["incomplete_details"] = {"reason": detail_reason}
        for key in ("service_tier", "previous_response_id", "conversation"):
            if response.get(key) is not None:
                metadata[key] = response[key]
        message_meta: dict[str, Any] = {"openai": {
            "response_id": self.id or response.get("id"),
            "items": [_replay_item(item, self.texts) for item in items],
        }}
        summary = "\n\n".join(text for item in items
                               if item.get("type") == "reasoning" and (text := _summary_text(item)))
        if not summary:  # a stream that never sent the finished items
            summary = "\n\n".join("".join(parts) for parts in self.summaries.values() if parts)
        if summary:
            message_meta["reasoning"] = summary
        annotations = [a for item in items if item.get("type") == "message"
                       for part in (item.get("content") or []) if isinstance(part, Mapping)
                       for a in (part.get("annotations") or []) if isinstance(a, Mapping)]
        if annotations:
            metadata["annotations"] = annotations
        if self.refusals:
            refusal = "".join(self.refusals)
            metadata["refusal"] = refusal
            message_meta["refusal"] = refusal
        calls = tuple(
            ToolCall(id=c.call_id, name=c.name, arguments=parse_arguments(c.arguments)[0],
                     raw_arguments=c.arguments, metadata={"openai": {"item_id": c.item_id}})
            for c in self.calls.values()
        )
        out.append(MessageCompleted(
            message=Message(role="assistant", content=text, tool_calls=calls,
                            metadata=message_meta),
            finish_reason=reason, raw_finish_reason=raw, usage=usage,
            id=self.id or response.get("id"), model=self.model or response.get("model"),
            metadata=metadata,
        ))

    def truncated(self) -> list[Event]:
        if self.finished:
            return []
        self.finished = True
        return [ErrorEvent(error=AdapterError(
            "network_error", "the OpenAI stream ended before response.completed",
            provider=PROVIDER,
        ))]


def _summary_text(item: Mapping[str, Any]) -> str:
    summary = item.get("summary")
    if not isinstance(summary, list):
        return ""
    return "\n\n".join(str(s.get("text")) for s in summary
                       if isinstance(s, Mapping) and isinstance(s.get("text"), str))


def _replay_item(item: Mapping[str, Any], texts: Mapping[str, list[str]]) -> dict[str, Any]:
    kind = item.get("type")
    if kind == "message":
        ref = {k: v for k, v in item.items()
               if k not in ("content", "status", "role") and v is not None}
        item_id = str(item.get("id") or "")
        ref["text"] = "".join(texts.get(item_id, [])) or _item_text(item)
        return ref
    if kind == "function_call":
        return {"type": "function_call", "id": item.get("id"), "call_id": item.get("call_id")}
    return drop_none(item)


def _finish(status: Any, detail: Any, has_calls: bool, refused: bool) -> tuple[str | None, str | None]:
    """Responses `status` (+ `incomplete_details.reason`) -> (allm reason, raw)."""
    if status == "completed" or status is None:
        if has_calls:
            return "tool_calls", status
        if refused:
            return "refusal", status
        return ("stop", status) if status else (None, None)
    if status == "incomplete":
        if detail == "max_output_tokens":
            return "length", str(detail)
        if detail == "content_filter":
            return "content_filter", str(detail)
        return "other", str(detail or "incomplete")
    if status in ("in_progress", "queued"):
        return None, str(status)
    if status in ("failed", "cancelled"):
        return "error", str(status)
    return "other", str(status)


def _as_events(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A non-streaming `response` object as the events a stream would have sent."""
    events: list[dict[str, Any]] = [{"type": "response.created", "response": body}]
    output = body.get("output")
    for i, item in enumerate(output if isinstance(output, list) else []):
        if not isinstance(item, Mapping):
            continue
        kind = item.get("type")
        if kind == "function_call":
            events.append({"type": "response.output_item.added", "output_index": i,
                           "item": {**item, "arguments": ""}})
            events.append({"type": "response.function_call_arguments.delta",
                           "item_id": item.get("id") or item.get("call_id"),
                           "delta": item.get("arguments") or ""})
        elif kind == "message":
            events.append({"type": "response.output_text.delta", "item_id": item.get("id"),
                           "delta": _item_text(item)})
        events.append({"type": "response.output_item.done", "output_index": i, "item": item})
    status = body.get("status")
    if status == "failed":
        events.append({"type": "response.failed", "response": body})
    elif status in ("in_progress", "queued"):
        events.append({"type": "response.completed", "response": body})
    else:
        events.append({"type": "response.incomplete" if status == "incomplete"
                       else "response.completed", "response": body})
    return events


class ResponsesStreamDecoder:
    """Incremental decoder for one `/responses` SSE body."""

    def __init__(self, headers: Mapping[str, str] | None = None) -> None:
        from ..._http.sse import SSEDecoder

        self._sse = SSEDecoder()
        self._fold = _ResponsesFold(headers=dict(headers or {}))

    def feed(self, data: bytes) -> list[Event]:
        return self._events(self._sse.feed(data))

    def close(self) -> list[Event]:
        out = self._events(self._sse.close())
        out.extend(self._fold.truncated())
        return out

    def _events(self, sse_events: list[Any]) -> list[Event]:
        out: list[Event] = []
        for sse in sse_events:
            data = sse.data
            if not data or data.strip() == "[DONE]":
                continue
            try:
                obj = json.loads(data)
            except ValueError:
                if not self._fold.finished:
                    self._fold.finished = True
                    out.append(ErrorEvent(error=AdapterError(
                        "malformed_response", "OpenAI sent a stream event that is not JSON",
                        provider=PROVIDER, cause=data[:200],
                    )))
                continue
            if not isinstance(obj, Mapping):
                continue
            if "type" not in obj and sse.event:
                obj = {**obj, "type": sse.event}
            elif "type" not in obj and "error" in obj:
                obj = {**obj, "type": "error"}
            out.extend(self._fold.event(obj))
        return out


class ResponsesCodec:
    """The Codec for `POST {base_url}/responses`."""

    provider = PROVIDER
    path = "/responses"

    def __init__(
        self,
        *,
        base_url: str,
        organization: str | None = None,
        project: str | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.organization = organization
        self.project = project
        self.default_headers = dict(default_headers or {})

    def build(self, request: Request, call: Call, *, api_key: str, stream: bool) -> HttpRequest:
        preflight_images(request.messages)
        body = encode_body(request, call, stream=stream)
        params = merged_params(request, call)
        extra_headers = params.get("extra_headers")
        headers = build_headers(
            api_key=api_key, organization=self.organization, project=self.project,
            stream=stream, default_headers=self.default_headers,
            extra_headers=extra_headers if isinstance(extra_headers, Mapping) else None,
        )
        return HttpRequest(method="POST", url=self.base_url + self.path, headers=headers,
                           content=dumps(body))

    def decode(self, status: int, headers: Mapping[str, str], body: bytes) -> list[Event]:
        obj = load_json(body, "response")
        if not isinstance(obj, Mapping):
            raise AdapterError("malformed_response", "OpenAI returned a non-object body",
                               provider=PROVIDER)
        fold = _ResponsesFold(headers=dict(headers))
        if obj.get("error") is not None and obj.get("object") != "response":
            return [ErrorEvent(error=error_from_payload(obj, headers=headers))]
        events: list[Event] = []
        for event in _as_events(obj):
            events.extend(fold.event(event))
        if not fold.finished:
            events.extend(fold.truncated())
        return events

    def stream_decoder(self, headers: Mapping[str, str]) -> ResponsesStreamDecoder:
        return ResponsesStreamDecoder(headers)

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> AdapterError:
        return error_from_response(status, headers, body)
