"""Pieces both OpenAI codecs share (sans-IO): model families, headers, images, usage.

Owns the rules that depend on the model name (which endpoint, which system role,
which max-tokens field), the vision pre-flight (OpenAI accepts PNG, JPEG, WEBP and
non-animated GIF, at most 20 MB per image and 50 MB of images per request:
https://platform.openai.com/docs/guides/images-vision), request headers, JSON
helpers, usage parsing for both wire formats, and `CodecBase` (the codecs'
configuration, HTTP request and error mapping). Must not know either endpoint's
message layout.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from ...errors import AdapterError, ValidationError
from ...events import ErrorEvent
from ...messages import ImagePart, Message
from ...request import Usage
from .._codec import HttpRequest
from .._common import body_bytes, check_image
from .errors import PROVIDER, error_from_response
from .params import merged_params

if TYPE_CHECKING:
    from ...request import Request
    from ..base import Call

__all__ = [
    "SSEJsonDecoder",
    "ALLOWED_IMAGE_MIME",
    "MAX_IMAGE_BYTES",
    "MAX_REQUEST_IMAGE_BYTES",
    "prefers_responses",
    "is_reasoning_model",
    "system_role_for",
    "wants_max_completion_tokens",
    "sampling_params",
    "accepts_reasoning",
    "is_animated_gif",
    "build_headers",
    "image_url",
    "preflight_images",
    "dumps",
    "load_json",
    "usage_from_chat",
    "usage_from_responses",
    "drop_none",
    "CodecBase",
]

ALLOWED_IMAGE_MIME = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})
MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_REQUEST_IMAGE_BYTES = 50 * 1024 * 1024

# Model families (case-insensitive prefixes), as in the original adapter (reference
# §3.2): gpt-5* and the o-series are served by the Responses API.
_RESPONSES_RE = re.compile(r"^(gpt-5|o[1-9])", re.IGNORECASE)
_REASONING_RE = re.compile(r"^(o[1-9]|gpt-5(?!-chat))", re.IGNORECASE)
# o1-mini / o1-preview accept neither "system" nor "developer" messages (recorded
# 400 "does not support 'system' with this model"); their instructions go as "user".
_NO_SYSTEM_RE = re.compile(r"^o1-(mini|preview)", re.IGNORECASE)
# Models that take `max_completion_tokens` on Chat Completions (`max_tokens` is
# deprecated there and rejected by reasoning models). Other names keep `max_tokens`,
# which every OpenAI-compatible server understands.
_MAX_COMPLETION_RE = re.compile(r"^(o[1-9]|gpt-5|gpt-4o|gpt-4\.1|gpt-4\.5)", re.IGNORECASE)


def _bare(model: str | None) -> str:
    """`model` without an `org/` prefix some compatible servers use."""
    if not model:
        return ""
    return model.rsplit("/", 1)[-1]


def prefers_responses(model: str | None) -> bool:
    """True when `endpoint="auto"` routes `model` to the Responses API."""
    return bool(_RESPONSES_RE.match(_bare(model)))


def is_reasoning_model(model: str | None) -> bool:
    return bool(_REASONING_RE.match(_bare(model)))


# OpenAI models without reasoning: they reject `reasoning_effort` / `reasoning`.
_NON_REASONING_RE = re.compile(r"^(gpt-3\.5|gpt-4|gpt-5-chat|chatgpt-4o)", re.IGNORECASE)


def sampling_params(model: str | None) -> tuple[str, ...]:
    """The sampling params `model` accepts. Reasoning models (o-series, gpt-5) reject
    `temperature` / `top_p` with a 400, so those are dropped for them (the neutral-param
    rule: a name the target has no equivalent for is ignored)."""
    return () if is_reasoning_model(model) else ("temperature", "top_p")


def accepts_reasoning(model: str | None) -> bool:
    """False for OpenAI models known not to reason; unknown names (other
    OpenAI-compatible servers) get the param and decide themselves."""
    return not _NON_REASONING_RE.match(_bare(model))


def is_animated_gif(data: bytes) -> bool:
    """A GIF with more than one frame (OpenAI accepts only non-animated GIFs): more
    than one Graphic Control Extension, or a NETSCAPE looping block."""
    return data.count(b"\x21\xf9\x04") > 1 or b"NETSCAPE2.0" in data


def system_role_for(model: str | None) -> str:
    """The role a system message takes on Chat Completions for `model`."""
    name = _bare(model)
    if _NO_SYSTEM_RE.match(name):
        return "user"
    if _REASONING_RE.match(name):
        return "developer"
    return "system"


def wants_max_completion_tokens(model: str | None) -> bool:
    return bool(_MAX_COMPLETION_RE.match(_bare(model)))


def build_headers(
    *,
    api_key: str | None,
    organization: str | None,
    project: str | None,
    stream: bool,
    default_headers: Mapping[str, str] | None = None,
    extra_headers: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    headers: dict[str, str] = {"content-type": "application/json"}
    headers["accept"] = "text/event-stream" if stream else "application/json"
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    if organization:
        headers["openai-organization"] = organization
    if project:
        headers["openai-project"] = project
    for source in (default_headers, extra_headers):
        if source:
            for key, value in source.items():
                if value is not None:
                    headers[str(key).lower()] = str(value)
    return headers


def image_url(part: ImagePart) -> str:
    """The URL OpenAI gets for an image: the URL itself, or a base64 data URI."""
    image = part.image
    if image.url is not None:
        return image.url
    return image.to_data_uri()


def preflight_images(messages: tuple[Message, ...]) -> None:
    """Check every image before any request: MIME, per-image and per-request size,
    and no images where OpenAI cannot take them (any message but a user one)."""
    total = 0
    for i, message in enumerate(messages):
        if isinstance(message.content, str):
            continue
        for j, part in enumerate(message.content):
            if not isinstance(part, ImagePart):
                continue
            path = f"messages.{i}.content.{j}"
            if message.role != "user":  # OpenAI takes images in user messages only
                raise ValidationError(
                    "invalid_message",
                    f"OpenAI does not accept images in {message.role} messages (at {path})",
                    errors=[(path, f"image_in_{message.role}_message")],
                    provider=PROVIDER,
                )
            check_image(part, path=path, allowed_mime=ALLOWED_IMAGE_MIME,
                        max_bytes=MAX_IMAGE_BYTES, provider=PROVIDER)
            data = part.image.data
            if part.image.mime_type == "image/gif" and data is not None and is_animated_gif(data):
                raise ValidationError(
                    "invalid_image",
                    f"OpenAI accepts only non-animated GIFs (at {path})",
                    errors=[(path, "unsupported_image_format")],
                    provider=PROVIDER,
                )
            total += part.image.size or 0
    if total > MAX_REQUEST_IMAGE_BYTES:
        raise ValidationError(
            "invalid_image",
            f"the request carries {total / 1_048_576:.1f} MB of images; OpenAI accepts "
            f"at most {MAX_REQUEST_IMAGE_BYTES // 1_048_576} MB per request",
            errors=[("messages", "images_too_large")],
            provider=PROVIDER,
        )


def dumps(body: Mapping[str, Any]) -> bytes:
    return body_bytes(body, provider=PROVIDER)


def load_json(body: bytes | str, what: str) -> Any:
    """Parse a 2xx body; anything that is not JSON is a `malformed_response`."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise AdapterError(
            "malformed_response",
            f"OpenAI returned a {what} that is not valid JSON",
            provider=PROVIDER,
            cause=str(exc),
        ) from exc


