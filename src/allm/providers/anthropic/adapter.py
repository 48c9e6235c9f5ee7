"""`Anthropic`: the adapter for Anthropic's Messages API on the shared HTTP runtime.

Owns the adapter's configuration (base URL, ``anthropic-version``, beta flags, the
structured-output mode). Everything on the wire lives in the sans-IO `codec`
(`encode`, `decode`, `errors`); everything about HTTP (pooled clients, timeouts,
retries incl. 529 ``overloaded_error``, the sync and async shells) in
`allm._http.adapter.HttpAdapter`.

`base_url` follows the official SDK: ``https://api.anthropic.com`` (``/v1/messages``
is appended), overridable with ``$ANTHROPIC_BASE_URL``. The API key is sent as
``x-api-key`` and resolved per call by `allm.keys` (``ANTHROPIC_API_KEY``).

Per call, ``adapter_opts`` may carry ``beta`` (extra ``anthropic-beta`` flags) and
``structured_output`` (``"auto"`` | ``"native"`` | ``"tool"``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from ..._http.adapter import HttpAdapter
from .codec import DEFAULT_API_VERSION, DEFAULT_BASE_URL, AnthropicCodec

if TYPE_CHECKING:
    from ..._http.adapter import AsyncHttpClient, HttpClient
    from ...request import Request
    from ...retry import RetryPolicy
    from .._codec import Codec
    from ..base import Call

__all__ = ["Anthropic"]


class Anthropic(HttpAdapter):
    """Anthropic Messages (Claude).

    - `api_version`: the ``anthropic-version`` header.
    - `beta`: ``anthropic-beta`` flags sent with every request (e.g.
      ``["context-1m-2025-08-07"]``).
    - `structured_output`: how ``response_format`` json_schema is honoured:
      ``"auto"`` (native ``output_config.format`` on models that support it, else a
      forced tool), ``"native"`` or ``"tool"``.

    >>> adapter = allm.providers.Anthropic()                            # doctest: +SKIP
    >>> engine = allm.engine(adapter, model="claude-sonnet-4-5")        # doctest: +SKIP
    """

    provider: ClassVar[str] = "anthropic"

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_version: str = DEFAULT_API_VERSION,
        beta: Sequence[str] = (),
        structured_output: str = "auto",
        timeout: float | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        http_client: HttpClient | None = None,
        async_http_client: AsyncHttpClient | None = None,
        default_headers: Mapping[str, str] | None = None,
        retry: RetryPolicy | Mapping[str, Any] | bool | None = None,
    ) -> None:
        super().__init__(
            base_url=base_url or os.environ.get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL,
            timeout=timeout,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            http_client=http_client,
            async_http_client=async_http_client,
            default_headers=default_headers,
            retry=retry,
        )
        self.api_version = api_version
        self.beta = tuple([beta] if isinstance(beta, str) else beta)
        # Validates the mode now (a typo should fail at construction, not per call).
        AnthropicCodec(base_url=self.base_url, structured_output=structured_output)
        self.structured_output = structured_output

    def codec_for(self, request: Request, call: Call) -> Codec:
        # A fresh codec per call: it remembers this call's structured-output tool.
        return AnthropicCodec(base_url=self.base_url, api_version=self.api_version,
                              beta=self.beta, structured_output=self.structured_output)
