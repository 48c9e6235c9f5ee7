"""Resource hygiene: after 1,000 calls (finished, failed, and streams the caller
abandoned or cancelled) no file descriptors, threads, asyncio tasks or connections
are left behind, and closing a stream early closes its HTTP response (the server
sees the client hang up).
"""

from __future__ import annotations

import gc
import time
from typing import Any

import anyio
import pytest

import allm
from allm.errors import AllmError
from allm.events import TextDelta, ToolExecutionStarted
from allm.retry import RetryPolicy

from .faultserver import FaultServer, Reply, Seen
from .probes import fd_count, task_count, thread_count
from .wire import WIRE_IDS, WIRES, Wire

KEY = "sk-hygiene-0123456789"
NO_RETRY = RetryPolicy(max_attempts=1)
LONG = [f"w{i} " for i in range(400)]


def handler_for(wire: Wire) -> Any:
    def handler(seen: Seen) -> Reply:
        body = seen.body
        if b"kind-error" in body:
            return Reply(status=500, body=wire.server_error)
        if b"kind-drop" in body:
            return Reply(chunks=wire.stream_chunks(["a"], complete=False), after="drop")
        if b"kind-long" in body:
            return Reply(chunks=wire.stream_chunks(LONG), drip=0.0005)
        if b'"stream":true' in body or "stream" in seen.path:
            return Reply(chunks=wire.stream_chunks(["ok"]))
        return Reply(body=wire.json_body("ok"))

    return handler


