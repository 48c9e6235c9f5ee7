"""Cost population from catalog prices, checked against recorded provider usage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from allm import ImageUsage, Usage, catalog

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"


def _bodies(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        pytest.skip(f"fixtures not found at {path}")
    doc = json.loads(path.read_text())
    return [json.loads(i["response"]["body"]) for i in doc["interactions"]]


def test_anthropic_recorded_exchange_with_cache_read_and_write() -> None:
    bodies = _bodies(FIXTURES / "anthropic" / "pydantic-ai__test_anthropic_cache_real_api.json")
    body = bodies[1]
    model, raw = body["model"], body["usage"]
    assert model == "claude-sonnet-4-5-20250929"
    # Anthropic's input_tokens excludes cache reads/writes; allm's includes them.
    usage = Usage(
        input_tokens=raw["input_tokens"] + raw["cache_read_input_tokens"]
        + raw["cache_creation_input_tokens"],
        output_tokens=raw["output_tokens"],
        cached_input_tokens=raw["cache_read_input_tokens"],
        cache_write_tokens=raw["cache_creation_input_tokens"],
    )
    try:  # the codec's own usage mapping must agree with the one above
        from allm.providers.anthropic.decode import usage_from
    except ImportError:  # pragma: no cover - codec not importable
        pass
    else:
        decoded = usage_from(raw)
        assert (decoded.input_tokens, decoded.cached_input_tokens, decoded.cache_write_tokens) == (
            usage.input_tokens, usage.cached_input_tokens, usage.cache_write_tokens)
        usage = decoded
    costed = catalog.populate_costs(usage, "anthropic", model)
    p = catalog.price("anthropic:claude-sonnet-4-5")
    assert p is not None
    expected_in = (3 * p["input"] + 1111 * p["cached_input"] + 418 * p["cache_write"]) / 1e6
    expected_out = 33 * p["output"] / 1e6
    assert (p["input"], p["cached_input"], p["cache_write"], p["output"]) == (3, 0.3, 3.75, 15)
    assert costed.input_cost == pytest.approx(expected_in, rel=1e-12)
    assert costed.output_cost == pytest.approx(expected_out, rel=1e-12)
    assert costed.total_cost == pytest.approx(expected_in + expected_out, rel=1e-12)
    assert costed.input_cost == pytest.approx(0.0019098, rel=1e-9)  # 9 + 333.3 + 1567.5 micro-USD


def test_openai_recorded_exchange_with_cached_tokens() -> None:
    bodies = _bodies(FIXTURES / "openai" / "pydantic-ai__test_openai_responses_model_web_search_tool.json")
    body = next(b for b in bodies if isinstance(b.get("usage"), dict))
    model, raw = body["model"], body["usage"]
    assert model == "gpt-5-2025-08-07"
    usage = Usage(input_tokens=raw["input_tokens"], output_tokens=raw["output_tokens"],
                  cached_input_tokens=raw["input_tokens_details"]["cached_tokens"],
                  reasoning_tokens=raw["output_tokens_details"]["reasoning_tokens"])
    try:
        from allm.providers.openai._shared import usage_from_responses
    except ImportError:  # pragma: no cover
        pass
    else:
        decoded = usage_from_responses(raw)
        assert decoded is not None
        assert (decoded.input_tokens, decoded.cached_input_tokens) == (
            usage.input_tokens, usage.cached_input_tokens)
        usage = decoded
    costed = catalog.populate_costs(usage, "openai", model)
    p = catalog.price("openai:gpt-5")
    assert p == {"input": 1.25, "output": 10, "cached_input": 0.125}
    cached = raw["input_tokens_details"]["cached_tokens"]
    expected_in = ((raw["input_tokens"] - cached) * 1.25 + cached * 0.125) / 1e6
    expected_out = raw["output_tokens"] * 10 / 1e6  # reasoning tokens are output tokens
    assert costed.input_cost == pytest.approx(expected_in, rel=1e-12)
    assert costed.output_cost == pytest.approx(expected_out, rel=1e-12)
    assert costed.total_cost == pytest.approx(expected_in + expected_out, rel=1e-12)


def test_only_none_fields_are_filled() -> None:
    usage = Usage(input_tokens=1000, output_tokens=1000, input_cost=42.0)
    costed = catalog.populate_costs(usage, "openai", "gpt-4o")
    assert costed.input_cost == 42.0
    assert costed.output_cost == pytest.approx(0.01)
    assert costed.total_cost == pytest.approx(42.01)
    full = Usage(input_tokens=1, output_tokens=1, input_cost=1.0, output_cost=2.0, total_cost=3.0)
    assert catalog.populate_costs(full, "openai", "gpt-4o") is full


def test_unknown_model_or_missing_tokens() -> None:
    usage = Usage(input_tokens=10, output_tokens=10)
    assert catalog.populate_costs(usage, "openai", "gpt-unknown") is usage
    assert catalog.populate_costs(usage, "fake", "m") is usage
    assert catalog.populate_costs(usage, None, None) is usage
    only_in = catalog.populate_costs(Usage(input_tokens=1_000_000), "openai", "gpt-4o")
    assert only_in.input_cost == pytest.approx(2.5)
    assert only_in.output_cost is None and only_in.total_cost is None


def test_long_context_tier() -> None:
    small = catalog.populate_costs(Usage(input_tokens=200_000, output_tokens=0), "anthropic",
                                   "claude-sonnet-4-5")
    large = catalog.populate_costs(Usage(input_tokens=200_001, output_tokens=1_000_000),
                                   "anthropic", "claude-sonnet-4-5")
    assert small.input_cost == pytest.approx(0.6)
    assert large.input_cost == pytest.approx(200_001 * 6 / 1e6)
    assert large.output_cost == pytest.approx(22.5)


def test_usage_sum_keeps_costs() -> None:
    a = catalog.populate_costs(Usage(input_tokens=100, output_tokens=10), "openai", "gpt-4o")
    b = catalog.populate_costs(Usage(input_tokens=200, output_tokens=20), "openai", "gpt-4o")
    total = a + b
    assert total.total_cost == pytest.approx((300 * 2.5 + 30 * 10) / 1e6)


def test_prices_follow_a_catalog_reload() -> None:
    # Prices are cached per (provider, model); loading or resetting the catalog must
    # be seen by the very next call.
    usage = Usage(input_tokens=1_000_000, output_tokens=0)
    assert catalog.populate_costs(usage, "openai", "gpt-4o").input_cost == pytest.approx(2.5)
    try:
        catalog.load({"openai:gpt-4o": {"pricing": {"input": 7.0, "output": 1.0}}})
        assert catalog.populate_costs(usage, "openai", "gpt-4o").input_cost == pytest.approx(7.0)
        catalog.load({"openai:my-tuned": {"pricing": {"input": 1.0, "output": 1.0}}})
        assert catalog.populate_costs(usage, "openai", "my-tuned").input_cost == pytest.approx(1.0)
    finally:
        catalog.reset()
    assert catalog.populate_costs(usage, "openai", "gpt-4o").input_cost == pytest.approx(2.5)
    assert catalog.populate_costs(usage, "openai", "my-tuned").input_cost is None


def test_model_ref_pricing_is_used() -> None:
    ref = catalog.get("openai:gpt-4.1-nano")
    assert ref is not None
    costed = catalog.populate_costs(Usage(input_tokens=1_000_000, output_tokens=1_000_000), None, ref)
    assert costed.total_cost == pytest.approx(0.5)


def test_image_costs() -> None:
    tokens = ImageUsage(images=1, input_tokens=50, output_tokens=4160)
    gen = catalog.image_costs(tokens, "openai", "gpt-image-1")
    assert gen.input_cost == pytest.approx(50 * 5 / 1e6)
    assert gen.output_cost == pytest.approx(4160 * 40 / 1e6)
    assert gen.total_cost == pytest.approx(gen.input_cost + gen.output_cost)
    edit = catalog.image_costs(tokens, "openai", "gpt-image-1", operation="edit")
    assert edit.input_cost == pytest.approx(50 * 10 / 1e6)
    dalle = catalog.image_costs(ImageUsage(images=2, size="1024x1792", quality="hd"),
                                "openai", "dall-e-3")
    assert dalle.output_cost == pytest.approx(0.24) and dalle.total_cost == pytest.approx(0.24)
    dalle_default = catalog.image_costs(ImageUsage(images=3), "openai", "dall-e-2")
    assert dalle_default.total_cost == pytest.approx(0.06)
    gem = catalog.image_costs(ImageUsage(images=2), "gemini", "gemini-2.5-flash-image")
    assert gem.output_cost == pytest.approx(2 * 1290 * 30 / 1e6)  # $0.0387 per image
    assert catalog.image_costs(ImageUsage(images=1), "openai", "unknown") == ImageUsage(images=1)


def test_price_source_genai_prices_falls_back_when_absent() -> None:
    catalog.configure(price_source="auto")
    costed = catalog.populate_costs(Usage(input_tokens=1_000_000, output_tokens=0), "openai", "gpt-4o")
    assert costed.input_cost == pytest.approx(2.5)  # bundled price wins in "auto"
    catalog.configure(price_source="genai-prices")
    costed = catalog.populate_costs(Usage(input_tokens=1_000_000, output_tokens=0), "openai", "gpt-4o")
    assert costed.input_cost == pytest.approx(2.5)  # genai-prices or bundled: same price
    with pytest.raises(Exception, match="price_source"):
        catalog.configure(price_source="nope")


class _StubGenaiPrices:
    """Stands in for pydantic's genai-prices (an optional dependency)."""

    calls: list[tuple[Any, str, str]] = []

    class Usage:
        def __init__(self, **kw: Any) -> None:
            self.kw = kw

    class _Calc:
        input_price = 1.5
        output_price = 0.5

    @classmethod
    def calc_price(cls, usage: Any, model_ref: str, provider_id: str) -> Any:
        cls.calls.append((usage.kw, model_ref, provider_id))
        if model_ref == "unknown-to-it":
            raise LookupError(model_ref)
        return cls._Calc()


