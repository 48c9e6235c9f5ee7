"""The image facade (`allm.generate_image` & co.) driven by `FakeImages`: request
building, gates, validation, retries, request ids, metadata, telemetry, sync/async."""

from __future__ import annotations

from typing import Any

import pytest

import allm
from allm import telemetry
from allm.errors import EngineError, ImageAdapterError, ValidationError
from allm.image import Image
from allm.image_types import ImageRequest, ImageResponse, ImageUsage
from allm.imaging import build_image_call
from allm.providers import FakeImages
from allm.providers.base import Call

from ._helpers import PNG, make_png

FAST = {"base_delay": 0.0, "jitter": 0.0}


def img(w: int = 4) -> Image:
    return Image.from_bytes(make_png(w, w))


def engine(script: list[tuple[Any, ...]], **kw: Any) -> tuple[allm.Engine, FakeImages]:
    fake = FakeImages(script, **kw)
    return allm.engine(image_adapter=fake, retry=FAST), fake


def test_generate_builds_the_request_from_options() -> None:
    eng, fake = engine([("ok", [img()])])
    response = allm.generate_image(
        eng, "a red fox", model="m1", n=1, size=(512, 256), quality="high", style="vivid",
        background="transparent", output_format="webp", output_compression=80,
        response_format="b64_json", options={"user": "u1"}, metadata={"trace": 7},
        request_id="rid-1", api_key="sk-secret-value")
    request, call = fake.calls[0]
    assert request == ImageRequest(
        operation="generate", prompt="a red fox", model="m1", n=1, size="512x256",
        quality="high", style="vivid", background="transparent", output_format="webp",
        output_compression=80, response_format="binary", options={"user": "u1"},
        metadata={"trace": 7})
    assert call.request_id == "rid-1" and call.model == "m1" and call.stream is False
    assert call.api_key == "[redacted]"  # FakeImages redacts what it records
    assert isinstance(response, ImageResponse)
    assert response.request_id == "rid-1" and response.model == "m1"
    assert response.metadata == {"trace": 7}
    assert response.image is not None and response.image.data == make_png()


def test_prebuilt_request_is_sent_as_is_with_model_filled() -> None:
    eng, fake = engine([("ok", [img()])])
    eng = eng.with_model("engine-model")
    req = ImageRequest(prompt="x", size="auto", metadata={"a": 1})
    allm.generate_image(eng, req, size="1024x1024", quality="high")
    sent, _ = fake.calls[0]
    assert sent.model == "engine-model" and sent.metadata == {"a": 1}
    # the request's own fields win; its empty ones are filled from the options
    assert sent.size == "auto" and sent.quality == "high"


def test_model_resolution_order() -> None:
    fake = FakeImages([("ok", [img()])] * 3)
    fake.model = "adapter-default"  # type: ignore[attr-defined]  # what OpenAIImages(model=) sets
    eng = allm.engine(image_adapter=fake, model="engine-model")
    allm.generate_image(eng, "x")
    allm.generate_image(eng, "x", model="call-model")
    allm.generate_image(eng, ImageRequest(prompt="x", model="req-model"), model="call-model")
    assert [r.model for r, _ in fake.calls] == ["adapter-default", "call-model", "req-model"]


def test_edit_and_variations_build_their_operations() -> None:
    base, other, mask = img(4), img(8), img(4)
    eng, fake = engine([("ok", [img()])] * 3)
    allm.edit_image(eng, base, "add a hat", mask=mask)
    allm.edit_image(eng, [base, other], "combine")
    allm.image_variations(eng, base, n=2)
    edit, several, variation = (r for r, _ in fake.calls)
    assert edit.operation == "edit" and edit.input_images == (base,) and edit.mask is mask
    # a list is all input images: the second one is never promoted to the mask
    assert several.input_images == (base, other) and several.mask is None
    assert variation.operation == "variation" and variation.prompt is None
    assert variation.input_images == (base,) and variation.n == 2


