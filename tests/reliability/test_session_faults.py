"""A `Session` driving a call that meets a fault is never half-written.

For each wire format and fault: the session the operation was called on is unchanged
(same `allm.dumps` before and after); the new session is either advanced consistently
(the answer recovered after retries: + user + assistant, status completed) or in
status ``error`` with the thread as it was before the model call (+ the user turn
only) and the typed error recorded; either way it round-trips through dumps/loads. A
stream cut short by the caller finalizes to the untouched session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import allm
from allm.errors import AdapterError
from allm.events import TextDelta
from allm.messages import Thread, assistant, user
from allm.results import ChatResult
from allm.session import Session

from .faultserver import FaultServer, Reply, gzip_bomb
from .test_faults import FAST_RETRY, KEY, TEXT, WORDS, ok
from .wire import WIRE_IDS, WIRES, Wire

HISTORY = Thread(messages=(user("first"), assistant("first answer")))
OPTS: dict[str, Any] = {"api_key": KEY, "retry": FAST_RETRY, "timeout": 3.0,
                        "read_timeout": 0.4, "stream": True}

FAULTS: dict[str, Callable[[Wire], list[Reply]]] = {
    "retried-ok": lambda w: [Reply(status=503, body=w.server_error),
                             Reply(close_before_headers=True), ok(w)],
    "drop-mid-stream": lambda w: [Reply(chunks=w.stream_chunks(WORDS[:2], complete=False),
                                        after="drop")],
    "stall": lambda w: [Reply(chunks=w.stream_chunks(WORDS[:2], complete=False),
                              after="stall", stall_for=3)],
    "truncated-json": lambda w: [Reply(chunks=w.stream_chunks(WORDS[:1], complete=False)
                                       + [w.text_delta("x")[:-9] + b"\n\n"])],
    "429-forever": lambda w: [Reply(status=429, headers={"retry-after-ms": "10"},
                                    body=w.rate_limited)] * 3,
    "gzip-bomb": lambda w: [Reply(headers={"content-encoding": "gzip"},
                                  chunks=gzip_bomb(1))],
}


def start_session() -> Session:
    return Session(id="s-1", status="completed", thread=HISTORY)


def check(before: Session, blob: str, after: Session, fault: str) -> None:
    assert allm.dumps(before) == blob, "the session the call was made on changed"
    assert allm.loads(allm.dumps(after)) == after
    if fault == "retried-ok":
        assert after.status == "completed"
        assert after.thread.messages[:3] == (*HISTORY.messages, user("next"))
        assert after.thread.messages[3].text == TEXT
        assert len(after.thread.messages) == 4
        return
    assert after.status == "error", after.status
    assert after.thread.messages == (*HISTORY.messages, user("next"))
    assert isinstance(after.error, AdapterError)
    assert after.pending_tool_calls == () and after.pending_question is None


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("wire", WIRES, ids=WIRE_IDS)
def test_session_reply_under_fault(wire: Wire, fault: str) -> None:
    s0 = start_session()
    blob = allm.dumps(s0)
    with FaultServer(FAULTS[fault](wire), max_seconds=10) as server:
        engine = wire.engine(server.url)
        try:
            s1, result = s0.reply(engine, "next", **OPTS)
        finally:
            engine.adapter.close()  # type: ignore[union-attr]
    check(s0, blob, s1, fault)
    if fault != "retried-ok":
        assert result.halted_reason == "error"


@pytest.mark.anyio
@pytest.mark.parametrize("fault", ["retried-ok", "drop-mid-stream", "stall", "gzip-bomb"])
async def test_async_session_reply_under_fault(fault: str) -> None:
    wire = WIRES[2]
    s0 = start_session()
    blob = allm.dumps(s0)
    with FaultServer(FAULTS[fault](wire), max_seconds=10) as server:
        engine = wire.engine(server.url)
        try:
            s1, _ = await s0.areply(engine, "next", **OPTS)
        finally:
            await engine.adapter.aclose()  # type: ignore[union-attr]
    check(s0, blob, s1, fault)


@pytest.mark.parametrize("wire", WIRES, ids=WIRE_IDS)
def test_cancelled_session_stream_leaves_session_untouched(wire: Wire) -> None:
    s0 = start_session()
    blob = allm.dumps(s0)
    words = [f"w{i} " for i in range(100)]
    with FaultServer([Reply(chunks=wire.stream_chunks(words), drip=0.01)]) as server:
        engine = wire.engine(server.url)
        stream = s0.stream_reply(engine, "next", **OPTS)
        reducer = stream.reducer()
        for event in stream:
            reducer.apply(event)
            if isinstance(event, TextDelta):
                break
        stream.close()
        s1, result = reducer.finalize()
        assert server.wait_for(lambda: bool(server.record.disconnects))
        engine.adapter.close()  # type: ignore[union-attr]
    assert s1 is s0 and allm.dumps(s0) == blob
    assert isinstance(result, ChatResult) and result.halted_reason == "cancelled"


@pytest.mark.anyio
async def test_async_cancelled_session_stream_leaves_session_untouched() -> None:
    wire = WIRES[3]
    s0 = start_session()
    words = [f"w{i} " for i in range(100)]
    with FaultServer([Reply(chunks=wire.stream_chunks(words), drip=0.01)]) as server:
        engine = wire.engine(server.url)
        stream = s0.astream_reply(engine, "next", **OPTS)
        reducer = stream.reducer()
        async for event in stream:
            reducer.apply(event)
            if isinstance(event, TextDelta):
                break
        await stream.aclose()
        s1, result = reducer.finalize()
        assert server.wait_for(lambda: bool(server.record.disconnects))
        await engine.adapter.aclose()  # type: ignore[union-attr]
    assert s1 is s0
    assert isinstance(result, ChatResult) and result.halted_reason == "cancelled"


def test_fault_in_the_second_step_keeps_a_well_formed_thread() -> None:
    """The tool ran and its result is in the thread; the failed second model call left
    nothing half-written (no dangling assistant turn), so the thread can be sent again."""
    from allm.loop import check_thread

    from .wire import sse

    ran: list[str] = []

    @allm.tool
    def lookup(q: str) -> str:
        """Look up."""
        ran.append(q)
        return "result"

    wire = WIRES[0]

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return sse({"id": "c", "object": "chat.completion.chunk", "model": "m",
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    tool_turn = [chunk({"role": "assistant", "tool_calls": [{
        "index": 0, "id": "call_1", "type": "function",
        "function": {"name": "lookup", "arguments": '{"q": "x"}'}}]}),
        chunk({}, "tool_calls"), b"data: [DONE]\n\n"]
    replies = [Reply(chunks=tool_turn),
               Reply(chunks=wire.stream_chunks(WORDS[:2], complete=False), after="drop")]
    s0 = start_session()
    blob = allm.dumps(s0)
    with FaultServer(replies) as server:
        engine = allm.engine(adapter=wire.adapter(server.url), model=wire.model,
                             tools=[lookup])
        s1, result = s0.reply(engine, "next", **OPTS)
        engine.adapter.close()  # type: ignore[union-attr]
    assert allm.dumps(s0) == blob and ran == ["x"]
    assert s1.status == "error" and result.halted_reason == "error"
    roles = [m.role for m in s1.thread.messages]
    assert roles == ["user", "assistant", "user", "assistant", "tool"]
    check_thread(s1.thread)  # every tool call has its result
    assert allm.loads(allm.dumps(s1)) == s1
