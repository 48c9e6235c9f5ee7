"""`Image`: one picture, as bytes or as a URL, with its MIME type sniffed from the bytes.

Owns the image value used both for vision input (`ImagePart`) and image output
(`ImageResponse.images`). Constructors validate eagerly and raise
`ValidationError(reason="invalid_image")`: a path is read once, base64 is decoded
once, and the MIME type comes from the magic bytes, never from a file name (a `.png`
that is really a JPEG is a JPEG). URLs are never fetched here.
"""

from __future__ import annotations

import base64 as _b64
import binascii
import os
from dataclasses import dataclass, field
from typing import Any

from .errors import ValidationError

__all__ = ["Image", "sniff_mime"]


def sniff_mime(data: bytes) -> str | None:
    """The image MIME type of `data` from its magic bytes, or None if unknown."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in (b"heic", b"heix", b"hevc", b"hevx"):
            return "image/heic"
        if brand in (b"mif1", b"msf1", b"heif"):
            return "image/heif"
        if brand == b"avif":
            return "image/avif"
    if data.startswith(b"BM"):
        return "image/bmp"
    return None


def _invalid(path: str, why: str, message: str) -> ValidationError:
    return ValidationError("invalid_image", message, errors=[(path, why)])


@dataclass(frozen=True, slots=True, kw_only=True)
class Image:
    """An image held as bytes (`data`) or referenced by `url`; exactly one is set.

    `mime_type` is sniffed from `data` when bytes are given; for URLs it is whatever
    the caller says (or None). `revised_prompt` is set on generated images when the
    provider rewrote the prompt.
    """

    data: bytes | None = field(default=None, repr=False)
    url: str | None = None
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None
    revised_prompt: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.data is None) == (self.url is None):
            raise _invalid("image", "one_source_required",
                           "Image needs exactly one of data= (bytes) or url=")
        if self.data is not None and not isinstance(self.data, (bytes, bytearray)):
            raise _invalid("image.data", "invalid_type", "Image.data must be bytes")

    def __repr__(self) -> str:
        src = f"{len(self.data)} bytes" if self.data is not None else repr(self.url)
        return f"Image({src}, mime_type={self.mime_type!r})"

    # -- constructors -------------------------------------------------------------
    @classmethod
    def from_bytes(cls, data: bytes, mime_type: str | None = None, **kw: Any) -> Image:
        """Wrap raw bytes; the MIME type is sniffed (a given one is used only as fallback)."""
        sniffed = sniff_mime(bytes(data[:32]))
        return cls(data=bytes(data), mime_type=sniffed or mime_type, **kw)

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], **kw: Any) -> Image:
        """Read a file once; its MIME type comes from its bytes, not its extension."""
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise _invalid("image.path", "unreadable",
                           f"cannot read image file {os.fspath(path)!r}: {exc.strerror}") from exc
        return cls.from_bytes(data, **kw)

    from_file = from_path

    @classmethod
    def from_base64(cls, b64: str, mime_type: str | None = None, **kw: Any) -> Image:
        try:
            data = _b64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _invalid("image.data", "invalid_base64", "invalid base64 image data") from exc
        return cls.from_bytes(data, mime_type, **kw)

    @classmethod
    def from_data_uri(cls, uri: str, **kw: Any) -> Image:
        """Parse `data:<mime>[;params];base64,<payload>`."""
        if not uri.startswith("data:") or ";base64," not in uri:
            raise _invalid("image.data_uri", "malformed",
                           "expected a data URI of the form data:<mime>;base64,<data>")
        head, payload = uri[5:].split(";base64,", 1)
        mime = head.split(";", 1)[0].strip() or None
        return cls.from_base64(payload, mime, **kw)

    @classmethod
    def from_url(cls, url: str, mime_type: str | None = None, **kw: Any) -> Image:
        """Reference an image by URL (http(s) or data:). A data: URL is decoded now."""
        if url.startswith("data:"):
            return cls.from_data_uri(url, **kw)
        if not url.startswith(("http://", "https://", "gs://")):
            raise _invalid("image.url", "unsupported_scheme",
                           f"image URL must be http(s): {url[:40]!r}")
        return cls(url=url, mime_type=mime_type, **kw)

    # -- views --------------------------------------------------------------------
    @property
    def size(self) -> int | None:
        """Size in bytes, or None for a URL image."""
        return len(self.data) if self.data is not None else None

    def to_base64(self) -> str:
        if self.data is None:
            raise _invalid("image", "remote_source", "a URL image has no bytes to encode")
        return _b64.b64encode(self.data).decode("ascii")

    def to_data_uri(self) -> str:
        if self.mime_type is None:
            raise _invalid("image.mime_type", "missing_mime_type",
                           "cannot build a data URI without a MIME type")
        return f"data:{self.mime_type};base64,{self.to_base64()}"

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the image bytes to `path` (URL images must be downloaded first)."""
        if self.data is None:
            raise _invalid("image", "remote_source",
                           "a URL image has no bytes to save; download it first")
        with open(path, "wb") as fh:
            fh.write(self.data)
