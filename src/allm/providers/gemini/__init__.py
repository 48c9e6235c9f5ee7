"""Google Gemini API provider (`generateContent` / `streamGenerateContent`).

`Gemini` (the adapter, in `adapter`) is imported lazily so the sans-IO pieces
(`codec`, `encode`, `decode`, `errors`, `schema`) can be used without httpx2 being
imported, e.g. by `GeminiImages`, which reuses the request translator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .adapter import Gemini
    from .codec import GeminiCodec

__all__ = ["Gemini", "GeminiCodec"]


def __getattr__(name: str) -> Any:
    if name == "Gemini":
        from .adapter import Gemini

        return Gemini
    if name == "GeminiCodec":
        from .codec import GeminiCodec

        return GeminiCodec
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
