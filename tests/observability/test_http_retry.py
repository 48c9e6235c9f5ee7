"""Retries over the real HTTP runtime become span events and `adapter.retry` hooks."""

from __future__ import annotations

import json
from typing import Any

import pytest

import allm
from allm import telemetry

httpx2 = pytest.importorskip("httpx2")
pytest.importorskip("opentelemetry.sdk")

KEY = "sk-test-RETRY-SECRET-0987654321"

BODY = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4.1-mini-2025-04-14",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "hello there"}}],
    "usage": {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100,
              "prompt_tokens_details": {"cached_tokens": 200}},
}


def _engine(seen: list[Any]) -> allm.Engine:
    from allm.providers import OpenAI

    def handler(request: Any) -> Any:
        seen.append(request)
        if len(seen) == 1:
            return httpx2.Response(429, headers={"retry-after": "0"},
                                   json={"error": {"message": "slow down", "type": "rate_limit"}})
        return httpx2.Response(200, json=BODY)

    client = httpx2.Client(transport=httpx2.MockTransport(handler))
    adapter = OpenAI(endpoint="chat", http_client=client,
                     retry={"base_delay": 0.0, "jitter": 0.0, "max_attempts": 3})
    return allm.Engine(adapter=adapter, model="gpt-4.1-mini")


def test_retry_event_hook_and_costs(exporter: Any,
                                    recorded: list[tuple[str, dict[str, Any]]]) -> None:
    seen: list[Any] = []
    response = allm.generate(_engine(seen), [allm.user("hi")], api_key=KEY)
    assert len(seen) == 2 and response.output_text == "hello there"
    # costs: 800 uncached + 200 cached input, 100 output at gpt-4.1-mini prices
    assert response.usage.input_cost == pytest.approx((800 * 0.4 + 200 * 0.1) / 1e6)
    assert response.usage.output_cost == pytest.approx(100 * 1.6 / 1e6)

    names = [n for n, _ in recorded]
    assert names == ["generate.start", "adapter.retry", "generate.stop"]
    rids = {d["request_id"] for _, d in recorded}
    assert len(rids) == 1 and response.request_id in rids
    retry = recorded[1][1]
    assert retry["attempt"] == 1 and retry["status"] == 429

    (span,) = exporter.get_finished_spans()
    assert span.name == "chat gpt-4.1-mini"
    (event,) = [e for e in span.events if e.name == "gen_ai.retry"]
    assert event.attributes["error.type"] == "rate_limited"
    assert span.attributes["gen_ai.response.model"] == "gpt-4.1-mini-2025-04-14"
    assert span.attributes["gen_ai.response.id"] == "chatcmpl-1"
    blob = json.dumps([dict(span.attributes), [dict(e.attributes) for e in span.events]],
                      default=str) + repr(recorded)
    assert KEY not in blob and "hello there" not in json.dumps(dict(span.attributes))


def test_retry_without_telemetry_is_untouched() -> None:
    assert not telemetry.active()
    seen: list[Any] = []
    response = allm.generate(_engine(seen), [allm.user("hi")], api_key=KEY)
    assert len(seen) == 2 and response.usage.total_cost is not None
