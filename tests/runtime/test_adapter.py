"""HttpAdapter over httpx2.MockTransport: wire modes, error mapping, retries, hooks."""

from __future__ import annotations

import gzip
import json
import sys
import time
import types
from collections.abc import Callable, Iterator
from typing import Any

import httpx2
import pytest

import allm
from allm.errors import AdapterError, AllmError, EngineError, ImageAdapterError, ValidationError
from allm.events import ErrorEvent, Event, MessageCompleted, MessageStarted, TextDelta
from allm.messages import user
from allm.providers.base import Adapter, Call
from allm.request import Request
from allm.retry import RetryPolicy

from .tinycodec import TinyAdapter, sse_body

FAST = RetryPolicy(base_delay=0.01, jitter=0.0)
REQ = Request(messages=(user("hi"),))
KEY = "sk-test-SECRET-123"

Handler = Callable[[httpx2.Request], httpx2.Response]


def sync_adapter(handler: Handler, **kw: Any) -> TinyAdapter:
    return TinyAdapter(
        base_url="http://tiny.test/",
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
        **kw,
    )


def async_adapter(handler: Handler, **kw: Any) -> TinyAdapter:
    return TinyAdapter(
        base_url="http://tiny.test",
        async_http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)),
        **kw,
    )


def call(**kw: Any) -> Call:
    kw.setdefault("api_key", KEY)
    kw.setdefault("retry", FAST)
    return Call(**kw)


def script(*responses: httpx2.Response | Exception) -> tuple[Handler, list[httpx2.Request]]:
    seen: list[httpx2.Request] = []
    queue = list(responses)

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        item = queue.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    return handler, seen


def ok_stream(deltas: list[str] = ["Hel", "lo"]) -> httpx2.Response:  # noqa: B006
    return httpx2.Response(200, content=sse_body(deltas), headers={"content-type": "text/event-stream"})


def texts(events: list[Event]) -> str:
    return "".join(e.delta for e in events if isinstance(e, TextDelta))


async def collect_async(adapter: TinyAdapter, c: Call) -> list[Event]:
    return [e async for e in adapter.astream(REQ, c)]


# -- basics -------------------------------------------------------------------------------


def test_is_an_adapter_and_repr_has_no_headers() -> None:
    a = sync_adapter(script()[0])
    assert isinstance(a, Adapter)
    assert "sk-" not in repr(a)
    assert a.base_url == "http://tiny.test"


def test_stream_success_sends_codec_request() -> None:
    handler, seen = script(ok_stream())
    events = list(sync_adapter(handler).stream(REQ, call()))
    assert [type(e) for e in events] == [MessageStarted, TextDelta, TextDelta, MessageCompleted]
    assert texts(events) == "Hello"
    (req,) = seen
    assert str(req.url) == "http://tiny.test/chat"
    assert req.headers["authorization"] == f"Bearer {KEY}"
    assert json.loads(req.content) == {"prompt": "hi", "stream": True}


def test_non_stream_wire_mode_decodes_json() -> None:
    handler, seen = script(httpx2.Response(200, json={"id": "r9", "text": "whole"}))
    events = list(sync_adapter(handler).stream(REQ, call(stream=False)))
    assert texts(events) == "whole"
    assert isinstance(events[-1], MessageCompleted) and events[-1].id == "r9"
    assert json.loads(seen[0].content)["stream"] is False


def test_default_headers_sent_codec_headers_win() -> None:
    handler, seen = script(ok_stream())
    a = sync_adapter(handler, default_headers={"x-extra": "1", "Authorization": "nope"})
    list(a.stream(REQ, call()))
    assert seen[0].headers["x-extra"] == "1"
    assert seen[0].headers.get_list("authorization") == [f"Bearer {KEY}"]


def test_gzip_stream_is_decoded() -> None:
    body = gzip.compress(sse_body(["zip", "ped"]))
    resp = httpx2.Response(
        200, content=body, headers={"content-type": "text/event-stream", "content-encoding": "gzip"}
    )
    handler, _ = script(resp)
    assert texts(list(sync_adapter(handler).stream(REQ, call()))) == "zipped"


def test_lazy_no_http_until_iterated() -> None:
    handler, seen = script(ok_stream())
    it = sync_adapter(handler).stream(REQ, call())
    assert seen == []
    next(iter(it))
    assert len(seen) == 1


