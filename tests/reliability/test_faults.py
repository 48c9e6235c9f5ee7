"""Fault injection per provider wire format, through `allm.generate` / `agenerate`
against the loopback fault server.

Every case asserts: the call ends in a typed allm error (or succeeds after retries)
within its time budget, and the process's peak RSS growth stays bounded. Session
integrity under the same faults is in `test_session_faults.py`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

import allm
from allm.errors import AdapterError, AllmError
from allm.request import Response
from allm.retry import RetryPolicy

from .faultserver import FaultServer, Reply, endless, gzip_bomb
from .probes import MB, PeakRss
from .wire import ANTHROPIC, GEMINI, WIRE_IDS, WIRES, Wire

KEY = "sk-reliability-0123456789"
WORDS = ["Hel", "lo ", "wor", "ld"]
TEXT = "".join(WORDS)
FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.01, jitter=0.0, max_retry_after=2.0)


@dataclass
class Outcome:
    response: Response | None
    error: BaseException | None
    elapsed: float
    server: FaultServer
    growth: int = 0

    @property
    def adapter_error(self) -> AdapterError:
        assert isinstance(self.error, AdapterError), repr(self.error)
        return self.error

    @property
    def gaps(self) -> list[float]:
        t = self.server.record.times
        return [b - a for a, b in zip(t, t[1:], strict=False)]


def run(wire: Wire, replies: list[Reply] | Callable[..., Reply], *, stream: bool = True,
        max_seconds: float = 20.0, **opts: Any) -> Outcome:
    """One `allm.generate` against a fault server; any non-allm exception fails."""
    opts.setdefault("retry", FAST_RETRY)
    opts.setdefault("timeout", 5.0)
    opts.setdefault("read_timeout", 2.0)
    with FaultServer(replies, max_seconds=max_seconds) as server:
        engine = wire.engine(server.url)
        response = error = None
        t0 = time.monotonic()
        with PeakRss() as peak:
            try:
                response = allm.generate(engine, "hi", api_key=KEY, stream=stream, **opts)
            except AllmError as exc:
                error = exc
            finally:
                engine.adapter.close()  # type: ignore[union-attr]
        elapsed = time.monotonic() - t0
    assert not server.record.errors, server.record.errors
    return Outcome(response, error, elapsed, server, peak.growth)


async def arun(wire: Wire, replies: list[Reply], *, stream: bool = True,
               **opts: Any) -> Outcome:
    opts.setdefault("retry", FAST_RETRY)
    opts.setdefault("timeout", 5.0)
    opts.setdefault("read_timeout", 2.0)
    with FaultServer(replies, max_seconds=20) as server:
        engine = wire.engine(server.url)
        response = error = None
        t0 = time.monotonic()
        with PeakRss() as peak:
            try:
                response = await allm.agenerate(engine, "hi", api_key=KEY, stream=stream,
                                                **opts)
            except AllmError as exc:
                error = exc
            finally:
                await engine.adapter.aclose()  # type: ignore[union-attr]
        elapsed = time.monotonic() - t0
    return Outcome(response, error, elapsed, server, peak.growth)


def ok(wire: Wire, *, stream: bool = True) -> Reply:
    if stream:
        return Reply(chunks=wire.stream_chunks(WORDS))
    return Reply(body=wire.json_body(TEXT))


def assert_ok(out: Outcome, attempts: int) -> None:
    assert out.error is None, repr(out.error)
    assert out.response is not None and out.response.output_text == TEXT
    assert len(out.server.record.requests) == attempts


wires = pytest.mark.parametrize("wire", WIRES, ids=WIRE_IDS)
modes = pytest.mark.parametrize("stream", [True, False], ids=["sse", "json"])


# -- retried statuses ------------------------------------------------------------------


def plain_429(wire: Wire) -> bytes:
    """The 429 body without Gemini's RetryInfo (which would win over the header)."""
    if wire is GEMINI:
        return json.dumps({"error": {"code": 429, "message": "Quota exceeded",
                                     "status": "RESOURCE_EXHAUSTED"}}).encode()
    return wire.rate_limited


@wires
@modes
def test_429_retry_after_then_ok(wire: Wire, stream: bool) -> None:
    out = run(wire, [Reply(status=429, headers={"retry-after": "0.3"}, body=plain_429(wire)),
                     ok(wire, stream=stream)], stream=stream)
    assert_ok(out, 2)
    assert out.gaps[0] >= 0.28  # waited what the server asked, not the 10 ms backoff


