"""Edge cases: several halts in one step, plug-ins on the engine, async timeouts."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest
from scenario_tools import engine, tc, transcript

import allm
from allm import events as ev
from allm.loop import check_thread
from allm.tools import ToolExecutor, ToolResultEncoder


def test_ask_user_with_manual_and_second_question_keeps_thread_well_formed() -> None:
    eng = engine([[tc("c1", "pick_city"), tc("c2", "pick_city"), tc("c3", "confirm", action="x"),
                   tc("c4", "get_time", city="Oslo")]])
    result = allm.chat(eng, "hi")
    assert result.halted_reason == "ask_user"
    pending = result.pending_tool_call_id
    assert pending in ("c1", "c2")
    # every call except the pending question has a result
    answered = {m.tool_call_id: m for m in result.thread.messages if m.role == "tool"}
    assert set(answered) == {"c1", "c2", "c3", "c4"} - {pending}
    other = ({"c1", "c2"} - {pending}).pop()
    assert answered[other].is_error and "not asked" in answered[other].text
    assert answered["c3"].is_error and "not run" in answered["c3"].text
    check_thread(result.thread.add_message(allm.tool_result(pending, "Oslo")))


def test_reserved_and_custom_halts() -> None:
    @allm.tool
    def bad_halt() -> Any:
        return allm.halt("max_turns", 1)

    eng = engine([[tc("c1", "bad_halt")], [("text", "ok")]], tools=[bad_halt])
    result = allm.chat(eng, "hi")
    assert result.halted_reason == "completed"
    assert "reserved" in result.thread.messages[2].text
    halted = allm.chat(engine([[tc("c1", "bad_halt")]], tools=[bad_halt]), "hi",
                       on_tool_error="halt")
    assert halted.halted_reason == "tool_error"
    assert halted.metadata["error"].reason == "invalid_return"


def test_custom_executor_and_encoder_from_engine() -> None:
    class Upper(ToolResultEncoder):
        def encode(self, value: Any) -> str:
            return super().encode(value).upper()

    class Counting(ToolExecutor):
        calls = 0

        def execute(self, tool: Any, arguments: Any, context: Any) -> Any:
            Counting.calls += 1
            return super().execute(tool, arguments, context)

    eng = engine([[tc("c1", "get_time", city="oslo")], [("text", "ok")]],
                 tool_executor=Counting(), tool_result_encoder=Upper())
    result = allm.chat(eng, "hi")
    assert result.thread.messages[2].text == "12:00 IN OSLO"
    assert Counting.calls == 1


def test_async_handler_timeout_is_cancelled() -> None:
    state: dict[str, Any] = {}

    @allm.tool
    async def sleepy() -> str:
        try:
            await anyio.sleep(5)
        except BaseException:
            state["cancelled"] = True
            raise
        return "late"

    eng = engine([[tc("c1", "sleepy")], [("text", "ok")]], tools=[sleepy])
    t0 = time.monotonic()
    result = anyio.run(lambda: allm.achat(eng, "hi", tool_timeout=0.05))
    assert time.monotonic() - t0 < 2
    assert state == {"cancelled": True}
    assert "timed out" in result.thread.messages[2].text


def test_encoding_failure_is_a_tool_error() -> None:
    @allm.tool
    def weird() -> Any:
        return object()

    result = allm.chat(engine([[tc("c1", "weird")], [("text", "ok")]], tools=[weird]), "hi")
    msg = result.thread.messages[2]
    assert msg.is_error and "could not encode" in msg.text


def test_stream_step_manual_and_event_order() -> None:
    events = list(allm.stream_step(engine([[tc("c1", "get_weather", city="x")]]), "hi",
                                   mode="manual"))
    assert [e.type for e in events] == ["message_started", "tool_call_started",
                                        "tool_call_completed", "message_completed",
                                        "step_completed"]
    last = events[-1]
    assert isinstance(last, ev.StepCompleted) and last.mode == "manual"
    assert [c.id for c in last.manual_tool_calls] == ["c1"]


def test_tool_group_events_are_adjacent_per_call() -> None:
    events = list(allm.stream(engine([[tc("c1", "get_time", city="a"),
                                       tc("c2", "get_time", city="b")], [("text", "ok")]]),
                              "hi"))
    types = [e.type for e in events]
    i = types.index("tool_execution_completed")
    assert types[i:i + 4] == ["tool_execution_completed", "tool_result_encoded",
                              "tool_execution_completed", "tool_result_encoded"]
    for a, b in zip(events[i::2][:2], events[i + 1::2][:2], strict=True):
        assert a.id == b.id


def test_session_start_from_session_and_reducer_step_cancel() -> None:
    base = allm.Session(id="x", thread=allm.Thread().add_user("hi"), metadata={"k": 1})
    s, r = allm.Session.start(engine([[("text", "yo")]]), base)
    assert s.id == "x" and s.metadata["k"] == 1 and transcript(s)[-1][:2] == ("assistant", "yo")
    stream = s.stream_step(engine([[("text", "a"), ("text", "b")]]))
    reducer = stream.reducer()
    reducer.apply(next(stream))
    stream.close()
    same, result = reducer.finalize()
    assert same is s and isinstance(result, allm.ChatResult)
    assert result.halted_reason == "cancelled"
    with pytest.raises(allm.ValidationError):
        allm.Session.start(engine([[("text", "yo")]]), 42)


def test_reply_with_a_tool_message_and_submit_answers_question() -> None:
    eng = engine([[tc("c1", "pick_city")], [("text", "ok")], [tc("c2", "pick_city")],
                  [("text", "ok2")]])
    s, _ = allm.Session.start(eng, "hi")
    s, r = s.submit_tool_result(eng, "c1", "Oslo")  # answering the question via submit
    assert s.status == "completed" and r is not None
    assert transcript(s)[2][:3] == ("tool", "Oslo", "c1")
    s, _ = s.reply(eng, "again")
    s, _ = s.reply(eng, allm.tool_result("c2", "Bergen"))
    assert transcript(s)[-2][:3] == ("tool", "Bergen", "c2")


def test_session_step_result_matches_allm_step() -> None:
    scripts = [[tc("c2", "get_time", city="b"), tc("c1", "pick_city"),
                tc("c3", "get_time", city="a")]]
    base = allm.Session(thread=allm.Thread().add_user("hi"))
    _, via_session = base.step(engine(scripts))
    direct = allm.step(engine(scripts), base.thread)
    assert isinstance(via_session, allm.StepResult)
    assert via_session.tool_results == direct.tool_results
    assert [m.tool_call_id for m in direct.tool_results] == ["c2", "c3"]
    assert via_session.thread == direct.thread
    assert via_session.metadata["pending_tool_call_id"] == direct.metadata["pending_tool_call_id"]


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_max_concurrency_bounds_parallel_tools(driver: str) -> None:
    import threading

    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def handler(args: dict[str, Any]) -> str:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.03)
        with lock:
            state["now"] -= 1
        return "ok"

    t = allm.Tool(name="t", handler=handler)
    scripts = [[tc(f"c{i}", "t") for i in range(6)], [("text", "done")]]
    if driver == "sync":
        result = allm.chat(engine(scripts, tools=[t]), "hi", max_concurrency=2)
    else:
        result = anyio.run(lambda: allm.achat(engine(scripts, tools=[t]), "hi",
                                              max_concurrency=2))
    assert result.halted_reason == "completed"
    assert state["peak"] == 2
    assert [m.tool_call_id for m in result.thread.messages if m.role == "tool"] == \
        [f"c{i}" for i in range(6)]


def test_raw_chunks_and_tool_delta_filters() -> None:
    script = [("raw_chunk", {"x": 1}),
              ("tool_call_delta", {"id": "c1", "name": "get_time",
                                   "arguments_delta": '{"city": "a"}'})]
    plain = [e.type for e in allm.stream(engine([script, [("text", "ok")]]), "hi")]
    assert "raw_chunk" not in plain and "tool_call_delta" in plain
    raw = [e.type for e in allm.stream(engine([script, [("text", "ok")]]), "hi",
                                      include_raw_chunks=True, emit_tool_deltas=False)]
    assert "raw_chunk" in raw and "tool_call_delta" not in raw
    assert raw[-1] == "chat_completed"
