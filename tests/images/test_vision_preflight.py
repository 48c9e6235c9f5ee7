"""Vision input: one `allm.ImagePart` (path, bytes, URL) goes to OpenAI Chat
Completions, OpenAI Responses, Anthropic and Gemini, and each provider's MIME list
and size limit is checked before any request, with a `ValidationError` naming the
message and part. The MockTransport handler must never be called for a rejected
image; an accepted one must reach the wire with the sniffed MIME type."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

import allm
from allm.errors import AdapterError, ValidationError
from allm.messages import ImagePart, TextPart, user

from ._helpers import BMP, GIF, KEY, Recorder, json_response, load_fixture, make_png

# provider spec, per-image limit in MB (documented, enforced by the codecs)
PATHS = {
    "openai-chat": ("openai:gpt-4o", 20),
    "openai-responses": ("openai:gpt-5", 20),
    "anthropic": ("anthropic:claude-sonnet-4-5", 5),
    "gemini": ("gemini:gemini-2.5-flash", 20),
}
BIG = make_png(8, 8, pad=30 * 1024 * 1024)  # a valid 30 MB PNG


def engine(path: str) -> tuple[allm.Engine, Recorder]:
    rec = Recorder(json_response({"error": {"message": "stop here"}}, 400))
    return allm.engine(PATHS[path][0], http_client=rec.client(), retry=False), rec


def ask(path: str, part: ImagePart) -> tuple[Recorder, BaseException | None]:
    eng, rec = engine(path)
    try:
        allm.generate(eng, [user([TextPart(text="What is this?"), part])], api_key=KEY)
    except (ValidationError, AdapterError) as exc:
        return rec, exc
    return rec, None


@pytest.mark.parametrize("path", PATHS)
def test_a_30_mb_image_is_rejected_before_any_request(path: str) -> None:
    rec, exc = ask(path, ImagePart.from_bytes(BIG))
    assert isinstance(exc, ValidationError), exc
    assert exc.errors == [("messages.0.content.1", "image_too_large")]
    assert "30.0 MB" in exc.message
    assert rec.calls == 0


@pytest.mark.parametrize("path", PATHS)
def test_just_over_the_provider_limit_is_rejected(path: str) -> None:
    limit = PATHS[path][1] * 1024 * 1024
    rec, exc = ask(path, ImagePart.from_bytes(make_png(pad=limit)))
    assert isinstance(exc, ValidationError) and rec.calls == 0
    assert exc.errors == [("messages.0.content.1", "image_too_large")]


@pytest.mark.parametrize("path", PATHS)
def test_unsupported_mime_type_is_rejected(path: str) -> None:
    rec, exc = ask(path, ImagePart.from_bytes(BMP))
    assert isinstance(exc, ValidationError) and rec.calls == 0
    assert exc.errors == [("messages.0.content.1", "unsupported_image_format")]
    assert "image/bmp" in exc.message


def test_gif_is_fine_except_on_gemini() -> None:
    for path in ("openai-chat", "openai-responses", "anthropic"):
        rec, exc = ask(path, ImagePart.from_bytes(GIF))
        assert isinstance(exc, AdapterError) and rec.calls == 1  # reached the (mock) wire
    rec, exc = ask("gemini", ImagePart.from_bytes(GIF))
    assert isinstance(exc, ValidationError) and rec.calls == 0
    assert exc.errors == [("messages.0.content.1", "unsupported_image_format")]


@pytest.mark.parametrize("path", PATHS)
def test_a_png_named_jpg_is_sent_as_png(path: str, tmp_path: Path) -> None:
    png = make_png(3, 3)
    file = tmp_path / "holiday.jpg"
    file.write_bytes(png)
    rec, exc = ask(path, ImagePart.from_path(file))
    assert isinstance(exc, AdapterError) and rec.calls == 1  # the mock's 400, after sending
    wire = json.dumps(json.loads(rec.requests[0].content))
    assert "image/png" in wire and "image/jpeg" not in wire
    assert base64.b64encode(png).decode() in wire


@pytest.mark.parametrize("path", PATHS)
def test_a_text_file_named_png_is_rejected(path: str, tmp_path: Path) -> None:
    file = tmp_path / "chart.png"
    file.write_text("this is not an image\n")
    rec, exc = ask(path, ImagePart.from_path(file))
    assert isinstance(exc, ValidationError) and rec.calls == 0
    assert exc.errors == [("messages.0.content.1", "missing_mime_type")]


@pytest.mark.parametrize("path", PATHS)
def test_the_offending_part_is_named_in_later_messages(path: str) -> None:
    eng, rec = engine(path)
    messages = [user("first"), allm.assistant("ok"),
                user([TextPart(text="a"), ImagePart.from_bytes(make_png()), TextPart(text="b"),
                      ImagePart.from_bytes(BMP)])]
    with pytest.raises(ValidationError) as info:
        allm.generate(eng, messages, api_key=KEY)
    assert info.value.errors == [("messages.2.content.3", "unsupported_image_format")]
    assert rec.calls == 0


def test_url_images() -> None:
    url = ImagePart.from_url("https://example.com/cat.png")
    for path in ("openai-chat", "openai-responses", "anthropic"):
        rec, exc = ask(path, url)
        assert isinstance(exc, AdapterError) and rec.calls == 1
        assert "https://example.com/cat.png" in rec.requests[0].content.decode()
    rec, exc = ask("gemini", url)  # Gemini cannot fetch URLs itself
    assert isinstance(exc, AdapterError) and exc.reason == "unsupported_feature"
    assert rec.calls == 0


def test_async_paths_check_before_any_request() -> None:
    import anyio

    async def main() -> None:
        for path in PATHS:
            eng, rec = engine(path)
            with pytest.raises(ValidationError):
                await allm.agenerate(eng, [user([ImagePart.from_bytes(BIG)])], api_key=KEY)
            assert rec.calls == 0

    anyio.run(main)


def test_gemini_vision_matches_the_recorded_request() -> None:
    """The recorded image-input request (pydantic-ai, gemini-2.0-flash) carries the
    JPEG as inlineData; allm sends the same bytes with the same MIME type."""
    recorded = json.loads(load_fixture(
        "gemini/pydantic-ai__test_google_model_image_url_input.json")["interactions"][0]
        ["request"]["body"])
    inline: dict[str, Any] = recorded["contents"][0]["parts"][1]["inlineData"]
    data = inline["data"]
    jpeg = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    rec, exc = ask("gemini", ImagePart.from_bytes(jpeg))
    assert isinstance(exc, AdapterError) and rec.calls == 1
    sent = json.loads(rec.requests[0].content)["contents"][0]["parts"][1]["inlineData"]
    assert sent["mimeType"] == inline["mimeType"] == "image/jpeg"
    assert base64.b64decode(sent["data"]) == jpeg


@pytest.mark.parametrize("path", PATHS)
def test_a_declared_type_the_bytes_contradict_is_rejected(path: str) -> None:
    from allm.image import Image

    for image in (Image(data=b"plain text, not a picture", mime_type="image/png"),
                  Image.from_bytes(b"plain text, not a picture", "image/jpeg"),
                  Image(data=make_png(), mime_type="image/jpeg")):
        rec, exc = ask(path, ImagePart(image=image))
        assert isinstance(exc, ValidationError) and rec.calls == 0
        assert exc.errors == [("messages.0.content.1", "mime_mismatch")]


@pytest.mark.parametrize("path", PATHS)
def test_an_image_in_a_system_message_is_refused(path: str) -> None:
    from allm.messages import Message

    eng, rec = engine(path)
    system = Message(role="system", content=(TextPart(text="be brief"),
                                             ImagePart.from_bytes(make_png())))
    with pytest.raises(ValidationError) as info:
        allm.generate(eng, [system, user("hi")], api_key=KEY)
    assert info.value.errors[0][0].startswith("messages.0.content")
    assert "system" in info.value.errors[0][1]
    assert rec.calls == 0


@pytest.mark.parametrize("path", PATHS)
def test_a_key_the_provider_echoes_is_scrubbed(path: str) -> None:
    rec = Recorder(json_response({"error": {"message": f"API key not valid: {KEY}",
                                            "type": "authentication_error"}}, 401))
    eng = allm.engine(PATHS[path][0], http_client=rec.client(), retry=False)
    with pytest.raises(AdapterError) as info:
        allm.generate(eng, "hi", api_key=KEY)
    assert rec.calls == 1 and "[redacted]" in info.value.message
    assert KEY not in repr(info.value) and KEY not in allm.dumps(info.value)
