"""The `Gemini` adapter itself: configuration, eager pre-flight errors, the key only in
the header, and the opt-in URL-image prefetch (sync and async)."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx2
import pytest

from allm.errors import AdapterError, EngineError, ValidationError
from allm.events import ErrorEvent, Event
from allm.messages import ImagePart, Message, TextPart
from allm.providers.base import Call
from allm.providers.gemini import Gemini
from allm.request import Request

PNG = b"\x89PNG\r\n\x1a\n" + b"\1" * 32
OK = {"candidates": [{"content": {"role": "model", "parts": [{"text": "a cat"}]},
                      "finishReason": "STOP"}], "responseId": "r", "modelVersion": "m"}
URL = "https://images.example.com/cat.png"


def _request(url: str = URL) -> Request:
    return Request(messages=(Message(role="user", content=(
        TextPart(text="What is this?"), ImagePart.from_url(url))),))


def _handler(seen: list[httpx2.Request], image_status: int = 200) -> Any:
    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        if request.url.host == "images.example.com":
            return httpx2.Response(image_status, content=PNG)
        return httpx2.Response(200, json=OK)
    return handler


def test_defaults_and_repr_without_key() -> None:
    adapter = Gemini(api_version="v1", base_url="https://proxy.example/")
    assert adapter.provider == "gemini"
    assert adapter.codec.url("gemini-2.5-flash", stream=True) == (
        "https://proxy.example/v1/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
    assert "key" not in repr(adapter).lower()
    with pytest.raises(ValidationError):
        Gemini(schema_mode="nope")


def test_missing_key_raises_at_call_site(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    with pytest.raises(EngineError) as info:
        Gemini().stream(Request(messages=(Message(role="user", content="hi"),)),
                        Call(model="gemini-2.5-flash"))
    assert info.value.reason == "missing_key"
    assert "GEMINI_API_KEY" in info.value.message and "GOOGLE_API_KEY" in info.value.message


def test_env_key_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "first")
    monkeypatch.setenv("GOOGLE_API_KEY", "second")
    seen: list[httpx2.Request] = []
    adapter = Gemini(http_client=httpx2.Client(transport=httpx2.MockTransport(_handler(seen))))
    list(adapter.stream(Request(messages=(Message(role="user", content="hi"),)),
                        Call(model="gemini-2.5-flash", stream=False)))
    assert seen[0].headers["x-goog-api-key"] == "first"
    assert "first" not in str(seen[0].url)


def test_url_image_is_an_eager_typed_error() -> None:
    seen: list[httpx2.Request] = []
    adapter = Gemini(http_client=httpx2.Client(transport=httpx2.MockTransport(_handler(seen))))
    with pytest.raises(AdapterError) as info:
        adapter.stream(_request(), Call(model="gemini-2.5-flash", api_key="k"))
    assert info.value.reason == "unsupported_feature"
    assert "fetch_image_urls" in info.value.message
    assert seen == []  # nothing was sent


def test_fetch_image_urls_sync() -> None:
    seen: list[httpx2.Request] = []
    adapter = Gemini(fetch_image_urls=True,
                     http_client=httpx2.Client(transport=httpx2.MockTransport(_handler(seen))))
    events = list(adapter.stream(_request(), Call(model="gemini-2.5-flash", api_key="k",
                                                  stream=False)))
    assert [r.url.host for r in seen] == ["images.example.com", "generativelanguage.googleapis.com"]
    assert "x-goog-api-key" not in seen[0].headers  # the key never goes to the image host
    parts = json.loads(seen[1].content)["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/png",
                                       "data": base64.b64encode(PNG).decode()}}
    assert not any(isinstance(e, ErrorEvent) for e in events)


@pytest.mark.anyio
async def test_fetch_image_urls_async() -> None:
    seen: list[httpx2.Request] = []
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(_handler(seen)))
    adapter = Gemini(fetch_image_urls=True, async_http_client=client)
    events: list[Event] = [e async for e in adapter.astream(
        _request(), Call(model="gemini-2.5-flash", api_key="k", stream=False))]
    assert [r.url.host for r in seen] == ["images.example.com", "generativelanguage.googleapis.com"]
    assert json.loads(seen[1].content)["contents"][0]["parts"][1]["inlineData"][
        "mimeType"] == "image/png"
    assert not any(isinstance(e, ErrorEvent) for e in events)
    await client.aclose()


def test_fetch_image_failure_is_typed() -> None:
    seen: list[httpx2.Request] = []
    adapter = Gemini(fetch_image_urls=True, http_client=httpx2.Client(
        transport=httpx2.MockTransport(_handler(seen, image_status=404))))
    with pytest.raises(AdapterError) as info:
        adapter.stream(_request(), Call(model="gemini-2.5-flash", api_key="k"))
    assert info.value.status == 404


def test_rate_limit_retry_honours_retry_info() -> None:
    """429 RESOURCE_EXHAUSTED with RetryInfo.retryDelay, then success: one retry that
    waits what Google asked (not the much longer backoff)."""
    import time

    from allm.retry import RetryPolicy

    limited = {"error": {"code": 429, "message": "Resource has been exhausted.",
                         "status": "RESOURCE_EXHAUSTED", "details": [
                             {"@type": "type.googleapis.com/google.rpc.RetryInfo",
                              "retryDelay": "0.2s"}]}}
    queue: list[httpx2.Response] = [httpx2.Response(429, json=limited),
                                    httpx2.Response(200, json=OK)]
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return queue.pop(0)

    adapter = Gemini(http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
                     retry=RetryPolicy(max_attempts=2, base_delay=5.0, max_delay=10.0,
                                       jitter=0.0))
    started = time.monotonic()
    events = list(adapter.stream(Request(messages=(Message(role="user", content="hi"),)),
                                 Call(model="gemini-2.5-flash", api_key="k", stream=False)))
    elapsed = time.monotonic() - started
    assert len(seen) == 2
    assert not any(isinstance(e, ErrorEvent) for e in events)
    assert 0.15 <= elapsed < 3.0


def test_generate_raises_typed_error_for_recorded_404() -> None:
    from allm.engine import make_engine
    from allm.facade import generate

    from .recordings import FILES, model_calls

    [it] = model_calls(next(p for p in FILES if "name_suggestion" in p.name))
    client = httpx2.Client(transport=httpx2.MockTransport(
        lambda r: httpx2.Response(404, headers={"content-type": "application/json"},
                                  content=it.body.encode())))
    engine = make_engine(f"gemini:{it.model}", http_client=client, retry=False)
    with pytest.raises(AdapterError) as info:
        generate(engine, [Message(role="user", content="hello")], api_key="k")
    assert info.value.reason == "not_found" and info.value.status == 404
    assert "gemini-3.6-flahs is not found" in info.value.message
