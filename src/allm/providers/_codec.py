"""The sans-IO codec contract every HTTP provider implements.

A codec turns a `Request` into an `HttpRequest` (bytes, headers, URL) and provider
bytes back into allm events. It does no I/O and never imports httpx2: the shared
runtime (`allm._http`) sends the request, feeds the bytes, applies retries and
timeouts, and maps transport failures. That is what makes every provider testable by
replaying recorded traffic, and why sync and async share all of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from .._fastinit import fast_init

if TYPE_CHECKING:
    from ..errors import AdapterError
    from ..events import Event
    from ..request import Request
    from .base import Call

__all__ = ["HttpRequest", "Codec", "StreamDecoder"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpRequest:
    """One HTTP request to send. `url` is absolute. `headers` include auth; never
    log them. `content` is the encoded body."""

    method: str
    url: str
    headers: Mapping[str, str] = field(repr=False)
    content: bytes = b""


class StreamDecoder(Protocol):
    """Incremental decoder for one streaming response body."""

    def feed(self, data: bytes) -> list[Event]:
        """Consume the next bytes (any split); return the events they complete."""
        ...

    def close(self) -> list[Event]:
        """The body ended: flush, and emit the closing events (e.g. a synthesized
        `message_completed`, or an `ErrorEvent` for a truncated stream)."""
        ...


class Codec(Protocol):
    """Provider wire translation (sans-IO)."""

    provider: str

    def build(self, request: Request, call: Call, *, api_key: str, stream: bool) -> HttpRequest:
        """Validate (raise `ValidationError` naming the field) and encode."""
        ...

    def decode(self, status: int, headers: Mapping[str, str], body: bytes) -> list[Event]:
        """Decode a 2xx non-streaming body into the events a stream would give."""
        ...

    def stream_decoder(self, headers: Mapping[str, str]) -> StreamDecoder:
        """A fresh decoder for one 2xx streaming body."""
        ...

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> AdapterError:
        """Map a non-2xx response to an `AdapterError` (one table per provider)."""
        ...

fast_init(HttpRequest)  # built per model call: see `allm._fastinit`
