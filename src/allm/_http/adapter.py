"""`HttpAdapter`: the base class every HTTP provider adapter subclasses.

Owns the httpx2 clients (one pooled sync and one async client per adapter instance,
created lazily, never one per call; user-supplied clients are used as they are and
never closed by us) and the two thin I/O shells, `_run_sync` / `_run_async`, around
the shared attempt/retry/decode logic in `allm._http.transport`. A subclass only
implements `codec_for(request, call) -> Codec` (its sans-IO codec).

This package is the only place that imports httpx2. Provider modules that need the
client types for annotations use the aliases exported here (`HttpClient`,
`AsyncHttpClient`, `MockTransport`, ...).

Contract (see `allm.providers.base.Adapter`): `stream()` resolves the key, builds the
request and raises typed errors eagerly; it returns a lazy generator that does the
HTTP. Every failure after that is an `ErrorEvent` (the facade raises it for
non-streaming calls); closing the generator early closes the HTTP response.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, Self

import anyio
import httpx2

from ..retry import RetryPolicy, resolve_retry
from .request import build as build_http_request
from .transport import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_TIMEOUT,
    CallRun,
    ErrorFor,
    Failure,
    HttpResult,
    Timeouts,
)

if TYPE_CHECKING:
    from ..events import Event
    from ..providers._codec import Codec, HttpRequest
    from ..providers.base import Call
    from ..request import Request

__all__ = [
    "HttpAdapter",
    "HttpResult",
    "DownloadFailed",
    "ErrorFor",
    "HttpClient",
    "AsyncHttpClient",
    "MockTransport",
    "HttpxRequest",
    "HttpxResponse",
    "Limits",
]

HttpClient = httpx2.Client
AsyncHttpClient = httpx2.AsyncClient
MockTransport = httpx2.MockTransport
HttpxRequest = httpx2.Request
HttpxResponse = httpx2.Response
Limits = httpx2.Limits

_CAUGHT: tuple[type[BaseException], ...] = (Failure, httpx2.HTTPError, httpx2.InvalidURL, OSError)
_TIMEOUT_PARAMS = frozenset({"timeout", "connect_timeout", "read_timeout", "stream_timeout"})
_LIMITS = httpx2.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=30.0)


class HttpAdapter:
    """Base for HTTP chat adapters (OpenAI, Anthropic, Gemini, and yours).

    - `base_url`: the provider root, trailing slash removed (`self.base_url`).
    - `timeout` (whole call, all attempts and retry waits; default 600 s),
      `connect_timeout` (10 s), `read_timeout` (max gap between bytes, 60 s, so a
      stalled stream ends in `ErrorEvent(AdapterError("timeout"))`; for the
      non-stream wire mode it defaults to the overall timeout, since such answers
      arrive only when complete). `Call.timeout` / `connect_timeout` /
      `read_timeout` (or the same names in `call.params`, `stream_timeout` =
      `read_timeout`) override them per call.
    - `http_client` / `async_http_client`: your own clients (proxies, mTLS, limits,
      `httpx2.MockTransport`). Their own timeouts apply unless you set one here or
      per call.
    - `default_headers`: sent with every request (the codec's headers win).
    - `retry`: `RetryPolicy`, a mapping of its fields, True/None (default) or False.
      A per-call `Call.retry` wins (the facade always sets one, from the engine).
      Retried only while no event has reached the caller: HTTP errors, connection
      failures, and an error event arriving before any content (leading
      `message_started` / `raw_chunk` events are held back until content arrives,
      so a retry never shows the caller a second start).
    - `on_retry(attempt, delay, error)` (from `Call`) runs before each retry sleep,
      and `allm.telemetry` gets an ``adapter.retry`` hook event.

    Async callers that stop iterating early should close the iterator
    (``await it.aclose()`` or `contextlib.aclosing`) so the response is released
    at once rather than when the generator is garbage collected.
    """

    provider: ClassVar[str] = "http"

    def __init__(
        self,
        *,
        base_url: str,
        timeout: float | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        http_client: httpx2.Client | None = None,
        async_http_client: httpx2.AsyncClient | None = None,
        default_headers: Mapping[str, str] | None = None,
        retry: RetryPolicy | Mapping[str, Any] | bool | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._explicit_timeouts = Timeouts(timeout, connect_timeout, read_timeout)
        self._timeouts = Timeouts(
            total=DEFAULT_TIMEOUT if timeout is None else float(timeout),
            connect=DEFAULT_CONNECT_TIMEOUT if connect_timeout is None else float(connect_timeout),
            read=DEFAULT_READ_TIMEOUT if read_timeout is None else float(read_timeout),
        )
        self._user_client = http_client
        self._user_async_client = async_http_client
        self._client: httpx2.Client | None = http_client
        self._async_client: httpx2.AsyncClient | None = async_http_client
        self._lock = threading.Lock()
        self._default_headers: dict[str, str] = dict(default_headers or {})
        self._retry = resolve_retry(retry)
        self._timeout_cache: dict[tuple[bool, bool], tuple[Timeouts, bool]] = {}

    def __repr__(self) -> str:  # headers may carry keys: never shown
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    # -- subclass hook --------------------------------------------------------------

    def codec_for(self, request: Request, call: Call) -> Codec:
        """Return the sans-IO codec for this request (e.g. by endpoint)."""
        raise NotImplementedError(f"{type(self).__name__} must implement codec_for()")

    # -- Adapter protocol -----------------------------------------------------------

    def stream(self, request: Request, call: Call) -> Iterator[Event]:
        """Pre-flight now (key, validation, encoding: typed errors raise here), then a
        lazy iterator of events that performs the HTTP call on first `next()`."""
        run = self._prepare(request, call, user_client=self._user_client is not None)
        return self._run_sync(run)

    def astream(self, request: Request, call: Call) -> AsyncIterator[Event]:
        """The async twin of `stream` (pre-flight is synchronous and eager)."""
        run = self._prepare(request, call, user_client=self._user_async_client is not None)
        return self._run_async(run)

    def close(self) -> None:
        """Close the sync client we created (an async one needs `aclose()`)."""
        client, self._client = self._client, self._user_client
        if client is not None and client is not self._user_client:
            client.close()

    async def aclose(self) -> None:
        """Close every client we created."""
        self.close()
        client, self._async_client = self._async_client, self._user_async_client
        if client is not None and client is not self._user_async_client:
            await client.aclose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- shared pre-flight ------------------------------------------------------------

    def _prepare(self, request: Request, call: Call, *, user_client: bool) -> CallRun:
        from .. import keys  # lazy: keys may read .env files / stores

        api_key = keys.resolve(self.provider, call.api_key)  # type: ignore[attr-defined,unused-ignore]
        codec = self.codec_for(request, call)
        http_request = codec.build(request, call, api_key=api_key, stream=call.stream)
        timeouts, use_client = self._timeouts_for(call, user_client=user_client,
                                                  stream=call.stream)
        return CallRun(
            provider=self.provider,
            codec=codec,
            http_request=http_request,
            stream=call.stream,
            policy=call.retry if call.retry is not None else self._retry,
            timeouts=timeouts,
            use_client_timeouts=use_client,
            api_key=api_key if isinstance(api_key, str) else None,
            on_retry=call.on_retry,
            model=call.model,
            call_request_id=call.request_id,
        )

    def _timeouts_for(self, call: Call, *, user_client: bool, stream: bool) -> tuple[Timeouts, bool]:
        """Adapter defaults < `call.params` < `Call` fields. With a user client and no
        timeout set anywhere, the client's own timeouts apply (second item True)."""
        params = call.params
        if (
            call.timeout is None
            and call.connect_timeout is None
            and call.read_timeout is None
            and (not params or params.keys().isdisjoint(_TIMEOUT_PARAMS))
        ):
            # The common case (nothing per call) is computed once per adapter.
            key = (user_client, stream)
            cached = self._timeout_cache.get(key)
            if cached is None:
                cached = self._timeout_cache[key] = self._resolve_timeouts(
                    call, params or {}, user_client=user_client, stream=stream
                )
            return cached
        return self._resolve_timeouts(call, params or {}, user_client=user_client, stream=stream)

    def _resolve_timeouts(
        self, call: Call, params: Mapping[str, Any], *, user_client: bool, stream: bool
    ) -> tuple[Timeouts, bool]:
        read_param = params.get("read_timeout", params.get("stream_timeout"))
        explicit = any(
            v is not None
            for v in (call.timeout, call.connect_timeout, call.read_timeout, read_param,
                      params.get("timeout"), params.get("connect_timeout"))
        )
        e = self._explicit_timeouts
        use_client = user_client and not explicit and e == Timeouts(None, None, None)
        defaults = Timeouts(None, None, None) if use_client else self._timeouts
        read_explicit = (
            e.read is not None or call.read_timeout is not None or read_param is not None
        )
        if not stream and not read_explicit:
            # A non-streamed answer sends nothing until it is complete (minutes for a
            # long reasoning run), so the between-chunks default does not apply: wait
            # up to the overall timeout, as the official SDKs do.
            defaults = replace(defaults, read=None)
        timeouts = Timeouts.resolve(
            defaults,
            params=params,
            timeout=call.timeout,
            connect_timeout=call.connect_timeout,
            read_timeout=call.read_timeout,
        )
        return timeouts, use_client

    # -- whole responses (images, files): same clients, retries and timeouts ---------

    def fetch(self, http_request: HttpRequest, call: Call, *, error: ErrorFor) -> HttpResult:
        """Send `http_request` and return the whole 2xx response. A non-2xx response
        becomes `error(status, headers, body)` (an `AllmError`, e.g. an
        `ImageAdapterError`), retried under the call's policy and raised when final;
        transport failures raise `AdapterError` ("timeout" / "network_error").
        For adapters whose answers are not event streams (image generation)."""
        run = self._fetch_run(http_request, call, user_client=self._user_client is not None)
        client = self._sync_client()
        while True:
            try:
                run.begin_attempt()
                req = build_http_request(client, run, self._default_headers)
                response = client.send(req, stream=True)
                try:
                    reader = run.fetch_reader(response.status_code, _plain(response.headers), error)
                    for chunk in response.iter_bytes():
                        reader.feed(chunk, response.num_bytes_downloaded)
                        if reader.done:
                            break
                    return reader.finish()
                finally:
                    response.close()
            except _CAUGHT as exc:
                failure = _as_failure(run, exc)
            delay = run.retry_delay(failure.error)
            if delay is None:
                raise failure.error from None
            time.sleep(delay)

    async def afetch(
        self, http_request: HttpRequest, call: Call, *, error: ErrorFor
    ) -> HttpResult:
        """The async twin of `fetch`."""
        run = self._fetch_run(http_request, call, user_client=self._user_async_client is not None)
        client = self._async_client_get()
        while True:
            try:
                run.begin_attempt()
                req = build_http_request(client, run, self._default_headers)
                response = await client.send(req, stream=True)
                try:
                    reader = run.fetch_reader(response.status_code, _plain(response.headers), error)
                    async for chunk in response.aiter_bytes():
                        reader.feed(chunk, response.num_bytes_downloaded)
                        if reader.done:
                            break
                    return reader.finish()
                finally:
                    with anyio.CancelScope(shield=True):
                        await response.aclose()
            except _CAUGHT as exc:
                failure = _as_failure(run, exc)
            delay = run.retry_delay(failure.error)
            if delay is None:
                raise failure.error from None
            await anyio.sleep(delay)

    def _fetch_run(self, http_request: HttpRequest, call: Call, *, user_client: bool) -> CallRun:
        timeouts, use_client = self._timeouts_for(call, user_client=user_client, stream=False)
        return CallRun(
            provider=self.provider,
            codec=None,
            http_request=http_request,
            stream=False,
            policy=call.retry if call.retry is not None else self._retry,
            timeouts=timeouts,
            use_client_timeouts=use_client,
            api_key=call.api_key,
            on_retry=call.on_retry,
            model=call.model,
            call_request_id=call.request_id,
        )

    # -- input images given by URL (opt-in per adapter) ----------------------------------

    def download(self, url: str, *, max_bytes: int, timeout: float | None = None) -> HttpResult:
        """GET `url` with this adapter's client (redirects followed; none of the
        adapter's default headers, which may carry credentials). Reads at most
        `max_bytes + 1` bytes, so the caller can reject a larger body without holding
        it. Any status is returned; a transport failure raises `DownloadFailed`."""
        body = bytearray()
        try:
            with self._sync_client().stream("GET", url, follow_redirects=True,
                                            **_timeout_kw(timeout)) as response:
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        break
                return HttpResult(response.status_code, _plain(response.headers), bytes(body))
        except Exception as exc:  # never leak transport types
            raise DownloadFailed(exc) from None

    async def adownload(self, url: str, *, max_bytes: int,
                        timeout: float | None = None) -> HttpResult:
        """The async twin of `download`."""
        body = bytearray()
        try:
            async with self._async_client_get().stream(
                    "GET", url, follow_redirects=True, **_timeout_kw(timeout)) as response:
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        break
                return HttpResult(response.status_code, _plain(response.headers), bytes(body))
        except Exception as exc:  # never leak transport types
            raise DownloadFailed(exc) from None

    # -- clients --------------------------------------------------------------------

    def _sync_client(self) -> httpx2.Client:
        client = self._client
        if client is None:
            with self._lock:
                client = self._client
                if client is None:
                    client = self._client = httpx2.Client(
                        timeout=self._httpx_defaults(), limits=_LIMITS, follow_redirects=False
                    )
        return client

    def _async_client_get(self) -> httpx2.AsyncClient:
        client = self._async_client
        if client is None:
            with self._lock:
                client = self._async_client
                if client is None:
                    client = self._async_client = httpx2.AsyncClient(
                        timeout=self._httpx_defaults(), limits=_LIMITS, follow_redirects=False
                    )
        return client

    def _httpx_defaults(self) -> httpx2.Timeout:
        t = self._timeouts
        return httpx2.Timeout(connect=t.connect, read=t.read, write=t.read, pool=t.connect)

    # -- the two thin shells (all decisions live in CallRun / BodyReader) ---------------

    def _run_sync(self, run: CallRun) -> Iterator[Event]:
        client = self._sync_client()
        while True:
            try:
                run.begin_attempt()
                req = build_http_request(client, run, self._default_headers)
                response = client.send(req, stream=True)
            except _CAUGHT as exc:
                failure = _as_failure(run, exc)
            else:
                try:
                    body = run.body_reader(response.status_code, _plain(response.headers))
                    for chunk in response.iter_bytes():
                        events = body.feed(chunk, response.num_bytes_downloaded)
                        if events:
                            yield from events
                        if body.done:
                            break
                    yield from body.finish()
                    return
                except _CAUGHT as exc:
                    failure = _as_failure(run, exc)
                finally:
                    try:
                        response.close()
                    except Exception:
                        pass
            delay = run.retry_delay(failure.error)
            if delay is None:
                yield from failure.events
                return
            time.sleep(delay)

    async def _run_async(self, run: CallRun) -> AsyncIterator[Event]:
        client = self._async_client_get()
        while True:
            try:
                run.begin_attempt()
                req = build_http_request(client, run, self._default_headers)
                response = await client.send(req, stream=True)
            except _CAUGHT as exc:
                failure = _as_failure(run, exc)
            else:
                try:
                    body = run.body_reader(response.status_code, _plain(response.headers))
                    async for chunk in response.aiter_bytes():
                        for ev in body.feed(chunk, response.num_bytes_downloaded):
                            yield ev
                        if body.done:
                            break
                    for ev in body.finish():
                        yield ev
                    return
                except _CAUGHT as exc:
                    failure = _as_failure(run, exc)
                finally:
                    with anyio.CancelScope(shield=True):
                        try:
                            await response.aclose()
                        except Exception:
                            pass
            delay = run.retry_delay(failure.error)
            if delay is None:
                for ev in failure.events:
                    yield ev
                return
            await anyio.sleep(delay)


class DownloadFailed(Exception):
    """`HttpAdapter.download` failed in transport: `kind` names the transport's error
    class, `timeout` says whether it was a timeout (callers map it to their error)."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(type(exc).__name__)
        self.kind = type(exc).__name__
        self.timeout = isinstance(exc, httpx2.TimeoutException)


def _timeout_kw(timeout: float | None) -> dict[str, Any]:
    # Omitted, the client's own timeout applies (httpx2's `timeout=None` means none).
    return {} if timeout is None else {"timeout": timeout}


def _plain(headers: httpx2.Headers) -> dict[str, str]:
    """The response headers as a plain dict with lower-case names (repeated headers
    joined with ", "), made once per response: codecs copy and query the mapping they
    get, and `dict(httpx2.Headers)` costs ~20 µs (a linear lookup per key) where this
    costs ~6 µs. Lookups stay case-insensitive through `providers._errors.header`."""
    return dict(headers.items())


def _as_failure(run: CallRun, exc: BaseException) -> Failure:
    if isinstance(exc, Failure):
        return exc
    return Failure(run.map_exception(exc))
