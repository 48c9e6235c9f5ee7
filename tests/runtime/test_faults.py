"""Loopback fault tests: a real socket server (tests/reliability/faultserver.py) and the
adapter's own pooled httpx2 clients, sync and async."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from allm.errors import AdapterError
from allm.events import ErrorEvent, Event, MessageCompleted, TextDelta
from allm.messages import user
from allm.providers.base import Call
from allm.request import Request
from allm.retry import RetryPolicy
from reliability.faultserver import FaultServer
from reliability.faultserver import Reply as Step

from .tinycodec import TinyAdapter, sse_body

REQ = Request(messages=(user("hi"),))
KEY = "sk-loopback"
WORDS = [f"w{i} " for i in range(10)]


def call(**kw: Any) -> Call:
    kw.setdefault("api_key", KEY)
    kw.setdefault("retry", RetryPolicy(base_delay=0.05, jitter=0.0))
    return Call(**kw)


def text(events: list[Event]) -> str:
    return "".join(e.delta for e in events if isinstance(e, TextDelta))


def stream_chunks(words: list[str], *, done: bool = True) -> list[bytes]:
    chunks = [sse_body([w], done=False) for w in words]
    if done:
        chunks.append(b"data: [DONE]\n\n")
    return chunks


OK = Step(chunks=stream_chunks(WORDS))


def run_sync(server: FaultServer, c: Call, **kw: Any) -> list[Event]:
    with TinyAdapter(base_url=server.url, **kw) as adapter:
        return list(adapter.stream(REQ, c))


async def run_async(server: FaultServer, c: Call, **kw: Any) -> list[Event]:
    async with TinyAdapter(base_url=server.url, **kw) as adapter:
        return [e async for e in adapter.astream(REQ, c)]


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_429_retry_after_one_second_then_200(mode: str) -> None:
    steps = [Step(status=429, headers={"retry-after": "1"}, body=b'{"error": "slow down"}'), OK]
    with FaultServer(steps) as server:
        t0 = time.monotonic()
        c = call(retry=RetryPolicy(base_delay=0.01, jitter=0.0))
        events = run_sync(server, c) if mode == "sync" else await run_async(server, c)
        elapsed = time.monotonic() - t0
    assert text(events) == "".join(WORDS)
    assert isinstance(events[-1], MessageCompleted)
    assert elapsed >= 0.9
    assert server.record.times[1] - server.record.times[0] >= 0.9


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_500_500_200_succeeds_on_third_attempt(mode: str) -> None:
    steps = [Step(status=500, body=b"{}"), Step(status=500, body=b"{}"), OK]
    with FaultServer(steps) as server:
        events = run_sync(server, call()) if mode == "sync" else await run_async(server, call())
    assert text(events) == "".join(WORDS)
    assert len(server.record.times) == 3
    assert server.record.connections == 1  # one pooled client, keep-alive reused


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_connection_dropped_half_way_keeps_half_text(mode: str) -> None:
    half = WORDS[:5]
    with FaultServer([Step(chunks=stream_chunks(half, done=False), after="drop"), OK]) as server:
        events = run_sync(server, call()) if mode == "sync" else await run_async(server, call())
    assert text(events) == "".join(half)
    assert isinstance(events[-1], ErrorEvent)
    err = events[-1].error
    assert isinstance(err, AdapterError) and err.reason == "network_error"
    assert len(server.record.times) == 1  # events were yielded: no retry


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_stalled_stream_times_out_within_read_timeout(mode: str) -> None:
    steps = [Step(chunks=stream_chunks(WORDS[:3], done=False), after="stall", stall_for=3.0)]
    with FaultServer(steps) as server:
        t0 = time.monotonic()
        c = call(read_timeout=0.4)
        events = run_sync(server, c) if mode == "sync" else await run_async(server, c)
        elapsed = time.monotonic() - t0
    assert text(events) == "".join(WORDS[:3])
    assert isinstance(events[-1], ErrorEvent) and events[-1].error.reason == "timeout"
    assert 0.35 <= elapsed < 1.5


def test_adapter_level_read_timeout_and_overall_timeout() -> None:
    steps = [Step(chunks=stream_chunks(WORDS[:1], done=False), after="stall", stall_for=3.0)]
    with FaultServer(steps) as server:
        t0 = time.monotonic()
        events = run_sync(server, call(), read_timeout=0.3)
        assert events[-1].error.reason == "timeout"  # type: ignore[union-attr]
        assert time.monotonic() - t0 < 1.5
    # overall deadline caps a slow drip even though each gap is under the read timeout
    slow = [Step(chunks=stream_chunks(WORDS), drip=0.1)]
    with FaultServer(slow) as server:
        t0 = time.monotonic()
        events = run_sync(server, call(timeout=0.45))
        elapsed = time.monotonic() - t0
    assert isinstance(events[-1], ErrorEvent) and events[-1].error.reason == "timeout"
    assert 0 < len(text(events)) < len("".join(WORDS))
    assert elapsed < 1.5


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_early_close_closes_the_connection(mode: str) -> None:
    words = [f"x{i}" for i in range(200)]
    with FaultServer([Step(chunks=stream_chunks(words), drip=0.02)]) as server:
        if mode == "sync":
            adapter = TinyAdapter(base_url=server.url)
            it = adapter.stream(REQ, call())
            for ev in it:
                if isinstance(ev, TextDelta):
                    break
            it.close()  # type: ignore[attr-defined]
            closed_at = time.monotonic()
            adapter.close()
        else:
            adapter = TinyAdapter(base_url=server.url)
            ait = adapter.astream(REQ, call())
            async for ev in ait:
                if isinstance(ev, TextDelta):
                    break
            await ait.aclose()  # type: ignore[attr-defined]
            closed_at = time.monotonic()
            await adapter.aclose()
        deadline = time.monotonic() + 3
        while not server.record.disconnects and time.monotonic() < deadline:
            time.sleep(0.02)
    assert server.record.disconnects, "server never saw the client hang up"
    assert server.record.disconnects[0] - closed_at < 1.0


def test_one_pooled_client_per_adapter() -> None:
    with FaultServer([OK, OK, OK]) as server:
        adapter = TinyAdapter(base_url=server.url)
        for _ in range(3):
            assert text(list(adapter.stream(REQ, call()))) == "".join(WORDS)
        client = adapter._client
        assert client is not None
        adapter.close()
        assert client.is_closed
    assert server.record.connections == 1
    assert json.loads(server.record.requests[0].body) == {"prompt": "hi", "stream": True}