def test_preflight_errors_raise_at_call_site(monkeypatch: pytest.MonkeyPatch) -> None:
    handler, seen = script()
    a = sync_adapter(handler)
    with pytest.raises(ValidationError):
        a.stream(Request(messages=()), call())
    for var in ("TINY_API_KEY",):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(EngineError) as info:
        a.stream(REQ, Call())
    assert info.value.reason == "missing_key"
    with pytest.raises(EngineError):
        a.astream(REQ, Call())
    assert seen == []


# -- error mapping ---------------------------------------------------------------------------


def test_non_2xx_maps_through_codec_error() -> None:
    resp = httpx2.Response(
        401, json={"error": {"message": "bad key"}}, headers={"x-request-id": "req_1"}
    )
    handler, seen = script(resp)
    events = list(sync_adapter(handler).stream(REQ, call()))
    assert len(events) == 1 and isinstance(events[0], ErrorEvent)
    err = events[0].error
    assert isinstance(err, AdapterError)
    assert (err.reason, err.status, err.request_id) == ("authentication_failed", 401, "req_1")
    assert err.body == {"error": {"message": "bad key"}}
    assert len(seen) == 1  # 401 is not retried


def test_error_body_is_capped() -> None:
    big = b"x" * (3 * 1024 * 1024)
    handler, _ = script(httpx2.Response(400, content=big))
    (ev,) = list(sync_adapter(handler).stream(REQ, call()))
    assert isinstance(ev, ErrorEvent)
    assert isinstance(ev.error, AdapterError) and ev.error.status == 400


def test_transport_errors_are_typed_and_scrubbed() -> None:
    handler, _ = script(httpx2.ConnectError(f"cannot reach http://x?key={KEY}"))
    (ev,) = list(sync_adapter(handler).stream(REQ, call(retry=RetryPolicy(max_attempts=1))))
    assert isinstance(ev, ErrorEvent) and isinstance(ev.error, AdapterError)
    assert ev.error.reason == "network_error"
    assert KEY not in str(ev.error) and KEY not in repr(ev.error)
    assert KEY not in json.dumps(ev.error.to_fields(), default=str)
    handler, _ = script(httpx2.ReadTimeout("slow"))
    (ev,) = list(sync_adapter(handler).stream(REQ, call(retry=RetryPolicy(max_attempts=1))))
    assert isinstance(ev, ErrorEvent) and ev.error.reason == "timeout"


def test_codec_exception_becomes_malformed_response() -> None:
    handler, _ = script(httpx2.Response(200, content=b"not json"))
    (ev,) = list(sync_adapter(handler).stream(REQ, call(stream=False)))
    assert isinstance(ev, ErrorEvent) and ev.error.reason == "malformed_response"


# -- retries -------------------------------------------------------------------------------


def test_retry_500_500_200_succeeds_on_third_attempt() -> None:
    calls: list[tuple[int, float, str]] = []
    handler, seen = script(httpx2.Response(500), httpx2.Response(502), ok_stream())
    c = call(on_retry=lambda attempt, delay, err: calls.append((attempt, delay, err.reason)))
    events = list(sync_adapter(handler).stream(REQ, c))
    assert texts(events) == "Hello" and not any(isinstance(e, ErrorEvent) for e in events)
    assert len(seen) == 3
    assert [(a, r) for a, _, r in calls] == [(1, "provider_unavailable"), (2, "provider_unavailable")]
    assert calls[0][1] == pytest.approx(0.01) and calls[1][1] == pytest.approx(0.02)


def test_retries_exhausted_surface_last_error() -> None:
    handler, seen = script(*[httpx2.Response(503) for _ in range(3)])
    (ev,) = list(sync_adapter(handler).stream(REQ, call()))
    assert isinstance(ev, ErrorEvent) and getattr(ev.error, "status", None) == 503
    assert len(seen) == 3


def test_retry_after_honoured() -> None:
    handler, seen = script(httpx2.Response(429, headers={"retry-after-ms": "200"}), ok_stream())
    delays: list[float] = []
    t0 = time.monotonic()
    events = list(
        sync_adapter(handler).stream(REQ, call(on_retry=lambda a, d, e: delays.append(d)))
    )
    assert time.monotonic() - t0 >= 0.19
    assert delays == [pytest.approx(0.2)]
    assert texts(events) == "Hello" and len(seen) == 2


