"""The `allm.testing` conformance suite on the OpenAI adapter, sync and async, both
endpoints.

Scenarios come from the recordings: every recorded model call is served in both wire
modes. A recorded stream is paired with the JSON body it stands for (Responses: the
`response` object its terminal event carries; Chat: the `chat.completion` assembled
from its chunks); a recorded JSON body is paired with the SSE stream the API would
have sent for it, built here from the documented event shapes
(https://platform.openai.com/docs/api-reference/chat-streaming,
https://platform.openai.com/docs/api-reference/responses-streaming), independently of
the decoders."""

from __future__ import annotations

import json
from typing import Any, cast

from allm.messages import user
from allm.providers.base import Adapter, Call
from allm.providers.openai import OpenAI
from allm.request import Request
from allm.testing import AdapterConformance, Recorded, Scenario, Wire

from .recordings import FILES, Interaction, load, naive_sse

SSE_HEADERS = {"content-type": "text/event-stream; charset=utf-8"}
JSON_HEADERS = {"content-type": "application/json"}


def _pieces(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or []


# ------------------------------------------------------------------------------ chat
def chat_body_to_sse(body: dict[str, Any]) -> str:
    base: dict[str, Any] = {k: body[k] for k in ("id", "model", "created") if k in body}
    base["object"] = "chat.completion.chunk"

    def data(choices: list[Any], **kw: Any) -> str:
        return f"data: {json.dumps({**base, 'choices': choices, **kw})}\n\n"

    choice = body["choices"][0]
    msg = choice["message"]
    out = [data([{"index": 0, "delta": {"role": "assistant", "content": ""}}])]
    for piece in _pieces(msg.get("content") or "", 5):
        out.append(data([{"index": 0, "delta": {"content": piece}}]))
    for i, tc in enumerate(msg.get("tool_calls") or []):
        out.append(data([{"index": 0, "delta": {"tool_calls": [
            {"index": i, "id": tc["id"], "type": "function",
             "function": {"name": tc["function"]["name"], "arguments": ""}}]}}]))
        for piece in _pieces(tc["function"]["arguments"], 4):
            out.append(data([{"index": 0, "delta": {"tool_calls": [
                {"index": i, "function": {"arguments": piece}}]}}]))
    out.append(data([{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}]))
    if body.get("usage"):
        out.append(data([], usage=body["usage"]))
    out.append("data: [DONE]\n\n")
    return "".join(out)


def chat_sse_to_body(raw: str) -> dict[str, Any]:
    text: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    finish: str | None = None
    usage: dict[str, Any] | None = None
    head: dict[str, Any] = {}
    for _, data in naive_sse(raw):
        if data.strip() == "[DONE]":
            break
        chunk = json.loads(data)
        head = head or {k: chunk[k] for k in ("id", "model") if k in chunk}
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            text.append(delta.get("content") or "")
            for tc in delta.get("tool_calls") or []:
                entry = calls.setdefault(tc["index"], {"id": None, "type": "function",
                                                       "function": {"name": "", "arguments": ""}})
                entry["id"] = entry["id"] or tc.get("id")
                fn = tc.get("function") or {}
                entry["function"]["name"] += fn.get("name") or ""
                entry["function"]["arguments"] += fn.get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) or None}
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    return {**head, "object": "chat.completion", "usage": usage,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}]}