def test_unknown_options_are_named() -> None:
    eng, fake = engine([("ok", [img()])])
    with pytest.raises(ValidationError) as info:
        allm.generate_image(eng, "x", sizes="1024x1024", colour="red")
    assert info.value.errors == [("colour", "unknown_option"), ("sizes", "unknown_option")]
    with pytest.raises(ValidationError) as info:
        allm.generate_image(eng, "x", mask=img())  # a mask belongs to edit_image
    assert info.value.errors == [("mask", "unknown_option")]
    assert fake.calls == []


def test_no_image_adapter_is_the_first_gate() -> None:
    eng = allm.engine(model="m")
    with pytest.raises(EngineError) as info:
        allm.generate_image(eng, "")  # before validation would reject the empty prompt
    assert info.value.reason == "no_image_adapter"
    with pytest.raises(EngineError) as info:
        allm.image_variations(eng, img())
    assert info.value.reason == "no_image_adapter"
    with pytest.raises(EngineError) as info:
        allm.generate_image("not an engine", "x")  # type: ignore[arg-type]
    assert info.value.reason == "invalid_engine"


def test_validation_runs_before_the_adapter() -> None:
    eng, fake = engine([("ok", [img()])])
    with pytest.raises(ValidationError) as info:
        allm.generate_image(eng, "  ", n=0)
    assert set(info.value.errors) == {("n", "must_be_positive"), ("prompt", "required_for_operation")}
    with pytest.raises(ValidationError) as info:
        allm.edit_image(eng, [], "x")
    assert ("input_images", "invalid_count") in info.value.errors
    with pytest.raises(ValidationError) as info:
        allm.generate_image(eng, "x", response_format="gif")
    assert ("response_format", "unknown") in info.value.errors
    with pytest.raises(ValidationError):
        allm.edit_image(eng, "not an image", "x")  # type: ignore[arg-type]
    assert fake.calls == []


def test_catalog_preflight_for_known_models() -> None:
    fake = FakeImages([("ok", [img()])], provider="openai")
    eng = allm.engine(image_adapter=fake)
    with pytest.raises(ValidationError) as info:
        allm.image_variations(eng, img(), model="dall-e-3")
    assert info.value.reason == "unsupported_capability"
    assert info.value.errors == [("operation", "unsupported_image_operation")]
    with pytest.raises(ValidationError) as info:
        allm.generate_image(eng, "x", model="gpt-4.1-mini")
    assert info.value.errors == [("images_enabled", "images_disabled")]
    assert fake.calls == []
    allm.generate_image(eng, "x", model="gpt-4.1-mini", preflight=False)  # skipped
    assert len(fake.calls) == 1


def test_retry_until_call_is_retried_and_reported() -> None:
    eng, fake = engine([("retry_until_call", 3), ("ok", [img()])])
    seen: list[tuple[int, float, str]] = []
    response = allm.generate_image(eng, "x", on_retry=lambda a, d, e: seen.append((a, d, e.reason)))
    assert len(response.images) == 1 and len(fake.calls) == 3
    assert seen == [(1, 0.0, "rate_limited"), (2, 0.0, "rate_limited")]


def test_retry_gives_up_after_max_attempts_and_never_retries_permanent_errors() -> None:
    eng, fake = engine([("retry_until_call", 5), ("ok", [img()])])
    with pytest.raises(ImageAdapterError) as info:
        allm.generate_image(eng, "x", retry={"max_attempts": 2, **FAST})
    assert info.value.reason == "rate_limited" and len(fake.calls) == 2
    eng, fake = engine([("error", "content_filter"), ("ok", [img()])])
    with pytest.raises(ImageAdapterError) as info:
        allm.generate_image(eng, "x")
    assert info.value.reason == "content_filter" and len(fake.calls) == 1
    eng, fake = engine([("retry_until_call", 2), ("ok", [img()])])
    with pytest.raises(ImageAdapterError):
        allm.generate_image(eng, "x", retry=False)
    assert len(fake.calls) == 1


def test_retry_after_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("allm.imaging.time.sleep", slept.append)
    err = ImageAdapterError("rate_limited", status=429, retry_after=1.5)
    eng, _ = engine([("error", err), ("ok", [img()])])
    allm.generate_image(eng, "x")
    assert slept == [1.5]
    err = ImageAdapterError("provider_unavailable", status=503, retry_after=30.0)
    eng, fake = engine([("error", err), ("ok", [img()])])
    with pytest.raises(ImageAdapterError):  # waiting would overrun timeout=
        allm.generate_image(eng, "x", timeout=5)
    assert len(fake.calls) == 1


