"""End to end through the public API: `allm.chat` / `allm.achat` / `allm.Session` on the
Gemini adapter (httpx2.MockTransport). The loop must send Gemini's function calls back
with their thought signatures where they were, answer them with functionResponses
carrying the call ids, and keep replay state through `allm.dumps` / `allm.loads`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from allm.engine import make_engine
from allm.facade import generate
from allm.loop import achat, chat
from allm.messages import system, user
from allm.results import ChatResult
from allm.serializer import dumps, loads
from allm.session import Session
from allm.tool import Tool

from .recordings import FILES, load, norm_part, same_contents

KEY = "AIza-chat-test"
SIG = "CiQBDDnWx1yx8n3/k2Q3Pz0s2Gq5rYJ2L9E1wS0VZp8xq7kH7mY="


def _response(parts: list[dict[str, Any]], rid: str, finish: str = "STOP") -> dict[str, Any]:
    return {"candidates": [{"content": {"role": "model", "parts": parts},
                            "finishReason": finish, "index": 0}],
            "usageMetadata": {"promptTokenCount": 40, "candidatesTokenCount": 10,
                              "thoughtsTokenCount": 5, "totalTokenCount": 55},
            "modelVersion": "gemini-3-flash-preview", "responseId": rid}


# Two parallel calls (Gemini 3 signs only the first), then the answer.
TURN1 = _response([
    {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}},
     "thoughtSignature": SIG},
    {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
], "r-1")
TURN2 = _response([{"text": "Oslo: rain. Rome: sun."}], "r-2")


def weather(args: dict[str, Any]) -> str:
    return {"Oslo": "rain", "Rome": "sun"}[args["city"]]


WEATHER = Tool(name="get_weather", description="Weather for a city", handler=weather,
               parameters={"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"]})


def server(responses: list[dict[str, Any] | str], seen: list[httpx2.Request]
           ) -> Callable[[httpx2.Request], httpx2.Response]:
    queue = list(responses)

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        body = queue.pop(0)
        if isinstance(body, str):
            return httpx2.Response(200, headers={"content-type": "text/event-stream"},
                                   content=body.encode())
        return httpx2.Response(200, json=body)

    return handler


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.setenv("GOOGLE_API_KEY", KEY)  # the fallback variable


def check_parallel_tools_run(seen: list[httpx2.Request], result: ChatResult) -> None:
    assert result.final_response is not None
    assert result.final_response.output_text == "Oslo: rain. Rome: sun."
    assert result.usage.input_tokens == 80 and result.usage.output_tokens == 30
    for request in seen:
        assert request.headers["x-goog-api-key"] == KEY and KEY not in str(request.url)
        assert str(request.url).endswith("/v1beta/models/gemini-3-flash-preview:generateContent")
    second = json.loads(seen[1].content)
    model, answers = second["contents"][1], second["contents"][2]
    calls = [p["functionCall"] for p in model["parts"]]
    assert model["role"] == "model" and [c["args"] for c in calls] == [
        {"city": "Oslo"}, {"city": "Rome"}]
    assert model["parts"][0]["thoughtSignature"] == SIG
    assert "thoughtSignature" not in model["parts"][1]
    assert answers["role"] == "user"
    responses = [p["functionResponse"] for p in answers["parts"]]
    assert [r["id"] for r in responses] == [c["id"] for c in calls]
    assert [r["name"] for r in responses] == ["get_weather", "get_weather"]
    assert sorted(json.dumps(r["response"]) for r in responses) == [
        '{"output": "rain"}', '{"output": "sun"}']
    assert len({c["id"] for c in calls}) == 2


def test_chat_two_parallel_tools_then_answer() -> None:
    seen: list[httpx2.Request] = []
    client = httpx2.Client(transport=httpx2.MockTransport(server([TURN1, TURN2], seen)))
    engine = make_engine("gemini:gemini-3-flash-preview", tools=[WEATHER], http_client=client)
    result = chat(engine, [user("Weather in Oslo and Rome?")])
    check_parallel_tools_run(seen, result)


@pytest.mark.anyio
async def test_achat_two_parallel_tools_then_answer() -> None:
    seen: list[httpx2.Request] = []
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(server([TURN1, TURN2], seen)))
    engine = make_engine("gemini:gemini-3-flash-preview", tools=[WEATHER],
                         async_http_client=client)
    result = await achat(engine, [user("Weather in Oslo and Rome?")])
    check_parallel_tools_run(seen, result)


def test_recorded_tool_conversation_through_the_loop() -> None:
    """instructions_only_with_tool_calls: 3 parallel calls, then 3 sequential ones, then
    the final_result call (manual, so the loop stops there). Every request the loop
    sends carries the recorded contents: signatures where Gemini put them."""
    [path] = [p for p in FILES if "instructions_only_with_tool_calls" in p.name]
    turns = load(path)
    topics = iter(["cars", "penguins", "cars", "penguins", "cars", "penguins"])
    generate_topic = Tool(name="generate_topic", handler=lambda args: next(topics),
                          parameters={"type": "object", "properties": {},
                                      "additionalProperties": False})
    final = Tool(name="final_result", manual=True,
                 description="The final response which ends this conversation",
                 parameters={"type": "object", "properties": {"response": {
                     "type": "array", "items": {"type": "string"}}}, "required": ["response"]})
    seen: list[httpx2.Request] = []
    client = httpx2.Client(transport=httpx2.MockTransport(
        server([json.loads(t.body) for t in turns], seen)))
    engine = make_engine("gemini:gemini-3-flash-preview", tools=[generate_topic, final],
                         http_client=client)
    instructions = turns[0].request["systemInstruction"]["parts"][0]["text"]
    result = chat(engine, [system(instructions), user("")], max_turns=8,
                       tool_choice="required")
    assert len(seen) == 5
    last = result.final_response
    assert last is not None and last.tool_calls[0].name == "final_result"
    assert last.tool_calls[0].arguments == json.loads(turns[4].body)["candidates"][0][
        "content"]["parts"][0]["functionCall"]["args"]
    for sent, recorded in zip(seen, turns, strict=True):
        ours = json.loads(sent.content)
        # the handler's answers depend on which parallel call ran first: compare them
        # as a multiset per content, and everything else exactly
        assert _without_answers(ours["contents"]) == _without_answers(
            recorded.request["contents"])
        assert _answers(ours["contents"]) == _answers(recorded.request["contents"])
        assert ours["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}


def _without_answers(contents: list[dict[str, Any]]) -> list[Any]:
    out = []
    for c in contents:
        parts = [norm_part(p) for p in c["parts"]]
        out.append((c["role"], [{k: (v[0] if k == "fr" else v) for k, v in p.items()}
                                for p in parts]))
    return out


def _answers(contents: list[dict[str, Any]]) -> list[list[str]]:
    return [sorted(json.dumps(norm_part(p)["fr"][1]) for p in c["parts"]
                   if "functionResponse" in p) for c in contents]


def test_recorded_thinking_conversation_through_session() -> None:
    """thinking_part: turn 2, built from the session restored from JSON, carries the
    thought part and the signed text part exactly as Gemini returned them."""
    [path] = [p for p in FILES if p.name.endswith("test_google_model_thinking_part.json")]
    first, second = load(path)
    seen: list[httpx2.Request] = []
    client = httpx2.Client(transport=httpx2.MockTransport(
        server([json.loads(first.body), json.loads(second.body)], seen)))
    engine = make_engine("gemini:gemini-3-pro-preview", http_client=client,
                         params={"thinking": True})
    instructions = first.request["systemInstruction"]["parts"][0]["text"]
    question = first.request["contents"][0]["parts"][0]["text"]
    session, result = Session.start(engine, [system(instructions), user(question)])
    assert result.final_response is not None
    parts = json.loads(first.body)["candidates"][0]["content"]["parts"]
    assert result.final_response.reasoning == parts[0]["text"]
    assert result.final_response.output_text == parts[1]["text"]
    blob = dumps(session)
    assert KEY not in blob and parts[1]["thoughtSignature"] in blob
    session = loads(blob)
    follow_up = second.request["contents"][2]["parts"][0]["text"]
    session, result = session.reply(engine, follow_up)
    ours = json.loads(seen[1].content)
    assert same_contents(ours["contents"], second.request["contents"]) == []
    assert ours["generationConfig"] == {"thinkingConfig": {"includeThoughts": True}}
    assert [m.role for m in session.messages] == ["system", "user", "assistant", "user",
                                                  "assistant"]


def test_stream_generate_over_sse() -> None:
    """`generate(..., stream=True)` takes the SSE path and folds the same answer."""
    [path] = [p for p in FILES if p.name.endswith("test_google_model_stream.json")]
    [it] = load(path)
    seen: list[httpx2.Request] = []
    client = httpx2.Client(transport=httpx2.MockTransport(server([it.body], seen)))
    engine = make_engine("gemini:gemini-2.0-flash-exp", http_client=client)
    resp = generate(engine, [user("What is the capital of France?")], stream=True)
    assert resp.output_text == "The capital of France is Paris.\n"
    assert resp.usage.input_tokens == 13 and resp.usage.output_tokens == 8
    assert str(seen[0].url).endswith(":streamGenerateContent?alt=sse")