def test_no_retry_after_first_event() -> None:
    body = sse_body(["Hel"], done=False) + b'data: {"error": {"status": 500}}\n\n'
    handler, seen = script(httpx2.Response(200, content=body), ok_stream())
    events = list(sync_adapter(handler).stream(REQ, call()))
    assert texts(events) == "Hel"
    assert isinstance(events[-1], ErrorEvent) and getattr(events[-1].error, "status", None) == 500
    assert len(seen) == 1


def test_in_stream_error_before_any_content_is_retried() -> None:
    body = b'data: {"error": {"status": 529}}\n\n'
    handler, seen = script(httpx2.Response(200, content=body), ok_stream())
    events = list(sync_adapter(handler).stream(REQ, call()))
    assert texts(events) == "Hello" and len(seen) == 2
    assert sum(isinstance(e, MessageStarted) for e in events) == 1


def test_retry_false_and_call_policy_wins() -> None:
    handler, seen = script(httpx2.Response(500), ok_stream())
    a = sync_adapter(handler, retry=False)
    (ev,) = list(a.stream(REQ, Call(api_key=KEY)))  # Call.retry None -> adapter's (off)
    assert isinstance(ev, ErrorEvent) and len(seen) == 1
    assert texts(list(a.stream(REQ, call()))) == "Hello"  # per-call policy wins
    handler, seen = script(httpx2.Response(500), httpx2.Response(500))
    a = sync_adapter(handler, retry={"base_delay": 0.01, "jitter": 0, "max_attempts": 2})
    list(a.stream(REQ, Call(api_key=KEY)))
    assert len(seen) == 2


def test_overall_timeout_stops_retrying() -> None:
    handler, seen = script(*[httpx2.Response(500) for _ in range(5)])
    slow = RetryPolicy(base_delay=1.0, jitter=0.0, max_attempts=5)
    t0 = time.monotonic()
    (ev,) = list(sync_adapter(handler).stream(REQ, call(retry=slow, timeout=0.5)))
    assert time.monotonic() - t0 < 0.5
    assert isinstance(ev, ErrorEvent) and len(seen) == 1


def test_retry_emits_telemetry_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    got: list[tuple[str, dict[str, Any]]] = []
    fake = types.ModuleType("allm.telemetry")
    fake.emit = lambda name, data: got.append((name, data))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "allm.telemetry", fake)
    monkeypatch.setattr(allm, "telemetry", fake, raising=False)
    handler, _ = script(httpx2.Response(500), ok_stream())
    list(sync_adapter(handler).stream(REQ, call(model="m1", request_id="rid")))
    assert len(got) == 1
    name, data = got[0]
    assert name == "adapter.retry"
    assert data["attempt"] == 1 and data["status"] == 500 and data["provider"] == "tiny"
    assert KEY not in json.dumps(data, default=str)


# -- early close -------------------------------------------------------------------------------


def test_early_close_closes_response() -> None:
    closed: list[bool] = []

    class Body(httpx2.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            yield from (sse_body([f"d{i}"], done=False) for i in range(100))

        def close(self) -> None:
            closed.append(True)

    handler, _ = script(httpx2.Response(200, stream=Body()))
    it = sync_adapter(handler).stream(REQ, call())
    assert isinstance(next(it), MessageStarted)
    assert isinstance(next(it), TextDelta)
    it.close()  # type: ignore[attr-defined]
    assert closed == [True]


# -- async twin ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_matches_sync() -> None:
    responses = [httpx2.Response(500), ok_stream()]
    h1, s1 = script(*responses)
    h2, s2 = script(httpx2.Response(500), ok_stream())
    sync_events = list(sync_adapter(h1).stream(REQ, call()))
    async_events = await collect_async(async_adapter(h2), call())
    assert sync_events == async_events and len(s1) == len(s2) == 2


@pytest.mark.anyio
async def test_async_error_and_non_stream() -> None:
    h, _ = script(httpx2.Response(401, json={"error": "no"}))
    (ev,) = await collect_async(async_adapter(h), call())
    assert isinstance(ev, ErrorEvent) and ev.error.reason == "authentication_failed"
    h, _ = script(httpx2.Response(200, json={"id": "a", "text": "async"}))
    events = await collect_async(async_adapter(h), call(stream=False))
    assert texts(events) == "async"


@pytest.mark.anyio
async def test_async_context_manager_keeps_user_client_open() -> None:
    h, _ = script(ok_stream())
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(h))
    async with TinyAdapter(base_url="http://t", async_http_client=client) as a:
        await collect_async(a, call())
    assert not client.is_closed
    await client.aclose()


