"""allm.engine() attaches image adapters for providers that have them."""

import pytest


def test_provider_engines_get_an_image_adapter() -> None:
    import allm

    engine = allm.engine("openai:gpt-4.1-mini", base_url="http://127.0.0.1:9/v1")
    assert engine.image_adapter is not None
    assert engine.image_adapter.provider == "openai"
    assert engine.image_adapter.model == "gpt-image-1"  # type: ignore[attr-defined]
    gem = allm.engine("gemini:gemini-2.5-flash", image_model="gemini-3-pro-image-preview")
    assert gem.image_adapter.model == "gemini-3-pro-image-preview"  # type: ignore[union-attr]
    assert allm.engine("anthropic:claude-sonnet-4-5").image_adapter is None
    with pytest.raises(allm.EngineError, match="image_model"):
        allm.engine("anthropic:claude-sonnet-4-5", image_model="x")