def settle(predicate: Any, timeout: float = 3.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end and not predicate():
        gc.collect()
        time.sleep(0.02)


def sync_batch(engine: allm.Engine, n: int) -> dict[str, int]:
    seen = {"ok": 0, "error": 0, "cancelled": 0}
    for i in range(n):
        kind = ("ok", "ok", "error", "drop", "long")[i % 5]
        prompt = f"kind-{kind} {i}"
        if kind == "long":  # abandon the stream after the first delta
            it = allm.stream_generate(engine, prompt, api_key=KEY, retry=NO_RETRY)
            for ev in it:
                if isinstance(ev, TextDelta):
                    break
            it.close()  # type: ignore[attr-defined]
            seen["cancelled"] += 1
            continue
        try:
            allm.generate(engine, prompt, api_key=KEY, retry=NO_RETRY, stream=i % 2 == 0,
                          timeout=5)
            seen["ok"] += 1
        except AllmError:
            seen["error"] += 1
    return seen


@pytest.mark.parametrize("wire", [WIRES[0], WIRES[2]], ids=[WIRE_IDS[0], WIRE_IDS[2]])
def test_sync_calls_leave_nothing_behind(wire: Wire) -> None:
    gc.collect()
    fds0, threads0 = fd_count(), thread_count()
    with FaultServer(handler_for(wire), max_seconds=60) as server:
        engine = wire.engine(server.url)
        sync_batch(engine, 25)  # warm up: lazy imports, the pooled client
        fds_warm = fd_count()
        seen = sync_batch(engine, 250)
        settle(lambda: fd_count() <= fds_warm + 2)
        # While the adapter lives, only its pool holds sockets (<= keep-alive limit).
        assert fd_count() <= fds_warm + 2, (fds_warm, fd_count())
        engine.adapter.close()  # type: ignore[union-attr]
        assert server.wait_for(lambda: server.record.open_connections == 0), \
            server.record.open_connections
        assert len(server.record.disconnects) >= seen["cancelled"] * 0.9
        assert not server.record.errors, server.record.errors[:3]
    settle(lambda: fd_count() <= fds0 + 1 and thread_count() <= threads0)
    assert fd_count() <= fds0 + 1, (fds0, fd_count())
    assert thread_count() <= threads0, (threads0, thread_count())
    assert seen["cancelled"] == 50 and seen["error"] == 100 and seen["ok"] == 100


@pytest.mark.anyio
@pytest.mark.parametrize("wire", [WIRES[1], WIRES[3]], ids=[WIRE_IDS[1], WIRE_IDS[3]])
async def test_async_calls_leave_nothing_behind(wire: Wire) -> None:
    gc.collect()
    fds0, threads0, tasks0 = fd_count(), thread_count(), task_count()
    counts = {"ok": 0, "error": 0, "cancelled": 0}

    async def one(engine: allm.Engine, i: int) -> None:
        kind = ("ok", "ok", "error", "drop", "long", "long")[i % 6]
        prompt = f"kind-{kind} {i}"
        if kind == "long" and i % 2:  # abandon after the first delta, close explicitly
            it = allm.astream_generate(engine, prompt, api_key=KEY, retry=NO_RETRY)
            async for ev in it:
                if isinstance(ev, TextDelta):
                    break
            await it.aclose()  # type: ignore[attr-defined]
            counts["cancelled"] += 1
            return
        if kind == "long":  # cancelled from outside by a deadline mid-stream
            with anyio.move_on_after(0.02):
                await allm.agenerate(engine, prompt, api_key=KEY, retry=NO_RETRY, stream=True)
            counts["cancelled"] += 1
            return
        try:
            await allm.agenerate(engine, prompt, api_key=KEY, retry=NO_RETRY,
                                 stream=i % 2 == 0, timeout=5)
            counts["ok"] += 1
        except AllmError:
            counts["error"] += 1

    with FaultServer(handler_for(wire), max_seconds=60) as server:
        engine = wire.engine(server.url)
        limiter = anyio.CapacityLimiter(16)

        async def limited(i: int) -> None:
            async with limiter:
                await one(engine, i)

        async with anyio.create_task_group() as tg:
            for i in range(300):
                tg.start_soon(limited, i)
        await engine.adapter.aclose()  # type: ignore[union-attr]
        assert server.wait_for(lambda: server.record.open_connections == 0), \
            server.record.open_connections
        assert not server.record.errors, server.record.errors[:3]
    await anyio.sleep(0.05)
    settle(lambda: fd_count() <= fds0 + 1)
    assert task_count() <= tasks0, (tasks0, task_count())
    assert fd_count() <= fds0 + 1, (fds0, fd_count())
    assert thread_count() <= threads0 + 1, (threads0, thread_count())
    assert counts["cancelled"] == 100 and counts["error"] == 100 and counts["ok"] == 100


@allm.tool
def slow_tool(x: int) -> int:
    """Takes a moment."""
    time.sleep(0.002)
    return x


def test_cancelled_chat_streams_with_tools_leave_no_threads() -> None:
    gc.collect()
    threads0 = thread_count()
    script = [("tool_call", {"id": f"c{i}", "name": "slow_tool", "arguments": {"x": i}})
              for i in range(4)]
    for _ in range(100):
        engine = allm.engine("fake:m", tools=[slow_tool], scripts=[script, [("text", "ok")]])
        it = allm.stream(engine, "go")
        for ev in it:
            if isinstance(ev, ToolExecutionStarted):
                break
        it.close()  # type: ignore[attr-defined]
    for _ in range(50):
        engine = allm.engine("fake:m", tools=[slow_tool], scripts=[script, [("text", "ok")]])
        allm.chat(engine, "go")
    settle(lambda: thread_count() <= threads0, timeout=5)
    assert thread_count() <= threads0, (threads0, thread_count())


@pytest.mark.anyio
async def test_cancelled_achat_leaves_no_tasks() -> None:
    tasks0 = task_count()
    script = [("tool_call", {"id": f"c{i}", "name": "slow_tool", "arguments": {"x": i}})
              for i in range(4)]
    for i in range(100):
        engine = allm.engine("fake:m", tools=[slow_tool], scripts=[script, [("text", "ok")]])
        if i % 2:
            with anyio.move_on_after(0.001):
                await allm.achat(engine, "go")
        else:
            it = allm.astream(engine, "go")
            async for ev in it:
                if isinstance(ev, ToolExecutionStarted):
                    break
            await it.aclose()  # type: ignore[attr-defined]
    await anyio.sleep(0.05)
    assert task_count() <= tasks0, (tasks0, task_count())


@pytest.mark.parametrize("wire", WIRES, ids=WIRE_IDS)
@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.anyio
async def test_early_close_closes_the_http_response(wire: Wire, mode: str) -> None:
    with FaultServer([Reply(chunks=wire.stream_chunks(LONG), drip=0.01)]) as server:
        engine = wire.engine(server.url)
        if mode == "sync":
            it = allm.stream_generate(engine, "hi", api_key=KEY)
            for ev in it:
                if isinstance(ev, TextDelta):
                    break
            it.close()  # type: ignore[attr-defined]
        else:
            ait = allm.astream_generate(engine, "hi", api_key=KEY)
            async for ev in ait:
                if isinstance(ev, TextDelta):
                    break
            await ait.aclose()  # type: ignore[attr-defined]
        closed = time.monotonic()
        assert server.wait_for(lambda: bool(server.record.disconnects), timeout=2)
        assert server.record.disconnects[0] - closed < 1.0
        # The connection was dropped, not returned to the pool half-read.
        assert server.wait_for(lambda: server.record.open_connections == 0, timeout=2)
        await engine.adapter.aclose()  # type: ignore[union-attr]
