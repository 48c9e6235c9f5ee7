"""FakeImages: script vocabulary, operation gate, cursor, retry_until_call."""

from __future__ import annotations

import pytest

from allm.errors import ImageAdapterError, ValidationError
from allm.image import Image
from allm.image_types import ImageRequest, ImageUsage
from allm.providers import FakeImages
from allm.providers.base import Call, ImageAdapter

from ._scripts import SECRET

PNG = (b"\x89PNG\r\n\x1a\n" + b"\x00" * 16)


def img() -> Image:
    return Image.from_bytes(PNG)


def test_ok_entries_and_response_fields() -> None:
    usage = ImageUsage(images=2, output_tokens=10)
    fake = FakeImages([("ok", [img()]), ("ok", [img(), img()], {"usage": usage, "text": "t"})])
    req = ImageRequest(prompt="cat", model="m", size="1024x1024", metadata={"k": 1})
    r = fake.generate(req, Call(request_id="rid"))
    assert len(r.images) == 1 and r.usage.images == 1 and r.usage.size == "1024x1024"
    assert r.request_id == "rid" and r.model == "m" and r.metadata == {"k": 1}
    r = fake.generate(ImageRequest(prompt="x"), Call(model="cm"))
    assert r.usage is usage and r.text == "t" and r.model == "cm"
    with pytest.raises(ImageAdapterError) as info:
        fake.generate(ImageRequest(prompt="x"), Call())
    assert info.value.reason == "unknown" and info.value.message == "no scripted image"
    fake.reset()
    assert fake.cursor == 0 and len(fake.generate(ImageRequest(prompt="x"), Call()).images) == 1


def test_error_entries() -> None:
    err = ImageAdapterError("content_filter", status=400)
    fake = FakeImages([("error", "rate_limited"), ("error", err), ("error", {"x": 1})])
    with pytest.raises(ImageAdapterError) as info:
        fake.generate(ImageRequest(prompt="x"), Call())
    assert info.value.reason == "rate_limited"
    with pytest.raises(ImageAdapterError) as info:
        fake.generate(ImageRequest(prompt="x"), Call())
    assert info.value is err
    with pytest.raises(ImageAdapterError) as info:
        fake.generate(ImageRequest(prompt="x"), Call())
    assert info.value.reason == "unknown" and info.value.cause == {"x": 1}


def test_retry_until_call() -> None:
    fake = FakeImages([("retry_until_call", 3), ("ok", [img()])])
    for _ in range(2):
        with pytest.raises(ImageAdapterError) as info:
            fake.generate(ImageRequest(prompt="x"), Call())
        assert info.value.reason == "rate_limited" and info.value.retry_after == 0
    assert len(fake.generate(ImageRequest(prompt="x"), Call()).images) == 1


def test_operation_gate_runs_before_script() -> None:
    fake = FakeImages([("ok", [img()])], supported_operations=["generate"])
    with pytest.raises(ImageAdapterError) as info:
        fake.generate(ImageRequest(operation="variation", input_images=(img(),)), Call())
    assert info.value.reason == "unsupported_operation"
    assert info.value.metadata == {"operation": "variation"}
    assert fake.cursor == 0


@pytest.mark.parametrize(
    ("script", "path", "why"),
    [
        ([("ok", ["not an image"])], "image_script.0", "expected_images"),
        ([("ok", [], {"bogus": 1})], "image_script.0", "unknown_option"),
        ([("ok", [img()]), ("nope",)], "image_script.1", "unknown_entry"),
        ([("retry_until_call", 0)], "image_script.0", "expected_positive_int"),
    ],
)
def test_validation(script: list[tuple[object, ...]], path: str, why: str) -> None:
    with pytest.raises(ValidationError) as info:
        FakeImages(script)  # type: ignore[arg-type]
    assert (path, why) in info.value.errors


@pytest.mark.anyio
async def test_async_and_protocol_and_redaction() -> None:
    fake = FakeImages([("ok", [img()])])
    assert isinstance(fake, ImageAdapter)
    r = await fake.agenerate(ImageRequest(prompt="x"), Call(api_key=SECRET))
    assert len(r.images) == 1
    assert SECRET not in repr(fake.calls) and fake.calls[0][1].api_key == "[redacted]"
