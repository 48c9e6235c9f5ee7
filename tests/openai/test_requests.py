"""Requests allm builds, checked against the recorded ones.

For every recorded model call, the recorded request is read back into allm messages
and tools and re-encoded: the parsed JSON must carry the same messages / input
items, tool calls, tool results and tools. For multi-turn recordings the turn N+1
request is built from allm's own folded turn-N result (its assistant message with
the replay metadata) plus the tool results and user messages the recording adds, and
must equal the recorded turn N+1 request (fields allm does not set are ignored)."""

from __future__ import annotations

from typing import Any

import pytest

from allm.messages import Message
from allm.providers.base import Call
from allm.providers.openai import chat_codec, responses_codec
from allm.request import Request

from .recordings import (
    FILES,
    Interaction,
    Unsupported,
    load,
    normalize,
    recorded_messages,
    recorded_tools,
)
from .test_replay import _ids, codec_events, fold

# Recordings whose turn N+1 history is not what the model returned at turn N, so a
# chained comparison cannot hold; their requests are still checked one by one.
EDITED_HISTORY = {
    "pydantic-ai__test_openai_responses_thinking_with_modified_history.json":
        "the recorder edits the model's turn-1 text before sending turn 2",
    "pydantic-ai__test_openai_responses_phase_streamed_on_part_start.json":
        "the recorded turn-2 request has straight quotes where the recorded turn-1 stream "
        "has curly ones (the cassette was edited by hand)",
}

# o1-mini / o1-preview reject both "system" and "developer" (these recordings are the
# 400s proving it); allm sends their system prompt as a "user" message instead, the
# way the 200 recording test_system_prompt_role_o1_mini does.
SYSTEM_AS_USER = {
    "pydantic-ai__test_openai_o1_mini_system_role-developer.json",
    "pydantic-ai__test_openai_o1_mini_system_role-system.json",
}


def encode(it: Interaction, messages: list[Message]) -> dict[str, Any]:
    request = Request(messages=tuple(messages), tools=recorded_tools(it))
    call = Call(model=it.request.get("model"), stream=bool(it.request.get("stream")))
    if it.api == "chat":
        return chat_codec.encode_body(request, call, stream=call.stream)
    return responses_codec.encode_body(request, call, stream=call.stream)


def norm_tools(api: str, body: dict[str, Any]) -> list[tuple[Any, ...]]:
    out = []
    for t in body.get("tools") or []:
        if t.get("type") != "function":
            continue
        fn = t.get("function", t)
        out.append((fn["name"], fn.get("parameters"), fn.get("description") or ""))
    return out


def server_state(it: Interaction) -> bool:
    """The request continues server-side state: its input is only the new part."""
    return bool(it.request.get("previous_response_id") or it.request.get("conversation"))


def check_requests(path: Any) -> tuple[int, int, list[str]]:
    """Check every model-call request of one recording; returns (checked, chained,
    reasons for requests that could not be checked)."""
    its = load(path)
    thread: list[Message] | None = None
    previous: Interaction | None = None
    assistant: Message | None = None
    checked = chained = 0
    skipped: list[str] = []
    for it in its:
        if not (it.is_model_call and it.method == "POST"):
            thread = None  # e.g. /responses/compact rewrote the history in between
            continue
        try:
            parsed = recorded_messages(it)
            recorded_tools(it)
        except Unsupported as exc:
            skipped.append(f"interaction {it.index}: {exc} content")
            thread = None
            continue
        chain = (
            thread is not None and previous is not None and assistant is not None
            and previous.api == it.api and not server_state(it)
            and path.name not in EDITED_HISTORY
            # a re-run of the same prompt rather than a continuation
            and len(parsed) > len(thread) and parsed[len(thread)].role == "assistant"
        )
        if chain:
            assert thread is not None and assistant is not None
            messages = [*thread, assistant, *parsed[len(thread) + 1:]]
            chained += 1
        else:
            messages = parsed
        body = encode(it, messages)
        want = normalize(it.api, it.request)
        if path.name in SYSTEM_AS_USER:
            assert body["messages"][0]["role"] == "user"
            want = [("user", *m[1:]) if m[0] == "system" else m for m in want]
        got = normalize(it.api, body)
        # allm replays server-side tool items (file_search_call, ...) the recorder
        # chose not to send back; compare those kinds only where the recording has them.
        kinds = {m[0] for m in want}
        got = [m for m in got if m[0] in kinds or not str(m[0]).endswith("_call")]
        assert got == want, (
            f"interaction {it.index} ({'chained' if chain else 'parsed'})")
        assert norm_tools(it.api, body) == norm_tools(it.api, it.request)
        checked += 1
        if it.status < 400:
            response = fold(codec_events(it))
            assert response.message is not None
            thread, previous, assistant = messages, it, response.message
        else:
            thread = None
    return checked, chained, skipped


@pytest.mark.parametrize("path", FILES, ids=_ids)
def test_requests_match_recording(path: Any) -> None:
    checked, _, skipped = check_requests(path)
    if not checked:
        pytest.skip("; ".join(skipped) or "no model-call request in this recording")


def test_chained_turns_are_exercised() -> None:
    """Guard: the chained turn N+1 comparison really runs on the multi-turn recordings."""
    chained = {p.name: check_requests(p)[1] for p in FILES}
    for name in ("pydantic-ai__test_complex_agent_run.json",
                 "pydantic-ai__test_openai_responses_thinking_with_tool_calls.json",
                 "pydantic-ai__test_openai_responses_phase_live.json",
                 "pydantic-ai__test_temporal_agent_with_hitl_tool.json",
                 "pydantic-ai__test_openai_responses_model_web_search_tool.json"):
        assert chained[name] >= 1, name
    assert sum(chained.values()) >= 30
