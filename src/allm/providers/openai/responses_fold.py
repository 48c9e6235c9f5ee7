"""The Responses API answer fold (sans-IO): semantic stream events -> allm events.

Owns `ResponsesFold`, the state of one `/responses` answer fed event by event
(https://platform.openai.com/docs/api-reference/responses-streaming): text and
function-call argument deltas, finished output items, the terminal
`response.completed` / `response.incomplete` / `response.failed` / `error`, and the
replay metadata kept on the assistant message (see `responses_codec`). Also
`as_events`, which replays a non-streaming `response` object as the events a stream
would have sent, so both wire modes go through this one fold. Must not do I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...errors import AdapterError
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
from ...messages import Message, ToolCall
from .._common import parse_arguments
from ._shared import drop_none, usage_from_responses
from .errors import PROVIDER, error_from_payload

if TYPE_CHECKING:
    from ...request import Usage

__all__ = ["ResponsesFold", "as_events", "decode_text_only"]

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
        for p in parts if isinstance(p, dict) and p.get("type") == kind
    )


@dataclass(slots=True)
class ResponsesFold:
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
        if isinstance(response, dict):
            self.id = response.get("id") if isinstance(response.get("id"), str) else None
            self.model = response.get("model") if isinstance(response.get("model"), str) else None
        out.append(MessageStarted(id=self.id, model=self.model))

    def event(self, data: Mapping[str, Any]) -> list[Event]:
        if self.finished:
            return []
        out: list[Event] = []
        kind = data.get("type")
        if kind == "response.output_text.delta" and self.started:  # the hot path
            self._text(str(data.get("item_id") or ""), data.get("delta"), out)
            return out
        if kind in ("response.created", "response.in_progress", "response.queued"):
            self._start(data.get("response"), out)
            return out
        if kind == "error":
            self.finished = True
            return [ErrorEvent(error=error_from_payload(data, headers=self.headers))]
        if kind == "response.failed":
            self.finished = True
            response = data.get("response")
            err = response.get("error") if isinstance(response, dict) else None
            payload = err if isinstance(err, dict) else {"message": "the response failed"}
            return [ErrorEvent(error=error_from_payload(payload, headers=self.headers))]
        self._start(None, out)
        if kind == "response.output_item.added":
            item, index = data.get("item"), data.get("output_index")
            if isinstance(item, dict):
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
        if not isinstance(item, dict) or item.get("type") != "function_call":
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
        if not isinstance(item, dict):
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
        response = response if isinstance(response, dict) else {}
        output = response.get("output")
        if isinstance(output, list) and output:
            # The final response object is authoritative for anything a stream
            # skipped (items without added/done events).
            for i, item in enumerate(output):
                if isinstance(item, dict) and i not in self.done_items:
                    self._item_done({"item": item, "output_index": i}, out)
        for call in self.calls.values():
            self._complete_call(call, out)
        # Items the stream announced but never finished still count (their text and
        # arguments came as deltas).
        merged = {**self.added_items, **self.done_items}
        items = [merged[i] for i in sorted(merged)]
        if isinstance(output, list) and output:
            # Replay what the final object says (OpenAI re-encrypts reasoning there).
            items = [dict(item) for item in output if isinstance(item, dict)]
        text = "".join("".join(self.texts[i]) for i in self.text_order)
        if text:
            out.append(TextCompleted(text=text))
        status = response.get("status")
        details = response.get("incomplete_details")
        detail_reason = details.get("reason") if isinstance(details, dict) else None
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
                       for part in (item.get("content") or []) if isinstance(part, dict)
                       for a in (part.get("annotations") or []) if isinstance(a, dict)]
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
                       if isinstance(s, dict) and isinstance(s.get("text"), str))


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


def as_events(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A non-streaming `response` object as the events a stream would have sent."""
    events: list[dict[str, Any]] = [{"type": "response.created", "response": body}]
    output = body.get("output")
    for i, item in enumerate(output if isinstance(output, list) else []):
        if not isinstance(item, dict):
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




def decode_text_only(body: Mapping[str, Any]) -> list[Event] | None:
    """A completed non-streaming `response` whose output is plain text messages only,
    decoded directly: the same events `as_events` + `ResponsesFold` give, without
    building and dispatching the replayed stream events (issue 10, non-streaming
    target). None: any other shape (calls, reasoning, refusals, annotations, another
    status), which the caller replays through the fold."""
    if body.get("status") != "completed":
        return None
    output = body.get("output")
    if type(output) is not list:
        return None
    texts: dict[str, list[str]] = {}
    for item in output:
        if type(item) is not dict or item.get("type") != "message":
            return None
        parts = item.get("content")
        if type(parts) is not list:
            return None
        for part in parts:
            if (type(part) is not dict or part.get("type") != "output_text"
                    or part.get("annotations")):
                return None
    resp_id, model = body.get("id"), body.get("model")
    resp_id = resp_id if isinstance(resp_id, str) else None
    model = model if isinstance(model, str) else None
    out: list[Event] = [MessageStarted(id=resp_id, model=model)]
    order: list[str] = []
    for item in output:
        item_id = str(item.get("id") or "")
        delta = _item_text(item)
        if delta:  # what `ResponsesFold._text` keeps
            if item_id not in texts:
                texts[item_id] = []
                order.append(item_id)
            texts[item_id].append(delta)
            out.append(TextDelta(delta=delta, id=item_id or None))
    text = "".join("".join(texts[i]) for i in order)
    if text:
        out.append(TextCompleted(text=text))
    details = body.get("incomplete_details")
    detail_reason = details.get("reason") if isinstance(details, dict) else None
    metadata: dict[str, Any] = {"status": "completed"}
    if detail_reason is not None:
        metadata["incomplete_details"] = {"reason": detail_reason}
    for key in ("service_tier", "previous_response_id", "conversation"):
        if body.get(key) is not None:
            metadata[key] = body[key]
    message_meta: dict[str, Any] = {"openai": {
        "response_id": resp_id or body.get("id"),
        "items": [_replay_item(dict(item), texts) for item in output],
    }}
    out.append(MessageCompleted(
        message=Message(role="assistant", content=text, tool_calls=(), metadata=message_meta),
        finish_reason="stop", raw_finish_reason="completed",
        usage=usage_from_responses(body.get("usage")),
        id=resp_id or body.get("id"), model=model or body.get("model"),
        metadata=metadata,
    ))
    return out