@wires
def test_429_retry_after_ms_then_ok(wire: Wire) -> None:
    out = run(wire, [Reply(status=429, headers={"retry-after-ms": "250"},
                           body=plain_429(wire)), ok(wire)])
    assert_ok(out, 2)
    assert out.gaps[0] >= 0.23


def test_429_http_date_retry_after() -> None:
    from email.utils import formatdate

    when = formatdate(time.time() + 1, usegmt=True)  # whole seconds: wait is 0..1 s
    out = run(GEMINI, [Reply(status=429, headers={"retry-after": when},
                             body=GEMINI.rate_limited), ok(GEMINI)])
    assert_ok(out, 2)


@wires
@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_twice_then_ok(wire: Wire, status: int) -> None:
    out = run(wire, [Reply(status=status, body=wire.server_error)] * 2 + [ok(wire)])
    assert_ok(out, 3)


def test_anthropic_529_overloaded_then_ok() -> None:
    out = run(ANTHROPIC, [Reply(status=529, body=ANTHROPIC.server_error), ok(ANTHROPIC)])
    assert_ok(out, 2)


def test_anthropic_overloaded_error_event_in_200_stream_is_retried() -> None:
    from .wire import sse

    overloaded = [ANTHROPIC.stream_head()[0],
                  sse({"type": "error", "error": {"type": "overloaded_error",
                                                  "message": "Overloaded"}}, "error")]
    out = run(ANTHROPIC, [Reply(chunks=overloaded), ok(ANTHROPIC)])
    assert_ok(out, 2)


@modes
def test_gemini_resource_exhausted_retry_info_then_ok(stream: bool) -> None:
    # No Retry-After header: the delay comes from the body's RetryInfo.retryDelay (0.2s).
    out = run(GEMINI, [Reply(status=429, body=GEMINI.rate_limited), ok(GEMINI, stream=stream)],
              stream=stream)
    assert_ok(out, 2)
    assert out.gaps[0] >= 0.18


@wires
def test_429_forever_gives_rate_limited_with_retry_after(wire: Wire) -> None:
    out = run(wire, [Reply(status=429, headers={"retry-after": "0.05"},
                           body=plain_429(wire))] * 3)
    err = out.adapter_error
    assert err.reason == "rate_limited" and err.status == 429
    assert err.retry_after is not None and err.retry_after <= 0.2
    assert len(out.server.record.requests) == 3


@wires
def test_html_error_page_from_a_proxy(wire: Wire) -> None:
    html = (b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>"
            b"502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>")
    page = Reply(status=502, headers={"content-type": "text/html"}, body=html)
    out = run(wire, [page] * 3)
    err = out.adapter_error
    assert err.reason == "provider_unavailable" and err.status == 502
    assert len(out.server.record.requests) == 3  # retried as a 502
    assert len(str(err)) < 2000


# -- connection faults -----------------------------------------------------------------


@wires
def test_close_before_headers_is_retried(wire: Wire) -> None:
    out = run(wire, [Reply(close_before_headers=True), ok(wire)])
    assert_ok(out, 2)


@wires
def test_close_before_headers_always_gives_network_error(wire: Wire) -> None:
    out = run(wire, [Reply(close_before_headers=True)] * 3)
    assert out.adapter_error.reason == "network_error"
    assert out.elapsed < 3


@wires
@modes
def test_drop_after_headers_is_retried(wire: Wire, stream: bool) -> None:
    # Status line and headers, then the connection closes before any body byte.
    dropped = Reply(chunks=[], after="drop") if stream else \
        Reply(raw=b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                  b"content-length: 500\r\n\r\n")
    out = run(wire, [dropped, ok(wire, stream=stream)], stream=stream)
    assert_ok(out, 2)


@wires
def test_drop_mid_stream_keeps_partial_text(wire: Wire) -> None:
    half = Reply(chunks=wire.stream_chunks(WORDS[:2], complete=False), after="drop")
    out = run(wire, [half, ok(wire)])
    err = out.adapter_error
    assert err.reason in ("network_error", "malformed_response"), err
    assert err.partial is not None and err.partial.output_text == "".join(WORDS[:2])
    assert len(out.server.record.requests) == 1  # text reached the caller: no retry


