"""The I/O-free core of one HTTP model call: attempts, retries, timeouts, body decoding.

Owns every decision the sync and async shells in `allm._http.adapter` share, so the
two can never disagree (the httpx `_client.py` pattern: one base, two thin shells):

- `Timeouts`: adapter defaults < `call.params` transport params < `Call` fields, and
  the `httpx2.Timeout` for each attempt (read/connect capped by the overall deadline).
- `CallRun`: the attempt counter, the retry decision (`RetryPolicy`, only while no
  event has reached the caller; `on_retry` callback and the `allm.telemetry` hook),
  and the mapping of httpx2 exceptions to `AdapterError` (never leaking httpx2 types
  or the API key).
- `BodyReader`: one response body, fed decoded chunks: a bounded error body ->
  `codec.error`, a bounded JSON body -> `codec.decode`, a stream -> the codec's
  `StreamDecoder`. It holds back leading `message_started` / `raw_chunk` events so
  that an error arriving right after them (e.g. an `overloaded` error event in a 200
  stream) can still be retried without the caller seeing a duplicate start.
- Size guards (`BodyReader` and `FetchReader`, so sync and async alike): a body
  larger than `MAX_RESPONSE_BODY` decoded bytes, and a compressed body that inflates
  more than `MAX_COMPRESSION_RATIO` times once past `BOMB_MIN_BYTES` (a gzip bomb:
  ~1 KB on the wire per MiB of zeros), end the attempt with
  ``AdapterError("malformed_response")`` before the bytes pile up in memory (httpx2
  inflates at most 1 MiB per step). A stream that never ends is bounded by the
  overall `timeout` (checked on every chunk of every body, stream or not) and by
  `MAX_RESPONSE_BODY`.

Control flow inside a body uses one private exception, `Failure`, that the shells
catch; what to do with it (retry, or a final `ErrorEvent`) is `CallRun.retry_delay`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx2

from ..errors import AdapterError, AllmError
from ..events import ErrorEvent, Event, MessageStarted, RawChunk
from ..providers._codec import Codec, HttpRequest, StreamDecoder
from ..providers._errors import parse_retry_after
from ..retry import RetryPolicy, next_delay

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_READ_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "MAX_ERROR_BODY",
    "MAX_RESPONSE_BODY",
    "MAX_COMPRESSION_RATIO",
    "BOMB_MIN_BYTES",
    "Timeouts",
    "CallRun",
    "BodyReader",
    "FetchReader",
    "HttpResult",
    "ErrorFor",
    "Failure",
]

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0  # max gap between stream chunks (the original's stream_timeout)
DEFAULT_TIMEOUT = 600.0  # whole call, all attempts (the OpenAI SDK's default)
MAX_ERROR_BODY = 1024 * 1024
MAX_RESPONSE_BODY = 256 * 1024 * 1024  # decompressed; base64 images make bodies big
# Real JSON / SSE compresses ~5-20x (base64 images ~1.3x); deflate of zeros ~1000x.
MAX_COMPRESSION_RATIO = 100
BOMB_MIN_BYTES = 8 * 1024 * 1024  # small bodies may compress as well as they like

_HOLD = (MessageStarted, RawChunk)
_CREDENTIAL_HEADERS = frozenset(
    {"authorization", "x-api-key", "api-key", "x-goog-api-key", "proxy-authorization"}
)


class Failure(Exception):
    """Internal: the current attempt failed with `error` (maybe retryable)."""

    def __init__(self, error: AllmError, events: list[Event] | None = None) -> None:
        super().__init__(error.reason)
        self.error = error
        # What the caller gets if the attempt is not retried (held events, the error
        # event and whatever the codec emitted after it); default: just the error.
        self.events = events if events is not None else [ErrorEvent(error=error)]


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Resolved seconds for one call; None means no limit."""

    total: float | None
    connect: float | None
    read: float | None

    @classmethod
    def resolve(
        cls,
        defaults: Timeouts,
        *,
        params: Mapping[str, Any],
        timeout: float | None,
        connect_timeout: float | None,
        read_timeout: float | None,
    ) -> Timeouts:
        read_param = params.get("read_timeout", params.get("stream_timeout"))
        return cls(
            total=_first(timeout, params.get("timeout"), defaults.total),
            connect=_first(connect_timeout, params.get("connect_timeout"), defaults.connect),
            read=_first(read_timeout, read_param, defaults.read),
        )


