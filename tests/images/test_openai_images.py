"""`OpenAIImages`: the Images API wire shapes (JSON generations, multipart edits and
variations), per-model rules, upload checks, decoding and errors, end to end through
the facade over an httpx2.MockTransport.

Response bodies are the documented examples of the API reference
(https://platform.openai.com/docs/api-reference/images): there is no public
recording of the Images API in ../shared/fixtures."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx2
import pytest

import allm
from allm.errors import EngineError, ImageAdapterError, ValidationError
from allm.image import Image
from allm.image_types import ImageRequest
from allm.providers import OpenAIImages
from allm.providers.base import Call, ImageAdapter
from allm.providers.openai.images_codec import OpenAIImagesCodec, encode_multipart, model_family

from ._helpers import GIF, JPEG, KEY, Recorder, json_response, make_png, multipart, part_name

FAST = {"base_delay": 0.0, "jitter": 0.0}
PNG_OUT = make_png(2, 2)

# API reference, "The image generation response" (gpt-image-1 reports token usage).
GPT_IMAGE_BODY = {
    "created": 1713833628,
    "data": [{"b64_json": base64.b64encode(PNG_OUT).decode()}],
    "background": "opaque", "output_format": "png", "quality": "high", "size": "1024x1024",
    "usage": {"total_tokens": 100, "input_tokens": 50, "output_tokens": 50,
              "input_tokens_details": {"text_tokens": 10, "image_tokens": 40}},
}
DALLE3_URL_BODY = {
    "created": 1713833628,
    "data": [{"url": "https://oaidalleapiprodscus.blob.core.windows.net/private/img.png",
              "revised_prompt": "A photorealistic red fox sitting in fresh snow."}],
}
CONTENT_POLICY = {"error": {"code": "content_policy_violation", "type": "invalid_request_error",
                            "param": None, "message": "Your request was rejected as a result "
                            "of our safety system."}}


def setup(*responses: Any, model: str | None = "gpt-image-1") -> tuple[allm.Engine, Recorder]:
    rec = Recorder(*(responses or (json_response(GPT_IMAGE_BODY),)))
    adapter = OpenAIImages(model=model, http_client=rec.client(),
                           async_http_client=rec.async_client(), organization="org-1")
    return allm.engine(image_adapter=adapter, retry=FAST), rec


def body_of(rec: Recorder, i: int = 0) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(rec.requests[i].content)
    return data


def test_is_an_image_adapter() -> None:
    adapter = OpenAIImages()
    assert isinstance(adapter, ImageAdapter)
    assert adapter.provider == "openai" and adapter.base_url == "https://api.openai.com/v1"
    assert "sk-" not in repr(adapter)
    assert [model_family(m) for m in ("gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5",
                                      "chatgpt-image-latest", "dall-e-3", "dall-e-2", "x", None)] \
        == ["gpt-image"] * 4 + ["dall-e-3", "dall-e-2", None, None]


# -- generations (JSON) ------------------------------------------------------------------


def test_generate_gpt_image_json_body() -> None:
    eng, rec = setup()
    response = allm.generate_image(
        eng, "a red fox", size="1536x1024", quality="high", background="transparent",
        output_format="webp", output_compression=70, style="vivid", n=2,
        options={"moderation": "low", "user": "user-1"}, api_key=KEY, request_id="r1")
    request = rec.requests[0]
    assert request.method == "POST" and str(request.url) == "https://api.openai.com/v1/images/generations"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["openai-organization"] == "org-1"
    # style is dall-e-3 only and response_format is not accepted by GPT image models
    assert body_of(rec) == {"prompt": "a red fox", "model": "gpt-image-1", "n": 2,
                            "size": "1536x1024", "quality": "high", "background": "transparent",
                            "output_format": "webp", "output_compression": 70,
                            "moderation": "low", "user": "user-1"}
    image = response.image
    assert image is not None and image.data == PNG_OUT and image.mime_type == "image/png"
    assert response.request_id == "r1" and response.model == "gpt-image-1"
    assert response.usage.images == 1 and response.usage.input_tokens == 50
    assert response.usage.output_tokens == 50 and response.usage.size == "1024x1024"
    assert response.usage.quality == "high"
    # the catalog prices gpt-image-1: 50 text tokens at $5/M + 50 image tokens at $40/M
    assert response.usage.total_cost == pytest.approx(50 * 5e-6 + 50 * 40e-6)
    assert response.metadata["openai"]["usage_details"] == {"text_tokens": 10, "image_tokens": 40}


def test_generate_dalle3_fields_and_url_response() -> None:
    eng, rec = setup(json_response(DALLE3_URL_BODY), model="dall-e-3")
    response = allm.generate_image(eng, "fox", quality="hd", style="natural", size="1792x1024",
                                   background="transparent", response_format="url", api_key=KEY)
    assert body_of(rec) == {"prompt": "fox", "model": "dall-e-3", "n": 1, "size": "1792x1024",
                            "quality": "hd", "style": "natural", "response_format": "url"}
    image = response.image
    assert image is not None and image.url == DALLE3_URL_BODY["data"][0]["url"]  # type: ignore[index]
    assert image.revised_prompt == "A photorealistic red fox sitting in fresh snow."
    assert response.usage.images == 1
    # dall-e-3 is priced per image: hd 1792x1024 is $0.12
    assert response.usage.total_cost == pytest.approx(0.12)


def test_generate_dalle_binary_asks_for_b64_json() -> None:
    eng, rec = setup(json_response(GPT_IMAGE_BODY), model="dall-e-2")
    allm.generate_image(eng, "fox", size="256x256", api_key=KEY)
    assert body_of(rec) == {"prompt": "fox", "model": "dall-e-2", "n": 1, "size": "256x256",
                            "response_format": "b64_json"}


@pytest.mark.parametrize(("model", "opts", "field"), [
    ("dall-e-3", {"n": 2}, "n"),
    ("dall-e-3", {"size": "512x512"}, "size"),
    ("dall-e-3", {"quality": "high"}, "quality"),
    ("dall-e-2", {"size": "1792x1024"}, "size"),
    ("gpt-image-1", {"response_format": "url"}, "response_format"),
    ("gpt-image-1", {"quality": "hd"}, "quality"),
    ("gpt-image-1", {"output_format": "gif"}, "output_format"),
    ("gpt-image-1", {"output_compression": 50}, "output_compression"),  # png has none
    ("gpt-image-1", {"output_compression": 101, "output_format": "jpeg"}, "output_compression"),
    ("gpt-image-1", {"n": 11}, "n"),
])
def test_per_model_rules_fail_before_any_request(model: str, opts: dict[str, Any], field: str) -> None:
    eng, rec = setup(model=model)
    with pytest.raises(ValidationError) as info:
        allm.generate_image(eng, "x", api_key=KEY, **opts)
    assert info.value.errors[0][0] == field and info.value.provider == "openai"
    assert rec.calls == 0


def test_unknown_models_get_every_field() -> None:
    eng, rec = setup(model="my-local-diffusion")
    allm.generate_image(eng, "x", style="vivid", background="opaque", quality="ultra", api_key=KEY)
    assert body_of(rec) == {"prompt": "x", "model": "my-local-diffusion", "n": 1,
                            "quality": "ultra", "style": "vivid", "background": "opaque"}


# -- edits and variations (multipart) -------------------------------------------------------


def test_edit_gpt_image_multipart_with_several_images_and_mask() -> None:
    first, second, mask = make_png(8, 8), JPEG, make_png(8, 8)
    eng, rec = setup()
    response = allm.edit_image(eng, [Image.from_bytes(first), Image.from_bytes(second)],
                               "put them together", mask=Image.from_bytes(mask),
                               size="1024x1024", quality="low", api_key=KEY)
    request = rec.requests[0]
    assert str(request.url) == "https://api.openai.com/v1/images/edits"
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    parts = multipart(request)
    fields = {part_name(p): p.get_content() for p in parts if p.get_filename() is None}
    assert fields == {"prompt": "put them together", "model": "gpt-image-1", "n": "1",
                      "size": "1024x1024", "quality": "low"}
    files = [(part_name(p), p.get_filename(), p.get_content_type(), p.get_payload(decode=True))
             for p in parts if p.get_filename() is not None]
    assert files == [("image[]", "image_0.png", "image/png", first),
                     ("image[]", "image_1.jpg", "image/jpeg", second),
                     ("mask", "mask.png", "image/png", mask)]
    assert response.image is not None and response.image.data == PNG_OUT


def test_edit_dalle2_single_image_field_and_b64() -> None:
    square = make_png(16, 16)
    eng, rec = setup(model="dall-e-2")
    allm.edit_image(eng, Image.from_bytes(square), "a hat", size="512x512", api_key=KEY)
    parts = multipart(rec.requests[0])
    assert [(part_name(p), p.get_filename()) for p in parts] == [
        ("prompt", None), ("model", None), ("n", None), ("size", None),
        ("response_format", None), ("image", "image.png")]
    assert parts[-1].get_payload(decode=True) == square
    assert parts[4].get_content() == "b64_json"


def test_variation_dalle2_multipart_without_prompt() -> None:
    square = make_png(8, 8)
    eng, rec = setup(model="dall-e-2")
    allm.image_variations(eng, Image.from_bytes(square), n=3, response_format="url", api_key=KEY)
    request = rec.requests[0]
    assert str(request.url) == "https://api.openai.com/v1/images/variations"
    parts = multipart(request)
    assert {part_name(p): p.get_content() for p in parts if p.get_filename() is None} == {
        "model": "dall-e-2", "n": "3", "response_format": "url"}
    assert [p.get_filename() for p in parts if p.get_filename()] == ["image.png"]


@pytest.mark.parametrize("model", ["gpt-image-1", "dall-e-3", "gpt-image-1-mini"])
def test_variations_are_dalle2_only(model: str) -> None:
    eng, rec = setup(model=model)
    with pytest.raises((ImageAdapterError, ValidationError)) as info:
        allm.image_variations(eng, Image.from_bytes(make_png(8, 8)), api_key=KEY)
    assert rec.calls == 0
    if isinstance(info.value, ImageAdapterError):
        assert info.value.reason == "unsupported_operation"
        assert info.value.metadata == {"operation": "variation", "model": model}
    else:  # the catalog knows the model and refuses first
        assert isinstance(info.value, ValidationError)
        assert info.value.errors == [("operation", "unsupported_image_operation")]
    # without the catalog pre-flight the adapter's own gate answers
    with pytest.raises(ImageAdapterError) as adapter_info:
        allm.image_variations(eng, Image.from_bytes(make_png(8, 8)), api_key=KEY,
                              preflight=False)
    assert adapter_info.value.reason == "unsupported_operation" and rec.calls == 0


def test_dalle3_cannot_edit() -> None:
    eng, rec = setup(model="dall-e-3")
    with pytest.raises(ImageAdapterError) as info:
        allm.edit_image(eng, Image.from_bytes(make_png()), "x", api_key=KEY, preflight=False)
    assert info.value.reason == "unsupported_operation" and rec.calls == 0


@pytest.mark.parametrize(("model", "images", "mask", "path", "why"), [
    ("dall-e-2", [make_png(8, 4)], None, "input_images.0", "not_square"),
    ("dall-e-2", [JPEG], None, "input_images.0", "unsupported_image_format"),
    ("dall-e-2", [make_png(8, 8, pad=5 * 1024 * 1024)], None, "input_images.0", "image_too_large"),
    ("dall-e-2", [make_png(8, 8), make_png(8, 8)], None, "input_images", "invalid_count"),
    ("gpt-image-1", [make_png(), GIF], None, "input_images.1", "unsupported_image_format"),
    ("gpt-image-1", [make_png()] * 17, None, "input_images", "invalid_count"),
    ("gpt-image-1", [make_png()], JPEG, "mask", "unsupported_image_format"),
    ("gpt-image-1", [make_png()], make_png(pad=5 * 1024 * 1024), "mask", "image_too_large"),
    ("gpt-image-1", [b"just some text, not an image"], None, "input_images.0", "missing_mime_type"),
])
def test_upload_checks_name_the_image(model: str, images: list[bytes], mask: bytes | None,
                                      path: str, why: str) -> None:
    eng, rec = setup(model=model)
    with pytest.raises(ValidationError) as info:
        allm.edit_image(eng, [Image.from_bytes(b) for b in images], "x",
                        mask=Image.from_bytes(mask) if mask is not None else None, api_key=KEY)
    assert info.value.errors == [(path, why)]
    assert rec.calls == 0


def test_url_input_images_are_refused_before_any_request() -> None:
    eng, rec = setup()
    with pytest.raises(ValidationError) as info:
        allm.edit_image(eng, Image.from_url("https://example.com/a.png"), "x", api_key=KEY)
    assert info.value.errors == [("input_images.0", "unsupported_feature")] and rec.calls == 0


def test_missing_key_after_checks_before_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    eng, rec = setup()
    with pytest.raises(EngineError) as info:
        allm.generate_image(eng, "x")
    assert info.value.reason == "missing_key" and rec.calls == 0


# -- decoding and errors ------------------------------------------------------------------


def test_decode_edge_cases() -> None:
    codec = OpenAIImagesCodec(base_url="https://api.openai.com/v1")
    req = ImageRequest(prompt="x", model="gpt-image-1", output_format="jpeg", metadata={"k": 1})
    jpeg_body = {"data": [{"b64_json": base64.b64encode(JPEG).decode()}], "output_format": "jpeg"}
    out = codec.decode(req, 200, {"x-request-id": "req_9"}, json.dumps(jpeg_body).encode())
    assert out.image is not None and out.image.mime_type == "image/jpeg" and out.image.data == JPEG
    assert out.metadata == {"openai": {"output_format": "jpeg", "request_id": "req_9"}, "k": 1}
    cases: list[tuple[bytes, str]] = [
        (b'{"created": 1, "data": []}', "content_filter"),
        (b"<html>oops</html>", "malformed_response"),
        (b'{"created": 1}', "malformed_response"),
        (b'{"data": [{"b64_json": "@@not base64@@"}]}', "malformed_response"),
        (b'{"data": [{"revised_prompt": "no image"}]}', "malformed_response"),
    ]
    for body, reason in cases:
        with pytest.raises(ImageAdapterError) as info:
            codec.decode(req, 200, {}, body)
        assert info.value.reason == reason and info.value.status == 200


def test_rate_limit_is_retried_with_retry_after() -> None:
    limited = json_response({"error": {"message": "Rate limit reached", "type": "requests",
                                       "code": "rate_limit_exceeded"}}, 429,
                            {"retry-after-ms": "0"})
    eng, rec = setup(limited, json_response(GPT_IMAGE_BODY))
    delays: list[float] = []
    response = allm.generate_image(eng, "x", api_key=KEY,
                                   on_retry=lambda a, d, e: delays.append(d))
    assert rec.calls == 2 and len(response.images) == 1 and delays == [0.0]


def test_errors_map_through_the_openai_table() -> None:
    eng, rec = setup(json_response(CONTENT_POLICY, 400))
    with pytest.raises(ImageAdapterError) as info:
        allm.generate_image(eng, "x", api_key=KEY)
    err = info.value
    assert err.reason == "content_filter" and err.status == 400 and rec.calls == 1
    assert err.metadata["code"] == "content_policy_violation" and err.provider == "openai"
    eng, rec = setup(json_response({"error": {"message": f"Incorrect API key provided: {KEY}",
                                              "type": "invalid_request_error",
                                              "code": "invalid_api_key"}}, 401))
    with pytest.raises(ImageAdapterError) as info:
        allm.generate_image(eng, "x", api_key=KEY)
    assert info.value.reason == "authentication_failed" and rec.calls == 1
    # the echoed key is scrubbed from message, body and serialized form
    assert info.value.message == "Incorrect API key provided: [redacted]"
    assert KEY not in repr(info.value) and KEY not in allm.dumps(info.value)
    eng, rec = setup(json_response({"error": {"message": "boom", "type": "server_error"}}, 500))
    with pytest.raises(ImageAdapterError) as info:
        allm.generate_image(eng, "x", api_key=KEY)
    assert info.value.reason == "provider_unavailable" and rec.calls == 3  # default 3 attempts


def test_transport_failures_are_image_errors_and_retried() -> None:
    def broken(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError(f"cannot connect (key {KEY})")

    eng, rec = setup(broken, json_response(GPT_IMAGE_BODY))
    assert len(allm.generate_image(eng, "x", api_key=KEY).images) == 1 and rec.calls == 2
    eng, rec = setup(broken)
    with pytest.raises(ImageAdapterError) as info:
        allm.generate_image(eng, "x", api_key=KEY, retry=False)
    assert info.value.reason == "network_error" and KEY not in str(info.value)
    assert KEY not in repr(info.value)


def test_direct_use_applies_the_adapter_retry_policy() -> None:
    limited = json_response({"error": {"message": "slow down"}}, 429, {"retry-after": "0"})
    rec = Recorder(limited, json_response(GPT_IMAGE_BODY))
    adapter = OpenAIImages(model="gpt-image-1", http_client=rec.client(), retry=FAST)
    out = adapter.generate(ImageRequest(prompt="x"), Call(api_key=KEY))
    assert rec.calls == 2 and out.model == "gpt-image-1"


@pytest.mark.anyio
async def test_async_generate_and_edit() -> None:
    eng, rec = setup(json_response(GPT_IMAGE_BODY))
    response = await allm.agenerate_image(eng, "x", api_key=KEY)
    assert response.image is not None and response.image.data == PNG_OUT
    await allm.aedit_image(eng, Image.from_bytes(make_png()), "y", api_key=KEY)
    assert [str(r.url).rsplit("/", 1)[-1] for r in rec.requests] == ["generations", "edits"]


def test_encode_multipart_escapes_names() -> None:
    body, ctype = encode_multipart([('a"b', "v\u00e9")], [("f", 'x"\r\n.png', "image/png", b"\x00\x01")], "BOUND")
    assert ctype == "multipart/form-data; boundary=BOUND"
    assert body == (b'--BOUND\r\nContent-Disposition: form-data; name="a%22b"\r\n\r\nv\xc3\xa9\r\n'
                    b'--BOUND\r\nContent-Disposition: form-data; name="f"; filename="x%22%0D%0A.png"'
                    b"\r\nContent-Type: image/png\r\n\r\n\x00\x01\r\n--BOUND--\r\n")


# -- URL input images (opt-in download) ------------------------------------------------------


def download_setup(image: httpx2.Response, **kw: Any) -> tuple[allm.Engine, Recorder]:
    def route(request: httpx2.Request) -> httpx2.Response:
        return image if request.method == "GET" else json_response(GPT_IMAGE_BODY)

    rec = Recorder(route)
    adapter = OpenAIImages(model="gpt-image-1", http_client=rec.client(),
                           async_http_client=rec.async_client(), fetch_image_urls=True, **kw)
    return allm.engine(image_adapter=adapter, retry=FAST), rec


def test_url_inputs_are_downloaded_when_asked() -> None:
    png = make_png(8, 8)
    eng, rec = download_setup(httpx2.Response(200, content=png,
                                              headers={"content-type": "image/png"}))
    allm.edit_image(eng, [Image.from_bytes(JPEG), Image.from_url("https://cdn.example/a.png")],
                    "x", mask=Image.from_url("https://cdn.example/m.png"), api_key=KEY)
    assert [(r.method, str(r.url)) for r in rec.requests] == [
        ("GET", "https://cdn.example/a.png"), ("GET", "https://cdn.example/m.png"),
        ("POST", "https://api.openai.com/v1/images/edits")]
    assert "authorization" not in rec.requests[0].headers  # the key goes to OpenAI only
    files = [(part_name(p), p.get_payload(decode=True)) for p in multipart(rec.requests[2])
             if p.get_filename()]
    assert files == [("image[]", JPEG), ("image[]", png), ("mask", png)]


@pytest.mark.parametrize(("response", "why"), [
    (httpx2.Response(404, content=b"missing"), "status"),
    (httpx2.Response(200, content=b"<html/>", headers={"content-type": "text/html"}), "content_type"),
    (httpx2.Response(200, content=make_png(pad=26 * 1024 * 1024),
                     headers={"content-type": "image/png"}), "size"),
])
def test_bad_downloads_are_named(response: httpx2.Response, why: str) -> None:
    eng, rec = download_setup(response)
    with pytest.raises(ImageAdapterError) as info:
        allm.edit_image(eng, Image.from_url("https://cdn.example/a.png"), "x", api_key=KEY)
    assert info.value.reason == "invalid_request" and why in info.value.metadata
    assert info.value.metadata["path"] == "input_images.0"
    assert [r.method for r in rec.requests] == ["GET"]  # never sent to OpenAI


def test_downloaded_bytes_get_the_upload_checks_and_bad_requests_never_download() -> None:
    eng, rec = download_setup(httpx2.Response(200, content=b"GIF89a not really",
                                              headers={"content-type": "image/gif"}))
    with pytest.raises(ValidationError) as info:
        allm.edit_image(eng, Image.from_url("https://cdn.example/a.gif"), "x", api_key=KEY)
    assert info.value.errors == [("input_images.0", "unsupported_image_format")]
    assert [r.method for r in rec.requests] == ["GET"]
    with pytest.raises(ValidationError):  # bad parameters fail before the download
        allm.edit_image(eng, Image.from_url("https://cdn.example/a.png"), "x",
                        output_compression=5, api_key=KEY)
    assert len(rec.requests) == 1


@pytest.mark.anyio
async def test_async_download() -> None:
    png = make_png(8, 8)
    eng, rec = download_setup(httpx2.Response(200, content=png,
                                              headers={"content-type": "image/png"}))
    await allm.aedit_image(eng, Image.from_url("https://cdn.example/a.png"), "x", api_key=KEY)
    assert [r.method for r in rec.requests] == ["GET", "POST"]
