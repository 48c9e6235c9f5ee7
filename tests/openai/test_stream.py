"""Stream decoding edge cases: any chunking, truncation, compatible-server quirks,
invalid tool arguments, refusals, content filters, unknown events."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from allm.collector import StreamCollector
from allm.errors import AdapterError
from allm.events import (
    ErrorEvent,
    MessageCompleted,
    MessageStarted,
    TextCompleted,
    TextDelta,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
)
from allm.providers.openai import ChatCodec, ResponsesCodec
from allm.request import Response

from .recordings import FILES, load

CHAT = ChatCodec(base_url="https://api.openai.com/v1")
RESPONSES = ResponsesCodec(base_url="https://api.openai.com/v1")


def run(codec: Any, chunks: list[bytes]) -> list[Any]:
    dec = codec.stream_decoder({})
    out: list[Any] = []
    for chunk in chunks:
        out.extend(dec.feed(chunk))
    out.extend(dec.close())
    return out


def fold(events: list[Any]) -> Response:
    return StreamCollector().collect(events).to_response()


def chat_sse(*chunks: dict[str, Any], done: bool = True) -> bytes:
    text = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks)
    return (text + ("data: [DONE]\n\n" if done else "")).encode()


def resp_sse(*events: dict[str, Any]) -> bytes:
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()


def chunk(delta: dict[str, Any], finish: str | None = None, **kw: Any) -> dict[str, Any]:
    return {"id": "c1", "model": "m", "choices": [{"index": 0, "delta": delta,
                                                   "finish_reason": finish}], **kw}


# ------------------------------------------------------------------- any chunking
STREAMS = [(it.api, it.body.encode()) for p in FILES for it in load(p)
           if it.is_model_call and it.is_stream and it.status < 400]


@pytest.mark.parametrize("index", range(len(STREAMS)))
def test_any_chunking_gives_the_same_events(index: int) -> None:
    api, body = STREAMS[index]
    codec = CHAT if api == "chat" else RESPONSES
    whole = run(codec, [body])
    rng = random.Random(index)
    for _ in range(3):
        cuts = sorted(rng.sample(range(1, len(body)), min(len(body) - 1, 40)))
        parts = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
        assert fold(run(codec, parts)) == fold(whole)
    if len(body) < 20_000:
        split = run(codec, [body[i:i + 1] for i in range(len(body))])
        assert [type(e) for e in split if not isinstance(e, TextDelta)] == [
            type(e) for e in whole if not isinstance(e, TextDelta)]
        assert fold(split) == fold(whole)


def test_crlf_line_endings() -> None:
    raw = chat_sse(chunk({"content": "Hi"}), chunk({}, "stop")).replace(b"\n", b"\r\n")
    assert fold(run(CHAT, [raw])).output_text == "Hi"


# ------------------------------------------------------------------------- chat
def test_chat_event_sequence() -> None:
    raw = chat_sse(
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hel"}), chunk({"content": "lo"}),
        chunk({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                               "function": {"name": "f", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"x":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
        chunk({}, "tool_calls"),
        {"id": "c1", "model": "m", "choices": [], "usage": {
            "prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12,
            "prompt_tokens_details": {"cached_tokens": 2},
            "completion_tokens_details": {"reasoning_tokens": 3}}},
    )
    events = run(CHAT, [raw])
    assert [type(e) for e in events] == [
        MessageStarted, TextDelta, TextDelta, ToolCallStarted, ToolCallDelta, ToolCallDelta,
        ToolCallCompleted, TextCompleted, MessageCompleted]
    done = events[-1]
    assert done.finish_reason == "tool_calls" and done.raw_finish_reason == "tool_calls"
    assert done.usage.cached_input_tokens == 2 and done.usage.reasoning_tokens == 3
    assert events[6].arguments == {"x": 1}


def test_chat_truncated_stream_is_an_error_with_text_kept() -> None:
    raw = chat_sse(chunk({"content": "Half"}), done=False)
    events = run(CHAT, [raw])
    assert isinstance(events[-1], ErrorEvent)
    assert events[-1].error.reason == "network_error"
    resp = fold(events)
    assert resp.output_text == "Half" and resp.finish_reason == "error"


def test_chat_finish_without_done_is_complete() -> None:
    raw = chat_sse(chunk({"content": "ok"}), chunk({}, "stop"), done=False)
    resp = fold(run(CHAT, [raw]))
    assert resp.finish_reason == "stop" and resp.error is None


def test_chat_compatible_server_quirks() -> None:
    # No `index`, each call complete in one chunk, "stop" with tool calls, parsed
    # arguments, DeepSeek-style reasoning_content.
    raw = chat_sse(
        chunk({"reasoning_content": "thinking..."}),
        chunk({"tool_calls": [{"id": "a", "function": {"name": "f", "arguments": {"k": 1}}}]}),
        chunk({"tool_calls": [{"id": "b", "function": {"name": "g", "arguments": "{}"}}]}),
        chunk({}, "stop"),
    )
    resp = fold(run(CHAT, [raw]))
    assert [(c.id, c.name, c.arguments) for c in resp.tool_calls] == [
        ("a", "f", {"k": 1}), ("b", "g", {})]
    assert resp.finish_reason == "tool_calls" and resp.raw_finish_reason == "stop"
    assert resp.reasoning == "thinking..."


def test_chat_missing_tool_call_id_gets_one() -> None:
    raw = chat_sse(chunk({"tool_calls": [{"index": 0, "function": {"name": "f",
                                                                   "arguments": "{}"}}]}),
                   chunk({}, "tool_calls"))
    assert fold(run(CHAT, [raw])).tool_calls[0].id == "call_0"


@pytest.mark.parametrize("codec", ["chat", "responses"])
def test_invalid_tool_arguments(codec: str) -> None:
    if codec == "chat":
        body = {"id": "c", "model": "m", "choices": [{"index": 0, "finish_reason": "tool_calls",
                "message": {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "call_1", "type": "function",
                     "function": {"name": "f", "arguments": '{"a": '}}]}}]}
        events = CHAT.decode(200, {}, json.dumps(body).encode())
    else:
        body = {"id": "r", "object": "response", "status": "completed", "output": [
            {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f",
             "arguments": '{"a": '}]}
        events = RESPONSES.decode(200, {}, json.dumps(body).encode())
    completed = [e for e in events if isinstance(e, ToolCallCompleted)]
    assert len(completed) == 1
    assert completed[0].arguments == {}
    assert completed[0].raw_arguments == '{"a": '
    assert completed[0].metadata["invalid_arguments"] is True
    call = fold(events).tool_calls[0]
    assert call.arguments == {} and call.metadata["invalid_arguments"] is True


def test_chat_refusal_and_content_filter() -> None:
    choice: dict[str, Any] = {"index": 0, "finish_reason": "stop",
                              "message": {"role": "assistant", "content": None,
                                          "refusal": "I can't help with that."}}
    body = {"id": "c", "model": "m", "choices": [choice]}
    resp = fold(CHAT.decode(200, {}, json.dumps(body).encode()))
    assert resp.finish_reason == "refusal" and resp.raw_finish_reason == "stop"
    assert resp.metadata["refusal"] == "I can't help with that."
    assert resp.output_text == ""
    choice.update(finish_reason="content_filter",
                  message={"role": "assistant", "content": "partial"})
    resp = fold(CHAT.decode(200, {}, json.dumps(body).encode()))
    assert resp.finish_reason == "content_filter" and resp.output_text == "partial"


def test_chat_unknown_fields_and_garbage() -> None:
    raw = (b": keep-alive comment\n\n"
           + chat_sse(chunk({"content": "a", "audio": {"x": 1}, "new_thing": [1]},
                            obfuscation="zz", brand_new={"a": 1}),
                      {"id": "c1", "object": "unknown", "choices": "oops"},
                      chunk({}, "some_future_reason")))
    resp = fold(run(CHAT, [raw]))
    assert resp.output_text == "a"
    assert resp.finish_reason == "other" and resp.raw_finish_reason == "some_future_reason"


def test_non_json_chunk_is_a_malformed_response() -> None:
    events = run(CHAT, [b"data: {not json\n\n"])
    assert isinstance(events[-1], ErrorEvent)
    assert events[-1].error.reason == "malformed_response"


def test_non_json_body_raises_malformed_response() -> None:
    with pytest.raises(AdapterError) as info:
        CHAT.decode(200, {}, b"<html>")
    assert info.value.reason == "malformed_response"
    with pytest.raises(AdapterError):
        RESPONSES.decode(200, {}, b"[]")


# -------------------------------------------------------------------- responses
CREATED = {"type": "response.created", "response": {"id": "resp_1", "model": "gpt-5",
                                                    "status": "in_progress", "output": []}}


def test_responses_stream_sequence_and_replay_metadata() -> None:
    raw = resp_sse(
        CREATED,
        {"type": "response.output_item.added", "output_index": 0,
         "item": {"type": "reasoning", "id": "rs_1", "summary": []}},
        {"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "delta": "Think"},
        {"type": "response.output_item.done", "output_index": 0,
         "item": {"type": "reasoning", "id": "rs_1", "encrypted_content": "ENC",
                  "summary": [{"type": "summary_text", "text": "Think"}]}},
        {"type": "response.output_item.added", "output_index": 1,
         "item": {"type": "message", "id": "msg_1", "role": "assistant", "content": []}},
        {"type": "response.output_text.delta", "item_id": "msg_1", "delta": "Hi"},
        {"type": "response.brand_new_event", "foo": 1},
        {"type": "response.output_item.added", "output_index": 2,
         "item": {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f",
                  "arguments": ""}},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "delta": '{"a"'},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "delta": ":1}"},
        {"type": "response.output_item.done", "output_index": 2,
         "item": {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f",
                  "arguments": '{"a":1}'}},
        {"type": "response.completed", "response": {
            "id": "resp_1", "model": "gpt-5", "status": "completed",
            "usage": {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7,
                      "input_tokens_details": {"cached_tokens": 1},
                      "output_tokens_details": {"reasoning_tokens": 2}}}},
    )
    events = run(RESPONSES, [raw])
    assert [type(e) for e in events] == [
        MessageStarted, TextDelta, ToolCallStarted, ToolCallDelta, ToolCallDelta,
        ToolCallCompleted, TextCompleted, MessageCompleted]
    resp = fold(events)
    assert resp.id == "resp_1" and resp.output_text == "Hi"
    assert resp.finish_reason == "tool_calls"
    assert resp.usage.cached_input_tokens == 1 and resp.usage.reasoning_tokens == 2
    assert resp.reasoning == "Think"
    assert resp.tool_calls[0].metadata == {"openai": {"item_id": "fc_1"}}
    assert resp.message is not None
    items = resp.message.metadata["openai"]["items"]
    assert items[0]["encrypted_content"] == "ENC"
    assert items[1] == {"type": "message", "id": "msg_1", "text": "Hi"}
    assert items[2] == {"type": "function_call", "id": "fc_1", "call_id": "call_1"}


@pytest.mark.parametrize(("details", "finish"), [
    ({"reason": "max_output_tokens"}, "length"), ({"reason": "content_filter"}, "content_filter"),
    ({"reason": "something"}, "other"),
])
def test_responses_incomplete(details: dict[str, Any], finish: str) -> None:
    raw = resp_sse(CREATED,
                   {"type": "response.output_text.delta", "item_id": "m", "delta": "par"},
                   {"type": "response.incomplete", "response": {
                       "id": "resp_1", "status": "incomplete", "incomplete_details": details}})
    resp = fold(run(RESPONSES, [raw]))
    assert resp.finish_reason == finish and resp.output_text == "par"
    assert resp.metadata["incomplete_details"] == details


def test_responses_refusal() -> None:
    body = {"id": "r", "object": "response", "status": "completed", "output": [
        {"type": "message", "id": "msg_1", "role": "assistant",
         "content": [{"type": "refusal", "refusal": "No."}]}]}
    resp = fold(RESPONSES.decode(200, {}, json.dumps(body).encode()))
    assert resp.finish_reason == "refusal" and resp.metadata["refusal"] == "No."


def test_responses_truncated_stream() -> None:
    raw = resp_sse(CREATED, {"type": "response.output_text.delta", "item_id": "m",
                             "delta": "half"})
    events = run(RESPONSES, [raw])
    assert isinstance(events[-1], ErrorEvent) and events[-1].error.reason == "network_error"
    assert fold(events).output_text == "half"


def test_responses_unknown_items_kept_for_replay_not_crashing() -> None:
    body = {"id": "r", "object": "response", "status": "completed", "output": [
        {"type": "web_search_call", "id": "ws_1", "status": "completed",
         "action": {"type": "search", "query": "q"}},
        {"type": "future_item", "id": "x_1", "payload": [1, 2]},
        {"type": "message", "id": "msg_1", "role": "assistant",
         "content": [{"type": "output_text", "text": "A"}, {"type": "new_part", "x": 1}]}]}
    resp = fold(RESPONSES.decode(200, {}, json.dumps(body).encode()))
    assert resp.output_text == "A" and resp.finish_reason == "stop"
    assert resp.message is not None
    kinds = [i["type"] for i in resp.message.metadata["openai"]["items"]]
    assert kinds == ["web_search_call", "future_item", "message"]


def test_chat_whole_calls_all_at_index_zero() -> None:
    raw = chat_sse(
        chunk({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f",
                                                                   "arguments": "{}"}}]}),
        chunk({"tool_calls": [{"index": 0, "id": "b", "function": {"name": "g",
                                                                   "arguments": '{"x":1}'}}]}),
        chunk({}, "tool_calls"),
    )
    resp = fold(run(CHAT, [raw]))
    assert [(c.id, c.name, c.arguments) for c in resp.tool_calls] == [
        ("a", "f", {}), ("b", "g", {"x": 1})]
