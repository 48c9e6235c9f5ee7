"""Anthropic Messages provider: `Anthropic` (the adapter) and its sans-IO codec.

Modules: `encode` (Request -> body), `decode` (body / stream -> events), `errors` (the
error table), `models` (per-model defaults and feature gates), `codec` (the `Codec`
the HTTP runtime drives), `adapter` (the `Anthropic` class on the shared runtime).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["Anthropic", "AnthropicCodec"]


def __getattr__(name: str) -> Any:
    # The adapter imports the HTTP runtime (httpx2); the codec must stay importable
    # without it, so both are resolved on first use.
    if name == "Anthropic":
        from .adapter import Anthropic

        return Anthropic
    if name == "AnthropicCodec":
        from .codec import AnthropicCodec

        return AnthropicCodec
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if TYPE_CHECKING:  # pragma: no cover
    from .adapter import Anthropic
    from .codec import AnthropicCodec
