"""Loop behaviour: concurrency, halting rules, thread consistency, options."""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio
import pytest
from scenario_tools import Forecast, engine, get_weather, tc, transcript

import allm
from allm import events as ev
from allm.loop import check_thread
from allm.providers import Fake


def sleeper_tools(log: list[tuple[str, float, float]]) -> list[allm.Tool]:
    lock = threading.Lock()

    def make(name: str) -> allm.Tool:
        def handler(args: dict[str, Any]) -> str:
            start = time.monotonic()
            time.sleep(0.2)
            with lock:
                log.append((name, start, time.monotonic()))
            return name
        return allm.Tool(name=name, handler=handler)

    return [make(f"s{i}") for i in range(4)]


PARALLEL = [[tc(f"c{i}", f"s{i}") for i in range(4)], [("text", "ok")]]


def _check_overlap(events: list[Any], log: list[tuple[str, float, float]]) -> None:
    types = [e.type for e in events]
    last_start = max(i for i, t in enumerate(types) if t == "tool_execution_started")
    first_done = types.index("tool_execution_completed")
    assert last_start < first_done
    assert len(log) == 4
    assert max(s for _, s, _ in log) < min(e for _, _, e in log)  # all four ran at once


def test_parallel_tools_overlap_sync() -> None:
    log: list[tuple[str, float, float]] = []
    eng = engine(PARALLEL, tools=sleeper_tools(log))
    t0 = time.monotonic()
    events = list(allm.stream(eng, "go"))
    assert time.monotonic() - t0 < 0.7
    _check_overlap(events, log)
    result = events[-1].result
    assert [m.tool_call_id for m in result.thread.messages if m.role == "tool"] == \
        ["c0", "c1", "c2", "c3"]  # thread keeps the model's order


def test_parallel_tools_overlap_async() -> None:
    log: list[tuple[str, float, float]] = []
    eng = engine(PARALLEL, tools=sleeper_tools(log))

    async def main() -> list[Any]:
        return [e async for e in allm.astream(eng, "go")]

    t0 = time.monotonic()
    events = anyio.run(main)
    assert time.monotonic() - t0 < 0.7
    _check_overlap(events, log)


def _requests(eng: allm.Engine) -> list[allm.Request]:
    return [req for req, _ in eng.adapter.calls]  # type: ignore[union-attr]


def _assert_consistent(eng: allm.Engine) -> None:
    for req in _requests(eng):
        check_thread(allm.Thread(messages=req.messages))


def test_adapter_error_mid_loop_keeps_thread_consistent() -> None:
    eng = engine([[tc("c1", "get_weather", city="Oslo")],
                  [("text", "partial"), ("error", "provider_unavailable")]])
    result = allm.chat(eng, "hi")
    assert result.halted_reason == "error"
    assert result.metadata["error"].reason == "provider_unavailable"
    assert len(result.steps) == 2
    assert transcript(result)[-1][0] == "tool"  # the partial answer was not appended
    check_thread(result.thread)
    _assert_consistent(eng)


def test_tool_raising_and_later_preflight_error() -> None:
    eng = engine([[tc("c1", "boom")], [("preflight_error", "rate_limited")]])
    result = allm.chat(eng, "hi")
    assert result.halted_reason == "error"
    assert result.metadata["error"].reason == "rate_limited"
    assert len(result.steps) == 1
    tool_msg = result.thread.messages[-1]
    assert tool_msg.role == "tool" and tool_msg.is_error and "kaboom" in tool_msg.text
    _assert_consistent(eng)


def test_first_step_preflight_raises_at_call_site() -> None:
    eng = engine([[("preflight_error", "authentication_failed")]])
    with pytest.raises(allm.AdapterError):
        allm.stream(eng, "hi")  # before iteration
    with pytest.raises(allm.AdapterError):
        anyio.run(lambda: allm.achat(engine([[("preflight_error", "rate_limited")]]), "hi"))


def test_dangling_tool_calls_are_refused_before_any_call() -> None:
    eng = engine([[("text", "x")]])
    thread = [allm.user("hi"), allm.assistant("", tool_calls=[allm.ToolCall(id="c9", name="x")])]
    with pytest.raises(allm.ValidationError) as err:
        allm.chat(eng, thread)
    assert "c9" in str(err.value)
    assert _requests(eng) == []


def test_ask_user_then_answer_with_tool_result() -> None:
    eng = engine([[tc("c1", "pick_city")], [("text", "Oslo it is")]])
    first = allm.chat(eng, "weather?")
    assert first.halted_reason == "ask_user"
    assert (first.pending_question, first.pending_tool_call_id) == ("Which city?", "c1")
    assert first.metadata["ask_user_options"] == {"choices": ["Oslo", "Bergen"]}
    with pytest.raises(allm.ValidationError):
        allm.chat(eng, first.thread.add_user("Oslo"))
    thread = first.thread.add_message(allm.tool_result("c1", "Oslo"))
    second = allm.chat(eng, thread)
    assert second.halted_reason == "completed" and second.output_text == "Oslo it is"