def _first(*values: Any) -> float | None:
    for value in values:
        if value is not None:
            return float(value)
    return None


class CallRun:
    """State of one call across its attempts (no I/O here)."""

    __slots__ = (
        "_api_key",
        "attempt",
        "call_request_id",
        "codec",
        "deadline",
        "http_request",
        "model",
        "on_retry",
        "policy",
        "provider",
        "stream",
        "timeouts",
        "use_client_timeouts",
        "yielded",
    )

    def __init__(
        self,
        *,
        provider: str,
        codec: Codec | None,
        http_request: HttpRequest,
        stream: bool,
        policy: RetryPolicy,
        timeouts: Timeouts,
        use_client_timeouts: bool,
        api_key: str | None,
        on_retry: Any = None,
        model: str | None = None,
        call_request_id: str | None = None,
    ) -> None:
        self.provider = provider
        self.codec = codec
        self.http_request = http_request
        self.stream = stream
        self.policy = policy
        self.timeouts = timeouts
        self.use_client_timeouts = use_client_timeouts
        self._api_key = api_key
        self.on_retry = on_retry
        self.model = model
        self.call_request_id = call_request_id
        self.attempt = 0
        self.yielded = False
        self.deadline: float | None = None

    def __repr__(self) -> str:  # never show headers (they carry the key)
        return f"CallRun(provider={self.provider!r}, attempt={self.attempt})"

    # -- attempts -----------------------------------------------------------------

    def begin_attempt(self) -> None:
        if self.attempt == 0 and self.timeouts.total is not None:
            self.deadline = time.monotonic() + self.timeouts.total
        self.attempt += 1
        self.check_deadline()

    def remaining(self) -> float | None:
        if self.deadline is None:
            return None
        return self.deadline - time.monotonic()

    def check_deadline(self) -> None:
        left = self.remaining()
        if left is not None and left <= 0:
            raise Failure(self._timeout_error("overall timeout"))

    def timeout_dict(self) -> dict[str, float | None] | None:
        """The per-attempt timeout as httpx2's request extension wants it (what
        `httpx2.Timeout(...).as_dict()` gives), or None to keep a user client's own."""
        t = self.timeouts
        left = self.remaining()
        if self.use_client_timeouts and left is None:
            return None
        connect = _cap(t.connect, left)
        read = _cap(t.read, left)
        return {"connect": connect, "read": read, "write": read, "pool": connect}

    def merged_headers(self, default_headers: Mapping[str, str]) -> dict[str, str]:
        """The request's headers over the adapter's defaults (case-insensitively)."""
        headers = self.http_request.headers
        if not default_headers:
            return dict(headers)
        own = {k.lower() for k in headers}
        return {
            **{k: v for k, v in default_headers.items() if k.lower() not in own},
            **headers,
        }

    def body_reader(self, status: int, headers: Mapping[str, str]) -> BodyReader:
        return BodyReader(self, status, headers)

    def fetch_reader(self, status: int, headers: Mapping[str, str], error: ErrorFor) -> FetchReader:
        return FetchReader(self, status, headers, error)

    # -- failures -----------------------------------------------------------------

    def retry_delay(self, error: AllmError) -> float | None:
        """Seconds to sleep before the next attempt, or None: surface `error`."""
        if self.yielded:
            return None
        delay = next_delay(self.policy, error, self.attempt, remaining=self.remaining(),
                           on_retry=self.on_retry)
        if delay is None:
            return None
        data: dict[str, Any] = {
            "provider": self.provider,
            "model": self.model,
            "attempt": self.attempt,
            "delay": delay,
            "reason": error.reason,
            "status": getattr(error, "status", None),
            "error": error,
        }
        if self.call_request_id is not None:  # else telemetry fills in the current one
            data["request_id"] = self.call_request_id
        _emit_retry(data)
        return delay

    def map_exception(self, exc: BaseException) -> AllmError:
        """An httpx2 (or unexpected) exception as an `AdapterError` (a `Failure`'s own
        error as it is); never an httpx2 type, never the key."""
        if isinstance(exc, Failure):
            return exc.error
        if isinstance(exc, httpx2.TimeoutException):
            what = {
                httpx2.ConnectTimeout: "connect timeout",
                httpx2.ReadTimeout: "read timeout (no data within the read timeout)",
                httpx2.WriteTimeout: "write timeout",
                httpx2.PoolTimeout: "connection pool timeout",
            }.get(type(exc), "timeout")
            return self._timeout_error(what, exc)
        if isinstance(exc, httpx2.DecodingError):
            return self._error("malformed_response", "could not decode the response body", exc)
        if isinstance(exc, (httpx2.UnsupportedProtocol, httpx2.InvalidURL,
                            httpx2.LocalProtocolError, httpx2.TooManyRedirects)):
            return self._error("invalid_request", "invalid request", exc)
        if isinstance(exc, (httpx2.HTTPError, OSError)):
            return self._error("network_error", "network error", exc)
        return self._error("unknown", "unexpected transport failure", exc)

    def _timeout_error(self, what: str, exc: BaseException | None = None) -> AdapterError:
        return self._error("timeout", what, exc)

    def _error(self, reason: str, what: str, exc: BaseException | None) -> AdapterError:
        detail = ""
        if exc is not None:
            text = self._scrub(str(exc))
            detail = f": {type(exc).__name__}" + (f": {text}" if text else "")
        return AdapterError(
            reason,
            f"{self.provider}: {what}{detail}",
            provider=self.provider,
            cause=type(exc).__name__ if exc is not None else None,
        )

    def _scrub(self, text: str) -> str:
        for secret in self._secrets():
            if secret in text:
                text = text.replace(secret, "[redacted]")
        return text[:500]

    def scrub_error(self, error: AllmError) -> AllmError:
        """`error` with the key removed from its message, body and metadata (in place):
        a provider may echo the credential it rejected, e.g. "Incorrect API key
        provided: sk-...", and errors get printed, logged and serialized."""
        secrets = self._secrets()
        if not secrets:
            return error

        def clean(value: Any) -> Any:
            if isinstance(value, str):
                for secret in secrets:
                    if secret in value:
                        value = value.replace(secret, "[redacted]")
                return value
            if isinstance(value, Mapping):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, list):
                return [clean(v) for v in value]
            return value

        message = clean(error.message)
        if message != error.message:
            error.message = message
            error.args = (message,)
        error.metadata = clean(error.metadata)
        if getattr(error, "body", None) is not None:
            error.body = clean(error.body)  # type: ignore[attr-defined]
        return error

    def _secrets(self) -> list[str]:
        """The key, and credential header values (a codec may have put a key there
        that the runtime never saw, e.g. `fetch` callers)."""
        out = [self._api_key] if self._api_key else []
        for name, value in self.http_request.headers.items():
            if name.lower() in _CREDENTIAL_HEADERS and value:
                token = value.split(" ", 1)[-1].strip()
                if len(token) >= 8:
                    out.append(token)
        return out

    def codec_failure(self, exc: Exception) -> AdapterError:
        """A codec raised: keep a typed AdapterError, wrap anything else."""
        if isinstance(exc, AdapterError):
            return exc
        if isinstance(exc, AllmError):
            return AdapterError(
                "malformed_response", exc.message, provider=self.provider,
                cause=exc.to_fields(),
            )
        return self._error("malformed_response", "could not decode the response", exc)