def test_retry_reaches_real_telemetry_hooks() -> None:
    from allm import telemetry

    got: list[tuple[str, dict[str, Any]]] = []
    handle = telemetry.attach(lambda name, data: got.append((name, data)), "adapter.retry")
    try:
        handler, _ = script(httpx2.Response(429), ok_stream())
        list(sync_adapter(handler).stream(REQ, call(request_id="rid-1")))
    finally:
        telemetry.detach(handle)
    assert [(n, d["attempt"], d["request_id"], d["reason"]) for n, d in got] == [
        ("adapter.retry", 1, "rid-1", "rate_limited")
    ]


# -- timeouts ---------------------------------------------------------------------------------


def test_timeout_resolution() -> None:
    a = TinyAdapter(base_url="http://t")
    t, use_client = a._timeouts_for(Call(), user_client=False, stream=True)
    assert (t.total, t.connect, t.read, use_client) == (600.0, 10.0, 60.0, False)
    t, _ = a._timeouts_for(Call(), user_client=False, stream=False)
    assert t.read is None  # non-stream: wait up to the overall timeout
    t, _ = a._timeouts_for(Call(read_timeout=5), user_client=False, stream=False)
    assert t.read == 5.0
    t, _ = a._timeouts_for(Call(params={"stream_timeout": 7, "timeout": 9}), user_client=False,
                           stream=True)
    assert (t.total, t.read) == (9.0, 7.0)
    t, _ = a._timeouts_for(Call(timeout=3, params={"timeout": 9}), user_client=False, stream=True)
    assert t.total == 3.0
    b = TinyAdapter(base_url="http://t", read_timeout=2)
    t, _ = b._timeouts_for(Call(), user_client=False, stream=False)
    assert t.read == 2.0
    # a user client keeps its own timeouts unless one is set somewhere
    t, use_client = a._timeouts_for(Call(), user_client=True, stream=True)
    assert use_client and (t.total, t.connect, t.read) == (None, None, None)
    t, use_client = a._timeouts_for(Call(read_timeout=1), user_client=True, stream=True)
    assert not use_client and t.read == 1.0


def test_user_client_timeouts_untouched_unless_set() -> None:
    seen: list[Any] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.extensions.get("timeout"))
        return ok_stream()

    client = httpx2.Client(transport=httpx2.MockTransport(handler), timeout=42.0)
    a = TinyAdapter(base_url="http://t", http_client=client)
    list(a.stream(REQ, call()))
    list(a.stream(REQ, call(read_timeout=3)))
    assert seen[0]["read"] == 42.0
    assert seen[1]["read"] == 3.0


# -- fetch (whole responses, e.g. images) ---------------------------------------------------------


def _image_error(status: int, headers: Any, body: bytes) -> AllmError:
    reason = "rate_limited" if status == 429 else "provider_unavailable"
    return ImageAdapterError(reason, provider="tiny", status=status)


def _fetch_request() -> Any:
    from allm.providers._codec import HttpRequest

    return HttpRequest(method="POST", url="http://tiny.test/images",
                       headers={"authorization": f"Bearer {KEY}"}, content=b"{}")


def test_fetch_retries_and_returns_whole_body() -> None:
    handler, seen = script(httpx2.Response(503), httpx2.Response(200, content=b"PNG..."))
    result = sync_adapter(handler).fetch(_fetch_request(), call(), error=_image_error)
    assert (result.status, result.body, len(seen)) == (200, b"PNG...", 2)
    handler, seen = script(*[httpx2.Response(429, headers={"retry-after-ms": "10"})] * 3)
    with pytest.raises(ImageAdapterError) as info:
        sync_adapter(handler).fetch(_fetch_request(), call(), error=_image_error)
    assert info.value.status == 429 and info.value.retry_after == pytest.approx(0.01)
    assert len(seen) == 3
    handler, _ = script(httpx2.ConnectError(f"refused {KEY}"))
    with pytest.raises(AdapterError) as info2:
        sync_adapter(handler).fetch(_fetch_request(), Call(retry=RetryPolicy(max_attempts=1)),
                                    error=_image_error)
    assert info2.value.reason == "network_error" and KEY not in str(info2.value)


@pytest.mark.anyio
async def test_afetch() -> None:
    handler, seen = script(httpx2.Response(500), httpx2.Response(200, content=b"ok"))
    result = await async_adapter(handler).afetch(_fetch_request(), call(), error=_image_error)
    assert result.body == b"ok" and len(seen) == 2
