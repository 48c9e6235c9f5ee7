"""OpenAI Images API codec (sans-IO): `ImageRequest` -> HTTP request, bytes -> `ImageResponse`.

Owns the wire format of ``/images/generations`` (JSON), ``/images/edits`` and
``/images/variations`` (``multipart/form-data``, encoded here: `HttpRequest` carries
bytes, and building the body ourselves keeps the codec testable without a client),
the per-model parameter rules, the upload checks, and the decoding of
``{"created", "data": [{"b64_json" | "url", "revised_prompt"}], "usage", ...}``.
Errors use the OpenAI chat adapter's one table (`errors.py`), re-typed as
`ImageAdapterError`. Must not do I/O or import httpx2.

Wire reference: https://platform.openai.com/docs/api-reference/images (create,
create-edit, create-variation) and the image generation guide.

Per-model rules (model families by name; a dated snapshot counts as its family):

- GPT image models (``gpt-image-1``, ``gpt-image-1-mini``, ``gpt-image-1.5``,
  ``gpt-image-2``, ``chatgpt-image-latest``): generate and edit. ``quality`` low /
  medium / high / auto, ``background``, ``output_format`` png / jpeg / webp,
  ``output_compression`` 0-100 (jpeg / webp only), ``n`` 1-10; always base64, so
  ``response_format="url"`` is rejected and never sent. Edits take up to 16 PNG /
  JPEG / WEBP images under 50 MB each, sent as repeated ``image[]`` parts.
- ``dall-e-3``: generate only; ``n=1``; ``quality`` standard / hd; ``style`` vivid /
  natural; sizes 1024x1024, 1792x1024, 1024x1792.
- ``dall-e-2``: generate, edit, variation; sizes 256x256 / 512x512 / 1024x1024; the
  image to edit or vary is one square PNG under 4 MB.
- Any model: the mask is a PNG under 4 MB; variations are dall-e-2 only
  (`ImageAdapterError("unsupported_operation")` for any other named model).
- Unknown models (OpenAI-compatible servers) get every field that is set.

Fields a model does not take (``style`` on a GPT image model, ``background`` on
DALL-E) are left out, like the original; a value a model's field cannot take fails
before any request with `ValidationError(reason="invalid_image_request")` naming the
field. ``ImageRequest.options`` are sent verbatim (``user``, ``moderation``,
``input_fidelity``, ...).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ...errors import ImageAdapterError, ValidationError
from ...image import Image
from ...image_types import ImageRequest, ImageResponse, ImageUsage
from ...messages import ImagePart
from .._codec import HttpRequest
from .._common import check_image
from .._errors import header, image_error
from ._shared import build_headers, dumps
from .errors import PROVIDER, error_from_response

__all__ = [
    "OpenAIImagesCodec",
    "model_family",
    "encode_multipart",
    "image_error",
    "PATHS",
    "MAX_GPT_IMAGE_BYTES",
    "MAX_DALLE_IMAGE_BYTES",
    "MAX_EDIT_IMAGES",
    "MAX_DOWNLOAD_BYTES",
    "url_inputs",
    "image_from_download",
    "with_downloads",
]

PATHS = {"generate": "/images/generations", "edit": "/images/edits",
         "variation": "/images/variations"}

MAX_GPT_IMAGE_BYTES = 50 * 1024 * 1024
"""GPT image models: each input image under 50 MB (API reference, create-edit)."""
MAX_DALLE_IMAGE_BYTES = 4 * 1024 * 1024
"""dall-e-2 images and every mask: under 4 MB (API reference, create-edit)."""
MAX_EDIT_IMAGES = 16

_GPT_IMAGE_RE = re.compile(r"^(gpt-image-|chatgpt-image)", re.IGNORECASE)
_GPT_INPUT_MIME = frozenset({"image/png", "image/jpeg", "image/webp"})
_PNG = frozenset({"image/png"})
_OPS = {"gpt-image": frozenset({"generate", "edit"}), "dall-e-3": frozenset({"generate"}),
        "dall-e-2": frozenset({"generate", "edit", "variation"})}
_SIZES = {"dall-e-2": ("256x256", "512x512", "1024x1024"),
          "dall-e-3": ("1024x1024", "1792x1024", "1024x1792")}
_QUALITY = {"gpt-image": ("low", "medium", "high", "auto"), "dall-e-3": ("standard", "hd"),
            "dall-e-2": ("standard",)}
_FORMATS = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg", "webp": "webp"}
_MIME_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}


def model_family(model: str | None) -> str | None:
    """``"gpt-image"``, ``"dall-e-3"``, ``"dall-e-2"`` or None (unknown / not given)."""
    name = (model or "").rsplit("/", 1)[-1].lower()
    if _GPT_IMAGE_RE.match(name):
        return "gpt-image"
    if name.startswith("dall-e-3"):
        return "dall-e-3"
    if name.startswith("dall-e-2"):
        return "dall-e-2"
    return None


def _invalid(field: str, why: str, message: str) -> ValidationError:
    return ValidationError("invalid_image_request", message, errors=[(field, why)],
                           provider=PROVIDER)


# -- multipart/form-data (RFC 7578) ---------------------------------------------------


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def encode_multipart(
    fields: Sequence[tuple[str, str]],
    files: Sequence[tuple[str, str, str, bytes]],
    boundary: str,
) -> tuple[bytes, str]:
    """``(body, content_type)`` for text `fields` and `files` given as
    ``(field name, file name, content type, bytes)``."""
    out: list[bytes] = []
    dash = f"--{boundary}\r\n".encode("ascii")
    for name, value in fields:
        out += [dash, f'Content-Disposition: form-data; name="{_quote(name)}"\r\n\r\n'.encode(),
                value.encode("utf-8"), b"\r\n"]
    for name, filename, ctype, data in files:
        out += [dash,
                (f'Content-Disposition: form-data; name="{_quote(name)}"; '
                 f'filename="{_quote(filename)}"\r\nContent-Type: {ctype}\r\n\r\n').encode(),
                data, b"\r\n"]
    out.append(f"--{boundary}--\r\n".encode("ascii"))
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


def _png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk."""
    if len(data) >= 24 and data[12:16] == b"IHDR":
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return None


