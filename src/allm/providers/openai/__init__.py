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

from .adapter import OpenAI
from .chat_codec import ChatCodec
from .responses_codec import ResponsesCodec

__all__ = ["OpenAI", "ChatCodec", "ResponsesCodec"]
