"""Image calls: ``image`` spans/hooks, catalog pre-flight and costs (FakeImages)."""

from __future__ import annotations

from typing import Any

import pytest

import allm
from allm import ImageUsage, ValidationError
from allm.image import Image
from allm.providers import FakeImages

pytest.importorskip("opentelemetry.sdk")

PNG = (b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00\x00\x00\x01\x00\x00\x00\x01"
       + b"\x08\x02\x00\x00\x00" + b"\x90wS\xde" + b"\x00" * 16)


def _engine(script: list[Any], provider: str = "openai", model: str = "gpt-image-1") -> allm.Engine:
    return allm.Engine(image_adapter=FakeImages(script, provider=provider), model=model)


def test_image_span_hooks_and_costs(exporter: Any, recorded: list[tuple[str, dict[str, Any]]]) -> None:
    usage = ImageUsage(images=2, input_tokens=50, output_tokens=8000)
    engine = _engine([("ok", [Image.from_bytes(PNG)] * 2, {"usage": usage})])
    response = allm.generate_image(engine, "a SECRET-PROMPT cat", model="gpt-image-1", n=2)
    assert response.usage.input_cost == pytest.approx(50 * 5 / 1e6)
    assert response.usage.output_cost == pytest.approx(8000 * 40 / 1e6)

    names = [n for n, _ in recorded]
    assert names == ["image.start", "image.stop"]
    stop = recorded[-1][1]
    assert stop["image_count"] == 2 and stop["operation"] == "generate" and stop["n"] == 2
    (span,) = exporter.get_finished_spans()
    a = span.attributes
    assert span.name == "generate_content gpt-image-1"
    assert a["gen_ai.operation.name"] == "generate_content"
    assert a["gen_ai.output.type"] == "image"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["allm.operation"] == "image" and a["allm.image.operation"] == "generate"
    assert a["allm.image.count"] == 2
    assert a["gen_ai.usage.output_tokens"] == 8000
    assert "SECRET-PROMPT" not in repr(dict(a))


def test_image_preflight_from_catalog() -> None:
    engine = _engine([("ok", [Image.from_bytes(PNG)])], model="dall-e-3")
    with pytest.raises(ValidationError) as info:
        allm.edit_image(engine, Image.from_bytes(PNG), "make it blue", model="dall-e-3")
    assert info.value.errors == [("operation", "unsupported_image_operation")]
    unknown = _engine([("ok", [Image.from_bytes(PNG)])], model="image-model-from-the-future")
    assert allm.edit_image(unknown, Image.from_bytes(PNG), "x").image is not None


def test_image_error_span(exporter: Any) -> None:
    engine = _engine([("error", "content_filter")])
    with pytest.raises(allm.ImageAdapterError):
        allm.generate_image(engine, "x", retry=False)
    (span,) = exporter.get_finished_spans()
    assert span.attributes["error.type"] == "content_filter"
    assert span.status.status_code.name == "ERROR"