def test_max_turns_validation_and_engine_param() -> None:
    for bad in (0, -1, 1.5, "8", True):
        with pytest.raises(allm.ValidationError):
            allm.chat(engine([[("text", "x")]]), "hi", max_turns=bad)
    eng = engine([[tc(f"c{i}", "get_time", city="x")] for i in range(5)],
                 params={"max_turns": 2, "temperature": 0.5})
    result = allm.chat(eng, "hi")
    assert result.halted_reason == "max_turns" and result.metadata == {"max_turns": 2}
    assert len(_requests(eng)) == 2
    assert all("max_turns" not in r.params and r.params["temperature"] == 0.5
               for r in _requests(eng))


def test_halt_when_and_ordering() -> None:
    eng = engine([[tc("c1", "get_time", city="x")], [("text", "never")]])
    result = allm.chat(eng, "hi", halt_when=lambda step: bool(step.tool_results))
    assert result.halted_reason == "halt_when"
    assert result.metadata == {"halt_when_step_index": 0} and len(result.steps) == 1
    # completed beats halt_when
    done = allm.chat(engine([[("text", "hi")]]), "hi", halt_when=lambda s: True)
    assert done.halted_reason == "completed"
    # ask_user beats halt_when
    ask = allm.chat(engine([[tc("c1", "pick_city")]]), "hi", halt_when=lambda s: True)
    assert ask.halted_reason == "ask_user"


def test_filters_and_on_event() -> None:
    seen: list[str] = []
    eng = engine([[tc("c1", "get_time", city="x")], [("text", "a"), ("text", "b")]])
    events = list(allm.stream(eng, "hi", emit_text_deltas=False,
                              on_event=lambda e: seen.append(e.type)))
    types = [e.type for e in events]
    assert "text_delta" not in types and "text_completed" in types
    assert seen.count("text_delta") == 2
    assert not {"tool_execution_started", "step_completed", "chat_completed"} & set(seen)
    assert events[-1].result.output_text == "ab"


def test_early_stop_closes_adapter_and_emits_no_chat_completed() -> None:
    eng = engine([[("text", "a"), ("text", "b"), ("text", "c")]])
    stream = allm.stream(eng, "hi")
    first = [next(stream), next(stream)]
    stream.close()  # type: ignore[attr-defined]
    assert [e.type for e in first] == ["message_started", "text_delta"]
    assert eng.adapter.cleanups == 1  # type: ignore[union-attr]


def test_tools_option_merges_and_tool_choice_reaches_request() -> None:
    @allm.tool(name="get_time")
    def other_time(city: str) -> str:
        return "override"

    eng = engine([[tc("c1", "get_time", city="x")], [("text", "ok")]], tools=[get_weather])
    result = allm.chat(eng, "hi", tools=[other_time], tool_choice="auto")
    assert result.thread.messages[2].text == "override"
    req = _requests(eng)[0]
    assert [t.name for t in req.tools] == ["get_weather", "get_time"]
    assert req.tool_choice == "auto"


def test_max_tool_calls_per_step() -> None:
    eng = engine([[tc(f"c{i}", "get_time", city="x") for i in range(3)], [("text", "ok")]])
    result = allm.chat(eng, "hi", max_tool_calls_per_step=2)
    tools = [m for m in result.thread.messages if m.role == "tool"]
    assert [m.is_error for m in tools] == [False, False, True]
    assert "at most 2" in tools[2].text


def test_assistant_message_is_response_message() -> None:
    eng = engine([[("text", "calling"), tc("c1", "get_time", city="x")], [("text", "ok")]])
    result = allm.chat(eng, "hi")
    msg = result.thread.messages[1]
    assert msg is result.steps[0].response.message or msg == result.steps[0].response.message
    assert msg.text == "calling" and [c.id for c in msg.tool_calls] == ["c1"]


def test_usage_summed_over_steps() -> None:
    eng = engine([[tc("c1", "get_time", city="x"), ("usage", {"input_tokens": 10,
                                                                "output_tokens": 2})],
                  [("text", "ok"), ("usage", {"input_tokens": 20, "output_tokens": 3})]])
    result = allm.chat(eng, "hi")
    assert (result.usage.input_tokens, result.usage.output_tokens) == (30, 5)