# ------------------------------------------------------------------------- responses
def response_body_to_sse(body: dict[str, Any]) -> str:
    def ev(data: dict[str, Any]) -> str:
        return f"event: {data['type']}\ndata: {json.dumps(data)}\n\n"

    created = {**body, "status": "in_progress", "output": [], "usage": None}
    out = [ev({"type": "response.created", "response": created}),
           ev({"type": "response.in_progress", "response": created})]
    for i, item in enumerate(body.get("output") or []):
        kind = item.get("type")
        if kind == "message":
            out.append(ev({"type": "response.output_item.added", "output_index": i,
                           "item": {**item, "content": [], "status": "in_progress"}}))
            for j, part in enumerate(item.get("content") or []):
                if part.get("type") != "output_text":
                    continue
                for piece in _pieces(part["text"], 5):
                    out.append(ev({"type": "response.output_text.delta", "item_id": item["id"],
                                   "output_index": i, "content_index": j, "delta": piece}))
                out.append(ev({"type": "response.output_text.done", "item_id": item["id"],
                               "output_index": i, "content_index": j, "text": part["text"]}))
        elif kind == "function_call":
            out.append(ev({"type": "response.output_item.added", "output_index": i,
                           "item": {**item, "arguments": "", "status": "in_progress"}}))
            for piece in _pieces(item["arguments"], 4):
                out.append(ev({"type": "response.function_call_arguments.delta",
                               "item_id": item["id"], "output_index": i, "delta": piece}))
            out.append(ev({"type": "response.function_call_arguments.done",
                           "item_id": item["id"], "output_index": i,
                           "arguments": item["arguments"]}))
        else:
            out.append(ev({"type": "response.output_item.added", "output_index": i,
                           "item": item}))
        out.append(ev({"type": "response.output_item.done", "output_index": i, "item": item}))
    terminal = {"completed": "response.completed", "incomplete": "response.incomplete",
                "failed": "response.failed"}.get(body["status"], "response.completed")
    out.append(ev({"type": terminal, "response": body}))
    return "".join(out)


def response_sse_to_body(raw: str) -> dict[str, Any]:
    final: dict[str, Any] = {}
    for _, data in naive_sse(raw):
        obj = json.loads(data)
        if obj.get("type") in ("response.completed", "response.incomplete", "response.failed"):
            final = obj["response"]
    return final


# ---------------------------------------------------------------------------- scenarios
def _scenario(path_stem: str, it: Interaction) -> Scenario | None:
    name = f"{path_stem.removeprefix('pydantic-ai__')}#{it.index}"
    request = Request(messages=(user("hi"),))
    call = Call(model=it.request.get("model") or "gpt-4o", api_key="sk-test",
                adapter_opts={"endpoint": it.api})
    if it.status != 200:
        rec = Recorded(status=it.status, headers=it.headers, body=it.body)
        return Scenario(name=name, request=request, call=call, stream=[rec], non_stream=[rec],
                        expect_error=True)
    if it.api == "chat":
        if it.is_stream:
            stream_body, json_body = it.body, chat_sse_to_body(it.body)
        else:
            json_body = json.loads(it.body)
            stream_body = chat_body_to_sse(json_body)
    else:
        json_body = response_sse_to_body(it.body) if it.is_stream else json.loads(it.body)
        if json_body.get("status") in ("queued", "in_progress"):
            return None  # a background job still queued: no answer to stream yet
        stream_body = it.body if it.is_stream else response_body_to_sse(json_body)
    return Scenario(
        name=name, request=request, call=call,
        stream=[Recorded(headers=SSE_HEADERS, body=stream_body, chunk_size=97)],
        non_stream=[Recorded(headers=JSON_HEADERS, body=json.dumps(json_body))],
        expect_error=json_body.get("status") == "failed",
    )


def scenarios() -> list[Scenario]:
    out = []
    for path in FILES:
        for it in load(path):
            if it.is_model_call:
                sc = _scenario(path.stem, it)
                if sc is not None:
                    out.append(sc)
    return out


SCENARIOS = scenarios()


class TestOpenAIConformance(AdapterConformance):
    def make_adapter(self, wire: Wire) -> Adapter:
        adapter = OpenAI(http_client=wire.http_client, async_http_client=wire.async_http_client,
                         retry=False)
        return cast(Adapter, adapter)

    def scenarios(self) -> list[Scenario]:
        return SCENARIOS


def test_scenarios_cover_the_recorded_model_calls() -> None:
    calls = [it for p in FILES for it in load(p) if it.is_model_call]
    queued = 2  # test_background_mode_vcr: the POST and the first poll are still queued
    assert len(SCENARIOS) == len(calls) - queued
    assert sum(s.expect_error for s in SCENARIOS) == 7  # the recorded 400s and 404
    assert any(s.name.startswith("test_openai_responses_streaming_usage") for s in SCENARIOS)
