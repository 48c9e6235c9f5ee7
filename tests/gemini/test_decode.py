"""Response decoding edge cases the recordings do not cover (shapes from the Gemini API
reference): blocked prompts, finish reasons, parts allm does not model, missing ids."""

from __future__ import annotations

import json
from typing import Any

import pytest

from allm.collector import StreamCollector
from allm.events import Event, MessageCompleted, ToolCallCompleted
from allm.providers.gemini.decode import GeminiStreamDecoder, decode_body
from allm.request import Response


def fold(events: list[Event]) -> Response:
    return StreamCollector().collect(events).to_response()


def sse(*objs: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + json.dumps(o).encode() + b"\r\n\r\n" for o in objs)


def streamed(*objs: dict[str, Any]) -> list[Event]:
    decoder = GeminiStreamDecoder()
    return decoder.feed(sse(*objs)) + decoder.close()


def both(obj: dict[str, Any]) -> tuple[Response, Response]:
    return fold(decode_body(json.dumps(obj).encode())), fold(streamed(obj))


BLOCKED = {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": [
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}]},
    "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7},
    "modelVersion": "gemini-2.5-flash", "responseId": "blk"}


def test_blocked_prompt_same_streaming_or_not() -> None:
    plain, stream = both(BLOCKED)
    assert plain == stream
    assert plain.finish_reason == "content_filter"
    assert plain.raw_finish_reason == "SAFETY"
    assert plain.output_text == ""
    assert plain.error is None
    assert plain.metadata["gemini"]["block_reason"] == "SAFETY"
    assert plain.metadata["gemini"]["prompt_feedback"]["blockReason"] == "SAFETY"
    assert plain.usage.input_tokens == 7


@pytest.mark.parametrize(("raw", "finish"), [
    ("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"),
    ("RECITATION", "content_filter"), ("BLOCKLIST", "content_filter"),
    ("PROHIBITED_CONTENT", "content_filter"), ("SPII", "content_filter"),
    ("IMAGE_SAFETY", "content_filter"), ("LANGUAGE", "content_filter"),
    ("MALFORMED_FUNCTION_CALL", "error"), ("UNEXPECTED_TOOL_CALL", "error"),
    ("TOO_MANY_TOOL_CALLS", "error"), ("OTHER", "other"), ("FINISH_REASON_UNSPECIFIED", "other"),
    ("SOMETHING_NEW", "other"),
])
def test_finish_reasons(raw: str, finish: str) -> None:
    obj = {"candidates": [{"content": {"role": "model", "parts": [{"text": "x"}]},
                           "finishReason": raw, "finishMessage": "why"}]}
    plain, stream = both(obj)
    assert plain == stream
    assert plain.finish_reason == finish
    assert plain.raw_finish_reason == raw
    assert plain.error is None  # a model-side finish is not a transport failure
    assert plain.metadata["gemini"]["finish_message"] == "why"


def test_malformed_function_call_has_no_content() -> None:
    obj = {"candidates": [{"finishReason": "MALFORMED_FUNCTION_CALL", "index": 0}],
           "usageMetadata": {"promptTokenCount": 2595, "totalTokenCount": 2595}}
    plain, stream = both(obj)
    assert plain == stream
    assert plain.finish_reason == "error" and plain.raw_finish_reason == "MALFORMED_FUNCTION_CALL"
    assert plain.tool_calls == () and plain.output_text == ""


def test_stop_with_function_call_is_tool_calls_and_ids_are_stable() -> None:
    obj = {"responseId": "r-9", "candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"name": "get", "args": {"q": 1}}},
        {"functionCall": {"name": "get", "args": {"q": 1}}},
        {"functionCall": {"name": "get", "args": {}, "id": "model-id"}},
    ]}, "finishReason": "STOP"}]}
    plain, stream = both(obj)
    assert plain == stream
    assert plain.finish_reason == "tool_calls"
    ids = [c.id for c in plain.tool_calls]
    assert ids[2] == "model-id"
    assert len(set(ids)) == 3 and all(ids)
    again = fold(decode_body(json.dumps(obj).encode()))
    assert [c.id for c in again.tool_calls] == ids  # same bytes, same ids
    other = fold(decode_body(json.dumps({**obj, "responseId": "r-10"}).encode()))
    assert [c.id for c in other.tool_calls][:2] != ids[:2]  # another turn, other ids


