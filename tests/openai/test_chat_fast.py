"""The direct text-only decode of a non-streaming Chat Completions body
(`decode_text_only`) gives exactly the events of replaying that body through the
stream fold (`decode_replay`)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from allm.providers.openai.chat_codec import ChatCodec, decode_replay, decode_text_only

from .recordings import json_bodies

MSG: dict[str, Any] = {"role": "assistant", "content": "Hello there.", "refusal": None,
                       "annotations": []}
BASE: dict[str, Any] = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-x",
    "choices": [{"index": 0, "message": MSG, "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13,
              "prompt_tokens_details": {"cached_tokens": 2},
              "completion_tokens_details": {"reasoning_tokens": 0}},
    "service_tier": "default", "system_fingerprint": "fp_1",
}


def _choice(**changes: Any) -> dict[str, Any]:
    return {**BASE, "choices": [{**BASE["choices"][0], **changes}]}


def _msg(**changes: Any) -> dict[str, Any]:
    return _choice(message={**MSG, **changes})


CASES: list[dict[str, Any]] = [
    BASE,
    _msg(content=""),
    _msg(content=None),
    _msg(tool_calls=None, function_call=None, audio=None),
    _msg(tool_calls=[], reasoning_content="", extra_content={}),
    _choice(finish_reason="length"),
    _choice(finish_reason="something_new"),
    _choice(finish_reason=None),
    _choice(finish_reason=""),
    _choice(finish_reason=3),
    {k: v for k, v in BASE.items() if k != "usage"},
    {**BASE, "usage": None},
    {**BASE, "usage": {}},
    {**BASE, "id": 7, "model": None, "service_tier": None, "system_fingerprint": 3},
    {**BASE, "error": None},
    {**BASE, "choices": [{"message": MSG, "finish_reason": "stop"}]},
    {**BASE, "choices": [{"index": None, "message": MSG, "finish_reason": "stop"}]},
]

NOT_FAST: list[dict[str, Any]] = [
    _msg(tool_calls=[{"id": "c1", "type": "function",
                      "function": {"name": "f", "arguments": "{}"}}]),
    _msg(function_call={"name": "f", "arguments": "{}"}),
    _msg(function_call={}),
    _msg(refusal="no"),
    _msg(reasoning_content="hm"),
    _msg(reasoning="hm"),
    _msg(annotations=[{"type": "url_citation"}]),
    _msg(extra_content={"google": {"x": 1}}),
    _msg(content=[{"type": "text", "text": "a"}]),
    _choice(message=None),
    _choice(index=1),
    {**BASE, "choices": []},
    {**BASE, "choices": [BASE["choices"][0], {**BASE["choices"][0], "index": 1}]},
    {**BASE, "choices": None},
    {**BASE, "error": {"message": "boom", "type": "server_error"}},
]


@pytest.mark.parametrize("body", CASES)
def test_text_only_equals_replay(body: dict[str, Any]) -> None:
    fast = decode_text_only(copy.deepcopy(body))
    assert fast is not None
    assert fast == decode_replay(body, {})
    codec = ChatCodec(base_url="http://x/v1")
    assert codec.decode(200, {}, json.dumps(body).encode()) == decode_replay(body, {})


@pytest.mark.parametrize("body", NOT_FAST)
def test_other_shapes_are_replayed(body: dict[str, Any]) -> None:
    assert decode_text_only(body) is None


def test_recorded_bodies_equal_replay() -> None:
    seen = 0
    for body in json_bodies("chat"):
        fast = decode_text_only(copy.deepcopy(body))
        if fast is not None:
            assert fast == decode_replay(body, {})
            seen += 1
    assert seen
