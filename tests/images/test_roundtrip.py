"""Generated images survive allm's serializer byte for byte, and images a chat model
produced are found in its answer (`allm.imaging.images_in`), checked against the real
OpenAI Responses image-generation recording in ../shared/fixtures."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

import allm
from allm.image import Image
from allm.image_types import ImageResponse
from allm.imaging import images_in
from allm.providers import FakeImages, GeminiImages, OpenAIImages

from ._helpers import JPEG, KEY, Recorder, json_response, load_fixture, make_png

RECORDING = "openai/pydantic-ai__test_openai_responses_image_generation_jpeg.json"


def save_roundtrip(response: ImageResponse, tmp_path: Path) -> list[bytes]:
    """dumps -> loads -> save() each image; the bytes written."""
    blob = allm.dumps(response)
    json.loads(blob)  # plain JSON text
    loaded = allm.loads(blob)
    assert isinstance(loaded, ImageResponse) and loaded == response
    out = []
    for i, image in enumerate(loaded.images):
        path = tmp_path / f"out_{i}.bin"
        image.save(path)
        out.append(path.read_bytes())
    return out


def test_openai_images_roundtrip(tmp_path: Path) -> None:
    sent = make_png(6, 6)
    body = {"created": 1, "data": [{"b64_json": base64.b64encode(sent).decode(),
                                    "revised_prompt": "six by six"}],
            "usage": {"input_tokens": 7, "output_tokens": 9, "total_tokens": 16,
                      "input_tokens_details": {"text_tokens": 7, "image_tokens": 0}}}
    rec = Recorder(json_response(body))
    eng = allm.engine(image_adapter=OpenAIImages(model="gpt-image-1", http_client=rec.client()))
    response = allm.generate_image(eng, "x", api_key=KEY, metadata={"order": 1})
    assert save_roundtrip(response, tmp_path) == [sent]
    loaded = allm.loads(allm.dumps(response))
    assert loaded.images[0].revised_prompt == "six by six"
    assert loaded.usage.total_cost == response.usage.total_cost
    assert KEY not in allm.dumps(response)


def test_gemini_images_roundtrip(tmp_path: Path) -> None:
    sent = [make_png(3, 5), JPEG]
    parts = [{"inlineData": {"mimeType": m, "data": base64.b64encode(b).decode()}}
             for m, b in zip(("image/png", "image/jpeg"), sent, strict=True)]
    body = {"candidates": [{"content": {"role": "model", "parts": [{"text": "two"}, *parts]},
                            "finishReason": "STOP"}], "modelVersion": "gemini-2.5-flash-image"}
    rec = Recorder(json_response(body))
    eng = allm.engine(image_adapter=GeminiImages(http_client=rec.client()))
    response = allm.generate_image(eng, "x", api_key=KEY)
    assert save_roundtrip(response, tmp_path) == sent
    assert allm.loads(allm.dumps(response)).text == "two"


def test_fake_images_roundtrip(tmp_path: Path) -> None:
    sent = make_png(2, 9)
    eng = allm.engine(image_adapter=FakeImages([("ok", [Image.from_bytes(sent)])]))
    response = allm.generate_image(eng, "x")
    assert save_roundtrip(response, tmp_path) == [sent]


def test_url_images_roundtrip_but_cannot_be_saved(tmp_path: Path) -> None:
    url = Image.from_url("https://example.com/generated.png", "image/png")
    eng = allm.engine(image_adapter=FakeImages([("ok", [url])]))
    loaded = allm.loads(allm.dumps(allm.generate_image(eng, "x")))
    assert loaded.images[0].url == "https://example.com/generated.png"
    with pytest.raises(allm.ValidationError) as info:
        loaded.images[0].save(tmp_path / "nope.png")
    assert info.value.errors == [("image", "remote_source")]


# -- images a chat model produced -------------------------------------------------------------


def _recorded() -> tuple[dict[str, Any], dict[str, Any]]:
    interaction = load_fixture(RECORDING)["interactions"][0]
    return interaction, json.loads(interaction["response"]["body"])


def test_openai_responses_image_generation_recording(tmp_path: Path) -> None:
    interaction, body = _recorded()
    call = next(item for item in body["output"] if item["type"] == "image_generation_call")
    expected = base64.b64decode(call["result"])
    rec = Recorder(json_response(body, interaction["response"]["status"]))
    eng = allm.engine("openai:gpt-5", http_client=rec.client())
    response = allm.generate(eng, "Generate an image of axolotl.", api_key=KEY,
                             options={"tools": [{"type": "image_generation",
                                                 "output_format": "jpeg"}]})
    sent = json.loads(rec.requests[0].content)
    assert sent["tools"] == [{"type": "image_generation", "output_format": "jpeg"}]
    images = images_in(response)
    assert len(images) == 1
    image = images[0]
    assert image.data == expected and image.mime_type == "image/jpeg"
    assert image.revised_prompt == call["revised_prompt"]
    assert image.metadata["openai"]["size"] == "1536x1024"
    # the whole answer (image inside its metadata) survives dumps/loads, then save()
    loaded = allm.loads(allm.dumps(response))
    again = images_in(loaded)
    again[0].save(tmp_path / "axolotl.jpg")
    assert (tmp_path / "axolotl.jpg").read_bytes() == expected


def test_gemini_chat_answer_with_inline_image() -> None:
    sent = make_png(7, 7)
    body = {"candidates": [{"content": {"role": "model", "parts": [
        {"text": "Here you are"},
        {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(sent).decode()}}]},
        "finishReason": "STOP"}], "modelVersion": "gemini-2.5-flash-image"}
    rec = Recorder(json_response(body))
    eng = allm.engine("gemini:gemini-2.5-flash-image", http_client=rec.client())
    response = allm.generate(eng, "draw", api_key=KEY)
    assert response.output_text == "Here you are"
    assert [i.data for i in images_in(response)] == [sent]
    assert [i.data for i in images_in(allm.loads(allm.dumps(response)).message)] == [sent]


def test_images_in_without_images() -> None:
    assert images_in(object()) == ()
    assert images_in(allm.assistant("plain")) == ()
