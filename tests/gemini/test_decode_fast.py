"""The direct text-only decode of a non-streaming `generateContent` body
(`decode_text_only`) gives exactly the events `ResponseState` gives for it."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from allm.events import Event
from allm.providers.gemini.decode import ResponseState, decode_body, decode_text_only

from .recordings import FILES, load


def replay(body: Any) -> list[Event]:
    state = ResponseState()
    return state.feed_chunk(body) + state.finish()


CAND: dict[str, Any] = {"content": {"parts": [{"text": "Hello there."}], "role": "model"},
                        "finishReason": "STOP", "index": 0}
BASE: dict[str, Any] = {
    "candidates": [CAND],
    "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 3,
                      "totalTokenCount": 13, "thoughtsTokenCount": 2,
                      "cachedContentTokenCount": 1, "toolUsePromptTokenCount": 4},
    "modelVersion": "gemini-x", "responseId": "r1",
}


def _cand(**changes: Any) -> dict[str, Any]:
    return {**BASE, "candidates": [{**CAND, **changes}]}


def _parts(*parts: Any) -> dict[str, Any]:
    return _cand(content={"parts": list(parts), "role": "model"})


CASES: list[dict[str, Any]] = [
    BASE,
    _parts(),
    _parts({"text": ""}),
    _parts({"text": "a"}, {"text": ""}, {"text": "b"}),
    _cand(finishReason="MAX_TOKENS", finishMessage="cut"),
    _cand(finishReason="SAFETY", safetyRatings=[{"x": 1}], avgLogprobs=-0.1,
          citationMetadata={"c": 1}, groundingMetadata={"g": 1}),
    _cand(finishReason=None),
    _cand(finishReason=3, finishMessage=4),
    {k: v for k, v in _cand(finishReason="STOP").items() if k != "usageMetadata"},
    {**BASE, "usageMetadata": {}},
    {**BASE, "usageMetadata": None},
    {**BASE, "usageMetadata": {"promptTokenCount": True}},
    {**BASE, "responseId": 3, "modelVersion": None},
    {k: v for k, v in BASE.items() if k not in ("responseId", "modelVersion")},
    {**BASE, "candidates": [{k: v for k, v in CAND.items() if k != "index"}]},
    {**BASE, "candidates": [{"content": CAND["content"], "index": 0}]},
    {**BASE, "candidates": [CAND, {**CAND, "index": 1}]},
]

NOT_FAST: list[Any] = [
    _parts({"functionCall": {"name": "f", "args": {}}}),
    _parts({"text": "hm", "thought": True}),
    _parts({"text": "a", "thoughtSignature": "s"}),
    _parts({"inlineData": {"mimeType": "image/png", "data": "AA=="}}),
    _parts("junk"),
    _parts({"text": 3}),
    _cand(content=None),
    _cand(content={"role": "model"}),
    _cand(index=1),
    {**BASE, "candidates": []},
    {**BASE, "candidates": None},
    {**BASE, "candidates": ["x"]},
    {**BASE, "promptFeedback": {"blockReason": "SAFETY"}},
    {"error": {"code": 500, "message": "boom"}},
    [],
]


@pytest.mark.parametrize("body", CASES)
def test_text_only_equals_state(body: dict[str, Any]) -> None:
    fast = decode_text_only(copy.deepcopy(body))
    assert fast is not None
    assert fast == replay(body)
    assert decode_body(json.dumps(body).encode()) == replay(body)


@pytest.mark.parametrize("body", NOT_FAST)
def test_other_shapes_go_through_state(body: Any) -> None:
    assert decode_text_only(body) is None


def test_recorded_bodies_equal_state() -> None:
    seen = 0
    for path in FILES:
        for it in load(path):
            if not it.is_model_call or it.status != 200 or it.is_stream:
                continue
            try:
                body = json.loads(it.body)
            except ValueError:
                continue
            fast = decode_text_only(copy.deepcopy(body))
            if fast is not None:
                assert fast == replay(body)
                seen += 1
    assert seen
