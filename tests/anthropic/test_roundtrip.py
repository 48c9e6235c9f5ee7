"""End to end through the public API: engine + `allm.chat` / `Session` on the
Anthropic adapter (httpx2.MockTransport), with the session stored through
`dumps` / `loads` between turns. The thinking signature must survive the
round trip and reach the next request verbatim, as the API requires for thinking with
tool use."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from allm.engine import make_engine
from allm.events import TextDelta
from allm.facade import generate, stream_generate
from allm.loop import achat, chat
from allm.messages import system, user
from allm.serializer import dumps, loads
from allm.session import Session
from allm.tool import Tool

from .recordings import FILES, load, normalize, recorded_message

SIGNATURE = "EqQBCkYIBxgCKkB" + "x" * 40 + "=="


def _message(content: list[dict[str, Any]], stop: str, mid: str) -> dict[str, Any]:
    return {"id": mid, "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": content, "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": 50, "output_tokens": 20,
                      "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}}


TURN1 = _message([
    {"type": "thinking", "thinking": "The user wants the weather; call the tool.",
     "signature": SIGNATURE},
    {"type": "text", "text": "Let me check."},
    {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Oslo"}},
], "tool_use", "msg_1")
TURN2 = _message([{"type": "text", "text": "It is raining in Oslo."}], "end_turn", "msg_2")

WEATHER = Tool(name="get_weather", description="Weather for a city",
               parameters={"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"]}, manual=True)


def server(responses: list[dict[str, Any]], seen: list[dict[str, Any]]
           ) -> Callable[[httpx2.Request], httpx2.Response]:
    queue = list(responses)

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(json.loads(request.content))
        return httpx2.Response(200, json=queue.pop(0))

    return handler


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")


def test_thinking_tool_use_session_survives_dumps_loads() -> None:
    seen: list[dict[str, Any]] = []
    client = httpx2.Client(transport=httpx2.MockTransport(server([TURN1, TURN2], seen)))
    engine = make_engine("anthropic:claude-sonnet-4-5", tools=[WEATHER], http_client=client,
                         params={"thinking": 2048})
    session, _ = Session.start(engine, [user("Weather in Oslo?")])
    assert session.status == "awaiting_tools"
    blob = dumps(session)
    assert SIGNATURE in blob and "sk-ant-test" not in blob
    restored = loads(blob)
    assert restored == session

    # a fresh engine (another worker) resumes the stored session
    client2 = httpx2.Client(transport=httpx2.MockTransport(server([TURN2], seen)))
    engine2 = make_engine("anthropic:claude-sonnet-4-5", tools=[WEATHER], http_client=client2,
                          params={"thinking": 2048})
    done, result = restored.submit_tool_result(engine2, "toolu_01", "rain, 12C")
    assert done.status in ("idle", "completed")
    assert result.final_response is not None and result.final_response.output_text == "It is raining in Oslo."

    first, second = seen
    assert first["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert first["tools"][0]["name"] == "get_weather"
    assert second["messages"][1] == {"role": "assistant", "content": TURN1["content"]}
    assert second["messages"][2] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_01", "content": "rain, 12C",
         "is_error": False}]}


@pytest.mark.anyio
async def test_thinking_tool_use_chat_async() -> None:
    seen: list[dict[str, Any]] = []
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(server([TURN1, TURN2], seen)))
    tool = Tool(name="get_weather", description="Weather for a city",
                parameters=WEATHER.parameters, handler=lambda args: f"rain in {args['city']}")
    engine = make_engine("anthropic:claude-sonnet-4-5", tools=[tool],
                         async_http_client=client, params={"thinking": 2048})
    result = await achat(engine, [user("Weather in Oslo?")])
    assert result.final_response is not None and result.final_response.output_text == "It is raining in Oslo."
    assert seen[1]["messages"][1]["content"] == TURN1["content"]
    assert seen[1]["messages"][2]["content"][0]["content"] == "rain in Oslo"
    assert result.usage.input_tokens == 100


def test_recorded_thinking_conversation_through_session() -> None:
    """The real thinking recording: turn 2's request, built from the session restored
    from JSON, equals the recorded one (signature included)."""
    [path] = [p for p in FILES if p.name.endswith("test_anthropic_model_thinking_part.json")]
    first, second = load(path)
    seen: list[dict[str, Any]] = []
    responses = [json.loads(first.body), json.loads(second.body)]
    client = httpx2.Client(transport=httpx2.MockTransport(server(responses, seen)))
    engine = make_engine("anthropic:claude-sonnet-4-5", http_client=client,
                         params={"thinking": 1024, "max_tokens": 4096})
    question = first.request["messages"][0]["content"][0]["text"]
    session, result = Session.start(engine, [user(question)])
    assert result.final_response is not None
    assert result.final_response.reasoning == json.loads(first.body)["content"][0]["thinking"]
    session = loads(dumps(session))
    follow_up = second.request["messages"][2]["content"][0]["text"]
    session, result = session.reply(engine, follow_up)
    assert normalize(seen[0]) == normalize(first.request)
    assert normalize(seen[1]) == normalize(second.request)
    assert [m.role for m in session.messages] == ["user", "assistant", "user", "assistant"]


def test_recorded_parallel_tool_calls_through_chat() -> None:
    """The recorded four parallel tool calls: `allm.chat` runs them (concurrently) and
    sends their results back in one user turn, exactly as recorded."""
    [path] = [p for p in FILES if p.name.endswith("test_multiple_parallel_tool_calls.json")]
    first, second = load(path)
    reply = json.loads(first.body)
    results = {b["tool_use_id"]: b["content"] for b in second.request["messages"][2]["content"]}
    by_person = {b["input"]["name"]: results[b["id"]]
                 for b in reply["content"] if b["type"] == "tool_use"}
    spec = first.request["tools"][0]
    tool = Tool(name=spec["name"], description=spec["description"],
                parameters=spec["input_schema"], handler=lambda args: by_person[args["name"]])
    seen: list[dict[str, Any]] = []
    client = httpx2.Client(transport=httpx2.MockTransport(
        server([reply, json.loads(second.body)], seen)))
    engine = make_engine("anthropic:claude-haiku-4-5", tools=[tool], http_client=client,
                         params={"max_tokens": 4096})
    question = first.request["messages"][0]["content"][0]["text"]
    result = chat(engine, [system(first.request["system"]), user(question)],
                  tool_choice="auto")
    assert result.final_response is not None
    assert result.final_response.output_text == json.loads(second.body)["content"][0]["text"]
    assert normalize(seen[0]) == normalize(first.request)
    assert normalize(seen[1]) == normalize(second.request)
    assert result.usage.input_tokens == 423 + 771


def test_recorded_thinking_stream_through_generate_and_stream_generate() -> None:
    [path] = [p for p in FILES if p.name.endswith("test_anthropic_model_thinking_part_stream.json")]
    [it] = load(path)
    expected_message = recorded_message(it)

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"},
                               content=it.body.encode())

    client = httpx2.Client(transport=httpx2.MockTransport(handler))
    engine = make_engine("anthropic:claude-sonnet-4-0", http_client=client,
                         params={"thinking": 1024, "max_tokens": 4096})
    question = it.request["messages"][0]["content"][0]["text"]
    resp = generate(engine, [user(question)], stream=True)
    thinking, text = expected_message["content"]
    assert resp.reasoning == thinking["thinking"]
    assert resp.output_text == text["text"]
    assert resp.message is not None
    assert resp.message.metadata["anthropic"]["content"][0]["signature"] == thinking["signature"]
    events = list(stream_generate(engine, [user(question)]))
    assert "".join(e.delta for e in events if isinstance(e, TextDelta)) == text["text"]