def _cap(value: float | None, left: float | None) -> float | None:
    if left is None:
        return value
    left = max(left, 0.001)
    return left if value is None else min(value, left)


def _emit_retry(data: dict[str, Any]) -> None:
    """Report a retry to `allm.telemetry.emit` when that module provides it."""
    try:
        from .. import telemetry  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return
    emit = getattr(telemetry, "emit", None)
    if emit is None:
        return
    try:
        emit("adapter.retry", data)
    except Exception:  # a broken hook must never break the call
        pass


class BodyReader:
    """One response body (sans-IO): `feed(chunk)` then `finish()`, each returning the
    events to hand to the caller now. Raises `Failure` for a failed attempt."""

    __slots__ = (
        "_chunks", "_codec", "_decoder", "_held", "_run", "_size", "done", "headers", "status",
    )

    def __init__(self, run: CallRun, status: int, headers: Mapping[str, str]) -> None:
        self._run = run
        if run.codec is None:
            raise TypeError("BodyReader needs a codec")
        self._codec: Codec = run.codec
        self.status = status
        self.headers = headers
        self._chunks: list[bytes] = []
        self._size = 0
        self._held: list[Event] = []
        self.done = False  # the shell may stop reading (error body cap reached)
        self._decoder: StreamDecoder | None = None
        if 200 <= status < 300 and run.stream:
            try:
                self._decoder = self._codec.stream_decoder(headers)
            except Exception as exc:
                raise Failure(run.codec_failure(exc)) from None

    @property
    def is_error(self) -> bool:
        return not 200 <= self.status < 300

    def feed(self, chunk: bytes, wire_bytes: int | None = None) -> list[Event]:
        """`wire_bytes`: bytes received so far before decompression (the shell's
        `response.num_bytes_downloaded`), for the compression-bomb guard."""
        self._size += len(chunk)
        if wire_bytes is not None and self._size > BOMB_MIN_BYTES:
            _check_ratio(self._run, self._size, wire_bytes, self.status)
        # Every body, not only streams: a JSON or error body dripping slower than the
        # read timeout would otherwise outlive the call's overall timeout.
        if self._run.deadline is not None:
            self._run.check_deadline()
        decoder = self._decoder
        if decoder is not None:
            if self._size > MAX_RESPONSE_BODY:
                raise Failure(self._too_big())
            try:
                events = decoder.feed(chunk)
            except Exception as exc:
                raise Failure(self._run.codec_failure(exc)) from None
            return self._release(events) if events else events
        if self.is_error:
            if self._size >= MAX_ERROR_BODY:
                keep = len(chunk) - (self._size - MAX_ERROR_BODY)
                chunk = chunk[:keep]
                self.done = True
        elif self._size > MAX_RESPONSE_BODY:
            raise Failure(self._too_big())
        self._chunks.append(chunk)
        return []

    def finish(self) -> list[Event]:
        run = self._run
        if self._decoder is not None:
            try:
                events = self._decoder.close()
            except Exception as exc:
                raise Failure(run.codec_failure(exc)) from None
            out = self._release(events)
            if self._held:  # the stream ended with only held events
                out = self._held + out
                self._held = []
                run.yielded = True
            return out
        body = b"".join(self._chunks)
        self._chunks = []
        if self.is_error:
            try:
                error = self._codec.error(self.status, self.headers, body)
            except Exception as exc:
                error = run.codec_failure(exc)
            run.scrub_error(error)
            raise Failure(self._complete(error))
        try:
            events = self._codec.decode(self.status, self.headers, body)
        except Exception as exc:
            raise Failure(run.codec_failure(exc)) from None
        out = self._release(events)
        if self._held:
            out = self._held + out
            self._held = []
            run.yielded = True
        return out

    def _release(self, events: list[Event]) -> list[Event]:
        """Events the caller may see now. Until something of substance is released,
        leading start/raw events are held and a leading error fails the attempt (so
        it can be retried). Error events are scrubbed of the key first: a provider
        may echo it inside a 200 stream or body too, not only in an HTTP error."""
        run = self._run
        for ev in events:
            if type(ev) is ErrorEvent:
                run.scrub_error(ev.error)
        if run.yielded:
            return events
        held = self._held
        for i, ev in enumerate(events):
            if isinstance(ev, _HOLD):
                held.append(ev)
                continue
            if isinstance(ev, ErrorEvent) and isinstance(ev.error, AdapterError):
                self._complete(ev.error)
                rest = held + events[i:]
                self._held = []
                raise Failure(ev.error, rest)
            out = held + events[i:]
            self._held = []
            run.yielded = True
            return out
        return []

    def _complete(self, error: AdapterError) -> AdapterError:
        """Fill what the codec may have left out (status, provider, Retry-After)."""
        if error.status is None and self.is_error:
            error.status = self.status
        if error.provider is None:
            error.provider = self._run.provider
        if error.retry_after is None:
            error.retry_after = parse_retry_after(self.headers)
        return error

    def _too_big(self) -> AdapterError:
        return AdapterError(
            "malformed_response",
            f"{self._run.provider}: response body larger than {MAX_RESPONSE_BODY} bytes",
            provider=self._run.provider,
            status=self.status,
        )


