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
completed) through the same `responses_fold.ResponsesFold`. Must not do I/O or import
httpx2.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...errors import AdapterError, ValidationError
from ...events import ErrorEvent, Event
from ...messages import Message, TextPart, ToolCall
from ._shared import (
    CodecBase,
    SSEJsonDecoder,
    accepts_reasoning,
    drop_none,
    image_url,
    is_reasoning_model,
    load_json,
    sampling_params,
)
from .errors import PROVIDER, error_from_payload
from .params import merged_params, tool_choice_name
from .responses_fold import ResponsesFold, as_events, decode_text_only

if TYPE_CHECKING:
    from ...request import Request
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




class ResponsesStreamDecoder(SSEJsonDecoder):
    """Incremental decoder for one `/responses` SSE body."""

    noun = "stream event"

    def __init__(self, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(ResponsesFold(headers=dict(headers or {})))

    def _handle(self, obj: Any, sse: Any) -> list[Event]:
        if type(obj) is not dict and not isinstance(obj, Mapping):
            return []
        if "type" in obj:
            pass
        elif sse.event:
            obj = {**obj, "type": sse.event}
        elif "error" in obj:
            obj = {**obj, "type": "error"}
        return self._fold.event(obj)  # type: ignore[no-any-return]


class ResponsesCodec(CodecBase):
    """The Codec for `POST {base_url}/responses`."""

    path = "/responses"

    def encode_body(self, request: Request, call: Call, *, stream: bool) -> dict[str, Any]:
        return encode_body(request, call, stream=stream)

    def decode(self, status: int, headers: Mapping[str, str], body: bytes) -> list[Event]:
        obj = load_json(body, "response")
        if not isinstance(obj, Mapping):
            raise AdapterError("malformed_response", "OpenAI returned a non-object body",
                               provider=PROVIDER)
        if obj.get("error") is not None and obj.get("object") != "response":
            return [ErrorEvent(error=error_from_payload(obj, headers=headers))]
        fast = decode_text_only(obj)
        if fast is not None:
            return fast
        fold = ResponsesFold(headers=dict(headers))
        events: list[Event] = []
        for event in as_events(obj):
            events.extend(fold.event(event))
        if not fold.finished:
            events.extend(fold.truncated())
        return events

    def stream_decoder(self, headers: Mapping[str, str]) -> ResponsesStreamDecoder:
        return ResponsesStreamDecoder(headers)
