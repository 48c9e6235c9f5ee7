"""Input images of the image adapters (edits, variations): a too-large image, a lying
file extension and an unsupported MIME type each fail before any request, on every
image provider; a PNG named .jpg is uploaded as the PNG it is."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

import allm
from allm.errors import ValidationError
from allm.image import Image

from ._helpers import BMP, KEY, Recorder, json_response, make_png, multipart

OPENAI_OK = {"created": 1, "data": [{"b64_json": base64.b64encode(make_png()).decode()}]}
GEMINI_OK = {"candidates": [{"content": {"parts": [{"inlineData": {
    "mimeType": "image/png", "data": base64.b64encode(make_png()).decode()}}]},
    "finishReason": "STOP"}]}

# (adapter, model, per-image limit in MB)
ADAPTERS = {
    "openai-dall-e-2": ("OpenAIImages", "dall-e-2", 4),
    "openai-gpt-image": ("OpenAIImages", "gpt-image-1", 50),
    "gemini": ("GeminiImages", "gemini-2.5-flash-image", 20),
}


def setup(name: str) -> tuple[allm.Engine, Recorder]:
    cls, model, _ = ADAPTERS[name]
    rec = Recorder(json_response(GEMINI_OK if cls == "GeminiImages" else OPENAI_OK))
    adapter: Any = getattr(allm.providers, cls)(model=model, http_client=rec.client())
    return allm.engine(image_adapter=adapter, retry=False), rec


def edit(name: str, image: Image) -> tuple[Recorder, BaseException | None]:
    eng, rec = setup(name)
    try:
        allm.edit_image(eng, image, "make it blue", api_key=KEY)
    except ValidationError as exc:
        return rec, exc
    return rec, None


@pytest.mark.parametrize("name", ADAPTERS)
def test_over_the_limit_fails_before_any_request(name: str) -> None:
    limit = ADAPTERS[name][2]
    size = 30 if limit < 30 else limit + 1  # 30 MB where that is over the limit
    rec, exc = edit(name, Image.from_bytes(make_png(8, 8, pad=size * 1024 * 1024)))
    assert isinstance(exc, ValidationError) and rec.calls == 0
    assert exc.errors == [("input_images.0", "image_too_large")]
    assert f"{size}.0 MB" in exc.message


def test_a_30_mb_image_is_within_the_gpt_image_limit() -> None:
    rec, exc = edit("openai-gpt-image", Image.from_bytes(make_png(8, 8, pad=30 * 1024 * 1024)))
    assert exc is None and rec.calls == 1  # OpenAI documents 50 MB for GPT image models


@pytest.mark.parametrize("name", ADAPTERS)
def test_unsupported_mime_fails_before_any_request(name: str) -> None:
    rec, exc = edit(name, Image.from_bytes(BMP))
    assert isinstance(exc, ValidationError) and rec.calls == 0
    assert exc.errors == [("input_images.0", "unsupported_image_format")]


@pytest.mark.parametrize("name", ADAPTERS)
def test_text_named_png_fails_before_any_request(name: str, tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    path.write_text("not an image at all")
    rec, exc = edit(name, Image.from_path(path))
    assert isinstance(exc, ValidationError) and rec.calls == 0
    assert exc.errors == [("input_images.0", "missing_mime_type")]


@pytest.mark.parametrize("name", ADAPTERS)
def test_png_named_jpg_is_uploaded_as_png(name: str, tmp_path: Path) -> None:
    png = make_png(8, 8)
    path = tmp_path / "photo.jpg"
    path.write_bytes(png)
    rec, exc = edit(name, Image.from_path(path))
    assert exc is None and rec.calls == 1
    request = rec.requests[0]
    if name == "gemini":
        inline = json.loads(request.content)["contents"][0]["parts"][1]["inlineData"]
        assert inline == {"mimeType": "image/png", "data": base64.b64encode(png).decode()}
    else:
        upload = [p for p in multipart(request) if p.get_filename()][0]
        assert upload.get_content_type() == "image/png" and upload.get_filename() == "image.png"
        assert upload.get_payload(decode=True) == png