def _check_ratio(run: CallRun, size: int, wire_bytes: int, status: int) -> None:
    """Fail the attempt when `size` decoded bytes came from far fewer on the wire."""
    if size > MAX_COMPRESSION_RATIO * max(wire_bytes, 1):
        raise Failure(AdapterError(
            "malformed_response",
            f"{run.provider}: compressed response body inflates more than "
            f"{MAX_COMPRESSION_RATIO}x ({wire_bytes} bytes on the wire gave {size}): "
            "refusing a likely decompression bomb",
            provider=run.provider, status=status,
        ))


ErrorFor = Callable[[int, Mapping[str, str], bytes], AllmError]
"""Maps a non-2xx response (status, headers, body) to the error to raise or retry."""


@dataclass(frozen=True, slots=True)
class HttpResult:
    """A whole 2xx response, for calls that are not event streams (images, files)."""

    status: int
    headers: Mapping[str, str] = field(repr=False)
    body: bytes = field(repr=False)


class FetchReader:
    """One bounded response body for `HttpAdapter.fetch` (sans-IO): `finish()`
    returns the `HttpResult`, or raises `Failure(error(status, headers, body))`."""

    __slots__ = ("_chunks", "_error", "_run", "_size", "done", "headers", "status")

    def __init__(self, run: CallRun, status: int, headers: Mapping[str, str],
                 error: ErrorFor) -> None:
        self._run = run
        self.status = status
        self.headers = headers
        self._error = error
        self._chunks: list[bytes] = []
        self._size = 0
        self.done = False

    def feed(self, chunk: bytes, wire_bytes: int | None = None) -> None:
        self._size += len(chunk)
        if wire_bytes is not None and self._size > BOMB_MIN_BYTES:
            _check_ratio(self._run, self._size, wire_bytes, self.status)
        if self._run.deadline is not None:  # a dripping body must not outlive the call
            self._run.check_deadline()
        if not 200 <= self.status < 300:
            if self._size >= MAX_ERROR_BODY:
                chunk = chunk[: len(chunk) - (self._size - MAX_ERROR_BODY)]
                self.done = True
        elif self._size > MAX_RESPONSE_BODY:
            raise Failure(AdapterError(
                "malformed_response",
                f"{self._run.provider}: response body larger than {MAX_RESPONSE_BODY} bytes",
                provider=self._run.provider, status=self.status,
            ))
        self._chunks.append(chunk)

    def finish(self) -> HttpResult:
        body = b"".join(self._chunks)
        self._chunks = []
        if 200 <= self.status < 300:
            return HttpResult(self.status, dict(self.headers), body)
        try:
            error = self._error(self.status, self.headers, body)
        except Exception as exc:
            error = self._run.codec_failure(exc)
        self._run.scrub_error(error)
        if getattr(error, "retry_after", 0) is None and hasattr(error, "retry_after"):
            error.retry_after = parse_retry_after(self.headers)  # type: ignore[attr-defined]
        raise Failure(error)
