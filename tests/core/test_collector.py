"""StreamCollector fold rules (reference §5, adapted)."""

from __future__ import annotations

import pytest

import allm
from allm.collector import StreamCollector
from allm.errors import AdapterError, ValidationError
from allm.events import (
    AskUserRequested,
    ChatCompleted,
    ErrorEvent,
    MessageCompleted,
    MessageStarted,
    RawChunk,
    StepCompleted,
    TextCompleted,
    TextDelta,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
    ToolExecutionStarted,
    ToolHalt,
    ToolResultEncoded,
)
from allm.messages import Message, Thread, user
from allm.request import Response, Usage
from allm.results import ChatResult


def fold(*events: object, thread: Thread | None = None) -> StreamCollector:
    c = StreamCollector(thread)
    for e in events:
        c.apply(e)
    return c


def test_empty_fold_is_an_assistant_message() -> None:
    r = StreamCollector().to_response()
    assert r.output_text == ""
    assert r.message == Message(role="assistant", content="")
    assert r.finish_reason is None
    assert r.usage == Usage()


def test_text_deltas_append_and_completed_replaces() -> None:
    c = fold(TextDelta(delta="Hel"), TextDelta(delta="lo"))
    assert c.to_response().output_text == "Hello"
    c.apply(TextCompleted(text="Hi!"))
    assert c.text == "Hi!"
    c.apply(TextDelta(delta=" more"))
    assert c.to_response().output_text == "Hi! more"
    # to_response twice gives the same
    assert c.to_response() == c.to_response()


def test_message_started_and_completed_set_id_and_model() -> None:
    c = fold(MessageStarted(id="m1", model="x"), MessageCompleted(finish_reason="stop"))
    r = c.to_response()
    assert (r.id, r.model, r.finish_reason) == ("m1", "x", "stop")
    c.apply(MessageCompleted(id="m2", model="y"))
    r = c.to_response()
    assert (r.id, r.model, r.finish_reason) == ("m2", "y", "stop")  # None keeps previous


def test_tool_calls_assembled_by_id_in_first_seen_order() -> None:
    c = fold(
        ToolCallStarted(id="b", name="second"),
        ToolCallDelta(id="a", arguments_delta='{"x":'),  # unknown id: created, name ""
        ToolCallDelta(id="b", arguments_delta='{"y": 2}'),
        ToolCallDelta(id="a", arguments_delta="1}"),
        ToolCallStarted(id="a", name="first"),
    )
    calls = c.to_response().tool_calls
    assert [tc.id for tc in calls] == ["b", "a"]
    assert calls[0].name == "second" and calls[0].arguments == {"y": 2}
    assert calls[1].name == "first" and calls[1].raw_arguments == '{"x":1}'
    assert calls[1].arguments == {"x": 1}


def test_tool_call_completed_replaces() -> None:
    c = fold(
        ToolCallStarted(id="a", name="f"),
        ToolCallDelta(id="a", arguments_delta="{bad"),
        ToolCallCompleted(id="a", name="f", arguments={"ok": True}, raw_arguments='{"ok":true}',
                          metadata={"sig": "s"}),
    )
    (tc,) = c.to_response().tool_calls
    assert tc.arguments == {"ok": True} and tc.metadata == {"sig": "s"}


def test_invalid_raw_arguments_are_kept_and_flagged() -> None:
    (tc,) = fold(ToolCallStarted(id="a", name="f"),
                 ToolCallDelta(id="a", arguments_delta="{oops")).to_response().tool_calls
    assert tc.arguments == {} and tc.raw_arguments == "{oops"
    assert tc.metadata == {"invalid_arguments": True}


def test_message_completed_usage_metadata_and_message_metadata() -> None:
    u = Usage(input_tokens=1, output_tokens=2)
    c = fold(
        TextDelta(delta="hi"),
        ToolCallCompleted(id="c", name="t", arguments={}),
        MessageCompleted(message=Message(role="assistant", content="ignored",
                                         metadata={"openai": {"item": 1}}),
                         finish_reason="tool_calls", raw_finish_reason="tool_use", usage=u,
                         metadata={"a": 1}),
        MessageCompleted(metadata={"b": 2}),
    )
    r = c.to_response()
    assert r.usage == u
    assert r.metadata == {"a": 1, "b": 2}
    assert r.raw_finish_reason == "tool_use"
    assert r.message is not None
    assert r.message.role == "assistant"
    assert r.message.content == "hi"  # content comes from the events
    assert r.message.metadata == {"openai": {"item": 1}}
    assert r.message.tool_calls == r.tool_calls


