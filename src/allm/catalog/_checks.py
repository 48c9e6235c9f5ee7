"""Capability pre-flight and cost population, driven by the catalog.

Owns `preflight` / `preflight_image` (reject a request the catalog says the model
cannot serve, before any HTTP; ported from the original's ``ALLM.Capability``,
reference §11) and `populate_costs` / `image_costs` (fill `Usage` / `ImageUsage`
cost fields from the catalog's per-million prices).

Rules:
- A model the catalog does not know is never blocked and gets no cost.
- Only an explicit ``False`` capability blocks (a missing flag never does).
- Costs only fill fields that are None; `total_cost` only when both parts exist.
- Cached input tokens are priced at the cached rate, cache writes at the write rate
  (both are *included* in `Usage.input_tokens`); above a ``long_context`` threshold
  of input tokens the whole call is billed at the long-context rates (how Anthropic
  and Google bill their >200K tiers, and OpenAI its >272K tier).

Price source: the bundled catalog by default. `configure(price_source=...)` can
route cost computation to pydantic's ``genai-prices`` package when installed
("genai-prices": always; "auto": only for models the catalog has no price for).
It is optional because importing it costs ~0.6 s (1.6 MB of price data as Python)
and it knows nothing about capabilities; see the package docstring.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from ..request import ModelRef, Usage
from . import _store

if TYPE_CHECKING:
    from ..image_types import ImageRequest, ImageUsage
    from ..request import Request

__all__ = ["preflight", "preflight_image", "populate_costs", "image_costs", "configure",
           "compute_costs"]

_PRICE_SOURCES = ("bundled", "genai-prices", "auto")
_price_source = "bundled"
_genai_prices: Any = None  # module, False (unavailable), or None (not looked up yet)


def _logger() -> Any:
    import logging

    return logging.getLogger("allm.catalog")


def configure(*, price_source: str | None = None) -> None:
    """Choose where costs come from: "bundled" (default), "genai-prices", "auto"."""
    global _price_source
    if price_source is not None:
        if price_source not in _PRICE_SOURCES:
            raise ValidationError("invalid_params",
                                  errors=[("price_source", "expected " + "|".join(_PRICE_SOURCES))])
        _price_source = price_source


def _raw(provider: str | None, model: str | None) -> Mapping[str, Any] | None:
    if not provider or not model or not _store.may_know(provider):
        return None
    return _store.entry(provider, model)


def _has_image(request: Request) -> bool:
    from ..messages import ImagePart

    for message in request.messages:
        content = message.content
        if not isinstance(content, str) and any(isinstance(p, ImagePart) for p in content):
            return True
    return False


def _is_json_schema(response_format: Any) -> bool:
    if isinstance(response_format, Mapping):
        return response_format.get("type") == "json_schema"
    return False


def preflight(provider: str | None, model: str | ModelRef | None, request: Request) -> None:
    """Raise `ValidationError("unsupported_capability")` if the catalog knows the
    model and says it cannot serve `request` (tools, native JSON schema, images in).

    Errors accumulate: one exception names every unsupported capability as
    ``("tools", "tools_disabled")``, ``("response_format", "json_native_disabled")``,
    ``("vision", "vision_disabled")``. ``json_object`` is never rejected.
    """
    if isinstance(model, ModelRef):
        raw: Mapping[str, Any] | None = {"capabilities": model.capabilities}
        label = str(model)
    else:
        raw = _raw(provider, model)
        label = f"{provider}:{model}"
    if raw is None:
        return
    errors: list[tuple[str, str]] = []
    if request.tools and _store.cap(raw, "tools") is False:
        errors.append(("tools", "tools_disabled"))
    if _is_json_schema(request.response_format) and _store.cap(raw, "json_native") is False:
        errors.append(("response_format", "json_native_disabled"))
    if _store.cap(raw, "vision") is False and _has_image(request):
        errors.append(("vision", "vision_disabled"))
    if errors:
        raise ValidationError(
            "unsupported_capability",
            f"{label} does not support: {', '.join(p for p, _ in errors)} "
            "(per the allm model catalog; pass preflight=False to skip this check)",
            errors=errors, provider=provider,
        )


def preflight_image(provider: str | None, model: str | ModelRef | None,
                    request: ImageRequest) -> None:
    """Reject an image operation the catalog says the model cannot do.

    ``("images_enabled", "images_disabled")`` for a model without image output,
    ``("operation", "unsupported_image_operation")`` for an operation outside
    its ``supported_image_operations``. Unknown models pass.
    """
    if isinstance(model, ModelRef):
        raw: Mapping[str, Any] | None = {"capabilities": model.capabilities}
    else:
        raw = _raw(provider, model or request.model)
    if raw is None:
        return
    errors: list[tuple[str, str]] = []
    if _store.cap(raw, "images_enabled") is False:
        errors.append(("images_enabled", "images_disabled"))
    else:
        ops = _store.cap(raw, "supported_image_operations")
        if ops is not None and request.operation not in ops:
            errors.append(("operation", "unsupported_image_operation"))
    if errors:
        raise ValidationError(
            "unsupported_capability",
            f"{provider}:{model or request.model} cannot do image operation "
            f"{request.operation!r} (per the allm model catalog)",
            errors=errors, provider=provider, metadata={"operation": request.operation},
        )


def _rate(prices: Mapping[str, Any], key: str, fallback: str | None = None) -> float | None:
    value = prices.get(key)
    if value is None and fallback is not None:
        value = prices.get(fallback)
    return float(value) if isinstance(value, int | float) else None


_Rates = tuple[float | None, float | None, float | None, float | None]  # in, cached, write, out


def _rates(prices: Mapping[str, Any]) -> _Rates:
    rate_in = _rate(prices, "input")
    return (rate_in, _rate(prices, "cached_input") or rate_in,
            _rate(prices, "cache_write") or rate_in, _rate(prices, "output"))


_Tiers = tuple[_Rates, "tuple[int, _Rates] | None"]  # rates, (threshold, rates above it)


def _tiers(prices: Mapping[str, Any]) -> _Tiers:
    long = prices.get("long_context")
    if not isinstance(long, Mapping):
        return _rates(prices), None
    over = {**prices, **{k: v for k, v in long.items() if k != "threshold"}}
    return _rates(prices), (int(long.get("threshold") or 0), _rates(over))


def _apply(usage: Usage, tiers: _Tiers) -> tuple[float | None, float | None]:
    rates, long = tiers
    tokens_in = usage.input_tokens
    if long is not None and tokens_in is not None and tokens_in > long[0]:
        rates = long[1]  # above the threshold the whole call bills at these rates
    rate_in, rate_cached, rate_write, rate_out = rates
    input_cost: float | None = None
    if tokens_in is not None and rate_in is not None:
        cached = usage.cached_input_tokens or 0
        written = usage.cache_write_tokens or 0
        plain = max(tokens_in - cached - written, 0)
        input_cost = (plain * rate_in + cached * (rate_cached or rate_in)
                      + written * (rate_write or rate_in)) / 1_000_000
    output_cost: float | None = None
    if usage.output_tokens is not None and rate_out is not None:
        output_cost = usage.output_tokens * rate_out / 1_000_000
    return input_cost, output_cost


def compute_costs(usage: Usage, prices: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """(input_cost, output_cost) in USD for `usage` under a price table."""
    return _apply(usage, _tiers(prices))


def _copy_with(value: Any, changes: Mapping[str, Any]) -> Any:
    """`dataclasses.replace` for our frozen slotted values, without re-running
    ``__init__`` (about 5x faster; this runs after every model call)."""
    cls = type(value)
    slots = getattr(cls, "__slots__", None)
    if not isinstance(slots, tuple):  # pragma: no cover - not a slotted dataclass
        return dataclasses.replace(value, **changes)
    new = object.__new__(cls)
    for name in slots:
        object.__setattr__(new, name, changes[name] if name in changes else getattr(value, name))
    return new


def _fill(usage: Usage, input_cost: float | None, output_cost: float | None) -> Usage:
    changes: dict[str, Any] = {}
    if usage.input_cost is None and input_cost is not None:
        changes["input_cost"] = input_cost
    if usage.output_cost is None and output_cost is not None:
        changes["output_cost"] = output_cost
    new_in = changes.get("input_cost", usage.input_cost)
    new_out = changes.get("output_cost", usage.output_cost)
    if usage.total_cost is None and new_in is not None and new_out is not None:
        changes["total_cost"] = new_in + new_out
    return _copy_with(usage, changes) if changes else usage  # type: ignore[no-any-return]


def _genai_prices_costs(usage: Usage, provider: str, model: str) -> tuple[float | None, float | None]:
    global _genai_prices
    if _genai_prices is None:
        try:
            import genai_prices  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            _logger().info("genai-prices is not installed; using the bundled catalog prices")
            _genai_prices = False
        else:
            _genai_prices = genai_prices
    if _genai_prices is False:
        return None, None
    gp = _genai_prices
    try:
        calc = gp.calc_price(
            gp.Usage(
                input_tokens=usage.input_tokens,
                cache_read_tokens=usage.cached_input_tokens,
                cache_write_tokens=usage.cache_write_tokens,
                output_tokens=usage.output_tokens,
            ),
            model_ref=model,
            provider_id={"gemini": "google"}.get(provider, provider),
        )
    except LookupError:
        return None, None
    except Exception:  # a price library must never break a model call
        _logger().warning("genai-prices failed for %s:%s", provider, model, exc_info=True)
        return None, None
    return float(calc.input_price), float(calc.output_price)


_price_cache: dict[tuple[str, str], tuple[Mapping[str, Any], _Tiers] | None] = {}
_price_cache_of: Any = None  # the catalog data the cache was filled from


def _priced(provider: str, model: str) -> tuple[Mapping[str, Any], _Tiers] | None:
    """The model's price table and its rates, looked up once per (provider, model)
    while the catalog data stays the same (`load` / `reset` replace it): this runs
    after every model call."""
    global _price_cache_of
    if _price_cache_of is not _store._data:
        _price_cache.clear()
        _price_cache_of = _store._data
    key = (provider, model)
    try:
        return _price_cache[key]
    except KeyError:
        pass
    raw = _raw(provider, model)
    prices = raw.get("pricing") if raw is not None else None
    found = (prices, _tiers(prices)) if isinstance(prices, Mapping) and prices else None
    if _price_cache_of is _store._data is not None:  # (_raw may have loaded it just now)
        if len(_price_cache) >= 512:
            _price_cache.clear()
        _price_cache[key] = found
    return found


def populate_costs(usage: Usage, provider: str | None, model: str | ModelRef | None) -> Usage:
    """`usage` with input / output / total cost filled from the catalog prices.

    Returns `usage` unchanged when the model or its prices are unknown or all cost
    fields are already set. Never raises for unknown models.
    """
    if usage.input_cost is not None and usage.output_cost is not None and usage.total_cost is not None:
        return usage
    prices: Mapping[str, Any] | None
    if isinstance(model, ModelRef):
        provider, prices, model_id = model.provider, model.pricing, model.id
        priced = None
    else:
        if not provider or not model:
            return usage
        priced = _priced(provider, model)
        prices = priced[0] if priced is not None else None
        model_id = model
    costs: tuple[float | None, float | None] = (None, None)
    if _price_source == "genai-prices" or (_price_source == "auto" and not prices):
        costs = _genai_prices_costs(usage, provider, model_id)
    if costs == (None, None) and prices:
        costs = _apply(usage, priced[1] if priced is not None else _tiers(prices))
    return _fill(usage, *costs)


def image_costs(usage: ImageUsage, provider: str | None, model: str | ModelRef | None, *,
                operation: str = "generate") -> ImageUsage:
    """`usage` with costs from the image model's prices.

    Token-priced models (gpt-image-*): input tokens at the text rate for
    ``generate`` and at the image-input rate for ``edit`` / ``variation`` (the
    upload dominates), output tokens at the image-output rate. Per-image models
    (dall-e-*): ``per_image["quality:size"]`` / ``per_image[size]`` /
    ``per_image["default"]`` times the image count. Gemini image models report no
    tokens: images x ``output_tokens_per_image`` x the image-output rate.
    """
    if isinstance(model, ModelRef):
        prices: Mapping[str, Any] | None = model.pricing
    else:
        raw = _raw(provider, model)
        prices = raw.get("pricing") if raw is not None else None
    if not prices:
        return usage
    input_cost: float | None = None
    output_cost: float | None = None
    rate_in = _rate(prices, "image_input", "input") if operation != "generate" else _rate(prices, "input")
    rate_out = _rate(prices, "image_output", "output")
    if usage.input_tokens is not None and rate_in is not None:
        input_cost = usage.input_tokens * rate_in / 1_000_000
    if usage.output_tokens is not None and rate_out is not None:
        output_cost = usage.output_tokens * rate_out / 1_000_000
    per_image = prices.get("per_image")
    if output_cost is None and isinstance(per_image, Mapping) and usage.images:
        each = None
        for key in (f"{usage.quality}:{usage.size}", str(usage.size), "default"):
            if key in per_image:
                each = float(per_image[key])
                break
        if each is not None:
            output_cost = each * usage.images
            input_cost = input_cost if input_cost is not None else 0.0
    per_tokens = prices.get("output_tokens_per_image")
    if output_cost is None and usage.images and isinstance(per_tokens, int | float) and rate_out:
        output_cost = usage.images * float(per_tokens) * rate_out / 1_000_000
    changes: dict[str, Any] = {}
    if usage.input_cost is None and input_cost is not None:
        changes["input_cost"] = input_cost
    if usage.output_cost is None and output_cost is not None:
        changes["output_cost"] = output_cost
    new_in = changes.get("input_cost", usage.input_cost)
    new_out = changes.get("output_cost", usage.output_cost)
    if usage.total_cost is None and new_out is not None:
        changes["total_cost"] = (new_in or 0.0) + new_out
    return _copy_with(usage, changes) if changes else usage  # type: ignore[no-any-return]