def test_structured_output_variants() -> None:
    plain = allm.chat(engine([[("text", '{"a": 1}')]]), "hi",
                      response_format={"type": "json_schema", "name": "x",
                                       "schema": {"type": "object"}})
    assert plain.output == {"a": 1}
    bad = allm.chat(engine([[("text", '{"city": 1}')]]), "hi", output_type=Forecast)
    assert bad.output is None and bad.metadata["output_error"].reason == "invalid_output"
    eng = engine([[("text", '{"city": "Oslo", "temperature": 3}')]])
    good = allm.chat(eng, "hi", output_type=Forecast)
    assert good.output == Forecast(city="Oslo", temperature=3)
    fmt = _requests(eng)[0].response_format
    assert isinstance(fmt, dict) and fmt["type"] == "json_schema"
    assert fmt["schema"]["required"] == ["city", "temperature"]


def test_structured_finalize_two_pass() -> None:
    eng = engine([[tc("c1", "get_weather", city="Oslo")], [("text", "It is sunny.")],
                  [("text", '{"city": "Oslo", "temperature": 20}')]])
    result = allm.chat(eng, "hi", output_type=Forecast, structured_finalize=True)
    assert result.halted_reason == "completed"
    assert result.output == Forecast(city="Oslo", temperature=20)
    assert result.metadata["structured_finalize"] == {"pass_1_halted": "completed"}
    assert len(result.steps) == 3
    reqs = _requests(eng)
    assert reqs[0].response_format is None and reqs[1].response_format is None
    assert reqs[2].response_format is not None and reqs[2].tool_choice == "none"
    assert reqs[2].messages[-1].text == "Now provide your final structured response."


def test_mode_manual_runs_nothing() -> None:
    eng = engine([[tc("c1", "get_weather", city="Oslo"), tc("c2", "boom")]])
    result = allm.chat(eng, "hi", mode="manual")
    assert result.halted_reason == "manual_tool_calls"
    assert [c.id for c in result.pending_tool_calls] == ["c1", "c2"]
    assert result.metadata == {"manual_turn_index": 0}
    assert transcript(result)[-1][0] == "assistant"


def test_on_tool_error_callable_and_invalid() -> None:
    eng = engine([[tc("c1", "boom")], [("text", "ok")]])
    result = allm.chat(eng, "hi", on_tool_error=lambda call, err: f"fallback for {err.reason}")
    assert result.thread.messages[2].text == "fallback for handler_raised"
    with pytest.raises(allm.ValidationError):
        allm.chat(engine([[("text", "x")]]), "hi", on_tool_error="explode")


def test_halt_from_two_tools_first_completed_wins_and_thread_complete() -> None:
    eng = engine([[tc("c1", "finish", summary="a"), tc("c2", "confirm", action="x")]])
    result = allm.chat(eng, "hi")
    assert result.halted_reason == "done"
    assert result.metadata["halt_result"] == {"summary": "a"}
    check_thread(result.thread)  # the manual call got a "not run" result
    assert result.thread.messages[-1].is_error


def test_step_functions() -> None:
    step = allm.step(engine([[tc("c1", "get_time", city="x")]]), "hi")
    assert not step.done and len(step.tool_results) == 1
    assert transcript(step.thread)[-1][:3] == ("tool", "12:00 in x", "c1")
    events = list(allm.stream_step(engine([[("text", "yo")]]), "hi"))
    assert [e.type for e in events][-2:] == ["message_completed", "step_completed"]


def test_context_reaches_handlers() -> None:
    got: list[Any] = []

    @allm.tool
    def whoami(ctx: allm.ToolContext) -> str:
        got.append((ctx.context, ctx.session_id, ctx.tool_call.id if ctx.tool_call else None,
                    ctx.request_id is not None))
        return "me"

    eng = engine([[tc("c1", "whoami")], [("text", "ok")]], tools=[whoami], context={"u": 1})
    allm.chat(eng, "hi")
    allm.chat(engine([[tc("c1", "whoami")], [("text", "ok")]], tools=[whoami]), "hi",
              context={"u": 2}, session_id="s")
    assert got == [({"u": 1}, None, "c1", True), ({"u": 2}, "s", "c1", True)]


def test_events_serialize() -> None:
    eng = engine([[tc("c1", "pick_city"), tc("c2", "finish", summary="s")]])
    for e in allm.stream(eng, "hi"):
        assert type(allm.loads(allm.dumps(e))) is type(e)


def test_fake_without_tools_is_plain_completion() -> None:
    result = allm.chat(allm.Engine(adapter=Fake(script=[("text", "hello")]), model="m"), "hi")
    assert result.halted_reason == "completed" and result.final_response is not None
    assert [e.type for e in allm.stream(allm.Engine(adapter=Fake(script=[("text", "x")]),
                                                    model="m"), "hi")][-1] == "chat_completed"
    assert isinstance(ev.ChatCompleted, type)
