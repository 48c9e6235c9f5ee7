"""OpenAI provider: Chat Completions and Responses, sans-IO codecs + a thin adapter.

- `OpenAI` (adapter.py): routing and configuration over `allm._http.HttpAdapter`.
- `chat_codec.ChatCodec`, `responses_codec.ResponsesCodec` (+ `responses_fold`, the
  Responses answer fold): the wire formats, both wire modes through one fold each.
- `errors`: the one error table; `_shared`: model families, headers, vision
  pre-flight, usage; `params`: neutral-param lookups.

`OpenAI(base_url=...)` works against any OpenAI-compatible server (Ollama, vLLM,
LM Studio, OpenRouter, Groq, Together); see `adapter.py`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .adapter import OpenAI
    from .chat_codec import ChatCodec
    from .responses_codec import ResponsesCodec

__all__ = ["OpenAI", "ChatCodec", "ResponsesCodec"]

# Lazy, so the sans-IO codecs (and `images_codec`) import without httpx2.
_LAZY = {"OpenAI": "adapter", "ChatCodec": "chat_codec", "ResponsesCodec": "responses_codec"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