def test_the_adapter_never_retries_on_its_own() -> None:
    eng, fake = engine([("ok", [img()])])
    allm.generate_image(eng, "x", timeout=10)
    _, call = fake.calls[0]
    assert call.retry is not None and call.retry.max_attempts == 1
    assert call.timeout is not None and 0 < call.timeout <= 10


def test_unsupported_operation_from_the_adapter() -> None:
    eng, fake = engine([("ok", [img()])], supported_operations=["generate", "edit"])
    with pytest.raises(ImageAdapterError) as info:
        allm.image_variations(eng, img())
    assert info.value.reason == "unsupported_operation"
    assert info.value.metadata == {"operation": "variation"}
    assert fake.cursor == 0


def test_build_image_call_merges_adapter_opts_and_transport_params() -> None:
    fake = FakeImages([])
    eng = allm.engine(image_adapter=fake, adapter_opts={"a": 1, "b": 1})
    _, request, call, policy = build_image_call(
        eng, ImageRequest(prompt="x"), {"adapter_opts": {"b": 2}, "timeout": 3,
                                        "read_timeout": 2, "retry": {"max_attempts": 5}})
    assert call.adapter_opts == {"a": 1, "b": 2} and call.timeout == 3
    assert call.read_timeout == 2 and policy.max_attempts == 5
    assert isinstance(call, Call) and call.request_id


def test_usage_from_the_script_is_kept() -> None:
    usage = ImageUsage(images=2, input_tokens=3, output_tokens=4)
    eng, _ = engine([("ok", [img(), img()], {"usage": usage, "text": "t"})])
    response = allm.generate_image(eng, "x", n=2)
    assert response.usage == usage and response.text == "t"


def test_image_span_and_retry_events() -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    handle = telemetry.attach(lambda name, data: events.append((name, data)))
    try:
        eng, _ = engine([("retry_until_call", 2), ("ok", [img()])])
        allm.generate_image(eng, "x", model="m", request_id="rid-t")
    finally:
        telemetry.detach(handle)
    names = [n for n, _ in events]
    assert names == ["image.start", "adapter.retry", "image.stop"]
    start, retry, stop = (d for _, d in events)
    assert start["request_id"] == "rid-t" and start["operation"] == "generate"
    assert retry["attempt"] == 1 and retry["reason"] == "rate_limited"
    assert isinstance(stop["result"], ImageResponse)


def test_image_span_reports_failures() -> None:
    events: list[str] = []
    handle = telemetry.attach(lambda name, data: events.append(name))
    try:
        eng, _ = engine([("error", "content_filter")])
        with pytest.raises(ImageAdapterError):
            allm.generate_image(eng, "x")
    finally:
        telemetry.detach(handle)
    assert events == ["image.start", "image.exception"]


@pytest.mark.anyio
async def test_async_twins() -> None:
    eng, fake = engine([("retry_until_call", 2), ("ok", [img()]), ("ok", [img()]),
                        ("ok", [img()])])
    r1 = await allm.agenerate_image(eng, "x", request_id="a1")
    r2 = await allm.aedit_image(eng, [img(), img(8)], "y")
    r3 = await allm.aimage_variations(eng, img())
    assert r1.request_id == "a1" and len(fake.calls) == 4
    assert [r.operation for r, _ in fake.calls] == ["generate", "generate", "edit", "variation"]
    assert all(len(r.images) == 1 for r in (r1, r2, r3))
    with pytest.raises(ValidationError):
        await allm.agenerate_image(eng, "x", nope=1)
    eng, _ = engine([("error", "authentication_failed")])
    with pytest.raises(ImageAdapterError) as info:
        await allm.agenerate_image(eng, "x")
    assert info.value.reason == "authentication_failed"


def test_png_helper_is_sniffed() -> None:
    assert Image.from_bytes(PNG).mime_type == "image/png"
