"""`OpenAIImages`: the image adapter for OpenAI's Images API (generations, edits,
variations).

Owns the adapter's configuration and the two thin call shells; the wire format,
per-model rules and upload checks live in the sans-IO
`allm.providers.openai.images_codec`, and HTTP (pooled clients, timeouts, retries,
credential scrubbing) in `allm._http.adapter.HttpAdapter.fetch` / `afetch`.

Order of checks, all before any traffic: operation gate (`unsupported_operation`),
per-model fields and uploads (`ValidationError` naming the field), then the key
(`allm.keys`, ``OPENAI_API_KEY``). HTTP and transport failures come back as
`ImageAdapterError` with the OpenAI error table's reason. Retries: through the facade
(`allm.generate_image`) the facade retries and hands the adapter ``Call.retry =
NO_RETRY``; called directly, ``retry=`` here (or ``Call.retry``) applies.

Input images given as URLs: the Images API takes uploads, so by default a URL input
image (or mask) is refused before any request (``ValidationError``, reason
``unsupported_feature`` at ``input_images.N``). With ``fetch_image_urls=True`` the
adapter downloads them first with its own pooled client (`HttpAdapter.download`), as
the original did (reference §7.3): redirects followed, ``timeout=`` or 30 s, a PNG /
JPEG / WEBP / GIF content type, at most 25 MB; a failed download is
`ImageAdapterError` (``invalid_request`` naming the field, or ``timeout`` /
``network_error``), and the bytes then go through the same checks as any upload.
Opt-in, like the Gemini chat adapter's, because fetching caller-supplied URLs from a
server is a request-forgery risk an application should choose.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from .._http.adapter import DownloadFailed, HttpAdapter
from ..errors import AdapterError, ImageAdapterError
from ._errors import image_error
from .openai.adapter import DEFAULT_BASE_URL
from .openai.errors import PROVIDER
from .openai.images_codec import (
    MAX_DOWNLOAD_BYTES,
    OpenAIImagesCodec,
    image_from_download,
    url_inputs,
    with_downloads,
)

if TYPE_CHECKING:
    from .._http.adapter import AsyncHttpClient, HttpClient
    from ..image import Image
    from ..image_types import ImageRequest, ImageResponse
    from ..retry import RetryPolicy
    from ._codec import HttpRequest
    from .base import Call

__all__ = ["OpenAIImages"]


class OpenAIImages(HttpAdapter):
    """OpenAI image generation, editing and variations.

    >>> images = allm.providers.OpenAIImages(model="gpt-image-1")   # doctest: +SKIP
    >>> engine = allm.engine(image_adapter=images)                  # doctest: +SKIP
    >>> allm.generate_image(engine, "a lighthouse at dusk").image.save("out.png")  # doctest: +SKIP

    `model` is the default image model (a call's ``model=`` wins; without either the
    engine's model, and without that OpenAI's server default).
    """

    provider: ClassVar[str] = PROVIDER
    supported_operations: frozenset[str] = frozenset({"generate", "edit", "variation"})

    def __init__(
        self,
        *,
        model: str | None = None,
        base_url: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        timeout: float | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        http_client: HttpClient | None = None,
        async_http_client: AsyncHttpClient | None = None,
        default_headers: Mapping[str, str] | None = None,
        retry: RetryPolicy | Mapping[str, Any] | bool | None = None,
        fetch_image_urls: bool = False,
    ) -> None:
        super().__init__(
            base_url=base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL,
            timeout=timeout,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            http_client=http_client,
            async_http_client=async_http_client,
            retry=retry,
        )
        self.model = model
        self.fetch_image_urls = fetch_image_urls
        self.organization = organization
        self.project = project
        self._headers = dict(default_headers or {})
        self.codec = OpenAIImagesCodec(base_url=self.base_url, organization=organization,
                                       project=project)

    def prepare(self, request: ImageRequest, call: Call) -> tuple[ImageRequest, HttpRequest]:
        """Gates, checks, key and encoding: the request with its model resolved and the
        unsent HTTP request (raises typed errors, before any traffic)."""
        from .. import keys

        if request.model is None and (call.model or self.model):
            request = replace(request, model=call.model or self.model)
        self.codec.check(request)  # every input error before the key lookup
        api_key = keys.resolve(PROVIDER, call.api_key)
        return request, self.codec.build(request, api_key=api_key,
                                         default_headers=self._headers)

    def _urls(self, request: ImageRequest, call: Call) -> tuple[ImageRequest, list[tuple[str, str]]]:
        """The request with its model, and the URL inputs to download first (after the
        checks that need no bytes, so a bad request never triggers a download)."""
        if request.model is None and (call.model or self.model):
            request = replace(request, model=call.model or self.model)
        urls = url_inputs(request) if self.fetch_image_urls else []
        if urls:
            self.codec.gate(request)
            self.codec.params(request)
        return request, urls

    def generate(self, request: ImageRequest, call: Call) -> ImageResponse:
        request, urls = self._urls(request, call)
        if urls:
            request = with_downloads(request, {p: self._download(p, u, call) for p, u in urls})
        request, http_request = self.prepare(request, call)
        try:
            result = self.fetch(http_request, call, error=self.codec.error)
        except AdapterError as exc:
            raise image_error(exc, PROVIDER) from None
        return self.codec.decode(request, result.status, result.headers, result.body,
                                 request_id=call.request_id)

    async def agenerate(self, request: ImageRequest, call: Call) -> ImageResponse:
        request, urls = self._urls(request, call)
        if urls:
            request = with_downloads(request, {p: await self._adownload(p, u, call)
                                               for p, u in urls})
        request, http_request = self.prepare(request, call)
        try:
            result = await self.afetch(http_request, call, error=self.codec.error)
        except AdapterError as exc:
            raise image_error(exc, PROVIDER) from None
        return self.codec.decode(request, result.status, result.headers, result.body,
                                 request_id=call.request_id)

    # -- URL input images (opt-in) ------------------------------------------------------

    def _download(self, path: str, url: str, call: Call) -> Image:
        try:
            result = self.download(url, max_bytes=MAX_DOWNLOAD_BYTES,
                                   timeout=call.timeout or 30.0)
        except DownloadFailed as exc:
            raise _download_failed(path, url, exc) from None
        return image_from_download(path, url, result.status, result.headers, result.body)

    async def _adownload(self, path: str, url: str, call: Call) -> Image:
        try:
            result = await self.adownload(url, max_bytes=MAX_DOWNLOAD_BYTES,
                                          timeout=call.timeout or 30.0)
        except DownloadFailed as exc:
            raise _download_failed(path, url, exc) from None
        return image_from_download(path, url, result.status, result.headers, result.body)


def _download_failed(path: str, url: str, exc: DownloadFailed) -> ImageAdapterError:
    return ImageAdapterError("timeout" if exc.timeout else "network_error",
                             f"{path}: downloading {url[:80]!r} failed: {exc.kind}",
                             provider=PROVIDER, metadata={"path": path, "url": url[:200]})