def test_raw_chunk_usage_replaces_and_plain_chunks_are_ignored() -> None:
    u1, u2 = Usage(input_tokens=1), Usage(output_tokens=5)
    c = fold(RawChunk(usage=u1), RawChunk(data={"x": 1}), RawChunk(usage=u2))
    assert c.to_response().usage == u2


def test_error_sets_finish_reason_and_metadata_and_is_sticky() -> None:
    err = AdapterError("rate_limited")
    c = fold(TextDelta(delta="par"), ErrorEvent(error=err), MessageCompleted(finish_reason="stop"))
    r = c.to_response()
    assert r.finish_reason == "error"
    assert r.metadata["error"] is err
    assert r.error is err
    assert r.output_text == "par"


def test_unknown_events_are_ignored() -> None:
    c = fold(object(), "text", None, ToolExecutionStarted(id="x", name="y"))
    assert c.to_response() == StreamCollector().to_response()


def test_step_completed_builds_step_results_and_resets() -> None:
    t0 = Thread(messages=(user("hi"),))
    resp = Response(output_text="a", finish_reason="tool_calls")
    t1 = t0.add_assistant("a")
    c = fold(
        TextDelta(delta="a"),
        MessageCompleted(finish_reason="tool_calls"),
        ToolResultEncoded(id="c1", content="42"),
        StepCompleted(response=resp, thread=t1),
        thread=t0,
    )
    assert len(c.steps) == 1
    step = c.steps[0]
    assert step.response == resp and step.thread == t1
    assert step.tool_results == (Message(role="tool", content="42", tool_call_id="c1"),)
    assert step.done is False
    assert c.text == "" and c.finish_reason is None and c.tool_results == []
    assert c.thread == t1


def test_halt_and_ask_user_first_wins() -> None:
    t = Thread(messages=(user("hi"),))
    c = fold(
        MessageCompleted(finish_reason="tool_calls"),
        ToolHalt(tool_call_id="c1", reason="done_early", result={"v": 1}),
        AskUserRequested(tool_call_id="c2", tool_name="ask", question="?"),
        thread=t,
    )
    s = c.to_step_result()
    assert s.done
    assert s.metadata["halted_reason"] == "done_early"
    assert s.metadata["halt_tool_call_id"] == "c1"
    assert s.metadata["halt_result"] == {"v": 1}
    assert [m.tool_call_id for m in s.tool_results] == ["c1"]

    c = fold(AskUserRequested(tool_call_id="c2", tool_name="ask", question="Which city?"),
             thread=t)
    s = c.to_step_result()
    assert s.metadata["halted_reason"] == "ask_user"
    assert s.metadata["pending_question"] == "Which city?"
    assert s.tool_results[0].content == "<awaiting user response>"

    c = fold(ToolHalt(tool_call_id="c3", reason="tool_error", result="x", content="boom"),
             thread=t)
    s = c.to_step_result()
    assert "halt_result" not in s.metadata
    assert s.tool_results[0].content == "boom"


def test_step_done_by_finish_reason() -> None:
    t = Thread()
    for fr, done in [("stop", True), ("length", True), ("content_filter", True),
                     ("tool_calls", False), (None, False)]:
        assert fold(MessageCompleted(finish_reason=fr), thread=t).to_step_result().done is done


def test_to_step_result_needs_thread() -> None:
    with pytest.raises(ValidationError):
        StreamCollector().to_step_result()


def test_to_chat_result_stored_and_fallbacks() -> None:
    t = Thread(messages=(user("hi"),))
    stored = ChatResult(thread=t, halted_reason="completed")
    assert fold(ChatCompleted(result=stored)).to_chat_result() is stored

    c = fold(TextDelta(delta="x"), thread=t)
    cr = c.to_chat_result()
    assert cr.halted_reason == "cancelled" and cr.final_response is not None
    assert cr.final_response.output_text == "x"

    c = fold(ErrorEvent(error=AdapterError("timeout")), thread=t)
    assert c.to_chat_result().halted_reason == "error"

    u = Usage(input_tokens=2, output_tokens=1)
    r = Response(output_text="a", usage=u)
    c = fold(StepCompleted(response=r, thread=t), StepCompleted(response=r, thread=t), thread=t)
    cr = c.to_chat_result()
    assert cr.halted_reason == "cancelled"
    assert cr.final_response is r and len(cr.steps) == 2
    assert cr.usage.input_tokens == 4

    with pytest.raises(ValidationError):
        StreamCollector().to_chat_result()


def test_public_name() -> None:
    assert allm.StreamCollector is StreamCollector


def test_collect_helpers() -> None:
    r = StreamCollector().collect([TextDelta(delta="a"), TextDelta(delta="b")]).to_response()
    assert r.output_text == "ab"