@wires
def test_stall_mid_stream_times_out_within_read_timeout(wire: Wire) -> None:
    stall = Reply(chunks=wire.stream_chunks(WORDS[:2], complete=False), after="stall",
                  stall_for=5)
    out = run(wire, [stall], read_timeout=0.3)
    err = out.adapter_error
    assert err.reason == "timeout"
    assert err.partial.output_text == "".join(WORDS[:2])
    assert out.elapsed < 1.5


@wires
def test_stall_before_headers_respects_overall_timeout(wire: Wire) -> None:
    # The server reads the request and never answers (a hung proxy).
    def hang(_: Any) -> Reply:
        time.sleep(1.5)
        return Reply(close_before_headers=True)

    out = run(wire, hang, timeout=0.5, read_timeout=None)
    assert out.adapter_error.reason == "timeout"
    assert out.elapsed < 1.2


# -- malformed bodies ------------------------------------------------------------------


@wires
def test_truncated_json_in_stream(wire: Wire) -> None:
    chunks = wire.stream_chunks(WORDS[:1], complete=False)
    chunks.append(wire.text_delta("x")[:-12] + b"\n\n")  # a data line cut mid-JSON
    out = run(wire, [Reply(chunks=chunks)])
    assert out.adapter_error.reason == "malformed_response", out.error


