"""Request encoding: every decision `encode` documents, checked on the built body."""

from __future__ import annotations

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
from allm.providers.anthropic.codec import AnthropicCodec, messages_url
from allm.providers.anthropic.models import model_info
from allm.providers.base import Call
from allm.request import Request
from allm.tool import Tool

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
WEATHER = Tool(name="get_weather", description="Weather for a city",
               parameters={"type": "object", "properties": {"city": {"type": "string"}}})


def build(messages: list[Message], *, model: str = "claude-sonnet-4-5", stream: bool = False,
          codec: AnthropicCodec | None = None, call: Call | None = None,
          **kw: Any) -> dict[str, Any]:
    codec = codec or AnthropicCodec()
    request = Request(messages=tuple(messages), model=model, **kw)
    http = codec.build(request, call or Call(model=model), api_key="sk-x", stream=stream)
    return json.loads(http.content)  # type: ignore[no-any-return]


def headers(**kw: Any) -> dict[str, str]:
    codec = AnthropicCodec(**kw)
    http = codec.build(Request(messages=(user("hi"),), model="claude-haiku-4-5"),
                       Call(model="claude-haiku-4-5"), api_key="sk-x", stream=False)
    return dict(http.headers)


def test_minimal_body_and_headers() -> None:
    assert build([user("hi")]) == {
        "model": "claude-sonnet-4-5", "max_tokens": 16384,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    }
    h = headers(beta=["a-1", "b-2"])
    assert h["x-api-key"] == "sk-x"
    assert h["anthropic-version"] == "2023-06-01"
    assert h["anthropic-beta"] == "a-1,b-2"
    assert "authorization" not in h
    assert build([user("hi")], stream=True)["stream"] is True


def test_urls() -> None:
    assert messages_url("https://api.anthropic.com") == "https://api.anthropic.com/v1/messages"
    assert messages_url("http://proxy/v1/") == "http://proxy/v1/messages"


def test_system_messages_hoisted_and_roles_merged() -> None:
    body = build([system("Be brief."), user("a"), user("b"), assistant("c"),
                  system("Use metric units."), assistant("d"), user("e")])
    assert body["system"] == "Be brief.\n\nUse metric units."
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "c"},
                                          {"type": "text", "text": "d"}]},
        {"role": "user", "content": [{"type": "text", "text": "e"}]},
    ]


def test_empty_text_is_dropped() -> None:
    body = build([user("a"), assistant(""), user("b")])
    assert body["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]


def test_tool_calls_and_results_one_user_turn_results_first() -> None:
    calls = (ToolCall(id="t1", name="get_weather", arguments={"city": "Oslo"}),
             ToolCall(id="t2", name="get_weather", arguments={"city": "Rome"}))
    body = build([user("weather?"), assistant("Checking.", tool_calls=calls),
                  tool_result("t1", "rain"), tool_result("t2", "boom", is_error=True),
                  user("and tomorrow?")], tools=(WEATHER,))
    assert body["messages"][1] == {"role": "assistant", "content": [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "t2", "name": "get_weather", "input": {"city": "Rome"}},
    ]}
    assert body["messages"][2] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t1", "content": "rain", "is_error": False},
        {"type": "tool_result", "tool_use_id": "t2", "content": "boom", "is_error": True},
        {"type": "text", "text": "and tomorrow?"},
    ]}
    assert body["tools"] == [{"name": "get_weather", "description": "Weather for a city",
                              "input_schema": WEATHER.parameters}]
    assert "tool_choice" not in body


def test_tool_message_without_id_is_named() -> None:
    with pytest.raises(ValidationError) as exc:
        build([user("x"), Message(role="tool", content="r")])
    assert exc.value.errors == [("messages.1.tool_call_id", "missing")]


@pytest.mark.parametrize(("choice", "wire"), [
    ("auto", {"type": "auto"}), ("required", {"type": "any"}), ("none", {"type": "none"}),
    ("get_weather", {"type": "tool", "name": "get_weather"}),
    ({"type": "function", "function": {"name": "get_weather"}},
     {"type": "tool", "name": "get_weather"}),
    ({"type": "any"}, {"type": "any"}),
])
def test_tool_choice(choice: Any, wire: dict[str, Any]) -> None:
    assert build([user("x")], tools=(WEATHER,), tool_choice=choice)["tool_choice"] == wire


def test_tool_choice_errors_and_parallel() -> None:
    with pytest.raises(ValidationError) as exc:
        build([user("x")], tools=(WEATHER,), tool_choice="nope")
    assert exc.value.errors == [("tool_choice", "unknown_tool")]
    with pytest.raises(ValidationError):
        build([user("x")], tool_choice="required")
    body = build([user("x")], tools=(WEATHER,), params={"parallel_tool_calls": False})
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    body = build([user("x")], tools=(WEATHER,), tool_choice="required",
                 params={"parallel_tool_calls": False})
    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}


