"""`GeminiCodec`: the sans-IO `Codec` for the Gemini API (generateContent).

Owns URL and header construction and ties together `encode` (request body),
`decode` (body / SSE stream -> events) and `errors` (error table). Sans-IO: no httpx2.

- URL: ``{base_url}/{api_version}/models/{model}:generateContent`` or
  ``...:streamGenerateContent?alt=sse`` (Gemini API reference, "Generating content").
  A model given as ``models/x`` or ``tunedModels/x`` is used as that resource path;
  ``adapter_opts={"api_version": "v1alpha"}`` switches the version for one call
  (preview features).
- The key goes ONLY in the ``x-goog-api-key`` header, never in the URL (the
  ``?key=`` form ends up in proxy and server logs).
- Params: `call.params` overlaid by `request.params` (the request is most specific).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ...errors import ValidationError
from .._codec import HttpRequest
from .._common import body_bytes
from .decode import GeminiStreamDecoder, decode_body
from .encode import MAX_REQUEST_BYTES, EncodeOptions, encode_body
from .errors import map_error

if TYPE_CHECKING:
    from ...errors import AdapterError
    from ...events import Event
    from ...request import Request
    from ..base import Call

__all__ = ["GeminiCodec", "DEFAULT_BASE_URL", "DEFAULT_API_VERSION"]

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
DEFAULT_API_VERSION = "v1beta"


class GeminiCodec:
    """Gemini `generateContent` wire translation (implements `allm.providers._codec.Codec`)."""

    provider = "gemini"

    def __init__(self, *, base_url: str = DEFAULT_BASE_URL,
                 api_version: str = DEFAULT_API_VERSION,
                 options: EncodeOptions | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version.strip("/")
        self.options = options or EncodeOptions()

    def __repr__(self) -> str:
        return f"GeminiCodec(base_url={self.base_url!r}, api_version={self.api_version!r})"

    # -- request ----------------------------------------------------------------------

    def url(self, model: str, *, stream: bool, api_version: str | None = None) -> str:
        resource = model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        version = (self.api_version if api_version is None else api_version).strip("/")
        prefix = f"{self.base_url}/{version}" if version else self.base_url
        return f"{prefix}/{quote(resource, safe='/-_.~')}:{method}"

    def body(self, request: Request, call: Call) -> dict[str, Any]:
        """The JSON body as a dict (what `build` serializes); for reuse and tests."""
        model = call.model or request.model
        opts = self.options.merged(call.adapter_opts)
        params = {**call.params, **request.params}
        return encode_body(request, params, opts, model=model)

    def build(self, request: Request, call: Call, *, api_key: str, stream: bool) -> HttpRequest:
        model = call.model or request.model
        if not model:
            raise ValidationError("invalid_request", "no model given for the Gemini call",
                                  errors=[("model", "missing")], provider=self.provider)
        content = body_bytes(self.body(request, call), provider=self.provider)
        if len(content) > MAX_REQUEST_BYTES:
            raise ValidationError(
                "invalid_request",
                f"the Gemini request is {len(content) / 1_048_576:.1f} MB; inline data is "
                f"limited to {MAX_REQUEST_BYTES // 1_048_576} MB per request: upload large "
                "files with the Files API and pass the file URI instead",
                errors=[("messages", "request_too_large")], provider=self.provider,
            )
        headers: dict[str, str] = {"content-type": "application/json",
                                   "x-goog-api-key": api_key}
        if stream:
            headers["accept"] = "text/event-stream"
        extra = {**call.params, **request.params}.get("extra_headers")
        if isinstance(extra, Mapping):
            for key, value in extra.items():
                if str(key).lower() != "x-goog-api-key":
                    headers[str(key)] = str(value)
        version = call.adapter_opts.get("api_version") if call.adapter_opts else None
        return HttpRequest(method="POST", url=self.url(model, stream=stream,
                                                       api_version=version),
                           headers=headers, content=content)

    # -- response ---------------------------------------------------------------------

    def decode(self, status: int, headers: Mapping[str, str], body: bytes) -> list[Event]:
        return decode_body(body)

    def stream_decoder(self, headers: Mapping[str, str]) -> GeminiStreamDecoder:
        return GeminiStreamDecoder()

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> AdapterError:
        return map_error(status, headers, body)
