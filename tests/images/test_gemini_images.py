"""`GeminiImages`: the generateContent body (TEXT+IMAGE modalities, imageConfig,
input images as inlineData), decoding, errors, through the facade over MockTransport.

../shared/fixtures has no Gemini image *output* (every recorded ``inlineData`` is in
a request), so responses follow the documented shape of the image generation guide
(https://ai.google.dev/gemini-api/docs/image-generation): a candidate whose parts are
text and ``inlineData {mimeType, data}``, thought parts first on Gemini 3 Pro Image."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

import allm
from allm.errors import ImageAdapterError, ValidationError
from allm.image import Image
from allm.image_types import ImageRequest
from allm.providers import GeminiImages
from allm.providers.base import ImageAdapter
from allm.providers.gemini_images import DEFAULT_IMAGE_MODEL, aspect_ratio

from ._helpers import GIF, JPEG, KEY, Recorder, json_response, make_png

FAST = {"base_delay": 0.0, "jitter": 0.0}
OUT = make_png(3, 3)
B64 = base64.b64encode(OUT).decode()


def answer(*candidates: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP",
                        "index": i} for i, parts in enumerate(candidates)],
        "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 1290,
                          "totalTokenCount": 1302,
                          "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1290}]},
        "modelVersion": "gemini-2.5-flash-image", "responseId": "resp-1", **extra,
    }


IMAGE_ANSWER = answer([{"text": "Here is a nano banana."},
                       {"inlineData": {"mimeType": "image/png", "data": B64}}])


def setup(*responses: Any, model: str | None = "gemini-2.5-flash-image") -> tuple[allm.Engine, Recorder]:
    rec = Recorder(*(responses or (json_response(IMAGE_ANSWER),)))
    adapter = GeminiImages(model=model, http_client=rec.client(),
                           async_http_client=rec.async_client())
    return allm.engine(image_adapter=adapter, retry=FAST), rec


def body_of(rec: Recorder, i: int = 0) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(rec.requests[i].content)
    return data


def test_is_an_image_adapter() -> None:
    adapter = GeminiImages()
    assert isinstance(adapter, ImageAdapter)
    assert adapter.supported_operations == frozenset({"generate", "edit"})


def test_generate_body_url_headers_and_decode() -> None:
    eng, rec = setup()
    response = allm.generate_image(eng, "a nano banana dish", size="16:9",
                                   options={"image_size": "2K"}, api_key=KEY,
                                   request_id="g1", metadata={"job": 3})
    request = rec.requests[0]
    assert str(request.url) == ("https://generativelanguage.googleapis.com/v1beta/models/"
                                "gemini-2.5-flash-image:generateContent")
    assert request.headers["x-goog-api-key"] == KEY and KEY not in str(request.url)
    assert body_of(rec) == {
        "contents": [{"role": "user", "parts": [{"text": "a nano banana dish"}]}],
        "generationConfig": {"responseModalities": ["TEXT", "IMAGE"],
                             "imageConfig": {"aspectRatio": "16:9", "imageSize": "2K"}},
    }
    assert response.image is not None and response.image.data == OUT
    assert response.image.mime_type == "image/png"
    assert response.text == "Here is a nano banana."
    assert response.id == "resp-1" and response.request_id == "g1"
    assert response.model == "gemini-2.5-flash-image"
    assert response.usage.images == 1 and response.usage.input_tokens == 12
    assert response.usage.output_tokens == 1290
    assert response.metadata == {"gemini": {"model_version": "gemini-2.5-flash-image",
                                            "response_id": "resp-1",
                                            "finish_reasons": ["STOP"]}, "job": 3}
    # catalog prices: 12 input tokens at $0.30/M, 1290 image tokens at $30/M
    assert response.usage.total_cost == pytest.approx(12 * 0.3e-6 + 1290 * 30e-6)


def test_default_model_and_generation_options() -> None:
    eng, rec = setup(model=None)
    allm.generate_image(eng, "x", n=2, api_key=KEY,
                        options={"generationConfig": {"temperature": 0.4}})
    assert str(rec.requests[0].url).endswith(f"/models/{DEFAULT_IMAGE_MODEL}:generateContent")
    assert body_of(rec)["generationConfig"] == {"temperature": 0.4, "candidateCount": 2,
                                                "responseModalities": ["TEXT", "IMAGE"]}


def test_edit_sends_prompt_then_every_image_inline() -> None:
    first, second = make_png(5, 5), JPEG
    eng, rec = setup()
    allm.edit_image(eng, [Image.from_bytes(first), Image.from_bytes(second)], "swap the hats",
                    size="1792x1024", api_key=KEY)
    assert body_of(rec)["contents"] == [{"role": "user", "parts": [
        {"text": "swap the hats"},
        {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(first).decode()}},
        {"inlineData": {"mimeType": "image/jpeg", "data": base64.b64encode(second).decode()}},
    ]}]
    assert body_of(rec)["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9"}


def test_gs_uris_go_as_file_data() -> None:
    eng, rec = setup()
    allm.edit_image(eng, Image.from_url("gs://bucket/cat.png", "image/png"), "x", api_key=KEY)
    assert body_of(rec)["contents"][0]["parts"][1] == {
        "fileData": {"fileUri": "gs://bucket/cat.png", "mimeType": "image/png"}}


@pytest.mark.parametrize(("size", "config"), [
    ("1024x1024", {"aspectRatio": "1:1"}), ("1792x1024", {"aspectRatio": "16:9"}),
    ("1024x1536", {"aspectRatio": "2:3"}), ("2520x1080", {"aspectRatio": "21:9"}),
    ("9:16", {"aspectRatio": "9:16"}), ("4k", {"imageSize": "4K"}), ("auto", {}),
])
def test_sizes_map_to_image_config(size: str, config: dict[str, str]) -> None:
    assert aspect_ratio(size) == config


@pytest.mark.parametrize("size", ["1000x300", "7:5", "big", "0x10"])
def test_unmappable_sizes_fail_before_any_request(size: str) -> None:
    eng, rec = setup()
    with pytest.raises(ValidationError) as info:
        allm.generate_image(eng, "x", size=size, api_key=KEY)
    assert info.value.errors == [("size", "unsupported_value")] and rec.calls == 0


def test_refusals_before_any_request() -> None:
    eng, rec = setup()
    with pytest.raises(ImageAdapterError) as info:
        allm.image_variations(eng, Image.from_bytes(make_png()), api_key=KEY, preflight=False)
    assert info.value.reason == "unsupported_operation"
    with pytest.raises(ImageAdapterError) as info:
        allm.edit_image(eng, Image.from_bytes(make_png()), "x", mask=Image.from_bytes(make_png()),
                        api_key=KEY)
    assert info.value.reason == "unsupported_feature"
    with pytest.raises(ImageAdapterError) as info:
        allm.edit_image(eng, Image.from_url("https://example.com/cat.png"), "x", api_key=KEY)
    assert info.value.reason == "unsupported_feature"
    assert info.value.metadata == {"path": "input_images.0"}
    for data, why in ((GIF, "unsupported_image_format"), (b"plain text", "missing_mime_type"),
                      (make_png(pad=21 * 1024 * 1024), "image_too_large")):
        with pytest.raises(ValidationError) as vinfo:
            allm.edit_image(eng, [Image.from_bytes(make_png()), Image.from_bytes(data)], "x",
                            api_key=KEY)
        assert vinfo.value.errors == [("input_images.1", why)]
    assert rec.calls == 0


def test_images_from_every_candidate_and_no_thought_drafts() -> None:
    draft = base64.b64encode(make_png(1, 1)).decode()
    body = answer(
        [{"text": "planning", "thought": True},
         {"inlineData": {"mimeType": "image/png", "data": draft}, "thought": True},
         {"inlineData": {"mimeType": "image/png", "data": B64}, "thoughtSignature": "c2ln"}],
        [{"inlineData": {"mimeType": "image/jpeg",
                         "data": base64.urlsafe_b64encode(JPEG).decode().rstrip("=")}}],
    )
    eng, _ = setup(json_response(body))
    response = allm.generate_image(eng, "x", n=2, api_key=KEY)
    assert [i.data for i in response.images] == [OUT, JPEG]
    assert [i.mime_type for i in response.images] == ["image/png", "image/jpeg"]
    assert response.text is None and response.usage.images == 2


@pytest.mark.parametrize(("body", "reason"), [
    ({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {}},
     "content_filter"),
    ({"candidates": [{"finishReason": "IMAGE_SAFETY", "index": 0}]}, "content_filter"),
    (answer([{"text": "I can only describe it: a banana."}]), "malformed_response"),
    ({"error": {"code": 503, "status": "UNAVAILABLE", "message": "overloaded"}},
     "provider_unavailable"),
])
def test_no_image_answers(body: dict[str, Any], reason: str) -> None:
    eng, rec = setup(json_response(body))
    with pytest.raises(ImageAdapterError) as info:
        allm.generate_image(eng, "x", api_key=KEY, retry=False)
    assert info.value.reason == reason and rec.calls == 1
    if reason == "malformed_response":
        assert "a banana" in info.value.message


def test_http_errors_use_the_gemini_table() -> None:
    exhausted = json_response({"error": {
        "code": 429, "status": "RESOURCE_EXHAUSTED", "message": "Quota exceeded",
        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0s"}]}},
        429)
    eng, rec = setup(exhausted, json_response(IMAGE_ANSWER))
    assert len(allm.generate_image(eng, "x", api_key=KEY).images) == 1 and rec.calls == 2
    bad_key = json_response({"error": {
        "code": 400, "status": "INVALID_ARGUMENT", "message": "API key not valid.",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                     "reason": "API_KEY_INVALID"}]}}, 400)
    eng, rec = setup(bad_key)
    with pytest.raises(ImageAdapterError) as info:
        allm.generate_image(eng, "x", api_key=KEY)
    assert info.value.reason == "authentication_failed" and info.value.status == 400
    assert rec.calls == 1 and KEY not in repr(info.value)


def test_decode_directly() -> None:
    adapter = GeminiImages()
    req = ImageRequest(prompt="x", model="m")
    out = adapter.decode(req, 200, {}, json.dumps(IMAGE_ANSWER).encode(), request_id="r")
    assert out.request_id == "r" and out.image is not None and out.image.data == OUT
    with pytest.raises(ImageAdapterError) as info:
        adapter.decode(req, 200, {}, b"not json")
    assert info.value.reason == "malformed_response"


@pytest.mark.anyio
async def test_async_generate_and_edit() -> None:
    eng, rec = setup()
    response = await allm.agenerate_image(eng, "x", api_key=KEY)
    assert response.image is not None and response.image.data == OUT
    await allm.aedit_image(eng, Image.from_bytes(make_png()), "y", api_key=KEY)
    assert rec.calls == 2 and len(body_of(rec, 1)["contents"][0]["parts"]) == 2