# -- the codec ----------------------------------------------------------------------------


class OpenAIImagesCodec:
    """OpenAI Images API wire translation (see the module docstring)."""

    provider = PROVIDER

    def __init__(self, *, base_url: str, organization: str | None = None,
                 project: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.organization = organization
        self.project = project

    def __repr__(self) -> str:
        return f"OpenAIImagesCodec(base_url={self.base_url!r})"

    # -- gates (before the key is looked up) ---------------------------------------

    def gate(self, request: ImageRequest) -> None:
        """Reject an operation the model cannot do (`unsupported_operation`)."""
        op = request.operation
        if op not in PATHS:
            raise ImageAdapterError("unsupported_operation",
                                    f"OpenAI images: unknown operation {op!r}",
                                    provider=PROVIDER, metadata={"operation": op})
        family = model_family(request.model)
        if op == "variation" and request.model and family != "dall-e-2":
            raise ImageAdapterError(
                "unsupported_operation",
                f"OpenAI image variations work with dall-e-2 only, not {request.model!r} "
                "(use edit_image with a prompt instead)",
                provider=PROVIDER, metadata={"operation": op, "model": request.model})
        if family is not None and op not in _OPS[family]:
            raise ImageAdapterError(
                "unsupported_operation",
                f"OpenAI {request.model} cannot {op} images (it supports: "
                f"{', '.join(sorted(_OPS[family]))})",
                provider=PROVIDER, metadata={"operation": op, "model": request.model})

    # -- request ------------------------------------------------------------------------

    def params(self, request: ImageRequest) -> dict[str, Any]:
        """The wire fields (not the images) for `request`, checked for its model."""
        family = model_family(request.model)
        op = request.operation
        out: dict[str, Any] = {}
        if op != "variation":
            out["prompt"] = request.prompt
        if request.model:
            out["model"] = request.model
        if not 1 <= request.n <= 10:
            raise _invalid("n", "out_of_range", "OpenAI images: n must be between 1 and 10")
        if family == "dall-e-3" and request.n != 1:
            raise _invalid("n", "unsupported_for_model", "dall-e-3 generates one image per "
                           "request (n=1); send several requests for more")
        out["n"] = request.n
        if request.size is not None:
            sizes = _SIZES.get(family or "")
            if sizes is not None and request.size not in sizes:
                raise _invalid("size", "unsupported_for_model",
                               f"{request.model} sizes are {', '.join(sizes)}; got {request.size!r}")
            out["size"] = request.size
        if request.quality is not None:
            allowed = _QUALITY.get(family or "")
            if allowed is not None and request.quality not in allowed:
                raise _invalid("quality", "unsupported_for_model",
                               f"{request.model} quality is one of {', '.join(allowed)}; "
                               f"got {request.quality!r}")
            if family != "dall-e-2":  # dall-e-2 has one quality: nothing to send
                out["quality"] = request.quality
        if request.style is not None and family in ("dall-e-3", None):
            if family == "dall-e-3" and request.style not in ("vivid", "natural"):
                raise _invalid("style", "unsupported_value", "dall-e-3 style is vivid or natural")
            out["style"] = request.style
        if family in ("gpt-image", None):
            self._gpt_fields(request, family, out)
        if request.response_format == "url":
            if family == "gpt-image":
                raise _invalid("response_format", "unsupported_for_model",
                               f"{request.model} always returns base64 images; "
                               "response_format='url' is not available")
            out["response_format"] = "url"
        elif family in ("dall-e-2", "dall-e-3"):
            out["response_format"] = "b64_json"
        for key, value in request.options.items():
            if value is not None:
                out[str(key)] = value
        return out

    def _gpt_fields(self, request: ImageRequest, family: str | None, out: dict[str, Any]) -> None:
        if request.background is not None:
            if family and request.background not in ("transparent", "opaque", "auto"):
                raise _invalid("background", "unsupported_value",
                               "background is transparent, opaque or auto")
            out["background"] = request.background
        fmt = request.output_format
        if fmt is not None:
            wire = _FORMATS.get(fmt.lower())
            if wire is None and family:
                raise _invalid("output_format", "unsupported_value",
                               "output_format is png, jpeg or webp")
            out["output_format"] = wire or fmt
        comp = request.output_compression
        if comp is not None:
            if isinstance(comp, bool) or not isinstance(comp, int) or not 0 <= comp <= 100:
                raise _invalid("output_compression", "out_of_range",
                               "output_compression is an integer from 0 to 100")
            if family and out.get("output_format") not in ("jpeg", "webp"):
                raise _invalid("output_compression", "requires_jpeg_or_webp",
                               "output_compression applies to output_format jpeg or webp only")
            out["output_compression"] = comp

    def _check_images(self, request: ImageRequest) -> None:
        """MIME, size and count of the uploads, named by field, before any request."""
        family = model_family(request.model)
        images = request.input_images
        if not images:
            raise _invalid("input_images", "required_for_operation",
                           f"an image {request.operation} needs an input image")
        if family == "dall-e-2" and len(images) > 1:
            raise _invalid("input_images", "invalid_count",
                           "dall-e-2 edits and varies one image; GPT image models take up to 16")
        if len(images) > MAX_EDIT_IMAGES:
            raise _invalid("input_images", "invalid_count",
                           f"OpenAI edits take at most {MAX_EDIT_IMAGES} images")
        mime = _PNG if family == "dall-e-2" else _GPT_INPUT_MIME
        limit = MAX_DALLE_IMAGE_BYTES if family == "dall-e-2" else MAX_GPT_IMAGE_BYTES
        for i, image in enumerate(images):
            path = f"input_images.{i}"
            check_image(ImagePart(image=image), path=path, allowed_mime=mime, max_bytes=limit,
                        provider=PROVIDER, allow_url=False)
            dims = _png_size(image.data or b"") if family == "dall-e-2" else None
            if dims is not None and dims[0] != dims[1]:
                raise ValidationError(
                    "invalid_image", f"dall-e-2 needs a square image; {path} is "
                    f"{dims[0]}x{dims[1]}", errors=[(path, "not_square")], provider=PROVIDER)
        if request.mask is not None:
            check_image(ImagePart(image=request.mask), path="mask", allowed_mime=_PNG,
                        max_bytes=MAX_DALLE_IMAGE_BYTES, provider=PROVIDER, allow_url=False)

    def check(self, request: ImageRequest) -> dict[str, Any]:
        """Everything `build` checks, without a key: gates, fields, uploads."""
        self.gate(request)
        fields = self.params(request)
        if request.operation != "generate":
            self._check_images(request)
        return fields

    def build(self, request: ImageRequest, *, api_key: str | None,
              boundary: str | None = None,
              default_headers: Mapping[str, str] | None = None) -> HttpRequest:
        """The HTTP request (JSON for generations, multipart for edits/variations)."""
        fields = self.check(request)
        headers = build_headers(api_key=api_key, organization=self.organization,
                                project=self.project, stream=False,
                                default_headers=default_headers)
        url = self.base_url + PATHS[request.operation]
        if request.operation == "generate":
            return HttpRequest(method="POST", url=url, headers=headers, content=dumps(fields))
        files: list[tuple[str, str, str, bytes]] = []
        images = request.input_images
        name = "image[]" if len(images) > 1 else "image"
        for i, image in enumerate(images):
            mime = image.mime_type or "image/png"
            files.append((name, f"image_{i}.{_MIME_EXT.get(mime, 'png')}" if len(images) > 1
                          else f"image.{_MIME_EXT.get(mime, 'png')}", mime, image.data or b""))
        if request.mask is not None:
            files.append(("mask", "mask.png", "image/png", request.mask.data or b""))
        form = [(k, _form_value(v)) for k, v in fields.items()]
        body, ctype = encode_multipart(form, files, boundary or os.urandom(16).hex())
        headers["content-type"] = ctype
        return HttpRequest(method="POST", url=url, headers=headers, content=body)

    # -- response -----------------------------------------------------------------------

    def decode(self, request: ImageRequest, status: int, headers: Mapping[str, str],
               body: bytes, *, request_id: str | None = None) -> ImageResponse:
        """A 2xx body -> `ImageResponse` (raises `ImageAdapterError`)."""
        try:
            parsed = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise self._malformed("a body that is not JSON", body, status) from exc
        data = parsed.get("data") if isinstance(parsed, Mapping) else None
        if not isinstance(data, list):
            raise self._malformed("no 'data' list", body, status)
        if not data:
            raise ImageAdapterError(
                "content_filter", "OpenAI returned no image (the prompt or result was "
                "probably filtered)", provider=PROVIDER, status=status, body=parsed)
        fmt = parsed.get("output_format") or request.output_format or "png"
        mime = f"image/{_FORMATS.get(str(fmt).lower(), 'png')}"
        images = tuple(self._image(item, mime, i, body, status) for i, item in enumerate(data))
        usage = parsed.get("usage") if isinstance(parsed.get("usage"), Mapping) else {}
        meta: dict[str, Any] = {k: parsed[k] for k in ("created", "background", "output_format",
                                                       "quality", "size") if k in parsed}
        rid = header(headers, "x-request-id")
        if rid:
            meta["request_id"] = rid
        if isinstance(usage.get("input_tokens_details"), Mapping):
            meta["usage_details"] = dict(usage["input_tokens_details"])
        return ImageResponse(
            images=images,
            request_id=request_id,
            model=request.model,
            usage=ImageUsage(
                images=len(images),
                size=_str(parsed.get("size")) or request.size,
                quality=_str(parsed.get("quality")) or request.quality,
                input_tokens=_int(usage.get("input_tokens")),
                output_tokens=_int(usage.get("output_tokens")),
            ),
            metadata={PROVIDER: meta, **request.metadata},
        )

    def _image(self, item: Any, mime: str, i: int, body: bytes, status: int) -> Image:
        if not isinstance(item, Mapping):
            raise self._malformed(f"data[{i}] that is not an object", body, status)
        revised = _str(item.get("revised_prompt"))
        b64 = item.get("b64_json")
        if isinstance(b64, str) and b64:
            try:
                raw = base64.b64decode(b64, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise self._malformed(f"data[{i}].b64_json that is not base64", body,
                                      status) from exc
            return Image.from_bytes(raw, mime, revised_prompt=revised)
        url = item.get("url")
        if isinstance(url, str) and url:
            return Image.from_url(url, mime, revised_prompt=revised)
        raise self._malformed(f"data[{i}] without b64_json or url", body, status)

    def _malformed(self, what: str, body: bytes, status: int) -> ImageAdapterError:
        return ImageAdapterError(
            "malformed_response", f"OpenAI images returned {what}", provider=PROVIDER,
            status=status, metadata={"body_preview": body[:200].decode("utf-8", "replace")})

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> ImageAdapterError:
        """A non-2xx response, through the OpenAI error table."""
        return image_error(error_from_response(status, headers, body), PROVIDER)


# -- input images given as URLs (the adapter downloads them when asked to) -------------

MAX_DOWNLOAD_BYTES = 25 * 1024 * 1024
"""The original's cap on an input image fetched from a URL (reference §7.3)."""
_DOWNLOAD_TYPES = frozenset({"image/png", "image/jpeg", "image/jpg", "image/webp", "image/gif"})


def url_inputs(request: ImageRequest) -> list[tuple[str, str]]:
    """``(field path, url)`` of every input image and mask given as a URL."""
    out = [(f"input_images.{i}", image.url) for i, image in enumerate(request.input_images)
           if image.url is not None]
    if request.mask is not None and request.mask.url is not None:
        out.append(("mask", request.mask.url))
    return out


def image_from_download(path: str, url: str, status: int, headers: Mapping[str, str],
                        body: bytes) -> Image:
    """The downloaded bytes of a URL input image, or `ImageAdapterError("invalid_request")`
    naming the field (non-2xx, not an image content type, over 25 MB)."""
    meta = {"path": path, "url": url[:200]}
    if not 200 <= status < 300:
        raise ImageAdapterError("invalid_request", f"{path}: downloading {url[:80]!r} failed "
                                f"with HTTP {status}", provider=PROVIDER,
                                metadata={**meta, "status": status})
    ctype = (header(headers, "content-type") or "").split(";", 1)[0].strip().lower()
    if ctype not in _DOWNLOAD_TYPES:
        raise ImageAdapterError("invalid_request", f"{path}: {url[:80]!r} is {ctype or 'untyped'}"
                                ", not a PNG, JPEG, WEBP or GIF image", provider=PROVIDER,
                                metadata={**meta, "content_type": ctype})
    if len(body) > MAX_DOWNLOAD_BYTES:
        raise ImageAdapterError("invalid_request", f"{path}: {url[:80]!r} is larger than "
                                f"{MAX_DOWNLOAD_BYTES // 1_048_576} MB", provider=PROVIDER,
                                metadata={**meta, "size": len(body)})
    return Image.from_bytes(body)


def with_downloads(request: ImageRequest, images: Mapping[str, Image]) -> ImageRequest:
    """`request` with each URL image replaced by its download (keyed by field path)."""
    inputs = tuple(images.get(f"input_images.{i}", image)
                   for i, image in enumerate(request.input_images))
    return replace(request, input_images=inputs, mask=images.get("mask", request.mask))


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
