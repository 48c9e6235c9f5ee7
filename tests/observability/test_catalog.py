"""Catalog lookup, resolution, selection, user files, and capability pre-flight."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import allm
from allm import ImageRequest, Request, Tool, ValidationError, catalog, user
from allm.image import Image

PNG = (b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00\x00\x00\x01\x00\x00\x00\x01"
       + b"\x08\x02\x00\x00\x00" + b"\x90wS\xde" + b"\x00" * 16)


def test_get_exact_and_fields() -> None:
    ref = catalog.get("openai:gpt-4.1-mini")
    assert isinstance(ref, allm.ModelRef)
    assert str(ref) == "openai:gpt-4.1-mini"
    assert ref.limits == {"context_window": 1_047_576, "max_output_tokens": 32_768}
    assert ref.capabilities["tools"] is True and ref.capabilities["json_native"] is True
    assert ref.capabilities["modalities"] == {"input": ["text", "image"], "output": ["text"]}
    assert ref.pricing == {"input": 0.4, "output": 1.6, "cached_input": 0.1}
    assert ref.metadata["kind"] == "chat" and ref.metadata["status"] == "active"
    assert "requested_id" not in ref.metadata


@pytest.mark.parametrize(("ref", "family"), [
    ("openai:gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
    ("openai:gpt-4o-2024-08-06", "gpt-4o"),
    ("anthropic:claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
    ("anthropic:claude-haiku-4-5-20251001", "claude-haiku-4-5"),
    ("anthropic:claude-sonnet-4-20250514", "claude-sonnet-4-0"),
    ("gemini:models/gemini-2.5-flash", "gemini-2.5-flash"),
    ("gemini:gemini-2.0-flash-001", "gemini-2.0-flash"),
    ("gemini:gemini-2.5-pro-preview-05-06", "gemini-2.5-pro"),
    ("google:gemini-2.5-pro", "gemini-2.5-pro"),
])
def test_dated_and_aliased_ids_resolve_to_family(ref: str, family: str) -> None:
    found = catalog.get(ref)
    assert found is not None and found.id == family
    requested = ref.partition(":")[2]
    if requested != family:
        assert found.metadata["requested_id"] == requested


def test_specific_snapshot_entry_wins_over_family() -> None:
    old = catalog.get("openai:gpt-4o-2024-05-13")
    assert old is not None and old.id == "gpt-4o-2024-05-13"
    assert old.capabilities["json_native"] is False and old.pricing["input"] == 5


def test_unknown_models_and_bare_ids() -> None:
    assert catalog.get("openai:gpt-unknown-9") is None
    assert catalog.get("fake:anything") is None
    assert catalog.get("nope") is None
    bare = catalog.get("claude-opus-4-1")
    assert bare is not None and bare.provider == "anthropic"
    assert catalog.get("openai", "o3") is not None


def test_returned_refs_are_copies() -> None:
    ref = catalog.get("openai:o3")
    assert ref is not None and ref.pricing is not None
    ref.pricing["input"] = 999
    ref.capabilities["tools"] = False
    again = catalog.get("openai:o3")
    assert again is not None and again.pricing == {"input": 2, "output": 8, "cached_input": 0.5}
    assert again.capabilities["tools"] is True


def test_every_entry_is_well_formed() -> None:
    refs = catalog.models()
    assert {r.provider for r in refs} == {"openai", "anthropic", "gemini"}
    assert len(refs) > 60
    for ref in refs:
        caps = ref.capabilities
        assert ref.metadata["kind"] in {"chat", "image"}, ref
        assert set(caps["modalities"]) == {"input", "output"}, ref
        for flag in ("tools", "json_native", "vision", "reasoning", "images_enabled"):
            assert isinstance(caps[flag], bool), (ref, flag)
        assert ref.pricing, ref
        if ref.metadata["kind"] == "chat":
            assert ref.limits["context_window"] > 0 and ref.limits["max_output_tokens"] > 0, ref
            assert ref.pricing["input"] >= 0 and ref.pricing["output"] >= 0, ref
        else:
            assert caps["supported_image_operations"], ref
    assert catalog.catalog_version()


def test_select_filters_and_order() -> None:
    cheap = catalog.select(tools=True, vision=True, max_input_price=0.3)
    prices = [r.pricing["input"] for r in cheap if r.pricing]
    assert prices == sorted(prices) and all(p <= 0.3 for p in prices) and prices
    no_tools = catalog.select("openai", tools=False, kind="chat")
    assert [r.id for r in no_tools] == ["o1-mini"]
    variation = catalog.select(image_operation="variation")
    assert [str(r) for r in variation] == ["openai:dall-e-2"]
    gem_images = catalog.select("gemini", image_generation=True)
    assert gem_images and all(r.provider == "gemini" for r in gem_images)
    audio = catalog.select(input_modalities=["audio"])
    assert audio and all(r.provider == "gemini" for r in audio)
    big = catalog.select(min_context_window=1_000_000, min_output_tokens=128_000, provider="anthropic")
    assert big and all(r.limits["context_window"] >= 1_000_000 for r in big)
    assert "claude-sonnet-4-0" not in {r.id for r in catalog.select("anthropic")}
    assert "claude-sonnet-4-0" in {r.id for r in catalog.select("anthropic", include_retired=True)}
    assert {r.id for r in catalog.select("anthropic", status="retired")} == {
        "claude-sonnet-4-0", "claude-opus-4-0"}


def test_price() -> None:
    assert catalog.price("openai:gpt-4o") == {"input": 2.5, "output": 10, "cached_input": 1.25}
    assert catalog.price("anthropic:claude-haiku-4-5-20251001")["cache_write"] == 1.25
    assert catalog.price("openai:unknown") is None
    ref = catalog.get("gemini:gemini-2.5-flash")
    assert ref is not None and catalog.price(ref) == ref.pricing


def test_load_mapping_merges_over_bundled() -> None:
    catalog.load({"providers": {"openai": {"models": {
        "gpt-4o": {"pricing": {"input": 1.0}},
        "my-finetune": {"kind": "chat", "capabilities": {"tools": False},
                        "pricing": {"input": 3, "output": 6}},
    }}}})
    gpt4o = catalog.price("openai:gpt-4o")
    assert gpt4o == {"input": 1.0, "output": 10, "cached_input": 1.25}
    mine = catalog.get("openai:my-finetune")
    assert mine is not None and mine.capabilities == {"tools": False}
    catalog.load({"anthropic:claude-internal": {"pricing": {"input": 1, "output": 2}}})
    assert catalog.get("anthropic:claude-internal") is not None
    assert catalog.get("openai:my-finetune") is not None  # merged, not replaced
    catalog.load({"openai:other": {}}, replace=True)
    assert catalog.get("openai:my-finetune") is None
    catalog.reset()
    assert catalog.price("openai:gpt-4o")["input"] == 2.5
    assert catalog.get("openai:other") is None


def test_load_file_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "models.json"
    path.write_text(json.dumps({"gemini:gemini-custom": {"pricing": {"input": 7, "output": 8}}}))
    catalog.load(path)
    assert catalog.price("gemini:gemini-custom") == {"input": 7, "output": 8}
    catalog.reset()
    monkeypatch.setenv("ALLM_CATALOG", str(path))
    catalog.reset()
    assert catalog.price("gemini:gemini-custom") == {"input": 7, "output": 8}


def test_load_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        catalog.load({"no-provider-prefix": {}})
    assert info.value.errors == [("user.no-provider-prefix", "expected_provider:model")]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValidationError) as info2:
        catalog.load(bad)
    assert info2.value.reason == "invalid_json"
    with pytest.raises(ValidationError):
        catalog.load(tmp_path / "missing.json")


# ------------------------------------------------------------------ pre-flight

def _tool() -> Tool:
    return Tool(name="get_weather", description="w", parameters={"type": "object", "properties": {}})


def _errors(provider: str, model: str, request: Request) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as info:
        catalog.preflight(provider, model, request)
    assert info.value.reason == "unsupported_capability"
    return info.value.errors


def test_preflight_tools_json_vision() -> None:
    req = Request(messages=(user("hi"),), tools=(_tool(),))
    assert _errors("openai", "o1-mini", req) == [("tools", "tools_disabled")]
    req = Request(messages=(user("hi"),),
                  response_format={"type": "json_schema", "name": "x", "schema": {}})
    assert _errors("openai", "o1-mini-2024-09-12", req) == [("response_format", "json_native_disabled")]
    img = Request(messages=(user(["look", Image.from_bytes(PNG)]),))
    assert _errors("openai", "o3-mini", img) == [("vision", "vision_disabled")]
    everything = Request(messages=(user(["look", Image.from_bytes(PNG)]),), tools=(_tool(),),
                         response_format={"type": "json_schema", "name": "x", "schema": {}})
    assert _errors("openai", "o1-mini", everything) == [
        ("tools", "tools_disabled"), ("response_format", "json_native_disabled"),
        ("vision", "vision_disabled")]


def test_preflight_passes() -> None:
    everything = Request(messages=(user(["look", Image.from_bytes(PNG)]),), tools=(_tool(),),
                         response_format={"type": "json_schema", "name": "x", "schema": {}})
    catalog.preflight("openai", "gpt-4.1-mini", everything)
    catalog.preflight("openai", "gpt-unknown", everything)  # unknown: never blocked
    catalog.preflight("fake", "o1-mini", everything)
    catalog.preflight("openai", None, everything)
    json_object = Request(messages=(user("hi"),), response_format={"type": "json_object"})
    catalog.preflight("openai", "o1-mini", json_object)  # json_object is never rejected


def test_preflight_with_model_ref_and_enabled_maps() -> None:
    ref = allm.ModelRef(provider="x", id="y", capabilities={"tools": {"enabled": False}})
    with pytest.raises(ValidationError):
        catalog.preflight("x", ref, Request(messages=(user("hi"),), tools=(_tool(),)))
    catalog.preflight("x", ref, Request(messages=(user("hi"),)))


def test_preflight_image() -> None:
    with pytest.raises(ValidationError) as info:
        catalog.preflight_image("openai", "gpt-4.1", ImageRequest(prompt="cat"))
    assert info.value.errors == [("images_enabled", "images_disabled")]
    with pytest.raises(ValidationError) as info:
        catalog.preflight_image("openai", "dall-e-3", ImageRequest(operation="edit", prompt="x"))
    assert info.value.errors == [("operation", "unsupported_image_operation")]
    with pytest.raises(ValidationError):
        catalog.preflight_image("gemini", None, ImageRequest(
            operation="variation", model="gemini-3.1-flash-image-preview"))
    catalog.preflight_image("openai", "dall-e-2", ImageRequest(operation="variation"))
    catalog.preflight_image("openai", "gpt-image-1", ImageRequest(operation="edit"))
    catalog.preflight_image("openai", "some-new-image-model", ImageRequest(operation="variation"))


def test_json_file_is_valid_and_versioned() -> None:
    raw: dict[str, Any] = json.loads(
        (Path(catalog.__file__).parent / "models.json").read_text(encoding="utf-8"))
    assert raw["schema_version"] == 1 and raw["catalog_version"] and raw["currency"] == "USD"
