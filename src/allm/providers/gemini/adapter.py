"""`Gemini`: the adapter for Google's Gemini API (`generateContent`).

Owns the adapter's configuration and the optional URL-image prefetch; everything on
the wire lives in the sans-IO `GeminiCodec` (`codec`, `encode`, `decode`, `errors`)
and everything about HTTP (pooled clients, timeouts, retries, sync/async shells) in
`allm._http.adapter.HttpAdapter`.

- ``base_url`` follows Google's SDK convention, ``https://generativelanguage.googleapis.com``;
  the adapter appends ``/{api_version}/models/{model}:generateContent`` (or
  ``:streamGenerateContent?alt=sse``). ``api_version="v1"`` selects the stable API.
- Key: resolved by `allm.keys` (``GEMINI_API_KEY`` then ``GOOGLE_API_KEY``) and sent
  only as the ``x-goog-api-key`` header, never in the URL.
- ``schema_mode``, ``url_images``, ``replay_thoughts``, ``thought_signature_fallback``:
  see `allm.providers.gemini.encode`; each can be overridden per call through
  ``adapter_opts``.
- ``fetch_image_urls=True``: http(s) image URLs are downloaded by the adapter's own
  pooled client before the request is built (Gemini cannot fetch arbitrary URLs),
  MIME-sniffed and size-checked like any inline image. Sync calls fetch during the
  eager pre-flight; async calls fetch on first iteration with the async client (so a
  fetch failure, and any pre-flight error, raises from the first ``__anext__``).
  Without it such URLs raise `AdapterError(reason="unsupported_feature")`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from ..._http.adapter import DownloadFailed, HttpAdapter
from ...errors import AdapterError
from ...image import Image
from ...messages import ImagePart, Message
from .codec import DEFAULT_API_VERSION, DEFAULT_BASE_URL, GeminiCodec
from .encode import FILES_API_PREFIX, MAX_REQUEST_BYTES, EncodeOptions

if TYPE_CHECKING:
    from ..._http.adapter import AsyncHttpClient, HttpClient
    from ...events import Event
    from ...request import Request
    from ...retry import RetryPolicy
    from .._codec import Codec
    from ..base import Call

__all__ = ["Gemini"]


class Gemini(HttpAdapter):
    """Google Gemini API (Google AI Studio keys).

    >>> adapter = allm.providers.Gemini()                           # doctest: +SKIP
    >>> engine = allm.engine("gemini:gemini-2.5-flash")             # doctest: +SKIP
    """

    provider: ClassVar[str] = "gemini"

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_version: str = DEFAULT_API_VERSION,
        timeout: float | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        http_client: HttpClient | None = None,
        async_http_client: AsyncHttpClient | None = None,
        default_headers: Mapping[str, str] | None = None,
        retry: RetryPolicy | Mapping[str, Any] | bool | None = None,
        schema_mode: str = "json_schema",
        url_images: str = "error",
        replay_thoughts: bool = True,
        thought_signature_fallback: bool = True,
        fetch_image_urls: bool = False,
    ) -> None:
        super().__init__(
            base_url=base_url or DEFAULT_BASE_URL,
            timeout=timeout,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            http_client=http_client,
            async_http_client=async_http_client,
            default_headers=default_headers,
            retry=retry,
        )
        self.api_version = api_version
        self.fetch_image_urls = fetch_image_urls
        options = EncodeOptions(
            schema_mode=schema_mode, url_images=url_images, replay_thoughts=replay_thoughts,
            thought_signature_fallback=thought_signature_fallback,
        ).merged({})  # validates the values now
        self.codec = GeminiCodec(base_url=self.base_url, api_version=api_version,
                                 options=options)

    def codec_for(self, request: Request, call: Call) -> Codec:
        return self.codec

    # -- optional URL-image prefetch --------------------------------------------------

    def stream(self, request: Request, call: Call) -> Iterator[Event]:
        if self.fetch_image_urls and _url_images(request):
            request = self._prefetch_sync(request)
        return super().stream(request, call)

    def astream(self, request: Request, call: Call) -> AsyncIterator[Event]:
        if self.fetch_image_urls and _url_images(request):
            return self._astream_prefetched(request, call)
        return super().astream(request, call)

    async def _astream_prefetched(self, request: Request, call: Call) -> AsyncIterator[Event]:
        images: dict[str, Image] = {}
        for url in _url_images(request):
            try:  # bounded: a larger body is cut just past the limit, then rejected
                result = await self.adownload(url, max_bytes=MAX_REQUEST_BYTES)
            except DownloadFailed as exc:
                raise _fetch_failed(url, exc) from None
            images[url] = _image_from_response(url, result.status, result.body)
        events = super().astream(_swap_images(request, images), call)
        async for event in events:
            yield event

    def _prefetch_sync(self, request: Request) -> Request:
        images: dict[str, Image] = {}
        for url in _url_images(request):
            try:
                result = self.download(url, max_bytes=MAX_REQUEST_BYTES)
            except DownloadFailed as exc:
                raise _fetch_failed(url, exc) from None
            images[url] = _image_from_response(url, result.status, result.body)
        return _swap_images(request, images)


def _fetchable(url: str) -> bool:
    return url.startswith(("http://", "https://")) and not url.startswith(FILES_API_PREFIX)


def _url_images(request: Request) -> list[str]:
    urls: list[str] = []
    for message in request.messages:
        for part in message.images:
            url = part.image.url
            if url is not None and _fetchable(url) and url not in urls:
                urls.append(url)
    return urls


def _fetch_failed(url: str, exc: DownloadFailed) -> AdapterError:
    return AdapterError("network_error", f"fetching image {url[:80]!r} failed: {exc.kind}",
                        provider="gemini")


def _image_from_response(url: str, status: int, content: bytes) -> Image:
    if status >= 400:
        raise AdapterError("invalid_request", f"fetching image {url[:80]!r} failed with "
                           f"HTTP {status}", provider="gemini", status=status)
    if len(content) > MAX_REQUEST_BYTES:
        raise AdapterError("request_too_large", f"image {url[:80]!r} is larger than "
                           f"{MAX_REQUEST_BYTES // 1_048_576} MB", provider="gemini")
    return Image.from_bytes(content)


def _swap_images(request: Request, images: Mapping[str, Image]) -> Request:
    messages: list[Message] = []
    for message in request.messages:
        content = message.content
        if isinstance(content, str) or not any(
                isinstance(p, ImagePart) and p.image.url in images for p in content):
            messages.append(message)
            continue
        parts = tuple(
            replace(p, image=images[p.image.url])
            if isinstance(p, ImagePart) and p.image.url is not None and p.image.url in images
            else p
            for p in content
        )
        messages.append(replace(message, content=parts))
    return replace(request, messages=tuple(messages))
