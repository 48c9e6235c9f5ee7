"""`GeminiImages`: image generation and editing with Gemini's image models
(``gemini-2.5-flash-image``, ``gemini-3-pro-image-preview``, ``gemini-3.1-flash-image-preview``).

Owns the image request -> `generateContent` body (through the Gemini chat package's
request translator, `allm.providers.gemini.encode.encode_body`, imported, not copied)
plus ``generationConfig.responseModalities = ["TEXT", "IMAGE"]`` and ``imageConfig``,
and the response -> `ImageResponse` decoding. HTTP (pooled clients, timeouts,
credential scrubbing) is `allm._http.adapter.HttpAdapter.fetch` / `afetch`; errors go
through the Gemini error table (`gemini.errors`), re-typed as `ImageAdapterError`.

Wire reference: Gemini API "Image generation" guide
(https://ai.google.dev/gemini-api/docs/image-generation) and the ``ImageConfig``
reference (aspectRatio 1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9;
imageSize 1K, 2K, 4K).

Decisions:

- Generate: one user message with the prompt. Edit: the prompt then every input image
  as ``inlineData`` (``gs://`` / Files API URIs as ``fileData``); each input image is
  checked first (Gemini's MIME list, 20 MB inline limit) and errors name
  ``input_images.N``. Other http(s) URLs are refused (``unsupported_feature``): Gemini
  does not fetch them.
- ``size``: ``"WxH"`` picks the supported aspect ratio within 5% (``1792x1024`` ->
  16:9), a ratio (``"16:9"``) is sent as it is, ``"1K" / "2K" / "4K"`` is the
  ``imageSize``; anything else fails naming ``size``. ``options["image_size"]`` and
  ``options["aspect_ratio"]`` set them directly; other ``options`` are merged into the
  body (e.g. ``{"generationConfig": {"temperature": 0.2}}``).
- ``n > 1`` sets ``candidateCount`` and images are read from every candidate.
- No masks (Gemini has none): a mask is refused (``unsupported_feature``) rather
  than silently dropped; describe the region in the prompt. Variations are refused
  (``unsupported_operation``) before any request.
- Output: ``inlineData`` parts that are not thoughts (Gemini 3 Pro streams draft
  "thought" images first) become images; text parts become `ImageResponse.text`. A
  blocked prompt or a safety finish with no image is ``content_filter``; no image for
  another reason is ``malformed_response`` carrying the model's text.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from .._http.adapter import HttpAdapter
from ..errors import AdapterError, ImageAdapterError, ValidationError
from ..image import Image
from ..image_types import ImageRequest, ImageResponse, ImageUsage
from ..messages import ImagePart, Message, TextPart
from ..request import Request
from ._codec import HttpRequest
from ._common import b64decode_lenient, check_image
from ._errors import header, image_error
from .gemini.codec import DEFAULT_API_VERSION, DEFAULT_BASE_URL, GeminiCodec
from .gemini.decode import usage_from_metadata
from .gemini.encode import GEMINI_IMAGE_MIME, MAX_REQUEST_BYTES, EncodeOptions, encode_body
from .gemini.errors import error_in_stream, map_error

if TYPE_CHECKING:
    from .._http.adapter import AsyncHttpClient, HttpClient
    from ..retry import RetryPolicy
    from .base import Call

__all__ = ["GeminiImages", "DEFAULT_IMAGE_MODEL", "ASPECT_RATIOS", "aspect_ratio"]

PROVIDER = "gemini"
DEFAULT_IMAGE_MODEL = "gemini-3.1-flash-image-preview"  # the original's default; active in the catalog
ASPECT_RATIOS: dict[str, float] = {
    r: int(r.split(":")[0]) / int(r.split(":")[1])
    for r in ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
}
IMAGE_SIZES = frozenset({"1K", "2K", "4K"})
_FILTER_FINISH = frozenset({"SAFETY", "IMAGE_SAFETY", "PROHIBITED_CONTENT", "IMAGE_PROHIBITED_CONTENT",
                            "BLOCKLIST", "SPII", "RECITATION", "IMAGE_RECITATION", "NO_IMAGE"})


def aspect_ratio(size: str) -> dict[str, str]:
    """The ``imageConfig`` fields for an allm ``size`` (see the module docstring)."""
    if size == "auto":
        return {}
    if size.upper() in IMAGE_SIZES:
        return {"imageSize": size.upper()}
    if size in ASPECT_RATIOS:
        return {"aspectRatio": size}
    w, sep, h = size.lower().partition("x")
    if sep and w.isdigit() and h.isdigit() and int(w) > 0 and int(h) > 0:
        wanted = int(w) / int(h)
        best = min(ASPECT_RATIOS, key=lambda r: abs(ASPECT_RATIOS[r] - wanted))
        if abs(ASPECT_RATIOS[best] - wanted) <= 0.05 * ASPECT_RATIOS[best]:
            return {"aspectRatio": best}
    raise ValidationError(
        "invalid_image_request",
        f"Gemini image sizes are aspect ratios ({', '.join(ASPECT_RATIOS)}), a WxH size "
        f"close to one of them, or 1K / 2K / 4K; got {size!r}",
        errors=[("size", "unsupported_value")], provider=PROVIDER)


class GeminiImages(HttpAdapter):
    """Gemini image generation and editing (Google AI Studio keys).

    >>> images = allm.providers.GeminiImages(model="gemini-2.5-flash-image")  # doctest: +SKIP
    >>> engine = allm.engine(image_adapter=images)                          # doctest: +SKIP
    """

    provider: ClassVar[str] = PROVIDER
    supported_operations: frozenset[str] = frozenset({"generate", "edit"})

    def __init__(
        self,
        *,
        model: str | None = None,
        base_url: str | None = None,
        api_version: str = DEFAULT_API_VERSION,
        timeout: float | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        http_client: HttpClient | None = None,
        async_http_client: AsyncHttpClient | None = None,
        default_headers: Mapping[str, str] | None = None,
        retry: RetryPolicy | Mapping[str, Any] | bool | None = None,
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
        self.model = model
        self.codec = GeminiCodec(base_url=self.base_url, api_version=api_version)

    # -- request ----------------------------------------------------------------------

    def _gate(self, request: ImageRequest) -> None:
        if request.operation not in self.supported_operations:
            raise ImageAdapterError(
                "unsupported_operation",
                f"Gemini image models cannot do {request.operation!r} (they generate and "
                "edit; pass the image to edit_image with a prompt instead)",
                provider=PROVIDER, metadata={"operation": request.operation})
        if request.mask is not None:
            raise ImageAdapterError(
                "unsupported_feature",
                "Gemini image editing takes no mask; describe the area to change in the "
                "prompt (or pass the mask as a second input image and refer to it)",
                provider=PROVIDER, metadata={"operation": request.operation})
        for i, image in enumerate(request.input_images):
            url = image.url
            if url is not None and not url.startswith(("gs://", "https://generativelanguage.")):
                raise ImageAdapterError(
                    "unsupported_feature",
                    f"input_images.{i}: Gemini cannot fetch {url[:80]!r}; pass the bytes "
                    "(Image.from_path / from_bytes) or a Files API / gs:// URI",
                    provider=PROVIDER, metadata={"path": f"input_images.{i}"})
            if url is None:
                check_image(ImagePart(image=image), path=f"input_images.{i}",
                            allowed_mime=GEMINI_IMAGE_MIME, max_bytes=MAX_REQUEST_BYTES,
                            provider=PROVIDER)

    def body(self, request: ImageRequest) -> dict[str, Any]:
        """The `generateContent` JSON body for `request` (checked; no key needed)."""
        self._gate(request)
        parts: list[TextPart | ImagePart] = [TextPart(text=request.prompt or "")]
        parts.extend(ImagePart(image=image) for image in request.input_images)
        options = dict(request.options)
        image_config: dict[str, Any] = {}
        if request.size is not None:
            image_config.update(aspect_ratio(request.size))
        for key, wire in (("aspect_ratio", "aspectRatio"), ("image_size", "imageSize")):
            value = options.pop(key, None)
            if value is not None:
                image_config[wire] = value
        chat = Request(messages=(Message(role="user", content=tuple(parts)),),
                       model=request.model, options=options)
        body = encode_body(chat, {}, EncodeOptions(), model=request.model)
        config = body.setdefault("generationConfig", {})
        config.setdefault("responseModalities", ["TEXT", "IMAGE"])
        if image_config:
            config.setdefault("imageConfig", {}).update(image_config)
        if request.n > 1:
            config["candidateCount"] = request.n
        return body

    def prepare(self, request: ImageRequest, call: Call) -> tuple[ImageRequest, HttpRequest]:
        """Gates, body, key: the request with its model resolved and the unsent HTTP
        request (typed errors raise here, before any traffic)."""
        from .. import keys

        model = request.model or call.model or self.model or DEFAULT_IMAGE_MODEL
        if model != request.model:
            request = replace(request, model=model)
        content = json.dumps(self.body(request), separators=(",", ":"),
                             ensure_ascii=False).encode("utf-8")
        if len(content) > MAX_REQUEST_BYTES:
            raise ValidationError(
                "invalid_image", f"the Gemini request is {len(content) / 1_048_576:.1f} MB; "
                f"inline images are limited to {MAX_REQUEST_BYTES // 1_048_576} MB per request",
                errors=[("input_images", "images_too_large")], provider=PROVIDER)
        api_key = keys.resolve(PROVIDER, call.api_key)
        headers = {"content-type": "application/json", "x-goog-api-key": api_key}
        return request, HttpRequest(method="POST", url=self.codec.url(model, stream=False),
                                    headers=headers, content=content)

    # -- response ---------------------------------------------------------------------

    def decode(self, request: ImageRequest, status: int, headers: Mapping[str, str],
               body: bytes, *, request_id: str | None = None) -> ImageResponse:
        """A 2xx `generateContent` body -> `ImageResponse` (raises `ImageAdapterError`)."""
        try:
            parsed = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise self._error("malformed_response", "Gemini returned a body that is not JSON",
                              status, body[:200].decode("utf-8", "replace")) from None
        if not isinstance(parsed, Mapping):
            raise self._error("malformed_response", "Gemini returned a non-object body",
                              status, parsed)
        if "error" in parsed:
            raise image_error(error_in_stream(parsed), PROVIDER)
        images: list[Image] = []
        texts: list[str] = []
        finishes: list[str] = []
        candidates = parsed.get("candidates")
        for candidate in candidates if isinstance(candidates, list) else ():
            if not isinstance(candidate, Mapping):
                continue
            if isinstance(candidate.get("finishReason"), str):
                finishes.append(candidate["finishReason"])
            content = candidate.get("content")
            parts = content.get("parts") if isinstance(content, Mapping) else None
            for part in parts if isinstance(parts, list) else ():
                if not isinstance(part, Mapping) or part.get("thought") is True:
                    continue
                inline = part.get("inlineData")
                if isinstance(inline, Mapping) and isinstance(inline.get("data"), str):
                    mime = inline.get("mimeType")
                    try:
                        raw = b64decode_lenient(inline["data"])
                    except (binascii.Error, ValueError):
                        continue  # an undecodable part is dropped, like the original
                    images.append(Image.from_bytes(raw, mime if isinstance(mime, str) else None))
                elif isinstance(part.get("text"), str):
                    texts.append(part["text"])
        text = "".join(texts) or None
        feedback = parsed.get("promptFeedback")
        block = feedback.get("blockReason") if isinstance(feedback, Mapping) else None
        meta: dict[str, Any] = {}
        for key, name in (("modelVersion", "model_version"), ("responseId", "response_id")):
            if isinstance(parsed.get(key), str):
                meta[name] = parsed[key]
        if finishes:
            meta["finish_reasons"] = finishes
        rid = header(headers, "x-request-id") or header(headers, "x-goog-request-id")
        if rid:
            meta["request_id"] = rid
        if not images:
            if block is not None or any(f in _FILTER_FINISH for f in finishes):
                raise self._error("content_filter", f"Gemini returned no image "
                                  f"({block or ', '.join(finishes)})" + (f": {text}" if text else ""),
                                  status, parsed, block_reason=block, text=text)
            raise self._error("malformed_response", "Gemini returned no image"
                              + (f"; it said: {text[:300]}" if text else ""), status, parsed,
                              text=text)
        usage_meta = parsed.get("usageMetadata")
        usage = usage_from_metadata(usage_meta) if isinstance(usage_meta, Mapping) else None
        return ImageResponse(
            images=tuple(images),
            id=meta.get("response_id"),
            request_id=request_id,
            model=request.model,
            usage=ImageUsage(images=len(images), size=request.size, quality=request.quality,
                             input_tokens=usage.input_tokens if usage else None,
                             output_tokens=usage.output_tokens if usage else None),
            text=text,
            metadata={PROVIDER: meta, **request.metadata},
        )

    def _error(self, reason: str, message: str, status: int, body: Any,
               **metadata: Any) -> ImageAdapterError:
        return ImageAdapterError(reason, message, provider=PROVIDER, status=status, body=body,
                                 metadata={k: v for k, v in metadata.items() if v is not None})

    def _http_error(self, status: int, headers: Mapping[str, str], body: bytes) -> ImageAdapterError:
        return image_error(map_error(status, headers, body), PROVIDER)

    # -- ImageAdapter -----------------------------------------------------------------

    def generate(self, request: ImageRequest, call: Call) -> ImageResponse:
        request, http_request = self.prepare(request, call)
        try:
            result = self.fetch(http_request, call, error=self._http_error)
        except AdapterError as exc:
            raise image_error(exc, PROVIDER) from None
        return self.decode(request, result.status, result.headers, result.body,
                           request_id=call.request_id)

    async def agenerate(self, request: ImageRequest, call: Call) -> ImageResponse:
        request, http_request = self.prepare(request, call)
        try:
            result = await self.afetch(http_request, call, error=self._http_error)
        except AdapterError as exc:
            raise image_error(exc, PROVIDER) from None
        return self.decode(request, result.status, result.headers, result.body,
                           request_id=call.request_id)
