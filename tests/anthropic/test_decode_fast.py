"""The direct text-only decode of a non-streaming body (`_decode_text_only`) gives
exactly the events of replaying that body through the stream decoder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from allm.providers.anthropic.body import _decode_replay, _decode_text_only, decode_message

from .recordings import FILES, load, recorded_message

BASE: dict[str, Any] = {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
    "content": [{"type": "text", "text": "Hello there."}],
    "stop_reason": "end_turn", "stop_sequence": None,
    "usage": {"input_tokens": 10, "output_tokens": 3, "cache_read_input_tokens": None},
}

CASES: list[dict[str, Any]] = [
    BASE,
    {**BASE, "content": []},
    {**BASE, "content": [{"type": "text", "text": ""}]},
    {**BASE, "content": [{"type": "text", "text": None}, {"type": "text", "text": "b"}]},
    {**BASE, "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
    {**BASE, "usage": {}},
    {k: v for k, v in BASE.items() if k != "usage"},
    {**BASE, "usage": {"input_tokens": 5, "output_tokens": 1,
                       "cache_creation_input_tokens": 2, "cache_read_input_tokens": 7,
                       "service_tier": "standard"}},
    {**BASE, "stop_reason": "max_tokens", "stop_sequence": "END"},
    {**BASE, "stop_reason": "something_new"},
    {**BASE, "stop_reason": ["bad"], "stop_sequence": 3},
    {**BASE, "stop_reason": None},
    {**BASE, "id": 7, "model": None},
    {**BASE, "container": {"id": "c"}, "context_management": {"x": 1},
     "stop_details": {"type": "refusal"}},
]

NOT_FAST: list[dict[str, Any]] = [
    {**BASE, "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]},
    {**BASE, "content": [{"type": "text", "text": "a", "citations": [{"x": 1}]}]},
    {**BASE, "content": [{"type": "thinking", "thinking": "hm", "signature": "s"}]},
    {**BASE, "content": ["junk"]},
    {**BASE, "content": None},
]


@pytest.mark.parametrize("message", CASES)
def test_text_only_equals_replay(message: dict[str, Any]) -> None:
    fast = _decode_text_only(message)
    assert fast is not None
    assert fast == _decode_replay(message)
    assert decode_message(message) == _decode_replay(message)


@pytest.mark.parametrize("message", NOT_FAST)
def test_other_shapes_are_replayed(message: dict[str, Any]) -> None:
    assert _decode_text_only(message) is None
    assert decode_message(message) == _decode_replay(message)


def test_recorded_messages_equal_replay() -> None:
    seen = 0
    for path in FILES:
        for it in load(Path(path)):
            if not it.is_messages_call or it.status != 200:
                continue
            try:
                message = recorded_message(it)
            except Exception:  # noqa: BLE001 - a recording that cannot be assembled
                continue
            message = json.loads(json.dumps(message))
            assert decode_message(message) == _decode_replay(message)
            seen += 1
    assert seen