def test_genai_prices_source_with_stub(monkeypatch: pytest.MonkeyPatch) -> None:
    from allm.catalog import _checks

    monkeypatch.setattr(_checks, "_genai_prices", _StubGenaiPrices)
    _StubGenaiPrices.calls.clear()
    usage = Usage(input_tokens=100, output_tokens=5, cached_input_tokens=40)
    catalog.configure(price_source="genai-prices")
    costed = catalog.populate_costs(usage, "gemini", "gemini-2.5-flash")
    assert (costed.input_cost, costed.output_cost, costed.total_cost) == (1.5, 0.5, 2.0)
    assert _StubGenaiPrices.calls == [({"input_tokens": 100, "cache_read_tokens": 40,
                                        "cache_write_tokens": None, "output_tokens": 5},
                                       "gemini-2.5-flash", "google")]
    # a model genai-prices does not know falls back to the bundled prices
    fallback = catalog.populate_costs(usage, "openai", "unknown-to-it")
    assert fallback.total_cost is None  # and the bundled catalog does not know it either
    catalog.configure(price_source="auto")
    bundled = catalog.populate_costs(Usage(input_tokens=1_000_000, output_tokens=0), "openai", "gpt-4o")
    assert bundled.input_cost == pytest.approx(2.5)  # "auto": bundled first
    other = catalog.populate_costs(usage, "openai", "not-in-the-catalog")
    assert other.total_cost == 2.0  # "auto": genai-prices for models we have no price for
