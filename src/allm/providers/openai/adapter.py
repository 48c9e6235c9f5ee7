"""`OpenAI`: the adapter for OpenAI's Chat Completions and Responses APIs.

Owns endpoint routing and the adapter's configuration (base URL, organization,
project); everything on the wire lives in the sans-IO codecs (`chat_codec`,
`responses_codec`) and everything about HTTP (pooled clients, timeouts, retries,
the sync and async shells) in `allm._http.adapter.HttpAdapter`.

Routing (as the original, reference §3.2): `endpoint="auto"` sends `gpt-5*` and the
o-series (`o1`, `o3`, `o4-mini`, ...) to `/responses` and every other model to
`/chat/completions`; `endpoint="chat"` or `"responses"` (on the adapter, or per call
in `adapter_opts={"endpoint": ...}`) wins.

OpenAI-compatible servers: `base_url` points the adapter at any server that speaks
the OpenAI API, e.g. Ollama (`http://localhost:11434/v1`), vLLM
(`http://localhost:8000/v1`), LM Studio (`http://localhost:1234/v1`), OpenRouter
(`https://openrouter.ai/api/v1`), Groq (`https://api.groq.com/openai/v1`) or Together
(`https://api.together.xyz/v1`). Most of them implement only Chat Completions, so use
`endpoint="chat"` there. `base_url` defaults to `$OPENAI_BASE_URL`, else
`https://api.openai.com/v1`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from ..._http.adapter import HttpAdapter
from ...errors import ValidationError
from ._shared import prefers_responses
from .chat_codec import ChatCodec
from .errors import PROVIDER
from .responses_codec import ResponsesCodec

if TYPE_CHECKING:
    from ..._http.adapter import AsyncHttpClient, HttpClient
    from ...request import Request
    from ...retry import RetryPolicy
    from .._codec import Codec
    from ..base import Call

__all__ = ["OpenAI", "DEFAULT_BASE_URL", "ENDPOINTS"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"

ENDPOINTS: dict[str, str] = {
    "auto": "auto",
    "chat": "chat",
    "chat_completions": "chat",
    "chat-completions": "chat",
    "responses": "responses",
}


def _endpoint(value: Any, where: str) -> str:
    key = str(value).lower() if value is not None else "auto"
    if key not in ENDPOINTS:
        raise ValidationError(
            "invalid_request",
            f"unknown OpenAI endpoint {value!r} ({where}); expected auto, chat or responses",
            errors=[(where, "unsupported_value")],
            provider=PROVIDER,
        )
    return ENDPOINTS[key]


class OpenAI(HttpAdapter):
    """OpenAI Chat Completions + Responses (and any OpenAI-compatible server).

    >>> adapter = allm.providers.OpenAI()                      # doctest: +SKIP
    >>> local = allm.providers.OpenAI(base_url="http://localhost:11434/v1",
    ...                               endpoint="chat")          # doctest: +SKIP
    """

    provider: ClassVar[str] = PROVIDER

    def __init__(
        self,
        *,
        base_url: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        endpoint: str = "auto",
        timeout: float | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        http_client: HttpClient | None = None,
        async_http_client: AsyncHttpClient | None = None,
        default_headers: Mapping[str, str] | None = None,
        retry: RetryPolicy | Mapping[str, Any] | bool | None = None,
    ) -> None:
        super().__init__(
            base_url=base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL,
            timeout=timeout,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            http_client=http_client,
            async_http_client=async_http_client,
            default_headers=default_headers,
            retry=retry,
        )
        self.organization = organization
        self.project = project
        self.endpoint = _endpoint(endpoint, "endpoint")
        self._chat = ChatCodec(base_url=self.base_url, organization=organization,
                               project=project)
        self._responses = ResponsesCodec(base_url=self.base_url, organization=organization,
                                         project=project)

    def endpoint_for(self, request: Request, call: Call) -> str:
        """``"chat"`` or ``"responses"`` for this call."""
        endpoint = self.endpoint
        per_call = call.adapter_opts.get("endpoint") if call.adapter_opts else None
        if per_call is not None:
            endpoint = _endpoint(per_call, "adapter_opts.endpoint")
        if endpoint == "auto":
            return "responses" if prefers_responses(call.model or request.model) else "chat"
        return endpoint

    def codec_for(self, request: Request, call: Call) -> Codec:
        if self.endpoint_for(request, call) == "responses":
            return self._responses
        return self._chat
