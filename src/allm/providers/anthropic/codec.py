"""The Anthropic Messages codec: the sans-IO `Codec` the HTTP runtime drives.

Owns the URL and headers (``x-api-key``, ``anthropic-version``, ``anthropic-beta``)
and ties `encode` (body), `decode` (events) and `errors` (error table) together. One
codec instance serves one call: `build` records whether structured output goes through
a synthetic tool, and `decode` / `stream_decoder` need that to turn the tool's input
into text. Never imports httpx2.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ...errors import AdapterError, ValidationError
from ...events import ErrorEvent
from .._codec import HttpRequest
from .._common import body_bytes
from .._errors import header
from .body import JsonBodyDecoder, decode_message
from .decode import StreamDecoder
from .encode import encode_body
from .errors import error_from_response

if TYPE_CHECKING:
    from ...events import Event
    from ...request import Request
    from ..base import Call

__all__ = ["AnthropicCodec", "DEFAULT_BASE_URL", "DEFAULT_API_VERSION", "messages_url"]

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_API_VERSION = "2023-06-01"
STRUCTURED_OUTPUT_MODES = frozenset({"auto", "native", "tool"})


def messages_url(base_url: str) -> str:
    """``{base_url}/v1/messages``. A base URL that already ends in ``/v1`` (a common
    paste from OpenAI-style configs) gets ``/messages`` only."""
    base = base_url.rstrip("/")
    if base.endswith("/v1"):
        return base + "/messages"
    return base + "/v1/messages"


def _dumps(body: Any) -> bytes:
    return body_bytes(body, provider="anthropic")


class AnthropicCodec:
    """Request encoding, response decoding and error mapping for one call."""

    provider = "anthropic"

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        api_version: str = DEFAULT_API_VERSION,
        beta: Sequence[str] = (),
        structured_output: str = "auto",
    ) -> None:
        if structured_output not in STRUCTURED_OUTPUT_MODES:
            raise ValueError(
                f"structured_output must be one of {sorted(STRUCTURED_OUTPUT_MODES)}, "
                f"not {structured_output!r}"
            )
        self.url = messages_url(base_url)
        self.api_version = api_version
        self.beta = tuple(beta)
        self.structured_output = structured_output
        self.structured_tool: str | None = None

    def build(self, request: Request, call: Call, *, api_key: str, stream: bool) -> HttpRequest:
        model = call.model or request.model
        if not model:
            raise ValidationError(
                "invalid_request", "Anthropic needs a model id (e.g. 'claude-sonnet-4-5')",
                errors=[("model", "missing")], provider=self.provider,
            )
        if not request.messages:
            raise ValidationError(
                "invalid_request", "Anthropic needs at least one message",
                errors=[("messages", "empty")], provider=self.provider,
            )
        params = {**call.params, **request.params}
        mode = call.adapter_opts.get("structured_output", self.structured_output)
        if mode not in STRUCTURED_OUTPUT_MODES:
            mode = "auto"
        body, self.structured_tool = encode_body(
            request, model=model, params=params, stream=stream, structured_output=mode
        )
        headers: dict[str, str] = {
            "x-api-key": api_key,
            "anthropic-version": self.api_version,
            "content-type": "application/json",
            "accept": "text/event-stream" if stream else "application/json",
        }
        beta = list(self.beta)
        extra_beta = call.adapter_opts.get("beta")
        if isinstance(extra_beta, str):
            beta.append(extra_beta)
        elif isinstance(extra_beta, Sequence):
            beta.extend(str(b) for b in extra_beta)
        if beta:
            headers["anthropic-beta"] = ",".join(dict.fromkeys(beta))
        extra_headers = params.get("extra_headers")
        if isinstance(extra_headers, Mapping):
            headers.update({str(k): str(v) for k, v in extra_headers.items()})
        return HttpRequest(method="POST", url=self.url, headers=headers, content=_dumps(body))

    def decode(self, status: int, headers: Mapping[str, str], body: bytes) -> list[Event]:
        """A 2xx body -> events. A body that is not a message (not JSON, or an error
        object) becomes an `ErrorEvent`, as the same failure would inside a stream."""
        try:
            message = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            message = None
        if not isinstance(message, dict):
            return [ErrorEvent(error=AdapterError(
                "malformed_response",
                f"Anthropic returned a body that is not a JSON message: {body[:200]!r}",
                provider=self.provider, status=status,
            ))]
        if message.get("type") == "error":
            return [ErrorEvent(error=self.error(status, headers, body))]
        return decode_message(message, structured_tool=self.structured_tool, headers=headers)

    def stream_decoder(self, headers: Mapping[str, str]) -> StreamDecoder | JsonBodyDecoder:
        content_type = header(headers, "content-type") or ""
        if "json" in content_type and "event-stream" not in content_type:
            return JsonBodyDecoder(structured_tool=self.structured_tool, headers=headers)
        return StreamDecoder(structured_tool=self.structured_tool, headers=headers)

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> AdapterError:
        return error_from_response(status, headers, body)
