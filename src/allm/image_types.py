"""Image generation values: `ImageRequest`, `ImageResponse`, `ImageUsage` (Layer A).

Plain data, JSON round-trippable; the adapters in `allm.providers` turn them into
wire requests. Must not know about I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .image import Image

__all__ = ["ImageRequest", "ImageResponse", "ImageUsage", "ImageOperation"]

ImageOperation = Literal["generate", "edit", "variation"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageRequest:
    """One image operation. `size` is ``"1024x1024"``-style text or ``"auto"``."""

    operation: ImageOperation = "generate"
    prompt: str | None = None
    model: str | None = None
    n: int = 1
    size: str | None = None
    quality: str | None = None
    style: str | None = None
    background: str | None = None
    output_format: str | None = None
    output_compression: int | None = None
    response_format: Literal["binary", "url"] = "binary"
    input_images: tuple[Image, ...] = ()
    mask: Image | None = None
    options: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageUsage:
    """Image counts, tokens where the provider reports them, cost where known."""

    images: int = 0
    size: str | None = None
    quality: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    input_cost: float | None = None
    output_cost: float | None = None
    total_cost: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageResponse:
    """The images an operation produced, with usage and provider metadata."""

    images: tuple[Image, ...] = ()
    id: str | None = None
    request_id: str | None = None
    model: str | None = None
    usage: ImageUsage = field(default_factory=ImageUsage)
    text: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def image(self) -> Image | None:
        return self.images[0] if self.images else None
