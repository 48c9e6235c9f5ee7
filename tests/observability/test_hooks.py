"""Hooks: attach/detach/filtering, raising handlers, request ids, stream spans."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest

from allm import telemetry


def test_span_emits_start_and_stop_with_duration(recorded: list[tuple[str, dict[str, Any]]]) -> None:
    with telemetry.span("generate", provider="fake", model="m1") as sp:
        sp.set_response("RESP")
    names = [n for n, _ in recorded]
    assert names == ["generate.start", "generate.stop"]
    start, stop = recorded[0][1], recorded[1][1]
    assert start["provider"] == "fake" and start["model"] == "m1"
    assert isinstance(start["request_id"], str) and len(start["request_id"]) == 22
    assert stop["request_id"] == start["request_id"]
    assert stop["duration"] >= 0
    assert stop["response"] == "RESP"


def test_exception_event_and_reraise(recorded: list[tuple[str, dict[str, Any]]]) -> None:
    with pytest.raises(KeyError), telemetry.span("tool", tool_name="t"):
        raise KeyError("boom")
    assert [n for n, _ in recorded] == ["tool.start", "tool.exception"]
    data = recorded[1][1]
    assert isinstance(data["error"], KeyError) and data["kind"] == "KeyError"
    assert data["duration"] >= 0


def test_filtering_by_event_and_span_name() -> None:
    seen: list[str] = []
    telemetry.attach(lambda n, d: seen.append(n), events=["tool"])
    only_stop: list[str] = []
    telemetry.attach(lambda n, d: only_stop.append(n), events="chat.stop")
    with telemetry.span("chat"), telemetry.span("tool"):
        pass
    assert seen == ["tool.start", "tool.stop"]
    assert only_stop == ["chat.stop"]


def test_unknown_event_or_span_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown telemetry event"):
        telemetry.attach(lambda n, d: None, events=["generate.begin"])
    with pytest.raises(ValueError, match="unknown span"):
        telemetry.span("generat")


def test_detach_by_handle_and_by_handler() -> None:
    seen: list[str] = []

    def handler(name: str, data: dict[str, Any]) -> None:
        seen.append(name)

    handle = telemetry.attach(handler)
    assert telemetry.detach(handle) is True
    telemetry.attach(handler, events=["generate.start"])
    telemetry.attach(handler, events=["generate.stop"])
    assert telemetry.detach(handler) is True
    assert telemetry.detach(handler) is False
    with telemetry.span("generate"):
        pass
    assert seen == []


def test_raising_handler_is_logged_and_detached(caplog: pytest.LogCaptureFixture,
                                                recorded: list[tuple[str, dict[str, Any]]]) -> None:
    calls: list[str] = []

    def bad(name: str, data: dict[str, Any]) -> None:
        calls.append(name)
        raise RuntimeError("handler bug")

    telemetry.attach(bad)
    with caplog.at_level(logging.ERROR, logger="allm.telemetry"), telemetry.span("step"):
        pass
    assert calls == ["step.start"]  # detached after the first failure
    assert "detaching" in caplog.text and "handler bug" in caplog.text
    assert [n for n, _ in recorded] == ["step.start", "step.stop"]  # others still run
    assert all(h.handler is not bad for h in telemetry.handlers())


def test_request_id_shared_by_nested_spans(recorded: list[tuple[str, dict[str, Any]]]) -> None:
    assert telemetry.current_request_id() is None
    with telemetry.span("chat") as outer:
        rid = telemetry.current_request_id()
        assert rid == outer.request_id
        with telemetry.span("step"), telemetry.span("generate"):
            assert telemetry.current_request_id() == rid
        with telemetry.span("tool"):
            telemetry.emit("adapter.retry", {"attempt": 1, "delay": 0.0})
    assert telemetry.current_request_id() is None
    assert {d["request_id"] for _, d in recorded} == {rid}
    assert ("adapter.retry", {"attempt": 1, "delay": 0.0, "request_id": rid}) in recorded
    with telemetry.span("chat") as another:
        pass
    assert another.request_id != rid


def test_explicit_request_id_used_by_outermost_only(recorded: list[tuple[str, dict[str, Any]]]) -> None:
    with telemetry.span("chat", request_id="abc"), telemetry.span("step", request_id="zzz"):
        assert telemetry.current_request_id() == "abc"
    assert {d["request_id"] for _, d in recorded} == {"abc"}


def test_secret_attributes_are_dropped(recorded: list[tuple[str, dict[str, Any]]]) -> None:
    with telemetry.span("generate", model="m", api_key="sk-secret") as sp:
        sp.set(authorization="Bearer sk-secret", turn=1)
    assert "sk-secret" not in repr(recorded)
    assert recorded[1][1]["turn"] == 1


def _numbers(n: int, fail_at: int | None = None) -> Any:
    for i in range(n):
        if i == fail_at:
            raise ValueError("mid-stream")
        # Inside each resumption the span is current: nested work shares its id.
        yield (i, telemetry.current_request_id())


def test_stream_span_ends_on_exhaustion(recorded: list[tuple[str, dict[str, Any]]]) -> None:
    items = list(telemetry.span_for_stream("stream", _numbers(3), model="m"))
    rid = recorded[0][1]["request_id"]
    assert [i for i, _ in items] == [0, 1, 2] and {r for _, r in items} == {rid}
    assert [n for n, _ in recorded] == ["stream.start", "stream.stop"]
    assert recorded[1][1]["time_to_first_chunk"] >= 0
    assert telemetry.current_request_id() is None


def test_stream_span_ends_on_close_and_closes_source(recorded: list[tuple[str, dict[str, Any]]]) -> None:
    closed: list[bool] = []

    def source() -> Any:
        try:
            yield 1
            yield 2
        finally:
            closed.append(True)

    stream = telemetry.span_for_stream("stream", source())
    assert next(stream) == 1
    assert telemetry.current_request_id() is None  # nothing leaks between resumptions
    stream.close()
    assert closed == [True]
    assert [n for n, _ in recorded] == ["stream.start", "stream.stop"]


def test_stream_span_exception(recorded: list[tuple[str, dict[str, Any]]]) -> None:
    with pytest.raises(ValueError):
        list(telemetry.span_for_stream("stream", _numbers(3, fail_at=1)))
    assert [n for n, _ in recorded] == ["stream.start", "stream.exception"]


def test_unstarted_stream_emits_nothing(recorded: list[tuple[str, dict[str, Any]]]) -> None:
    telemetry.span_for_stream("stream", _numbers(3))
    assert recorded == []


@pytest.mark.anyio
async def test_async_stream_span(recorded: list[tuple[str, dict[str, Any]]]) -> None:
    closed: list[bool] = []

    async def source() -> Any:
        try:
            for i in range(3):
                await anyio.sleep(0)
                yield (i, telemetry.current_request_id())
        finally:
            closed.append(True)

    items = [x async for x in telemetry.aspan_for_stream("stream", source())]
    rid = recorded[0][1]["request_id"]
    assert {r for _, r in items} == {rid}
    assert [n for n, _ in recorded] == ["stream.start", "stream.stop"]

    recorded.clear()
    agen = telemetry.aspan_for_stream("stream", source())
    assert (await agen.__anext__())[0] == 0
    await agen.aclose()
    assert closed == [True, True]
    assert [n for n, _ in recorded] == ["stream.start", "stream.stop"]


@pytest.mark.anyio
async def test_request_id_isolated_between_concurrent_tasks(
        recorded: list[tuple[str, dict[str, Any]]]) -> None:
    seen: dict[int, set[str | None]] = {}

    async def call(i: int) -> None:
        with telemetry.span("chat"):
            rid = telemetry.current_request_id()
            for _ in range(3):
                await anyio.sleep(0)
                with telemetry.span("tool"):
                    seen.setdefault(i, set()).add(telemetry.current_request_id())
            assert telemetry.current_request_id() == rid

    async with anyio.create_task_group() as tg:
        for i in range(4):
            tg.start_soon(call, i)
    assert all(len(ids) == 1 for ids in seen.values())
    assert len(set().union(*seen.values())) == 4


def test_no_handlers_is_cheap_and_silent() -> None:
    with telemetry.span("generate") as sp:
        sp.set_response(None)
        sp.first_chunk()
    telemetry.emit("adapter.retry", {"attempt": 1})


def test_abandoned_stream_span_ends_when_collected(recorded: list[tuple[str, dict[str, Any]]]) -> None:
    import gc

    stream = telemetry.span_for_stream("stream", _numbers(5))
    next(stream)
    del stream
    gc.collect()
    assert [n for n, _ in recorded] == ["stream.start", "stream.stop"]
    assert telemetry.current_request_id() is None