@wires
def test_truncated_json_body(wire: Wire) -> None:
    body = wire.json_body(TEXT)
    out = run(wire, [Reply(body=body[: len(body) // 2])], stream=False)
    assert out.adapter_error.reason == "malformed_response"


@wires
@modes
def test_body_that_is_not_json(wire: Wire, stream: bool) -> None:
    junk = Reply(headers={"content-type": "text/plain"}, body=b"Service is up. Have a nice day.")
    out = run(wire, [junk] * 3, stream=stream)
    # Not JSON (and not an event stream): a typed error; a stream without a single event
    # reads as cut short (network_error, retried while nothing reached the caller).
    assert out.adapter_error.reason in ("malformed_response", "network_error"), out.error


@wires
def test_invalid_utf8_in_stream(wire: Wire) -> None:
    chunks = wire.stream_chunks(WORDS[:1], complete=False)
    chunks.append(wire.text_delta("AAAA").replace(b"AAAA", b"\xff\xfe\xc3("))
    chunks += wire.stream_tail(TEXT)
    out = run(wire, [Reply(chunks=chunks)])
    # Either decoded with replacement characters or a typed error; never UnicodeError.
    if out.error is not None:
        assert out.adapter_error.reason == "malformed_response"
    else:
        assert out.response is not None and out.response.output_text.startswith(WORDS[0])


@wires
def test_invalid_utf8_json_body(wire: Wire) -> None:
    body = wire.json_body("AAAA").replace(b"AAAA", b"\xff\xfe\xc3(")
    out = run(wire, [Reply(body=body)], stream=False)
    if out.error is not None:
        assert out.adapter_error.reason == "malformed_response"


@wires
def test_ten_megabyte_sse_line(wire: Wire) -> None:
    big = "x" * (10 * MB)
    chunks = wire.stream_head() + [wire.text_delta(big)] + wire.stream_tail(big)
    out = run(wire, [Reply(chunks=chunks)])
    assert out.error is None, out.error
    assert out.response is not None and len(out.response.output_text) == 10 * MB
    assert out.growth < 100 * MB, out.growth / MB


@wires
def test_ten_megabyte_garbage_line(wire: Wire) -> None:
    chunks = wire.stream_head() + [b"data: " + b"{" * (10 * MB) + b"\n\n"]
    out = run(wire, [Reply(chunks=chunks)])
    assert out.adapter_error.reason == "malformed_response"
    assert out.growth < 100 * MB, out.growth / MB


@wires
def test_line_without_end_is_bounded(wire: Wire) -> None:
    # 1 MiB pieces of one line that never ends: the SSE line cap (16 MiB) stops it.
    out = run(wire, [Reply(chunks=[b"data: "] + list(endless(b"y" * MB, max_bytes=64 * MB)))])
    assert out.adapter_error.reason == "malformed_response"
    assert out.growth < 100 * MB, out.growth / MB


@wires
def test_endless_stream_ends_at_the_overall_timeout(wire: Wire) -> None:
    chunks = wire.stream_head() + list(endless(wire.text_delta("z" * 64) * 16,
                                               max_bytes=256 * MB))
    out = run(wire, [Reply(chunks=chunks, drip=0.001)], timeout=0.8)
    err = out.adapter_error
    assert err.reason == "timeout"
    assert err.partial is not None and err.partial.output_text.startswith("z")
    assert out.elapsed < 2.0
    assert out.growth < 100 * MB, out.growth / MB


@wires
@modes
def test_gzip_bomb(wire: Wire, stream: bool) -> None:
    bomb = Reply(headers={"content-encoding": "gzip",
                          "content-type": "text/event-stream" if stream else "application/json"},
                 chunks=gzip_bomb(2))
    out = run(wire, [bomb], stream=stream, timeout=10.0)
    assert out.adapter_error.reason == "malformed_response", out.error
    assert out.growth < 100 * MB, out.growth / MB
    assert out.elapsed < 5


def test_gzip_bomb_error_body() -> None:
    wire = WIRES[0]
    bomb = Reply(status=500, headers={"content-encoding": "gzip"}, chunks=gzip_bomb(1))
    out = run(wire, [bomb], retry=False)
    assert out.adapter_error.status == 500
    assert out.growth < 100 * MB, out.growth / MB


# -- async twins (one provider each, the shells differ; the decisions are shared) ------


@pytest.mark.anyio
@pytest.mark.parametrize("wire", WIRES, ids=WIRE_IDS)
async def test_async_faults(wire: Wire) -> None:
    out = await arun(wire, [Reply(status=429, headers={"retry-after-ms": "100"},
                                  body=wire.rate_limited),
                            Reply(close_before_headers=True), ok(wire)])
    assert_ok(out, 3)
    stall = Reply(chunks=wire.stream_chunks(WORDS[:2], complete=False), after="stall")
    out = await arun(wire, [stall], read_timeout=0.3)
    assert out.adapter_error.reason == "timeout" and out.elapsed < 1.5
    endless_reply = Reply(chunks=wire.stream_head() + list(endless(wire.text_delta("z"),
                                                                   max_bytes=64 * MB)),
                          drip=0.001)
    out = await arun(wire, [endless_reply], timeout=0.6)
    assert out.adapter_error.reason == "timeout" and out.elapsed < 1.8
    bomb = Reply(headers={"content-encoding": "gzip"}, chunks=gzip_bomb(2))
    out = await arun(wire, [bomb], stream=False)
    assert out.adapter_error.reason == "malformed_response"
    assert out.growth < 100 * MB, out.growth / MB


def test_error_body_is_parsed_json() -> None:
    out = run(WIRES[0], [Reply(status=400, body=json.dumps(
        {"error": {"message": "bad", "type": "invalid_request_error"}}).encode())])
    assert out.adapter_error.reason == "invalid_request"
    assert out.adapter_error.body == {"error": {"message": "bad",
                                                "type": "invalid_request_error"}}


@pytest.mark.parametrize("value", ["3600", "1e309", "nan", "-5", "soon", "inf",
                                   "Wed, 21 Oct 2099 07:28:00 GMT"])
def test_hostile_retry_after_values_stay_within_the_call_timeout(value: str) -> None:
    wire = WIRES[0]
    out = run(wire, [Reply(status=429, headers={"retry-after": value}, body=wire.rate_limited),
                     ok(wire)], timeout=1.0, retry=RetryPolicy(max_attempts=3, base_delay=0.01,
                                                               jitter=0.0))
    assert out.elapsed < 1.6, (value, out.elapsed)
    if out.error is not None:  # waiting as asked would overrun the call's deadline
        assert out.adapter_error.reason in ("rate_limited", "timeout"), out.error
    else:
        assert out.response is not None and out.response.output_text == TEXT


@pytest.mark.parametrize("value", ["1e309", "nan", "-1", "abc"])
def test_hostile_retry_after_ms_values(value: str) -> None:
    wire = WIRES[2]
    out = run(wire, [Reply(status=429, headers={"retry-after-ms": value},
                           body=wire.rate_limited), ok(wire)], timeout=1.0)
    assert out.elapsed < 1.6, (value, out.elapsed)
    assert out.error is None or out.adapter_error.reason in ("rate_limited", "timeout")


@pytest.mark.anyio
@pytest.mark.parametrize("status", [200, 500])
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_dripping_json_body_ends_at_the_overall_timeout(status: int, mode: str) -> None:
    # Each byte arrives well within the read timeout, so only the overall deadline can
    # stop it (found: non-stream bodies only checked the deadline between attempts).
    wire = WIRES[0]
    drip = Reply(status=status, headers={"content-type": "application/json"},
                 chunks=[b'{"id": "x", "choices": ['] + list(endless(b" ", max_bytes=10**6)),
                 drip=0.05)
    opts: dict[str, Any] = {"stream": False, "timeout": 0.8, "read_timeout": None,
                            "retry": False}
    if mode == "sync":
        out = run(wire, [drip], max_seconds=5, **opts)
    else:
        out = await arun(wire, [drip], **opts)
    assert out.adapter_error.reason == "timeout"
    assert out.elapsed < 1.5, out.elapsed


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_gzip_bomb_behind_an_image_url_gemini_prefetch(mode: str) -> None:
    """Gemini's opt-in URL-image prefetch downloads a user-given URL: a bomb there is
    cut at the inline limit (20 MB) and rejected, never inflated in full."""
    from allm.providers import Gemini

    from .faultserver import Seen

    def handler(seen: Seen) -> Reply:
        if seen.path.startswith("/img"):
            return Reply(headers={"content-encoding": "gzip", "content-type": "image/png"},
                         chunks=gzip_bomb(1))
        return ok(GEMINI)

    with FaultServer(handler, max_seconds=10) as server:
        engine = allm.engine(adapter=Gemini(base_url=server.url, fetch_image_urls=True),
                             model=GEMINI.model)
        msg = allm.user(["what is this?", allm.Image.from_url(server.url + "/img.png")])
        with PeakRss() as peak:
            with pytest.raises(AllmError) as info:
                if mode == "sync":
                    allm.generate(engine, [msg], api_key=KEY, timeout=5)
                else:
                    await allm.agenerate(engine, [msg], api_key=KEY, timeout=5)
        await engine.adapter.aclose()  # type: ignore[union-attr]
    assert isinstance(info.value, AdapterError)
    assert info.value.reason in ("request_too_large", "malformed_response", "network_error")
    assert peak.growth < 100 * MB, peak.growth / MB
    assert not any(r.path.startswith("/v1beta") for r in server.record.requests)


# -- image generation (the whole-body `fetch` path) and redirects -----------------------


@pytest.mark.anyio
@pytest.mark.parametrize("fault", ["bomb", "drip", "html", "truncated"])
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_image_generation_faults(fault: str, mode: str) -> None:
    from allm.errors import ImageAdapterError
    from allm.providers import OpenAIImages

    reply = {
        "bomb": Reply(headers={"content-encoding": "gzip"}, chunks=gzip_bomb(1)),
        "drip": Reply(chunks=[b'{"data": ['] + list(endless(b" ", max_bytes=10**6)),
                      drip=0.05),
        "html": Reply(status=502, headers={"content-type": "text/html"},
                      body=b"<html><body>Bad Gateway</body></html>"),
        "truncated": Reply(body=b'{"created": 1, "data": [{"b64_json": "iVBO'),
    }[fault]
    with FaultServer([reply] * 3, max_seconds=10) as server:
        engine = allm.engine(image_adapter=OpenAIImages(base_url=server.url + "/v1"),
                             model="gpt-image-1")
        t0 = time.monotonic()
        with PeakRss() as peak:
            with pytest.raises(AllmError) as info:
                if mode == "sync":
                    allm.generate_image(engine, "a cat", api_key=KEY, timeout=0.8,
                                        retry=FAST_RETRY)
                else:
                    await allm.agenerate_image(engine, "a cat", api_key=KEY, timeout=0.8,
                                               retry=FAST_RETRY)
        elapsed = time.monotonic() - t0
        await engine.image_adapter.aclose()  # type: ignore[union-attr]
    assert isinstance(info.value, ImageAdapterError), info.value
    assert elapsed < 1.5, elapsed
    assert peak.growth < 100 * MB, peak.growth / MB
    assert KEY not in repr(info.value) + str(info.value.body)


@wires
def test_redirects_are_not_followed(wire: Wire) -> None:
    """A 307 to another host must not carry the key there (clients are created with
    follow_redirects=False): the call fails typed and the other host sees nothing."""
    with FaultServer([ok(wire)]) as elsewhere:
        moved = Reply(status=307, headers={"location": elsewhere.url + "/steal"},
                      body=b"")
        out = run(wire, [moved])
        assert out.error is not None and isinstance(out.error, AllmError)
        assert elsewhere.record.requests == []
