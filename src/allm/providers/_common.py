"""Small helpers every provider codec shares (sans-IO).

Owns: tolerant tool-argument parsing, the vision pre-flight (MIME list and size
limit per provider, checked before any request), and neutral-param lookups. Must not
do I/O or know any one provider's wire format.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection
from typing import Any

from .._jsoncompact import compact_dumps
from ..errors import ValidationError
from ..image import sniff_mime
from ..messages import ImagePart

__all__ = ["parse_arguments", "check_image", "dumps_compact", "body_bytes", "b64decode_lenient"]

# Formats `sniff_mime` always recognises: bytes declared as one of these that do not
# sniff as it are not that format.
_SNIFFABLE = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


def parse_arguments(raw: str | None) -> tuple[dict[str, Any], bool]:
    """Parse a model's tool-call arguments.

    Returns ``(arguments, ok)``. Empty text is ``{}`` (models send "" for no-arg
    calls). Invalid JSON, or JSON that is not an object, gives ``({}, False)`` so the
    loop can feed a clear tool error back to the model instead of crashing.
    """
    if raw is None or raw.strip() == "":
        return {}, True
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return {}, False
    if isinstance(value, dict):
        return value, True
    return {}, False


def check_image(
    part: ImagePart,
    *,
    path: str,
    allowed_mime: Collection[str],
    max_bytes: int | None,
    provider: str,
    allow_url: bool = True,
) -> None:
    """Raise `ValidationError` naming `path` (e.g. ``messages.2.content.1``) when the
    image's MIME type is not accepted by the provider or its bytes exceed the limit."""
    image = part.image
    if image.url is not None:
        if not allow_url:
            raise ValidationError(
                "invalid_image",
                f"{provider} does not accept image URLs at {path}; pass the image bytes "
                "(Image.from_path / from_bytes) instead",
                errors=[(path, "unsupported_feature")],
                provider=provider,
            )
        return
    mime = image.mime_type
    if mime is None:
        raise ValidationError(
            "invalid_image",
            f"image at {path} has an unknown format (its bytes are not PNG, JPEG, GIF or WEBP)",
            errors=[(path, "missing_mime_type")],
            provider=provider,
        )
    if mime not in allowed_mime:
        raise ValidationError(
            "invalid_image",
            f"{provider} does not accept {mime} images (at {path}); accepted: "
            f"{', '.join(sorted(allowed_mime))}",
            errors=[(path, "unsupported_image_format")],
            provider=provider,
        )
    if image.data is not None:
        # The bytes decide, not the declared type (a caller-given mime_type is only a
        # fallback in Image.from_bytes, and Image(data=..., mime_type=...) trusts it):
        # a provider told "image/png" about JPEG or text bytes answers with a vague 400.
        sniffed = sniff_mime(bytes(image.data[:32]))
        if sniffed != mime and (sniffed is not None or mime in _SNIFFABLE):
            raise ValidationError(
                "invalid_image",
                f"image at {path} is declared {mime} but its bytes are "
                f"{sniffed or 'not a recognised image format'}",
                errors=[(path, "mime_mismatch")],
                provider=provider,
            )
    size = image.size or 0
    if max_bytes is not None and size > max_bytes:
        raise ValidationError(
            "invalid_image",
            f"image at {path} is {size / 1_048_576:.1f} MB; {provider} accepts at most "
            f"{max_bytes / 1_048_576:.0f} MB per image",
            errors=[(path, "image_too_large")],
            provider=provider,
        )


_dumps = compact_dumps()  # json.dumps(.., separators=(",", ":"), ensure_ascii=False)


def body_bytes(body: Any, *, provider: str | None = None) -> bytes:
    """A request body as compact UTF-8 JSON (what `dumps_compact` gives, encoded).
    A value JSON cannot carry (a set, a datetime, a cycle in `extra_body` or a tool
    schema) is a `ValidationError` naming the body, raised before anything is sent."""
    try:
        return _dumps(body).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValidationError(
            "invalid_request",
            f"the request body cannot be encoded as JSON: {exc}",
            errors=[("body", "not_json_serializable")],
            provider=provider,
        ) from None


def dumps_compact(value: Any) -> str:  # (the plain spelling, for cold paths)
    """JSON text as providers expect in tool-call arguments (compact, UTF-8 kept)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def b64decode_lenient(data: str) -> bytes:
    """Standard or URL-safe base64, padded or not (Google's JSON uses either form for
    ``inlineData``); raises `binascii.Error` / `ValueError` when it is neither."""
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
