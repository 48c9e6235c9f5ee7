"""The one Gemini recording that is not generateContent: Gemini's OpenAI-compatible
endpoint (``/v1beta/openai/chat/completions``), which answers tool calls with an empty
``id``. It is replayed through `allm.providers.OpenAI` pointed at that base URL, the
documented way to use it, and turn 2 is built from allm's own turn-1 result."""

from __future__ import annotations

import json
from typing import Any

import httpx2

from allm.collector import StreamCollector
from allm.messages import Message, tool_result, user
from allm.providers.base import Call
from allm.providers.openai import OpenAI
from allm.request import Request
from allm.tool import Tool

from .recordings import FIXTURES

PATH = FIXTURES / "pydantic-ai__test_compatible_api_with_tool_calls_without_id.json"
BASE = "https://generativelanguage.googleapis.com/v1beta/openai"


def test_openai_compatible_endpoint_replay() -> None:
    turns = json.loads(PATH.read_text())["interactions"]
    queue = [t["response"]["body"] for t in turns]
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, headers={"content-type": "application/json"},
                               content=queue.pop(0).encode())

    adapter = OpenAI(base_url=BASE, endpoint="chat", retry=False,
                     http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))
    first: dict[str, Any] = json.loads(turns[0]["request"]["body"])
    decl = first["tools"][0]["function"]
    tool = Tool(name=decl["name"], description=decl["description"], parameters=decl["parameters"])
    model = first["model"]
    call = Call(model=model, api_key="AIza-compat", stream=False)
    messages: list[Message] = [user(first["messages"][0]["content"])]

    events = list(adapter.stream(Request(messages=tuple(messages), tools=(tool,),
                                         tool_choice="auto"), call))
    r1 = StreamCollector().collect(events).to_response()
    assert r1.finish_reason == "tool_calls"
    [tc] = r1.tool_calls
    assert tc.name == "get_current_time" and tc.arguments == {}
    assert tc.id  # the endpoint sent "": allm gives the call an id of its own
    assert r1.usage.input_tokens == 35 and r1.usage.total_tokens == 109
    assert str(seen[0].url) == BASE + "/chat/completions"

    assert r1.message is not None
    messages += [r1.message, tool_result(tc.id, "Noon")]
    events = list(adapter.stream(Request(messages=tuple(messages), tools=(tool,),
                                         tool_choice="auto"), call))
    r2 = StreamCollector().collect(events).to_response()
    assert r2.output_text == "The current time is Noon." and r2.finish_reason == "stop"

    sent = json.loads(seen[1].content)
    recorded = json.loads(turns[1]["request"]["body"])
    assistant = sent["messages"][1]
    assert assistant["role"] == "assistant"
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"]))
            for c in assistant["tool_calls"]] == [
        (c["function"]["name"], json.loads(c["function"]["arguments"]))
        for c in recorded["messages"][1]["tool_calls"]]
    answer = sent["messages"][2]
    assert answer["role"] == "tool" and answer["content"] == recorded["messages"][2]["content"]
    assert answer["tool_call_id"] == assistant["tool_calls"][0]["id"] == tc.id
