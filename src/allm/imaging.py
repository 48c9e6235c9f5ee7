"""Image generation, editing and variations behind one interface (the image facade).

Owns `generate_image`, `edit_image`, `image_variations` and their async twins: turning
a prompt (or a prebuilt `ImageRequest`) plus keyword options into one `ImageRequest`
and one `Call`, the pre-flight, the retry loop, and the finishing touches on the
`ImageResponse`. Must not know any provider's wire format: adapters
(`allm.providers.OpenAIImages`, `GeminiImages`, `FakeImages`) do that.

Pipeline (reference §2.7, with the differences noted):

1. Options are checked: an unknown keyword raises `ValidationError` naming it (the
   original raised too, by accident of ``struct!``; here it is the contract). A
   prebuilt `ImageRequest` keeps its own fields; those still at their defaults are
   filled from the options (as `generate` does for a prebuilt `Request`).
2. ``engine.image_adapter is None`` -> `EngineError("no_image_adapter")` (first gate).
3. The model: the request's, else ``model=``, else the image adapter's own default
   (``OpenAIImages(model=...)``), else ``engine.model``.
4. `allm.validate.image_request` (the original left validation opt-in; a request the
   provider would reject anyway now fails before any traffic, naming the field).
5. The catalog's capability pre-flight (`allm.catalog.preflight_image`) for models it
   knows (``preflight=False`` skips it).
6. The adapter call, retried under the engine's (or the call's ``retry=``) policy:
   only `ImageAdapterError`s the policy calls transient (rate limits, 5xx,
   overloaded, timeouts, network errors), waiting what ``Retry-After`` asked. The
   decision is `allm.retry.next_delay`, the same function the HTTP runtime uses;
   the adapter itself gets ``Call.retry = NO_RETRY`` so attempts never multiply.
   ``timeout=`` bounds all attempts together.
7. ``response.request_id`` / ``model`` filled when the adapter left them empty, and
   the usage's costs from the catalog's prices when it knows the model.

With telemetry on (a hook attached or an OpenTelemetry tracer live) the whole call
runs in an ``image`` span (`allm.telemetry`); retries are ``adapter.retry`` events.
``stream=`` is accepted and ignored (image calls do not stream).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from . import telemetry
from .engine import Engine
from .errors import EngineError, ImageAdapterError, ValidationError
from .image import Image
from .image_types import ImageRequest, ImageResponse
from .providers._common import b64decode_lenient
from .providers.base import TRANSPORT_PARAMS, Call
from .retry import NO_RETRY, RetryPolicy, next_delay, resolve_retry

if TYPE_CHECKING:
    from .providers.base import ImageAdapter

__all__ = [
    "generate_image",
    "agenerate_image",
    "edit_image",
    "aedit_image",
    "image_variations",
    "aimage_variations",
    "build_image_call",
    "images_in",
    "IMAGE_REQUEST_OPTS",
    "IMAGE_CALL_OPTS",
]

IMAGE_REQUEST_OPTS: frozenset[str] = frozenset(
    {"model", "n", "size", "quality", "style", "background", "output_format",
     "output_compression", "response_format", "options", "metadata"}
)
"""Keyword options that become `ImageRequest` fields (``mask=`` too, for edits)."""

IMAGE_CALL_OPTS: frozenset[str] = frozenset(
    {"api_key", "request_id", "retry", "adapter_opts", "on_retry", "preflight", "stream"}
) | TRANSPORT_PARAMS
"""Keyword options of the call itself (never sent as image parameters)."""

_DEFAULTS: dict[str, Any] = {k: getattr(ImageRequest(), k) for k in IMAGE_REQUEST_OPTS}

_RESPONSE_FORMATS = {"binary": "binary", "bytes": "binary", "base64": "binary",
                     "b64_json": "binary", "url": "url"}


# -- step 1: the request and the call ---------------------------------------------------


def _check_opts(opts: Mapping[str, Any], extra: frozenset[str] = frozenset()) -> None:
    allowed = IMAGE_REQUEST_OPTS | IMAGE_CALL_OPTS | extra
    unknown = sorted(k for k in opts if k not in allowed)
    if unknown:
        raise ValidationError(
            "invalid_params",
            f"unknown image option(s) {', '.join(unknown)}; image calls accept "
            f"{', '.join(sorted(allowed))}",
            errors=[(k, "unknown_option") for k in unknown],
        )


def _size(value: Any) -> Any:
    """``(1024, 768)`` -> ``"1024x768"``; anything else as given (validated later)."""
    if (isinstance(value, (tuple, list)) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        return f"{value[0]}x{value[1]}"
    return value


def _request_fields(opts: Mapping[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {k: opts[k] for k in IMAGE_REQUEST_OPTS
                              if k in opts and opts[k] is not None}
    if "size" in fields:
        fields["size"] = _size(fields["size"])
    if "response_format" in fields:
        rf = fields["response_format"]
        fields["response_format"] = _RESPONSE_FORMATS.get(rf, rf) if isinstance(rf, str) else rf
    for key in ("options", "metadata"):
        if key in fields:
            fields[key] = dict(fields[key])
    return fields


def _image_adapter(engine: Any) -> ImageAdapter:
    if not isinstance(engine, Engine):
        raise EngineError(
            "invalid_engine",
            f"expected an allm.Engine, got {type(engine).__name__} "
            "(build one with allm.engine(..., image_adapter=...))",
        )
    adapter = engine.image_adapter
    if adapter is None:
        raise EngineError(
            "no_image_adapter",
            "engine.image_adapter is None; build the engine with an image adapter, e.g. "
            "allm.engine(image_adapter=allm.providers.OpenAIImages(model='gpt-image-1'))",
        )
    return adapter


def build_image_call(
    engine: Engine, request: ImageRequest, opts: Mapping[str, Any]
) -> tuple[ImageAdapter, ImageRequest, Call, RetryPolicy]:
    """Everything one image call needs, or the pre-flight error (raised here, before
    any traffic): the adapter, the resolved request, the adapter's `Call` (which
    never retries on its own) and the policy the facade retries under."""
    adapter = _image_adapter(engine)
    get = opts.get
    model = (request.model or get("model") or getattr(adapter, "model", None)
             or engine.model)
    if model != request.model:
        request = replace(request, model=model)
    from . import validate

    validate.image_request(request)
    provider = getattr(adapter, "provider", None)
    if get("preflight", True) and provider not in (None, "fake") and model:
        from . import catalog

        catalog.preflight_image(provider, model, request)
    policy = resolve_retry(opts["retry"]) if "retry" in opts else engine.retry_policy
    params = {k: opts[k] for k in TRANSPORT_PARAMS if opts.get(k) is not None}
    read_timeout = get("read_timeout", get("stream_timeout"))
    call = Call(
        model=model,
        params=params,
        api_key=get("api_key") or None,
        stream=False,
        retry=NO_RETRY,
        timeout=get("timeout"),
        connect_timeout=get("connect_timeout"),
        read_timeout=read_timeout,
        adapter_opts={**engine.adapter_opts, **dict(get("adapter_opts") or {})},
        request_id=get("request_id") or telemetry.current_request_id()
        or telemetry.new_request_id(),
        on_retry=get("on_retry"),
    )
    return adapter, request, call, policy


def _generate_request(prompt_or_request: str | ImageRequest, opts: Mapping[str, Any]) -> ImageRequest:
    _check_opts(opts)
    if isinstance(prompt_or_request, ImageRequest):
        # Its own fields win; fields still at their defaults are filled from the
        # options (the rule `generate` applies to a prebuilt chat `Request`).
        request = prompt_or_request
        fill = {k: v for k, v in _request_fields(opts).items()
                if getattr(request, k) == _DEFAULTS[k]}
        return replace(request, **fill) if fill else request
    if not isinstance(prompt_or_request, str):
        raise ValidationError(
            "invalid_image_request",
            f"generate_image takes a prompt string or an ImageRequest, got "
            f"{type(prompt_or_request).__name__}",
            errors=[("prompt", "invalid_type")],
        )
    return ImageRequest(operation="generate", prompt=prompt_or_request, **_request_fields(opts))


def _edit_request(images: Image | Sequence[Image], prompt: str, mask: Image | None,
                  opts: Mapping[str, Any]) -> ImageRequest:
    _check_opts(opts)
    if isinstance(images, Image):
        inputs: tuple[Any, ...] = (images,)
    elif isinstance(images, (list, tuple)):
        inputs = tuple(images)  # a second image is an input, never promoted to the mask
    else:
        raise ValidationError(
            "invalid_image_request",
            f"edit_image takes an allm.Image or a list of them, got {type(images).__name__}",
            errors=[("input_images", "not_a_list")],
        )
    return ImageRequest(operation="edit", prompt=prompt, input_images=inputs, mask=mask,
                        **_request_fields(opts))


def _variation_request(image: Image, opts: Mapping[str, Any]) -> ImageRequest:
    _check_opts(opts)
    return ImageRequest(operation="variation", input_images=(image,), **_request_fields(opts))


# -- step 2: the retried adapter call -----------------------------------------------------


class _Attempts:
    """The retry state of one image call (shared by the sync and async loops)."""

    __slots__ = ("adapter", "attempt", "call", "deadline", "policy", "request")

    def __init__(self, adapter: ImageAdapter, request: ImageRequest, call: Call,
                 policy: RetryPolicy) -> None:
        self.adapter = adapter
        self.request = request
        self.call = call
        self.policy = policy
        self.attempt = 0
        total = call.timeout
        self.deadline = None if total is None else time.monotonic() + float(total)

    def next_call(self) -> Call:
        """The `Call` for the next attempt (its timeout is what is left overall)."""
        self.attempt += 1
        if self.deadline is None:
            return self.call
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise ImageAdapterError("timeout", "image call: overall timeout reached",
                                    provider=getattr(self.adapter, "provider", None))
        return replace(self.call, timeout=left)

    def delay(self, error: ImageAdapterError) -> float | None:
        """Seconds to wait before retrying `error`, or None to raise it."""
        remaining = None if self.deadline is None else self.deadline - time.monotonic()
        delay = next_delay(self.policy, error, self.attempt, remaining=remaining,
                           on_retry=self.call.on_retry)
        if delay is not None:
            telemetry.emit("adapter.retry", {
                "provider": getattr(self.adapter, "provider", None),
                "model": self.request.model, "attempt": self.attempt, "delay": delay,
                "reason": error.reason, "status": error.status, "error": error,
                "request_id": self.call.request_id, "operation": self.request.operation,
            })
        return delay

    def finish(self, response: ImageResponse) -> ImageResponse:
        changes: dict[str, Any] = {}
        if response.request_id is None:
            changes["request_id"] = self.call.request_id
        if response.model is None and self.request.model:
            changes["model"] = self.request.model
        provider = getattr(self.adapter, "provider", None)
        model = response.model or self.request.model
        if provider not in (None, "fake") and model:
            from . import catalog

            usage = catalog.image_costs(response.usage, provider, model,
                                        operation=self.request.operation)
            if usage is not response.usage:
                changes["usage"] = usage
        return replace(response, **changes) if changes else response


def _run(attempts: _Attempts) -> ImageResponse:
    while True:
        call = attempts.next_call()
        try:
            response = attempts.adapter.generate(attempts.request, call)
        except ImageAdapterError as error:
            delay = attempts.delay(error)
            if delay is None:
                raise
            time.sleep(delay)
            continue
        return attempts.finish(response)


async def _arun(attempts: _Attempts) -> ImageResponse:
    import anyio

    while True:
        call = attempts.next_call()
        try:
            response = await attempts.adapter.agenerate(attempts.request, call)
        except ImageAdapterError as error:
            delay = attempts.delay(error)
            if delay is None:
                raise
            await anyio.sleep(delay)
            continue
        return attempts.finish(response)


def _span_attrs(attempts: _Attempts) -> dict[str, Any]:
    r = attempts.request
    return {"provider": getattr(attempts.adapter, "provider", None), "model": r.model,
            "request_id": attempts.call.request_id, "operation": r.operation, "n": r.n}


def _call(engine: Engine, request: ImageRequest, opts: Mapping[str, Any]) -> ImageResponse:
    attempts = _Attempts(*build_image_call(engine, request, opts))
    if not telemetry.active():
        return _run(attempts)
    with telemetry.span("image", **_span_attrs(attempts)) as span:
        response = _run(attempts)
        span.set_result(response)
        return response


async def _acall(engine: Engine, request: ImageRequest, opts: Mapping[str, Any]) -> ImageResponse:
    attempts = _Attempts(*build_image_call(engine, request, opts))
    if not telemetry.active():
        return await _arun(attempts)
    with telemetry.span("image", **_span_attrs(attempts)) as span:
        response = await _arun(attempts)
        span.set_result(response)
        return response


# -- public API ------------------------------------------------------------------------------


def generate_image(engine: Engine, prompt_or_request: str | ImageRequest, **opts: Any) -> ImageResponse:
    """Generate images from a prompt (or send a prebuilt `ImageRequest`).

    Options: ``model``, ``n``, ``size`` (``"1024x1024"``, ``(w, h)`` or ``"auto"``),
    ``quality``, ``style``, ``background``, ``output_format``, ``output_compression``,
    ``response_format`` (``"binary"``: image bytes, the default; ``"url"`` where the
    model offers it), ``options`` (provider-specific fields, e.g. OpenAI's
    ``moderation`` or ``user``), ``metadata`` (returned on the response); and the
    call's ``api_key``, ``request_id``, ``retry``, ``timeout``, ``adapter_opts``,
    ``on_retry``, ``preflight``. Raises `EngineError`, `ValidationError` (before any
    request) or `ImageAdapterError`.
    """
    return _call(engine, _generate_request(prompt_or_request, opts), opts)


async def agenerate_image(engine: Engine, prompt_or_request: str | ImageRequest,
                          **opts: Any) -> ImageResponse:
    """The async twin of `generate_image`."""
    return await _acall(engine, _generate_request(prompt_or_request, opts), opts)


def edit_image(engine: Engine, image_or_images: Image | Sequence[Image], prompt: str,
               mask: Image | None = None, **opts: Any) -> ImageResponse:
    """Edit one image, or combine several (``[base, reference, ...]``), following
    `prompt`. `mask` (a PNG whose transparent pixels mark the area to change) applies
    to the first image. Same options as `generate_image`."""
    return _call(engine, _edit_request(image_or_images, prompt, mask, opts), opts)


async def aedit_image(engine: Engine, image_or_images: Image | Sequence[Image], prompt: str,
                      mask: Image | None = None, **opts: Any) -> ImageResponse:
    """The async twin of `edit_image`."""
    return await _acall(engine, _edit_request(image_or_images, prompt, mask, opts), opts)


def image_variations(engine: Engine, image: Image, **opts: Any) -> ImageResponse:
    """Variations of `image` (OpenAI ``dall-e-2`` only among the real providers)."""
    return _call(engine, _variation_request(image, opts), opts)


async def aimage_variations(engine: Engine, image: Image, **opts: Any) -> ImageResponse:
    """The async twin of `image_variations`."""
    return await _acall(engine, _variation_request(image, opts), opts)


# -- images a chat model produced -------------------------------------------------------------


def images_in(response: Any) -> tuple[Image, ...]:
    """The images a *chat* answer carries: OpenAI Responses ``image_generation_call``
    items (the hosted image tool) and Gemini ``inlineData`` output parts, both kept
    verbatim in the assistant message's provider metadata by their decoders.
    Accepts a `Response` or a `Message`; an answer without images gives ``()``."""
    message = getattr(response, "message", response)
    metadata = getattr(message, "metadata", None)
    if not isinstance(metadata, Mapping):
        return ()
    out: list[Image] = []
    openai = metadata.get("openai")
    items = openai.get("items") if isinstance(openai, Mapping) else None
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, Mapping) or item.get("type") != "image_generation_call":
            continue
        result = item.get("result")
        if isinstance(result, str) and result:
            fmt = item.get("output_format")
            mime = f"image/{fmt}" if isinstance(fmt, str) else None
            revised = item.get("revised_prompt")
            out.append(Image.from_base64(
                result, mime, revised_prompt=revised if isinstance(revised, str) else None,
                metadata={"openai": {k: item[k] for k in ("id", "size", "quality",
                                                          "background", "output_format")
                                     if k in item}}))
    gemini = metadata.get("gemini")
    parts = gemini.get("parts") if isinstance(gemini, Mapping) else None
    for entry in parts if isinstance(parts, list) else ():
        part = entry.get("part") if isinstance(entry, Mapping) else None
        inline = part.get("inlineData") if isinstance(part, Mapping) else None
        if isinstance(inline, Mapping) and part.get("thought") is not True:  # type: ignore[union-attr]
            data = inline.get("data")
            if isinstance(data, str) and data:
                mime = inline.get("mimeType")
                out.append(Image.from_bytes(b64decode_lenient(data),
                                            mime if isinstance(mime, str) else None))
    return tuple(out)

