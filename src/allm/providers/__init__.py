"""Provider adapters. Each is imported on first use, so `import allm` loads none.

- `Fake` / `FakeImages`: scripted, deterministic adapters for tests and demos.
- `OpenAI` (Chat Completions and Responses), `OpenAIImages`.
- `Anthropic` (Messages).
- `Gemini`, `GeminiImages`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY: dict[str, str] = {
    "Fake": "fake",
    "FakeImages": "fake_images",
    "OpenAI": "openai",
    "OpenAIImages": "openai_images",
    "Anthropic": "anthropic",
    "Gemini": "gemini",
    "GeminiImages": "gemini_images",
}

__all__ = [
    "Anthropic",
    "Fake",
    "FakeImages",
    "Gemini",
    "GeminiImages",
    "OpenAI",
    "OpenAIImages",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'allm.providers' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:  # pragma: no cover
    from .anthropic import Anthropic
    from .fake import Fake
    from .fake_images import FakeImages
    from .gemini import Gemini
    from .gemini_images import GeminiImages
    from .openai import OpenAI
    from .openai_images import OpenAIImages
