"""Every loop scenario through the sync and the async driver: identical events."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from scenario_tools import Forecast, engine, tc, transcript

import allm
from allm import events as ev

TOOL_TAIL = (ev.ToolExecutionCompleted, ev.ToolResultEncoded, ev.AskUserRequested,
             ev.ToolHalt)


def summary(e: Any) -> tuple[Any, ...]:
    t = type(e)
    if t is ev.StepCompleted:
        return (e.type, tuple(transcript(e.thread)), e.mode,
                tuple(c.id for c in e.manual_tool_calls), e.response.finish_reason,
                e.response.output_text)
    if t is ev.ChatCompleted:
        r = e.result
        return (e.type, r.halted_reason, tuple(transcript(r.thread)), len(r.steps),
                r.pending_question, r.pending_tool_call_id,
                tuple(c.id for c in r.pending_tool_calls), repr(r.output))
    if t is ev.MessageCompleted:
        return (e.type, e.finish_reason)
    if t is ev.ToolExecutionStarted:
        return (e.type, e.id, e.name, tuple(sorted(e.arguments.items())))
    if t is ev.ToolExecutionCompleted:
        return (e.type, e.id, e.is_error)
    if t is ev.ToolResultEncoded:
        return (e.type, e.id, e.content, e.is_error)
    if t is ev.AskUserRequested:
        return (e.type, e.tool_call_id, e.question)
    if t is ev.ToolHalt:
        return (e.type, e.tool_call_id, e.reason, e.content)
    if t is ev.ErrorEvent:
        return (e.type, e.error.reason)
    if t in (ev.TextDelta,):
        return (e.type, e.delta)
    if t in (ev.ToolCallStarted, ev.ToolCallCompleted):
        return (e.type, e.id, e.name)
    return (e.type,)


def normalize(events: list[Any]) -> list[tuple[Any, ...]]:
    """Summaries, with each step's tool completions sorted (they arrive in
    completion order, which differs between runs when tools run in parallel)."""
    out: list[tuple[Any, ...]] = []
    block: list[tuple[Any, ...]] = []
    for e in events:
        if isinstance(e, TOOL_TAIL):
            block.append(summary(e))
            continue
        if block:
            out.extend(sorted(block, key=repr))
            block = []
        out.append(summary(e))
    out.extend(sorted(block, key=repr))
    return out


# name -> (scripts, chat options, expected halted_reason)
SCENARIOS: dict[str, tuple[list[list[Any]], dict[str, Any], str]] = {
    "single_tool": ([[tc("c1", "get_weather", city="Oslo")], [("text", "Sunny.")]],
                    {}, "completed"),
    "parallel_tools": ([[tc("c1", "get_weather", city="Oslo"), tc("c2", "get_time", city="Oslo"),
                         tc("c3", "get_weather", city="Bergen", unit="f")],
                        [("text", "Done.")]], {}, "completed"),
    "tool_raising": ([[tc("c1", "boom")], [("text", "It failed.")]], {}, "completed"),
    "tool_timeout": ([[tc("c1", "slow", seconds=0.4)], [("text", "Too slow.")]],
                     {"tool_timeout": 0.05}, "completed"),
    "unknown_tool": ([[tc("c1", "nope", a=1)], [("text", "Sorry.")]], {}, "completed"),
    "invalid_arguments": ([[tc("c1", "get_weather", town="Oslo"),
                            ("tool_call_delta", {"id": "c2", "name": "get_time",
                                                 "arguments_delta": "{not json"})],
                           [("text", "Fixed.")]], {}, "completed"),
    "ask_user": ([[tc("c1", "pick_city"), tc("c2", "get_time", city="Oslo")]], {}, "ask_user"),
    "per_tool_manual": ([[tc("c1", "get_weather", city="Oslo"),
                          tc("c2", "confirm", action="book")]], {}, "manual_tool_calls"),
    "whole_loop_manual": ([[tc("c1", "get_weather", city="Oslo")]], {"mode": "manual"},
                          "manual_tool_calls"),
    "halt": ([[tc("c1", "finish", summary="all good"), tc("c2", "get_time", city="Oslo")]],
             {}, "done"),
    "halt_on_tool_error": ([[tc("c1", "boom")]], {"on_tool_error": "halt"}, "tool_error"),
    "max_turns": ([[tc(f"c{i}", "get_time", city="Oslo")] for i in range(3)],
                  {"max_turns": 3}, "max_turns"),
    "structured_output": ([[tc("c1", "get_weather", city="Oslo")],
                           [("text", '{"city": "Oslo", "temperature": 21}')]],
                          {"output_type": Forecast}, "completed"),
    "adapter_error_mid_loop": ([[tc("c1", "get_weather", city="Oslo")],
                                [("text", "par"), ("error", "provider_unavailable")]],
                               {}, "error"),
}


def run_sync(scripts: list[list[Any]], opts: dict[str, Any]) -> list[Any]:
    return list(allm.stream(engine(scripts), [allm.user("hi")], **opts))


def run_async(scripts: list[list[Any]], opts: dict[str, Any]) -> list[Any]:
    async def main() -> list[Any]:
        return [e async for e in allm.astream(engine(scripts), [allm.user("hi")], **opts)]
    return anyio.run(main)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_sync_async_parity(name: str) -> None:
    scripts, opts, expected = SCENARIOS[name]
    sync_events = run_sync(scripts, opts)
    async_events = run_async(scripts, opts)
    assert normalize(sync_events) == normalize(async_events)
    final = sync_events[-1]
    assert isinstance(final, ev.ChatCompleted)
    assert final.result.halted_reason == expected
    # the non-streaming fold agrees with the stream
    result = allm.chat(engine(scripts), [allm.user("hi")], **opts)
    assert summary(ev.ChatCompleted(result=result)) == summary(final)


def test_session_flows_parity() -> None:
    """ask-user then reply, and per-tool manual then submit, via Session twins."""
    scripts = [
        [tc("c1", "pick_city")],
        [tc("c2", "confirm", action="book")],
        [("text", "Booked.")],
    ]

    def sync_run() -> tuple[list[Any], Any]:
        eng = engine(scripts)
        events: list[Any] = []
        stream = allm.Session.stream_start(eng, "book it")
        reducer = stream.reducer()
        for e in stream:
            events.append(e)
            reducer.apply(e)
        s, _ = reducer.finalize()
        stream = s.stream_reply(eng, "Oslo")
        s, _ = stream.reducer().fold(_tap(stream, events))
        s, _ = s.submit_tool_result(None, "c2", {"ok": True})
        stream = s.stream_continue(eng)
        s, r = stream.reducer().fold(_tap(stream, events))
        return events, s

    def async_run() -> tuple[list[Any], Any]:
        async def main() -> tuple[list[Any], Any]:
            eng = engine(scripts)
            events: list[Any] = []
            stream = allm.Session.astream_start(eng, "book it")
            s, _ = await stream.reducer().afold(_atap(stream, events))
            stream = s.astream_reply(eng, "Oslo")
            s, _ = await stream.reducer().afold(_atap(stream, events))
            s, _ = await s.asubmit_tool_result(None, "c2", {"ok": True})
            stream = s.astream_continue(eng)
            s, _ = await stream.reducer().afold(_atap(stream, events))
            return events, s
        return anyio.run(main)

    sync_events, s1 = sync_run()
    async_events, s2 = async_run()
    assert normalize(sync_events) == normalize(async_events)
    assert s1.status == s2.status == "completed"
    assert transcript(s1) == transcript(s2)
    assert transcript(s1)[2][:3] == ("tool", "Oslo", "c1")


def _tap(stream: Any, sink: list[Any]) -> Any:
    for e in stream:
        sink.append(e)
        yield e


async def _atap(stream: Any, sink: list[Any]) -> Any:
    async for e in stream:
        sink.append(e)
        yield e


def test_step_parity() -> None:
    scripts = [[tc("c1", "get_weather", city="Oslo"), tc("c2", "pick_city")]]
    sync_events = list(allm.stream_step(engine(scripts), "hi"))

    async def main() -> list[Any]:
        return [e async for e in allm.astream_step(engine(scripts), "hi")]

    async_events = anyio.run(main)
    assert normalize(sync_events) == normalize(async_events)
    assert isinstance(sync_events[-1], ev.StepCompleted)
    assert not any(isinstance(e, ev.ChatCompleted) for e in sync_events)
    step = allm.step(engine(scripts), "hi")
    astep = anyio.run(lambda: allm.astep(engine(scripts), "hi"))
    assert step.metadata["halted_reason"] == astep.metadata["halted_reason"] == "ask_user"
    assert transcript(step.thread) == transcript(astep.thread)