def test_non_object_args_kept_raw() -> None:
    obj = {"candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"name": "f", "args": [1, 2]}}]}, "finishReason": "STOP"}]}
    events = decode_body(json.dumps(obj).encode())
    done = [e for e in events if isinstance(e, ToolCallCompleted)][0]
    assert done.arguments == {} and done.raw_arguments == "[1,2]"
    assert done.metadata["invalid_arguments"] is True


def test_unknown_parts_kept_verbatim_for_replay() -> None:
    code = {"executableCode": {"language": "PYTHON", "code": "print(1)"}}
    result = {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "1\n"}}
    obj = {"candidates": [{"content": {"role": "model", "parts": [
        {"text": "Let me run it."}, code, result, {"text": "It prints 1."}]},
        "finishReason": "STOP", "groundingMetadata": {"x": 1}}], "newField": {"a": 1}}
    plain, stream = both(obj)
    assert plain == stream
    assert plain.output_text == "Let me run it.It prints 1."
    assert plain.message is not None
    assert plain.message.metadata["gemini"]["parts"] == [
        {"type": "text", "chars": 14}, {"type": "raw", "part": code},
        {"type": "raw", "part": result}, {"type": "text", "chars": 12}]
    assert plain.metadata["gemini"]["grounding_metadata"] == {"x": 1}


def test_signature_in_trailing_empty_chunk_joins_its_text_run() -> None:
    chunks: list[dict[str, Any]] = [
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hello "}]}}]},
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "world"}]}}]},
        {"candidates": [{"content": {"role": "model", "parts": [
            {"text": "", "thoughtSignature": "c2ln"}]}, "finishReason": "STOP"}]},
    ]
    resp = fold(streamed(*chunks))
    assert resp.output_text == "Hello world"
    assert resp.message is not None
    assert resp.message.metadata["gemini"]["parts"] == [
        {"type": "text", "chars": 11, "thoughtSignature": "c2ln"}]
    plain = fold(decode_body(json.dumps({"candidates": [{"content": {"role": "model", "parts": [
        {"text": "Hello world", "thoughtSignature": "c2ln"}]}, "finishReason": "STOP"}]}
    ).encode()))
    assert plain.message == resp.message


def test_usage_last_report_wins_and_reasoning_counts_in_output() -> None:
    chunks: list[dict[str, Any]] = [
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "a"}]}}],
         "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5}},
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "b"}]},
                         "finishReason": "STOP"}],
         "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 2,
                           "thoughtsTokenCount": 10, "cachedContentTokenCount": 3,
                           "toolUsePromptTokenCount": 4, "totalTokenCount": 21}},
    ]
    events = streamed(*chunks)
    done = events[-1]
    assert isinstance(done, MessageCompleted) and done.usage is not None
    u = done.usage
    assert (u.input_tokens, u.output_tokens, u.reasoning_tokens, u.cached_input_tokens,
            u.total_tokens) == (5, 12, 10, 3, 21)
    assert u.extra == {"tool_use_prompt_tokens": 4}


def test_stream_without_finish_reason() -> None:
    resp = fold(streamed({"candidates": [{"content": {"role": "model",
                                                      "parts": [{"text": "cut"}]}}]}))
    assert resp.output_text == "cut" and resp.finish_reason is None and resp.error is None


def test_not_json_body() -> None:
    events = decode_body(b"<html>")
    assert len(events) == 1 and events[0].type == "error"


def test_stream_cut_short_keeps_usage_so_far() -> None:
    """The runtime ends a broken stream with an error event; the usage reported so far
    (cumulative in each Gemini chunk) survives in the fold."""
    from allm.errors import AdapterError
    from allm.events import ErrorEvent, RawChunk

    decoder = GeminiStreamDecoder()
    events = decoder.feed(sse({"candidates": [{"content": {"role": "model", "parts": [
        {"text": "Half an ans"}]}}], "usageMetadata": {"promptTokenCount": 9,
                                                     "candidatesTokenCount": 3,
                                                     "totalTokenCount": 12}}))
    assert isinstance(events[-1], RawChunk)
    events.append(ErrorEvent(error=AdapterError("network_error", "connection reset")))
    resp = fold(events)
    assert resp.output_text == "Half an ans"
    assert resp.usage.input_tokens == 9 and resp.usage.output_tokens == 3
    assert resp.finish_reason == "error"
