"""`FakeImages`: a scripted image adapter (generation, editing, variations) for tests.

Owns the image script vocabulary, its validation and a per-instance cursor. One entry
is consumed per call (reference §17):

- ``("ok", [Image, ...])``: the images (usage ``images=len(images)``);
- ``("ok", [Image, ...], {"usage": ImageUsage, "text": str, "metadata": {...}})``;
- ``("error", reason_or_ImageAdapterError)``: raised (an unknown reason becomes
  ``"unknown"`` with the term as `cause`);
- ``("retry_until_call", n)``: the next n-1 calls raise a transient
  `ImageAdapterError(reason="rate_limited", retry_after=0)` without consuming the
  script; the n-th call consumes the entry after this one.

The operation gate (``supported_operations``) runs before the script. Responses
carry ``request_id`` from the call, ``model`` from the request (else the call) and
the request's ``metadata`` unchanged. No I/O.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..errors import ImageAdapterError, ValidationError
from ..image import Image
from ..image_types import ImageRequest, ImageResponse, ImageUsage
from .base import Call

__all__ = ["FakeImages"]

_OK_OPTS = frozenset({"usage", "text", "metadata", "id"})


def _problem(entry: Any) -> str | None:
    if not isinstance(entry, (tuple, list)) or not entry:
        return "not_a_tuple"
    tag, args = entry[0], entry[1:]
    if tag == "ok":
        if len(args) not in (1, 2):
            return "wrong_arity"
        images = args[0]
        if not isinstance(images, (list, tuple)) or not all(isinstance(i, Image)
                                                             for i in images):
            return "expected_images"
        if len(args) == 2:
            opts = args[1]
            if not isinstance(opts, Mapping) or not set(opts) <= _OK_OPTS:
                return "unknown_option"
            usage = opts.get("usage")
            if usage is not None and not isinstance(usage, ImageUsage):
                return "expected_image_usage"
        return None
    if tag == "error":
        return None if len(args) == 1 else "wrong_arity"
    if tag == "retry_until_call":
        ok = len(args) == 1 and isinstance(args[0], int) and not isinstance(args[0], bool)
        return None if ok and args[0] >= 1 else "expected_positive_int"
    return "unknown_entry"


class FakeImages:
    """A deterministic image adapter driven by `image_script` (see module docstring).

    `calls` records every `(ImageRequest, Call)` received (api_key redacted);
    `cursor` counts consumed entries; `reset()` rewinds.
    """

    supported_operations: frozenset[str] = frozenset({"generate", "edit", "variation"})

    def __init__(
        self,
        image_script: Sequence[tuple[Any, ...]] = (),
        *,
        provider: str = "fake",
        supported_operations: Sequence[str] | None = None,
    ) -> None:
        if not isinstance(image_script, (list, tuple)):
            raise ValidationError("invalid_script", errors=[("image_script", "not_a_list")])
        errors = [(f"image_script.{i}", why) for i, e in enumerate(image_script)
                  if (why := _problem(e)) is not None]
        if errors:
            raise ValidationError("invalid_script", errors=errors)
        self._script = tuple(tuple(e) for e in image_script)
        self.provider = provider
        if supported_operations is not None:
            self.supported_operations = frozenset(supported_operations)
        self.cursor = 0
        self._transient = 0
        self.calls: list[tuple[ImageRequest, Call]] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FakeImages(entries={len(self._script)}, cursor={self.cursor})"

    def reset(self) -> None:
        with self._lock:
            self.cursor = 0
            self._transient = 0
            self.calls.clear()

    def close(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    def generate(self, request: ImageRequest, call: Call) -> ImageResponse:
        """Consume the next entry: return its images or raise its error."""
        with self._lock:
            redacted = replace(call, api_key="[redacted]") if call.api_key else call
            self.calls.append((request, redacted))
            if request.operation not in self.supported_operations:
                raise ImageAdapterError(
                    "unsupported_operation",
                    f"{self.provider} image adapter does not support {request.operation!r}",
                    provider=self.provider,
                    metadata={"operation": request.operation},
                )
            entry = self._next()
        tag = entry[0]
        if tag == "error":
            term = entry[1]
            if isinstance(term, ImageAdapterError):
                raise term
            if isinstance(term, str) and term in ImageAdapterError.reasons:
                raise ImageAdapterError(term, provider=self.provider)
            raise ImageAdapterError("unknown", "scripted image error", provider=self.provider,
                                    cause=term)
        images = tuple(entry[1])
        opts: Mapping[str, Any] = entry[2] if len(entry) > 2 else {}
        usage = opts.get("usage") or ImageUsage(images=len(images), size=request.size,
                                               quality=request.quality)
        return ImageResponse(
            images=images,
            id=opts.get("id"),
            request_id=call.request_id,
            model=request.model or call.model,
            usage=usage,
            text=opts.get("text"),
            metadata={**request.metadata, **dict(opts.get("metadata") or {})},
        )

    async def agenerate(self, request: ImageRequest, call: Call) -> ImageResponse:
        """The async twin of `generate` (no I/O, so it shares the sync body)."""
        return self.generate(request, call)

    def _next(self) -> tuple[Any, ...]:
        """The entry for this call (under the lock)."""
        while True:
            if self.cursor >= len(self._script):
                raise ImageAdapterError("unknown", "no scripted image", provider=self.provider,
                                        metadata={"cause": "no_scripted_image"})
            entry = self._script[self.cursor]
            if entry[0] != "retry_until_call":
                self.cursor += 1
                return entry
            if self._transient < entry[1] - 1:
                self._transient += 1
                raise ImageAdapterError("rate_limited", "scripted transient image failure",
                                        provider=self.provider, retry_after=0.0, status=429)
            self._transient = 0
            self.cursor += 1  # consume the marker; the next entry answers this call
