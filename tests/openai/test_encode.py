"""Request translation for both endpoints: roles, images (and their pre-flight),
tool calls and results, tools, tool_choice, response formats, neutral params,
headers."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from allm.errors import ValidationError
from allm.image import Image
from allm.messages import (
    ImagePart,
    Message,
    TextPart,
    ToolCall,
    assistant,
    system,
    tool_result,
    user,
)
from allm.providers.base import Call
from allm.providers.openai import ChatCodec, ResponsesCodec
from allm.request import Request
from allm.tool import Tool

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
BMP = b"BM" + b"\x00" * 64

CHAT = ChatCodec(base_url="https://api.openai.com/v1/", organization="org-1", project="proj-1")
RESPONSES = ResponsesCodec(base_url="https://api.openai.com/v1")

WEATHER = Tool(name="get_weather", description="Weather in a city",
               parameters={"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"]})


def chat(request: Request, *, model: str = "gpt-4o", stream: bool = False,
         **call: Any) -> dict[str, Any]:
    req = CHAT.build(request, Call(model=model, **call), api_key="sk-x", stream=stream)
    body: dict[str, Any] = json.loads(req.content)
    return body


def responses(request: Request, *, model: str = "gpt-5", stream: bool = False,
              **call: Any) -> dict[str, Any]:
    req = RESPONSES.build(request, Call(model=model, **call), api_key="sk-x", stream=stream)
    body: dict[str, Any] = json.loads(req.content)
    return body


def req(*messages: Message, **kw: Any) -> Request:
    return Request(messages=messages, **kw)


# ----------------------------------------------------------------------------- chat
def test_chat_url_and_headers() -> None:
    r = CHAT.build(req(user("hi")), Call(model="gpt-4o", params={"extra_headers": {"X-A": "1"}}),
                   api_key="sk-secret", stream=True)
    assert r.method == "POST"
    assert r.url == "https://api.openai.com/v1/chat/completions"
    assert r.headers["authorization"] == "Bearer sk-secret"
    assert r.headers["openai-organization"] == "org-1"
    assert r.headers["openai-project"] == "proj-1"
    assert r.headers["accept"] == "text/event-stream"
    assert r.headers["x-a"] == "1"
    assert "sk-secret" not in repr(r)


@pytest.mark.parametrize(("model", "role"), [
    ("gpt-4o", "system"), ("gpt-4.1-mini", "system"), ("llama3.1", "system"),
    ("o3-mini", "developer"), ("o4-mini", "developer"), ("gpt-5", "developer"),
    ("o1-mini", "user"), ("o1-preview", "user"), ("gpt-5-chat-latest", "system"),
])
def test_chat_system_role_per_model(model: str, role: str) -> None:
    body = chat(req(system("Be brief."), user("hi")), model=model)
    assert body["messages"][0] == {"role": role, "content": "Be brief."}


def test_chat_images_url_and_base64() -> None:
    msg = user(["What is this?", ImagePart(image=Image.from_url("https://x/y.png"), detail="low"),
                Image.from_bytes(PNG)])
    body = chat(req(msg))
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}},
        {"type": "image_url", "image_url": {
            "url": "data:image/png;base64," + base64.b64encode(PNG).decode()}},
    ]


def test_image_preflight_rejects_unsupported_mime() -> None:
    with pytest.raises(ValidationError) as info:
        chat(req(user("hi"), user([Image.from_bytes(BMP)])))
    assert info.value.errors == [("messages.1.content.0", "unsupported_image_format")]
    with pytest.raises(ValidationError):
        responses(req(user([Image.from_bytes(BMP)])))


def test_image_preflight_size_limits() -> None:
    big = Image(data=PNG + b"\x00" * (21 * 1024 * 1024), mime_type="image/png")
    with pytest.raises(ValidationError) as info:
        chat(req(user([ImagePart(image=big)])))
    assert info.value.errors == [("messages.0.content.0", "image_too_large")]
    ok = Image(data=PNG + b"\x00" * (19 * 1024 * 1024), mime_type="image/png")
    with pytest.raises(ValidationError) as info:
        chat(req(user([ImagePart(image=ok), ImagePart(image=ok), ImagePart(image=ok)])))
    assert info.value.errors == [("messages", "images_too_large")]


def test_image_in_system_message_rejected() -> None:
    msg = Message(role="system", content=(TextPart(text="x"), ImagePart(image=Image.from_bytes(PNG))))
    with pytest.raises(ValidationError) as info:
        chat(req(msg, user("hi")))
    assert info.value.errors == [("messages.0.content.1", "image_in_system_message")]


def test_chat_tool_calls_and_results() -> None:
    call = ToolCall(id="call_1", name="get_weather", arguments={"city": "Oslo"})
    body = chat(req(user("weather?"), assistant("", tool_calls=[call]),
                    tool_result("call_1", {"temp": 3}), assistant("Cold.")))
    assert body["messages"][1:] == [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 3}'},
        {"role": "assistant", "content": "Cold."},
    ]


def test_chat_raw_arguments_are_sent_verbatim() -> None:
    call = ToolCall(id="c", name="f", arguments={"a": 1}, raw_arguments='{"a": 1}')
    body = chat(req(user("x"), assistant("", tool_calls=[call])))
    assert body["messages"][1]["tool_calls"][0]["function"]["arguments"] == '{"a": 1}'


def test_chat_tools_choice_and_parallel() -> None:
    strict = Tool(name="s", parameters={"type": "object"}, strict=True)
    body = chat(req(user("x"), tools=(WEATHER, strict), tool_choice="get_weather",
                    params={"parallel_tool_calls": False}))
    assert body["tools"] == [
        {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                          "parameters": WEATHER.parameters}},
        {"type": "function", "function": {"name": "s", "parameters": {"type": "object"},
                                          "strict": True}},
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["parallel_tool_calls"] is False
    for mode in ("auto", "none", "required"):
        assert chat(req(user("x"), tools=(WEATHER,), tool_choice=mode))["tool_choice"] == mode


def test_chat_parallel_tool_calls_needs_tools() -> None:
    assert "parallel_tool_calls" not in chat(req(user("x"), params={"parallel_tool_calls": True}))


def test_chat_response_format() -> None:
    fmt = {"type": "json_schema", "name": "city", "schema": {"type": "object"}, "strict": True}
    assert chat(req(user("x"), response_format=fmt))["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "city", "schema": {"type": "object"}, "strict": True}}
    assert chat(req(user("x"), response_format={"type": "json_object"}))["response_format"] == {
        "type": "json_object"}
    assert "response_format" not in chat(req(user("x"), response_format="text"))


@pytest.mark.parametrize(("model", "key"), [
    ("gpt-4o", "max_completion_tokens"), ("o3-mini", "max_completion_tokens"),
    ("gpt-5", "max_completion_tokens"), ("gpt-3.5-turbo", "max_tokens"),
    ("llama3.1:8b", "max_tokens"),
])
def test_chat_max_tokens_rename(model: str, key: str) -> None:
    body = chat(req(user("x"), params={"max_tokens": 50}), model=model)
    assert body[key] == 50
    assert {"max_tokens", "max_completion_tokens"} - {key} & body.keys() == set()


def test_chat_neutral_params_and_escape_hatches() -> None:
    body = chat(
        req(user("x"), params={"temperature": 0.2, "top_p": 0.9, "stop": ["END"], "seed": 7,
                               "user": "u1", "service_tier": "flex", "reasoning_effort": "low",
                               "logprobs": 3, "top_k": 5, "reasoning_summary": "auto",
                               "extra_body": {"metadata": {"a": "b"}}},
            options={"n": 1}),
        stream=True,
    )
    assert body["temperature"] == 0.2 and body["top_p"] == 0.9 and body["stop"] == ["END"]
    assert body["seed"] == 7 and body["user"] == "u1" and body["service_tier"] == "flex"
    assert "reasoning_effort" not in body  # gpt-4o does not reason: the param is dropped
    assert body["logprobs"] is True and body["top_logprobs"] == 3
    assert body["metadata"] == {"a": "b"} and body["n"] == 1
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert "top_k" not in body and "reasoning_summary" not in body


def test_call_params_and_request_params_merge() -> None:
    body = chat(req(user("x"), params={"temperature": 0.5}),
                params={"temperature": 1.0, "seed": 1})
    assert body["temperature"] == 0.5 and body["seed"] == 1


# ------------------------------------------------------------------------ responses
def test_responses_instructions_and_items() -> None:
    call = ToolCall(id="call_1", name="get_weather", arguments={"city": "Oslo"})
    body = responses(req(
        system("Be brief."), user(["Look", Image.from_url("https://x/y.jpg")]),
        assistant("Checking.", tool_calls=[call]), tool_result("call_1", "3C"),
        system("Now answer."),
    ))
    assert body["instructions"] == "Be brief."
    assert body["input"] == [
        {"role": "user", "content": [
            {"type": "input_text", "text": "Look"},
            {"type": "input_image", "image_url": "https://x/y.jpg", "detail": "auto"}]},
        {"role": "assistant", "content": "Checking."},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather",
         "arguments": '{"city":"Oslo"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "3C"},
        {"role": "developer", "content": "Now answer."},
    ]
    assert body["include"] == ["reasoning.encrypted_content"]
    assert responses(req(user("x"), system("late")), model="gpt-4o")["input"][1]["role"] == "system"
    assert "include" not in responses(req(user("x")), model="gpt-4o")


def test_responses_tools_format_and_params() -> None:
    fmt = {"type": "json_schema", "name": "city", "schema": {"type": "object"}, "strict": True}
    body = responses(req(user("x"), tools=(WEATHER,), tool_choice={"type": "tool", "name": "get_weather"},
                         response_format=fmt,
                         params={"max_tokens": 100, "reasoning_effort": "high",
                                 "reasoning_summary": "detailed", "temperature": 1.0,
                                 "stop": ["x"], "seed": 3, "parallel_tool_calls": True}),
                     stream=True)
    assert body["tools"] == [{"type": "function", "name": "get_weather",
                              "description": "Weather in a city",
                              "parameters": WEATHER.parameters, "strict": False}]
    assert body["tool_choice"] == {"type": "function", "name": "get_weather"}
    assert body["text"] == {"format": {"type": "json_schema", "name": "city",
                                       "schema": {"type": "object"}, "strict": True}}
    assert body["max_output_tokens"] == 100
    assert body["reasoning"] == {"effort": "high", "summary": "detailed"}
    assert body["parallel_tool_calls"] is True and body["stream"] is True
    assert "stop" not in body and "seed" not in body and "stream_options" not in body


def test_responses_replays_reasoning_and_item_ids() -> None:
    meta = {"openai": {"response_id": "resp_1", "items": [
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "enc"},
        {"type": "message", "id": "msg_1", "phase": "commentary", "text": "Let me check."},
        {"type": "function_call", "id": "fc_1", "call_id": "call_1"},
    ]}}
    call = ToolCall(id="call_1", name="f", arguments={}, raw_arguments="{}",
                    metadata={"openai": {"item_id": "fc_1"}})
    msg = assistant("Let me check.", tool_calls=[call], metadata=meta)
    body = responses(req(user("q"), msg, tool_result("call_1", "ok")))
    assert body["input"][1:] == [
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "enc"},
        {"type": "message", "id": "msg_1", "phase": "commentary", "role": "assistant",
         "status": "completed",
         "content": [{"type": "output_text", "text": "Let me check.", "annotations": []}]},
        {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}",
         "id": "fc_1"},
        {"type": "function_call_output", "call_id": "call_1", "output": "ok"},
    ]
    # Edited text: sent as a plain assistant message without the stale item id.
    edited = assistant("Something else.", tool_calls=[call], metadata=meta)
    items = responses(req(user("q"), edited))["input"]
    assert {"role": "assistant", "content": "Something else."} in items
    assert all(i.get("id") != "msg_1" for i in items)


@pytest.mark.parametrize(("model", "sampling", "reasoning"), [
    ("gpt-4o", True, False), ("gpt-4.1-mini", True, False), ("gpt-3.5-turbo", True, False),
    ("o3-mini", False, True), ("gpt-5", False, True), ("gpt-5-chat-latest", True, False),
    ("deepseek-reasoner", True, True), ("llama3.1", True, True),
])
def test_params_per_model_family(model: str, sampling: bool, reasoning: bool) -> None:
    params = {"temperature": 0.3, "top_p": 0.5, "reasoning_effort": "low",
              "reasoning_summary": "auto"}
    body = chat(req(user("x"), params=params), model=model)
    assert ("temperature" in body and "top_p" in body) is sampling
    assert ("reasoning_effort" in body) is reasoning
    body = responses(req(user("x"), params=params), model=model)
    assert ("temperature" in body and "top_p" in body) is sampling
    assert ("reasoning" in body) is reasoning


def test_animated_gif_rejected() -> None:
    frame = b"\x21\xf9\x04\x00\x00\x00\x00\x00\x2c" + b"\x00" * 10
    still = b"GIF89a" + b"\x00" * 7 + frame + b"\x3b"
    animated = b"GIF89a" + b"\x00" * 7 + frame + frame + b"\x3b"
    chat(req(user([Image.from_bytes(still)])))
    with pytest.raises(ValidationError) as info:
        chat(req(user([Image.from_bytes(animated)])))
    assert info.value.errors == [("messages.0.content.0", "unsupported_image_format")]


def test_responses_tool_without_description() -> None:
    tool = Tool(name="t", parameters={"type": "object"})
    assert responses(req(user("x"), tools=(tool,)))["tools"] == [
        {"type": "function", "name": "t", "parameters": {"type": "object"}, "strict": False}]


def test_image_in_assistant_message_rejected() -> None:
    msg = Message(role="assistant", content=(ImagePart(image=Image.from_bytes(PNG)),))
    with pytest.raises(ValidationError) as info:
        responses(req(user("hi"), msg))
    assert info.value.errors == [("messages.1.content.0", "image_in_assistant_message")]
