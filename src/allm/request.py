"""Requests, responses and token usage (Layer A).

Owns `Request` (what one model call asks for), `Response` (what it produced),
`Usage` and `ModelRef`. Frozen, keyword-only, JSON round-trippable. Provider codecs
read a `Request` and emit events; the `StreamCollector` folds events into a
`Response`. Must not know about providers or I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ._fastinit import fast_init
from .messages import Message, ToolCall

if TYPE_CHECKING:
    from .tool import Tool

__all__ = ["Usage", "Request", "Response", "ModelRef", "FINISH_REASONS", "FinishReason"]

FinishReason = Literal[
    "stop", "length", "tool_calls", "content_filter", "refusal", "pause", "error", "other"
]
FINISH_REASONS: frozenset[str] = frozenset(
    {"stop", "length", "tool_calls", "content_filter", "refusal", "pause", "error", "other"}
)
"""allm's finish reasons. `refusal`: the model declined (OpenAI refusal, Anthropic
`refusal`); `pause`: a server-side tool loop paused (Anthropic `pause_turn`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """Token counts and (when the catalog knows the model's prices) cost in USD.

    `input_tokens` includes cached input tokens; `cached_input_tokens` is the part
    read from a prompt cache, `cache_write_tokens` the part written to one
    (Anthropic). `reasoning_tokens` are included in `output_tokens`.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cached_input_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    input_cost: float | None = None
    output_cost: float | None = None
    total_cost: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> int | None:
        if self.total_tokens is not None:
            return self.total_tokens
        if self.input_tokens is not None and self.output_tokens is not None:
            return self.input_tokens + self.output_tokens
        return None

    def __add__(self, other: Usage) -> Usage:
        """Sum two usages (None + None stays None; None counts as 0 otherwise)."""
        def add(a: Any, b: Any) -> Any:
            if a is None:
                return b
            if b is None:
                return a
            return a + b

        return Usage(
            input_tokens=add(self.input_tokens, other.input_tokens),
            output_tokens=add(self.output_tokens, other.output_tokens),
            total_tokens=add(self.total, other.total),
            cached_input_tokens=add(self.cached_input_tokens, other.cached_input_tokens),
            cache_write_tokens=add(self.cache_write_tokens, other.cache_write_tokens),
            reasoning_tokens=add(self.reasoning_tokens, other.reasoning_tokens),
            input_cost=add(self.input_cost, other.input_cost),
            output_cost=add(self.output_cost, other.output_cost),
            total_cost=add(self.total_cost, other.total_cost),
            extra={**self.extra, **other.extra},
        )

    @property
    def is_empty(self) -> bool:
        return self == Usage()


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelRef:
    """A model as the catalog knows it (provider, id, capabilities, limits, prices)."""

    provider: str
    id: str
    capabilities: dict[str, Any] = field(default_factory=dict)
    limits: dict[str, Any] = field(default_factory=dict)
    pricing: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.provider}:{self.id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """One model call.

    `response_format`: None, ``"text"``, ``{"type": "json_object"}`` or
    ``{"type": "json_schema", "name": ..., "schema": {...}, "strict": True}``
    (build it with `allm.json_schema`). `tool_choice`: ``"auto" | "none" |
    "required"``, a tool name, or a provider-shaped dict. Sampling parameters
    (temperature, max_tokens, top_p, ...) travel in `params` with neutral names; the
    provider codec translates them. `options` is merged verbatim into the wire body
    (an escape hatch for provider-specific fields).
    """

    messages: tuple[Message, ...]
    model: str | None = None
    tools: tuple[Tool, ...] = ()
    tool_choice: str | dict[str, Any] | None = None
    response_format: str | dict[str, Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    stream: bool = False
    structured_finalize: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    # Convenience views of the two most used params.
    @property
    def temperature(self) -> float | None:
        value = self.params.get("temperature")
        return None if value is None else float(value)

    @property
    def max_tokens(self) -> int | None:
        value = self.params.get("max_tokens")
        return None if value is None else int(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Response:
    """What one model call produced.

    `output_text` is all text the model produced (``""`` if none); `message` is the
    assistant message to append to a thread (text, tool calls, provider replay
    metadata); `finish_reason` is one of `FINISH_REASONS` (or None if the stream
    ended without saying). A response folded from a failed stream has
    `finish_reason="error"` and the error in `metadata["error"]`.
    """

    id: str | None = None
    request_id: str | None = None
    model: str | None = None
    message: Message | None = None
    output_text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    raw_finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.output_text

    @property
    def reasoning(self) -> str | None:
        """The model's reasoning / thinking summary text, where the provider returned one."""
        if self.message is None:
            return None
        value = self.message.metadata.get("reasoning")
        return value if isinstance(value, str) else None

    @property
    def error(self) -> Any:
        return self.metadata.get("error")

for _cls in (Usage, Request, Response):  # built per model call: see `_fastinit`
    fast_init(_cls)
del _cls
