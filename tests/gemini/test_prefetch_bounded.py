"""The Gemini URL-image prefetch goes through `HttpAdapter.download`: bounded (an
endless or oversized image body is cut just past the inline limit, then rejected),
without the adapter's default headers, transport failures typed (sync and async)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import pytest

from allm.errors import AdapterError
from allm.messages import ImagePart, Message, TextPart
from allm.providers.base import Call
from allm.providers.gemini import Gemini
from allm.providers.gemini.encode import MAX_REQUEST_BYTES
from allm.request import Request

URL = "https://images.example.com/huge.png"
CHUNK = b"\x89PNG\r\n\x1a\n" + b"\0" * (1 << 20)
CALL = Call(model="gemini-2.5-flash", api_key="k", stream=False)


def _request() -> Request:
    return Request(messages=(Message(role="user", content=(
        TextPart(text="What is this?"), ImagePart.from_url(URL))),))


class Endless:
    """An image body that never ends; counts what was pulled."""

    def __init__(self) -> None:
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        while True:
            self.sent += len(CHUNK)
            yield CHUNK


class AsyncEndless(Endless):
    __iter__ = None  # type: ignore[assignment]  # async only, for the async client

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            self.sent += len(CHUNK)
            yield CHUNK


def _transport(body: Endless, seen: list[httpx2.Request]) -> httpx2.MockTransport:
    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, content=body)
    return httpx2.MockTransport(handler)


def test_an_endless_image_is_cut_and_rejected() -> None:
    body, seen = Endless(), []  # type: ignore[var-annotated]
    adapter = Gemini(fetch_image_urls=True, default_headers={"x-proxy-auth": "secret"},
                     http_client=httpx2.Client(transport=_transport(body, seen)))
    with pytest.raises(AdapterError) as info:
        adapter.stream(_request(), CALL)
    assert info.value.reason == "request_too_large"
    assert MAX_REQUEST_BYTES < body.sent <= MAX_REQUEST_BYTES + 2 * len(CHUNK)
    assert [r.url.host for r in seen] == ["images.example.com"]
    assert "x-proxy-auth" not in seen[0].headers and "x-goog-api-key" not in seen[0].headers


@pytest.mark.anyio
async def test_an_endless_image_is_cut_and_rejected_async() -> None:
    body, seen = AsyncEndless(), []  # type: ignore[var-annotated]
    client = httpx2.AsyncClient(transport=_transport(body, seen))
    adapter = Gemini(fetch_image_urls=True, async_http_client=client)
    with pytest.raises(AdapterError) as info:
        async for _ in adapter.astream(_request(), CALL):
            pass
    assert info.value.reason == "request_too_large"
    assert MAX_REQUEST_BYTES < body.sent <= MAX_REQUEST_BYTES + 2 * len(CHUNK)
    await client.aclose()


def test_transport_failure_is_typed() -> None:
    def handler(request: httpx2.Request) -> Any:
        raise httpx2.ConnectError("refused", request=request)

    adapter = Gemini(fetch_image_urls=True,
                     http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))
    with pytest.raises(AdapterError) as info:
        adapter.stream(_request(), CALL)
    assert info.value.reason == "network_error"
    assert "ConnectError" in info.value.message
    assert info.value.__cause__ is None and info.value.__suppress_context__
