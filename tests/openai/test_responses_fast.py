"""The direct decode of a text-only completed Responses body (`decode_text_only`)
gives exactly the events of replaying it through `ResponsesFold` (`as_events`)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from allm.events import Event
from allm.providers.openai.responses_codec import ResponsesCodec
from allm.providers.openai.responses_fold import ResponsesFold, as_events, decode_text_only

from .recordings import json_bodies


def replay(body: dict[str, Any]) -> list[Event]:
    fold = ResponsesFold(headers={})
    out: list[Event] = []
    for event in as_events(body):
        out.extend(fold.event(event))
    if not fold.finished:
        out.extend(fold.truncated())
    return out


def _msg(text: Any, item_id: Any = "msg_1", **part: Any) -> dict[str, Any]:
    return {"type": "message", "id": item_id, "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": text, **part}]}


BASE: dict[str, Any] = {
    "id": "resp_1", "object": "response", "status": "completed", "model": "gpt-x",
    "error": None, "incomplete_details": None, "service_tier": "default",
    "previous_response_id": None,
    "output": [_msg("Hello.")],
    "usage": {"input_tokens": 10, "output_tokens": 2, "total_tokens": 12,
              "input_tokens_details": {"cached_tokens": 3},
              "output_tokens_details": {"reasoning_tokens": 0}},
}

CASES: list[dict[str, Any]] = [
    BASE,
    {**BASE, "output": []},
    {**BASE, "output": [_msg("")]},
    {**BASE, "output": [_msg("a"), _msg("b", "msg_2")]},
    {**BASE, "output": [_msg("a"), _msg("b")]},  # one id twice
    {**BASE, "output": [_msg("a", None), _msg("b", None)]},
    {**BASE, "output": [_msg("a", 7)]},
    {**BASE, "output": [_msg("a", annotations=[])]},
    {**BASE, "output": [{**_msg("x"), "content": []}]},
    {**BASE, "usage": None},
    {**BASE, "id": None, "model": 3},
    {**BASE, "previous_response_id": "resp_0", "conversation": {"id": "c"},
     "incomplete_details": {"reason": "odd"}},
]

NOT_FAST: list[dict[str, Any]] = [
    {**BASE, "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}},
    {**BASE, "status": "failed", "error": {"message": "x"}},
    {**BASE, "status": None},
    {**BASE, "output": [_msg("a", annotations=[{"type": "url_citation"}])]},
    {**BASE, "output": [{"type": "function_call", "id": "fc", "call_id": "c", "name": "f",
                         "arguments": "{}"}]},
    {**BASE, "output": [{"type": "reasoning", "id": "r", "summary": []}, _msg("a")]},
    {**BASE, "output": [{**_msg("x"), "content": [{"type": "refusal", "refusal": "no"}]}]},
    {**BASE, "output": ["junk"]},
    {**BASE, "output": None},
]


@pytest.mark.parametrize("body", CASES)
def test_text_only_equals_replay(body: dict[str, Any]) -> None:
    fast = decode_text_only(copy.deepcopy(body))
    assert fast is not None
    assert fast == replay(copy.deepcopy(body))
    codec = ResponsesCodec(base_url="http://x")
    assert codec.decode(200, {}, json.dumps(body).encode()) == fast


@pytest.mark.parametrize("body", NOT_FAST)
def test_other_shapes_are_replayed(body: dict[str, Any]) -> None:
    assert decode_text_only(body) is None


def test_recorded_responses_equal_replay() -> None:
    seen = 0
    for body in json_bodies("responses"):
        fast = decode_text_only(copy.deepcopy(body))
        if fast is not None:
            assert fast == replay(body)
            seen += 1
    assert seen
