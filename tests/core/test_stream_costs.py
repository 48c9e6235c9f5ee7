"""A caller folding `stream_generate` itself sees the same costs `generate` reports."""

from __future__ import annotations

import json

import httpx2
import pytest

import allm
from allm.collector import StreamCollector

BODY = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-4.1-mini",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "Hi"}}],
    "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500},
}
SSE = (
    'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4.1-mini","choices":'
    '[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}\n\n'
    'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4.1-mini","choices":'
    '[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4.1-mini","choices":[],'
    '"usage":{"prompt_tokens":1000,"completion_tokens":500,"total_tokens":1500}}\n\n'
    "data: [DONE]\n\n"
)


def _engine() -> allm.Engine:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if json.loads(request.content).get("stream"):
            return httpx2.Response(200, text=SSE,
                                   headers={"content-type": "text/event-stream"})
        return httpx2.Response(200, json=BODY)

    client = httpx2.Client(transport=httpx2.MockTransport(handler))
    return allm.engine("openai:gpt-4.1-mini", http_client=client)


def test_streamed_usage_is_priced_like_generate() -> None:
    engine = _engine()
    response = allm.generate(engine, "hi", api_key="sk-test")
    assert response.usage.total_cost is not None
    collector = StreamCollector()
    for event in allm.stream_generate(engine, "hi", api_key="sk-test"):
        collector.apply(event)
    streamed = collector.to_response()
    assert streamed.usage.input_cost == pytest.approx(response.usage.input_cost)
    assert streamed.usage.total_cost == pytest.approx(response.usage.total_cost)