def test_server_tools_and_tool_extras() -> None:
    search = Tool(name="web_search", metadata={"anthropic": {"type": "web_search_20250305",
                                                             "max_uses": 3}})
    lazy = Tool(name="rare", parameters={"type": "object"},
                metadata={"anthropic": {"defer_loading": True}})
    strict = Tool(name="s", parameters={"type": "object"}, strict=True)
    tools = build([user("x")], tools=(search, lazy, strict))["tools"]
    assert tools[0] == {"name": "web_search", "type": "web_search_20250305", "max_uses": 3}
    assert tools[1]["defer_loading"] is True
    assert tools[2]["strict"] is True
    # models without structured outputs do not get `strict`
    assert "strict" not in build([user("x")], model="claude-3-5-haiku-20241022",
                                 tools=(strict,))["tools"][0]


def test_images_base64_url_and_preflight() -> None:
    msg = user(["What is this?", Image.from_bytes(PNG), ImagePart.from_url("https://x/y.jpg")])
    content = build([msg])["messages"][0]["content"]
    assert content[1]["source"]["type"] == "base64"
    assert content[1]["source"]["media_type"] == "image/png"
    assert content[2] == {"type": "image", "source": {"type": "url", "url": "https://x/y.jpg"}}
    big = Image.from_bytes(PNG + b"\x00" * (5 * 1024 * 1024))
    with pytest.raises(ValidationError) as exc:
        build([user("a"), user(["b", big])])
    assert exc.value.errors == [("messages.1.content.1", "image_too_large")]
    bmp = ImagePart(image=Image.from_bytes(b"BM" + b"\x00" * 10, "image/bmp"))
    with pytest.raises(ValidationError) as exc:
        build([user(["x", bmp])])
    assert exc.value.errors == [("messages.0.content.1", "unsupported_image_format")]


def test_verbatim_blocks_escape_hatch() -> None:
    doc = {"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}}
    msg = user([TextPart(text="", metadata={"anthropic": doc}), "Summarise"])
    assert build([msg])["messages"][0]["content"][0] == doc


def test_max_tokens_rules() -> None:
    assert build([user("x")], model="claude-3-haiku-20240307")["max_tokens"] == 4096
    assert build([user("x")], model="claude-3-5-sonnet-latest")["max_tokens"] == 8192
    assert build([user("x")], model="some-proxy-model")["max_tokens"] == 4096
    assert build([user("x")], params={"max_tokens": 99})["max_tokens"] == 99
    body = build([user("x")], params={"thinking": 20000})
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 20000}
    assert body["max_tokens"] > 20000
    with pytest.raises(ValidationError) as exc:
        build([user("x")], params={"thinking": 2048, "max_tokens": 1024})
    assert exc.value.errors == [("params.max_tokens", "too_small")]


def test_thinking_and_effort() -> None:
    assert build([user("x")], model="claude-opus-4-6",
                 params={"thinking": True})["thinking"] == {"type": "adaptive"}
    assert build([user("x")], model="claude-sonnet-4-5",
                 params={"thinking": True})["thinking"]["type"] == "enabled"
    body = build([user("x")], model="claude-opus-4-6", params={"reasoning_effort": "high"})
    assert body["thinking"] == {"type": "adaptive"}
    assert body["output_config"] == {"effort": "high"}
    body = build([user("x")], model="claude-sonnet-4-5", params={"reasoning_effort": "low"})
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert "output_config" not in body
    body = build([user("x")], model="claude-3-5-haiku-latest",
                 params={"reasoning_effort": "high"})
    assert "thinking" not in body
    raw = {"type": "adaptive", "display": "summarized"}
    assert build([user("x")], model="claude-opus-4-7",
                 params={"thinking": raw})["thinking"] == raw


def test_prompt_caching() -> None:
    body = build([system("sys"), user("a"), assistant("b"), user("c")], tools=(WEATHER,),
                 params={"cache": True})
    eph = {"type": "ephemeral"}
    assert body["system"] == [{"type": "text", "text": "sys", "cache_control": eph}]
    assert body["tools"][-1]["cache_control"] == eph
    assert body["messages"][-1]["content"][-1]["cache_control"] == eph
    assert "cache_control" not in body["messages"][0]["content"][-1]
    body = build([user("a", metadata={"cache": True}), assistant("b"), user("c")])
    assert body["messages"][0]["content"][-1]["cache_control"] == eph
    assert "cache_control" not in body["messages"][2]["content"][-1]
    body = build([user("a")], params={"cache": {"ttl": "1h"}})
    assert body["messages"][0]["content"][-1]["cache_control"] == {"type": "ephemeral",
                                                                   "ttl": "1h"}
    assert build([user("a")], params={"cache": "auto"})["cache_control"] == eph


SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
FORMAT = {"type": "json_schema", "name": "city", "schema": SCHEMA, "strict": True}


