"""The adapter contract: what a provider must implement to plug into allm.

Owns `Call` (everything the facade resolved for one model call) and the `Adapter`
and `ImageAdapter` protocols. An adapter's `stream` does all pre-flight work
(validation, key lookup, request building) *eagerly* and raises typed errors at the
call site, then returns a *lazy* iterator of events; no HTTP happens until the
caller iterates. Closing the iterator early must close the HTTP response.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .._fastinit import fast_init

if TYPE_CHECKING:
    from ..events import Event
    from ..image_types import ImageRequest, ImageResponse
    from ..request import Request
    from ..retry import RetryPolicy

__all__ = ["Call", "Adapter", "ImageAdapter", "NEUTRAL_PARAMS", "TRANSPORT_PARAMS"]

NEUTRAL_PARAMS: frozenset[str] = frozenset(
    {
        "temperature",
        "max_tokens",
        "top_p",
        "top_k",
        "stop",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "reasoning_effort",  # "minimal" | "low" | "medium" | "high" (provider-mapped)
        "reasoning_summary",  # OpenAI Responses: "auto" | "concise" | "detailed"
        "thinking",  # int budget tokens, or True, or a provider dict (Anthropic/Gemini)
        "parallel_tool_calls",  # bool
        "cache",  # prompt caching: True marks system/tools/last message (Anthropic)
        "user",  # end-user id for abuse tracking
        "safety_settings",  # Gemini, passed through
        "service_tier",
        "logprobs",
        "extra_body",  # dict merged verbatim into the JSON body (provider-specific)
        "extra_headers",  # dict of extra HTTP headers
    }
)
"""Parameter names the facade accepts (in `engine.params` or per call). Codecs map
each to their wire field; a name a provider has no equivalent for is ignored."""

TRANSPORT_PARAMS: frozenset[str] = frozenset(
    {"timeout", "connect_timeout", "read_timeout", "stream_timeout"}
)
"""Per-call transport settings (seconds), read by the HTTP runtime, never sent."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Call:
    """Everything resolved for one model call, handed to the adapter.

    - `model`: the model id for the provider (no ``provider:`` prefix).
    - `params`: neutral params (`NEUTRAL_PARAMS`) merged engine < call < request.
    - `api_key`: the per-call key (None: the adapter resolves it via `allm.keys`).
      Never printed (`repr=False`), never serialized.
    - `stream`: wire mode. True = use the provider's streaming endpoint; False = the
      non-streaming endpoint, decoded into the same events.
    - `retry`: the policy for this call (None = the adapter's own policy, which
      defaults to `DEFAULT_RETRY`; pass `NO_RETRY` for none).
    - `timeout`: overall seconds, `read_timeout`: max seconds between stream chunks.
    - `adapter_opts`: adapter-specific options from the engine and the call.
    - `request_id`: shared by everything one outer call does (telemetry).
    - `on_retry`: called as `on_retry(attempt, delay, error)` before each retry sleep.
    """

    model: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    api_key: str | None = field(default=None, repr=False)
    stream: bool = True
    retry: RetryPolicy | None = None
    timeout: float | None = None
    connect_timeout: float | None = None
    read_timeout: float | None = None
    adapter_opts: Mapping[str, Any] = field(default_factory=dict)
    request_id: str | None = None
    on_retry: Any = field(default=None, repr=False, compare=False)


@runtime_checkable
class Adapter(Protocol):
    """A chat provider. `provider` is its short name (``"openai"``)."""

    @property
    def provider(self) -> str:  # read-only, so a ClassVar (HttpAdapter) conforms
        ...

    def stream(self, request: Request, call: Call) -> Iterator[Event]:
        """Validate and build eagerly (raise typed errors now), then return a lazy
        iterator of events. Mid-stream failures are `ErrorEvent`s, not raises."""
        ...

    def astream(self, request: Request, call: Call) -> AsyncIterator[Event]:
        """The async twin of `stream`, same contract."""
        ...

    def close(self) -> None: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class ImageAdapter(Protocol):
    """An image provider (generation, editing, variations)."""

    @property
    def provider(self) -> str:  # read-only, so a ClassVar conforms
        ...
    supported_operations: frozenset[str]

    def generate(self, request: ImageRequest, call: Call) -> ImageResponse: ...

    async def agenerate(self, request: ImageRequest, call: Call) -> ImageResponse: ...

fast_init(Call)  # built per model call: see `allm._fastinit`