def _int(value: Any) -> int | None:
    return value if type(value) is int else None  # bool is not a token count


def _details(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def usage_from_chat(obj: Any) -> Usage | None:
    """Chat Completions `usage` -> `Usage` (cached and reasoning tokens included)."""
    if not isinstance(obj, dict):
        return None
    prompt = _details(obj, "prompt_tokens_details")
    completion = _details(obj, "completion_tokens_details")
    known = {"prompt_tokens", "completion_tokens", "total_tokens"}
    extra = {k: v for k, v in obj.items() if k not in known and v is not None}
    return Usage(
        input_tokens=_int(obj.get("prompt_tokens")),
        output_tokens=_int(obj.get("completion_tokens")),
        total_tokens=_int(obj.get("total_tokens")),
        cached_input_tokens=_int(prompt.get("cached_tokens")),
        reasoning_tokens=_int(completion.get("reasoning_tokens")),
        extra=extra,
    )


def usage_from_responses(obj: Any) -> Usage | None:
    """Responses `usage` -> `Usage`."""
    if not isinstance(obj, dict):
        return None
    inp = _details(obj, "input_tokens_details")
    out = _details(obj, "output_tokens_details")
    known = {"input_tokens", "output_tokens", "total_tokens"}
    extra = {k: v for k, v in obj.items() if k not in known and v is not None}
    return Usage(
        input_tokens=_int(obj.get("input_tokens")),
        output_tokens=_int(obj.get("output_tokens")),
        total_tokens=_int(obj.get("total_tokens")),
        cached_input_tokens=_int(inp.get("cached_tokens")),
        cache_write_tokens=_int(inp.get("cache_write_tokens")) or None,
        reasoning_tokens=_int(out.get("reasoning_tokens")),
        extra=extra,
    )


def drop_none(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if v is not None}


class CodecBase:
    """What the Chat Completions and Responses codecs share: their configuration,
    `build` (pre-flight, body, headers) and `error`. A subclass names its `path` and
    encodes its body (`encode_body`)."""

    provider = PROVIDER
    path: ClassVar[str] = ""

    def __init__(
        self,
        *,
        base_url: str,
        organization: str | None = None,
        project: str | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.organization = organization
        self.project = project
        self.default_headers = dict(default_headers or {})

    def encode_body(self, request: Request, call: Call, *, stream: bool) -> dict[str, Any]:
        raise NotImplementedError

    def build(self, request: Request, call: Call, *, api_key: str, stream: bool) -> HttpRequest:
        preflight_images(request.messages)
        body = self.encode_body(request, call, stream=stream)
        params = merged_params(request, call)
        extra_headers = params.get("extra_headers")
        headers = build_headers(
            api_key=api_key, organization=self.organization, project=self.project,
            stream=stream, default_headers=self.default_headers,
            extra_headers=extra_headers if isinstance(extra_headers, Mapping) else None,
        )
        return HttpRequest(method="POST", url=self.base_url + self.path, headers=headers,
                           content=dumps(body))

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> AdapterError:
        return error_from_response(status, headers, body)


class SSEJsonDecoder:
    """The SSE-to-JSON shell both OpenAI stream decoders share: split the bytes into SSE
    events, handle ``[DONE]`` and non-JSON data (one `malformed_response` error), and
    hand each JSON object to `_handle`. Subclasses own the fold (which has
    ``finished`` and ``truncated()``) and what a parsed object means."""

    noun: ClassVar[str] = "stream chunk"

    def __init__(self, fold: Any) -> None:
        from ..._http.sse import SSEDecoder

        self._sse = SSEDecoder()
        self._fold = fold

    def feed(self, data: bytes) -> list[Any]:
        return self._events(self._sse.feed(data))

    def close(self) -> list[Any]:
        out = self._events(self._sse.close())
        out.extend(self._fold.truncated())
        return out

    def _done(self) -> list[Any]:
        """``data: [DONE]`` arrived."""
        return []

    def _handle(self, obj: Any, sse: Any) -> list[Any]:
        raise NotImplementedError

    def _events(self, sse_events: list[Any]) -> list[Any]:
        out: list[Any] = []
        handle = self._handle
        for sse in sse_events:
            data = sse.data
            if not data:
                continue
            if data[0] != "{" and data.strip() == "[DONE]":  # no copy of every chunk
                out.extend(self._done())
                continue
            try:
                obj = json.loads(data)
            except ValueError:
                if not self._fold.finished:
                    self._fold.finished = True
                    out.append(ErrorEvent(error=AdapterError(
                        "malformed_response", f"OpenAI sent a {self.noun} that is not JSON",
                        provider=PROVIDER, cause=data[:200],
                    )))
                continue
            out.extend(handle(obj, sse))
        return out