def test_structured_output_native_or_tool() -> None:
    body = build([user("x")], model="claude-sonnet-4-5", response_format=FORMAT)
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}
    assert "tools" not in body
    codec = AnthropicCodec()
    body = build([user("x")], model="claude-3-5-haiku-latest", response_format=FORMAT,
                 codec=codec)
    assert body["tools"][-1]["name"] == "respond_with_json_city"
    assert body["tool_choice"] == {"type": "tool", "name": "respond_with_json_city"}
    assert codec.structured_tool == "respond_with_json_city"
    body = build([user("x")], model="claude-3-5-haiku-latest", response_format=FORMAT,
                 tools=(WEATHER,))
    assert body["tool_choice"] == {"type": "any"}
    # structured-finalize pass 2 sends tool_choice "none": only the answer tool is allowed
    body = build([user("x")], model="claude-3-5-haiku-latest", response_format=FORMAT,
                 tools=(WEATHER,), tool_choice="none")
    assert body["tool_choice"] == {"type": "tool", "name": "respond_with_json_city"}
    forced = AnthropicCodec(structured_output="tool")
    body = build([user("x")], model="claude-sonnet-4-5", response_format=FORMAT, codec=forced)
    assert "output_config" not in body and forced.structured_tool is not None
    body = build([user("x")], model="claude-sonnet-4-5", response_format=FORMAT,
                 call=Call(model="claude-sonnet-4-5", adapter_opts={"structured_output": "tool"}))
    assert body["tool_choice"]["name"] == "respond_with_json_city"


def test_sampling_and_passthrough() -> None:
    body = build([user("x")], params={"temperature": 0.2, "top_p": 0.9, "top_k": 40,
                                      "stop": "END", "user": "u-1", "seed": 7,
                                      "extra_body": {"metadata": {"x": 1}}},
                 options={"mcp_servers": [{"type": "url"}]})
    assert (body["temperature"], body["top_p"], body["top_k"]) == (0.2, 0.9, 40)
    assert body["stop_sequences"] == ["END"]
    assert body["metadata"] == {"user_id": "u-1", "x": 1}
    assert body["mcp_servers"] == [{"type": "url"}]
    assert "seed" not in body


def test_assistant_replay_verbatim_or_rebuilt() -> None:
    raw = [{"type": "thinking", "thinking": "hmm", "signature": "SIG"},
           {"type": "text", "text": "Let me look."},
           {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Oslo"}}]
    call = ToolCall(id="t1", name="get_weather", arguments={"city": "Oslo"})
    msg = assistant("Let me look.", tool_calls=[call], metadata={"anthropic": {"content": raw}})
    body = build([user("q"), msg, tool_result("t1", "rain")], tools=(WEATHER,))
    assert body["messages"][1]["content"] == raw
    edited = assistant("Edited.", tool_calls=[call], metadata={"anthropic": {"content": raw}})
    body = build([user("q"), edited, tool_result("t1", "rain")], tools=(WEATHER,))
    assert body["messages"][1]["content"] == [
        raw[0], {"type": "text", "text": "Edited."}, raw[2]]
    structured = assistant('{"city":"Oslo"}', metadata={"structured_output_tool": True})
    body = build([user("q"), structured, user("again")])
    assert body["messages"][1]["content"] == [{"type": "text", "text": '{"city":"Oslo"}'}]


def test_invalid_params_are_named() -> None:
    with pytest.raises(ValidationError) as exc:
        build([user("x")], params={"thinking": "lots"})
    assert exc.value.errors == [("params.thinking", "invalid")]
    with pytest.raises(ValidationError) as exc:
        build([user("x")], model="claude-sonnet-4-5", params={"reasoning_effort": "extreme"})
    assert exc.value.errors == [("params.reasoning_effort", "invalid")]
    with pytest.raises(ValidationError) as exc:
        AnthropicCodec().build(Request(messages=(user("x"),)), Call(), api_key="k", stream=False)
    assert exc.value.errors == [("model", "missing")]


@pytest.mark.parametrize(("model", "native", "adaptive", "max_tokens"), [
    ("claude-sonnet-4-5-20250929", True, False, 16384),
    ("claude-haiku-4-5", True, False, 16384),
    ("claude-opus-4-1-20250805", True, False, 16384),
    ("claude-opus-4-20250514", False, False, 16384),
    ("claude-sonnet-4-0", False, False, 16384),
    ("claude-opus-4-6", True, True, 16384),
    ("claude-sonnet-4-6", True, True, 16384),
    ("claude-opus-5", True, True, 16384),
    ("claude-3-7-sonnet-latest", False, False, 16384),
    ("claude-3-5-haiku-20241022", False, False, 8192),
    ("claude-3-haiku-20240307", False, False, 4096),
])
def test_model_table(model: str, native: bool, adaptive: bool, max_tokens: int) -> None:
    info = model_info(model)
    assert (info.native_json_schema, info.adaptive_thinking, info.default_max_tokens) == (
        native, adaptive, max_tokens)


def test_structured_output_accepts_the_openai_nesting() -> None:
    nested = {"type": "json_schema", "json_schema": {"name": "city", "schema": SCHEMA}}
    codec = AnthropicCodec()
    body = build([user("x")], model="claude-3-5-haiku-latest", response_format=nested,
                 codec=codec)
    assert body["tools"][-1] == {"name": "respond_with_json_city", "input_schema": SCHEMA,
                                 "description": body["tools"][-1]["description"]}
    assert build([user("x")], response_format={"type": "json_object"}).get("output_config") is None
