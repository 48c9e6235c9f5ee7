"""Gemini's OpenAI-compatible endpoint: thought signatures on tool calls.

Gemini returns ``extra_content: {"google": {"thought_signature": ...}}`` on each tool
call and Gemini 3 answers 400 unless the next request sends it back on that call
(https://ai.google.dev/gemini-api/docs/thought-signatures#openai, whose example
answer the bodies below follow). allm keeps it in
``ToolCall.metadata["openai_compat"]["extra_content"]`` and sends it back verbatim.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2

import allm
from allm.collector import StreamCollector
from allm.messages import assistant, tool_result, user
from allm.providers.openai import OpenAI
from allm.providers.openai.chat_codec import ChatCodec, encode_messages

BASE = "https://generativelanguage.googleapis.com/v1beta/openai"
FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"
RECORDING = FIXTURES / "gemini" / "pydantic-ai__test_compatible_api_with_tool_calls_without_id.json"

SIG_A = {"google": {"thought_signature": "<Signature A>"}}
# Parallel calls: only the first carries a signature (the docs' parallel example).
ANSWER: dict[str, Any] = {
    "id": "resp-1", "object": "chat.completion", "model": "gemini-3-pro-preview",
    "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant",
        "tool_calls": [
            {"id": "function-call-1", "type": "function", "extra_content": SIG_A,
             "function": {"name": "check_flight", "arguments": '{"flight":"AA100"}'}},
            {"id": "function-call-2", "type": "function",
             "function": {"name": "check_flight", "arguments": '{"flight":"UA200"}'}},
        ]}}],
    "usage": {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30},
}
DONE: dict[str, Any] = {
    "id": "resp-2", "object": "chat.completion", "model": "gemini-3-pro-preview",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "Both flights are on time."}}],
}


def _sse(answer: dict[str, Any]) -> bytes:
    """The answer as Gemini streams it: every call whole in one delta, no `index`."""
    message = answer["choices"][0]["message"]
    chunk = {"id": answer["id"], "model": answer["model"], "object": "chat.completion.chunk",
             "choices": [{"index": 0, "delta": {"role": "assistant",
                                                 "tool_calls": message["tool_calls"]},
                          "finish_reason": "tool_calls"}]}
    return f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()


def _calls(events: list[Any]) -> tuple[allm.ToolCall, ...]:
    return StreamCollector().collect(events).to_response().tool_calls


def _message(events: list[Any]) -> allm.Message:
    last = events[-1]
    assert isinstance(last, allm.MessageCompleted) and last.message is not None
    return last.message


def test_decode_keeps_the_signature_on_its_call() -> None:
    codec = ChatCodec(base_url=BASE)
    events: list[Any] = codec.decode(200, {}, json.dumps(ANSWER).encode())
    first, second = _calls(events)
    assert first.metadata == {"openai_compat": {"extra_content": SIG_A}}
    assert second.metadata == {}
    completed = [e for e in events if isinstance(e, allm.ToolCallCompleted)]
    assert completed[0].metadata["openai_compat"]["extra_content"] == SIG_A
    message = _message(events)
    assert message.tool_calls[0].metadata["openai_compat"]["extra_content"] == SIG_A


def test_stream_and_body_fold_the_same() -> None:
    codec = ChatCodec(base_url=BASE)
    decoder = codec.stream_decoder({})
    body = _sse(ANSWER)
    streamed: list[Any] = [e for i in range(0, len(body), 7) for e in decoder.feed(body[i:i + 7])]
    streamed += decoder.close()
    assert _calls(streamed) == _calls(list(codec.decode(200, {}, json.dumps(ANSWER).encode())))


def test_the_signature_goes_back_verbatim_on_its_call_only() -> None:
    calls = _calls(list(ChatCodec(base_url=BASE).decode(200, {}, json.dumps(ANSWER).encode())))
    sent = encode_messages((user("status?"), assistant(tool_calls=list(calls)),
                            tool_result(calls[0].id, "on time"),
                            tool_result(calls[1].id, "on time")), "gemini-3-pro-preview")
    first, second = sent[1]["tool_calls"]
    assert first["extra_content"] == SIG_A
    assert "extra_content" not in second
    # An ordinary OpenAI call gains no field.
    plain = encode_messages((assistant(tool_calls=[allm.ToolCall(id="c", name="f")]),),
                            "gpt-4.1")
    assert set(plain[0]["tool_calls"][0]) == {"id", "type", "function"}


def test_chat_loop_and_session_replay_the_signature() -> None:
    bodies = [ANSWER, DONE, ANSWER, DONE]
    seen: list[dict[str, Any]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(json.loads(request.content))
        return httpx2.Response(200, json=bodies[len(seen) - 1])

    adapter = OpenAI(base_url=BASE, endpoint="chat", retry=False,
                     http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))
    flight = allm.Tool(name="check_flight", handler=lambda args: "on time",
                       parameters={"type": "object",
                                   "properties": {"flight": {"type": "string"}}})
    engine = allm.Engine(adapter=adapter, model="gemini-3-pro-preview", tools=[flight])
    result = allm.chat(engine, [allm.user("status of AA100 and UA200?")], api_key="AIza-test",
                       stream=False)
    assert result.final_response is not None
    assert result.final_response.output_text == "Both flights are on time."
    replayed = seen[1]["messages"][1]["tool_calls"]
    assert replayed[0]["extra_content"] == SIG_A and "extra_content" not in replayed[1]

    # A session stored between requests keeps it too.
    session, _ = allm.Session.start(engine, [allm.user("again?")], api_key="AIza-test",
                                    stream=False)
    session = allm.loads(allm.dumps(session))
    assert seen[3]["messages"][1]["tool_calls"][0]["extra_content"] == SIG_A
    stored = [c for m in session.thread.messages for c in m.tool_calls]
    assert stored[0].metadata["openai_compat"]["extra_content"] == SIG_A


def test_recorded_message_level_extra_content_is_kept() -> None:
    """The recording (Gemini 2.5) puts `extra_content` on the message: kept in the
    message's metadata, not sent back (the docs place it on tool calls)."""
    turn = json.loads(RECORDING.read_text())["interactions"][0]
    events = list(ChatCodec(base_url=BASE).decode(200, {}, turn["response"]["body"].encode()))
    message = _message(events)
    recorded = json.loads(turn["response"]["body"])["choices"][0]["message"]
    assert message.metadata["openai_compat"]["extra_content"] == recorded["extra_content"]
    sent = encode_messages((message,), "gemini-2.5-pro")
    assert "extra_content" not in sent[0] and "extra_content" not in sent[0]["tool_calls"][0]
    # (the adapter-level replay of this recording: tests/gemini/test_openai_compat.py)


def test_extra_content_is_not_sent_to_api_openai_com() -> None:
    from allm.messages import ToolCall, assistant, tool_result, user
    from allm.providers.base import Call
    from allm.providers.openai.chat_codec import ChatCodec
    from allm.request import Request

    call = ToolCall(id="c1", name="f", arguments={},
                    metadata={"openai_compat": {"extra_content": {"google": {"thought_signature": "s"}}}})
    request = Request(messages=(user("hi"), assistant("", tool_calls=[call]), tool_result("c1", "ok")),
                      model="gpt-4.1-mini")
    official = ChatCodec(base_url="https://api.openai.com/v1")
    body = official.encode_body(request, Call(model="gpt-4.1-mini"), stream=False)
    assert "extra_content" not in body["messages"][1]["tool_calls"][0]
    compat = ChatCodec(base_url="https://generativelanguage.googleapis.com/v1beta/openai")
    body = compat.encode_body(request, Call(model="gemini-3-pro"), stream=False)
    assert body["messages"][1]["tool_calls"][0]["extra_content"]["google"]["thought_signature"] == "s"
