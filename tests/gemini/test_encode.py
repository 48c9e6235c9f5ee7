"""Request encoding: URL and key placement, messages, images, tools, schemas, params."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from allm.errors import AdapterError, ValidationError
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
from allm.providers.gemini.codec import GeminiCodec
from allm.providers.gemini.encode import DUMMY_THOUGHT_SIGNATURE, tool_response_object
from allm.providers.gemini.schema import clean_json_schema, to_openapi_schema
from allm.request import Request
from allm.tool import Tool

CODEC = GeminiCodec()
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
GIF = b"GIF89a" + b"\0" * 64
WEATHER = Tool(name="get_weather", description="Weather for a city", parameters={
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
    "additionalProperties": False, "$schema": "http://json-schema.org/draft-07/schema#"})


def body(*messages: Message, model: str = "gemini-2.5-flash", adapter_opts: Any = None,
         params: Any = None, **kw: Any) -> dict[str, Any]:
    request = Request(messages=messages, params=params or {}, **kw)
    return CODEC.body(request, Call(model=model, adapter_opts=adapter_opts or {}))


# -- URL, headers, key ----------------------------------------------------------------
def test_url_and_key_only_in_header() -> None:
    req = CODEC.build(Request(messages=(user("hi"),)), Call(model="gemini-2.5-flash"),
                      api_key="SECRET-KEY", stream=False)
    assert req.url == ("https://generativelanguage.googleapis.com/v1beta/models/"
                       "gemini-2.5-flash:generateContent")
    assert req.headers["x-goog-api-key"] == "SECRET-KEY"
    assert "SECRET-KEY" not in req.url and "SECRET-KEY" not in repr(req)
    assert "SECRET-KEY" not in req.content.decode()
    stream = CODEC.build(Request(messages=(user("hi"),)), Call(model="models/gemini-2.5-pro"),
                         api_key="k", stream=True)
    assert stream.url.endswith("/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse")
    assert stream.headers["accept"] == "text/event-stream"
    alpha = CODEC.build(Request(messages=(user("hi"),)), Call(
        model="gemini-3-pro-preview", adapter_opts={"api_version": "v1alpha"}), api_key="k",
        stream=False)
    assert "/v1alpha/models/gemini-3-pro-preview:generateContent" in alpha.url
    v1 = GeminiCodec(base_url="http://localhost:9999/", api_version="v1")
    assert v1.url("tunedModels/my-model", stream=False) == (
        "http://localhost:9999/v1/tunedModels/my-model:generateContent")


def test_extra_headers_cannot_override_key() -> None:
    req = CODEC.build(Request(messages=(user("hi"),), params={"extra_headers": {
        "x-goog-api-key": "other", "x-trace": "1"}}), Call(model="m"), api_key="k", stream=False)
    assert req.headers["x-goog-api-key"] == "k" and req.headers["x-trace"] == "1"


def test_missing_model() -> None:
    with pytest.raises(ValidationError) as info:
        CODEC.build(Request(messages=(user("hi"),)), Call(), api_key="k", stream=False)
    assert ("model", "missing") in info.value.errors


# -- messages -------------------------------------------------------------------------
def test_system_user_assistant_roles() -> None:
    b = body(system("Be brief."), system("Be kind."), user("Hi"), assistant("Hello!"),
             user(""))
    assert b["systemInstruction"] == {"role": "user", "parts": [{"text": "Be brief."},
                                                                {"text": "Be kind."}]}
    assert b["contents"] == [
        {"role": "user", "parts": [{"text": "Hi"}]},
        {"role": "model", "parts": [{"text": "Hello!"}]},
        {"role": "user", "parts": [{"text": ""}]},
    ]


def test_images_inline_gs_and_files_api() -> None:
    msg = user(["Look", Image.from_bytes(PNG),
                ImagePart(image=Image.from_url("gs://bucket/cat.png", "image/png")),
                ImagePart(image=Image.from_url(
                    "https://generativelanguage.googleapis.com/v1beta/files/abc"))])
    parts = body(msg)["contents"][0]["parts"]
    assert parts[0] == {"text": "Look"}
    assert parts[1] == {"inlineData": {"mimeType": "image/png",
                                       "data": base64.b64encode(PNG).decode()}}
    assert parts[2] == {"fileData": {"fileUri": "gs://bucket/cat.png", "mimeType": "image/png"}}
    assert parts[3] == {"fileData": {
        "fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc"}}


def test_http_image_url_is_unsupported_unless_opted_in() -> None:
    msg = user(["what?", ImagePart.from_url("https://example.com/cat.png")])
    with pytest.raises(AdapterError) as info:
        body(msg)
    assert info.value.reason == "unsupported_feature"
    assert "messages.0.content.1" in info.value.message
    parts = body(msg, adapter_opts={"url_images": "file_data"})["contents"][0]["parts"]
    assert parts[1] == {"fileData": {"fileUri": "https://example.com/cat.png"}}


def test_image_mime_and_system_images_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        body(user([Image.from_bytes(GIF)]))
    assert info.value.errors == [("messages.0.content.0", "unsupported_image_format")]
    with pytest.raises(ValidationError) as info:
        body(Message(role="system", content=(ImagePart(image=Image.from_bytes(PNG)),)))
    assert info.value.errors == [("messages.0.content", "image_in_system")]


def test_image_part_gemini_metadata_is_merged() -> None:
    part = ImagePart(image=Image.from_bytes(PNG),
                     metadata={"gemini": {"mediaResolution": {"level": "MEDIA_RESOLUTION_LOW"}}})
    parts = body(user([part]))["contents"][0]["parts"]
    assert parts[0]["mediaResolution"] == {"level": "MEDIA_RESOLUTION_LOW"}


def test_request_too_large() -> None:
    big = Image.from_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * (16 * 1024 * 1024))
    with pytest.raises(ValidationError) as info:
        CODEC.build(Request(messages=(user([big]),)), Call(model="m"), api_key="k",
                    stream=False)
    assert info.value.errors == [("messages", "request_too_large")]


# -- tool calls and results -----------------------------------------------------------
def test_tool_calls_results_and_signatures() -> None:
    calls = (ToolCall(id="c1", name="get_weather", arguments={"city": "Oslo"},
                      metadata={"gemini": {"thoughtSignature": "U0lH"}}),
             ToolCall(id="c2", name="get_weather", arguments={"city": "Rome"}))
    b = body(user("weather?"), assistant("Checking.", tool_calls=calls),
             tool_result("c1", {"temp": 3}), tool_result("c2", "sunny"),
             tool_result("c2", "boom", is_error=True), user("thanks"))
    assert b["contents"][1] == {"role": "model", "parts": [
        {"text": "Checking."},
        {"functionCall": {"id": "c1", "name": "get_weather", "args": {"city": "Oslo"}},
         "thoughtSignature": "U0lH"},
        {"functionCall": {"id": "c2", "name": "get_weather", "args": {"city": "Rome"}}},
    ]}
    assert b["contents"][2] == {"role": "user", "parts": [
        {"functionResponse": {"id": "c1", "name": "get_weather", "response": {"temp": 3}}},
        {"functionResponse": {"id": "c2", "name": "get_weather",
                              "response": {"output": "sunny"}}},
        {"functionResponse": {"id": "c2", "name": "get_weather",
                              "response": {"error": "boom"}}},
    ]}
    assert b["contents"][3] == {"role": "user", "parts": [{"text": "thanks"}]}


def test_unsigned_first_call_gets_bypass_signature() -> None:
    call = ToolCall(id="call_1", name="get_weather", arguments={})  # e.g. from OpenAI
    b = body(user("q"), assistant(tool_calls=[call]), tool_result("call_1", "x"))
    assert b["contents"][1]["parts"] == [{
        "functionCall": {"id": "call_1", "name": "get_weather", "args": {}},
        "thoughtSignature": DUMMY_THOUGHT_SIGNATURE}]
    assert base64.b64decode(DUMMY_THOUGHT_SIGNATURE) == b"skip_thought_signature_validator"
    off = body(user("q"), assistant(tool_calls=[call]), tool_result("call_1", "x"),
               adapter_opts={"thought_signature_fallback": False})
    assert "thoughtSignature" not in off["contents"][1]["parts"][0]


def test_tool_result_needs_a_name() -> None:
    with pytest.raises(ValidationError) as info:
        body(user("q"), tool_result("nope", "x"))
    assert info.value.errors == [("messages.1.tool_call_id", "unknown_tool_call")]
    ok = body(user("q"), tool_result("nope", "x", name="lookup"))
    assert ok["contents"][1]["parts"][0]["functionResponse"]["name"] == "lookup"


@pytest.mark.parametrize(("text", "is_error", "expected"), [
    ('{"a": 1}', False, {"a": 1}), ("[1, 2]", False, {"output": [1, 2]}),
    ("plain text", False, {"output": "plain text"}), ('"quoted"', False, {"output": "quoted"}),
    ("42", False, {"output": "42"}), ("{broken", False, {"output": "{broken"}),
    ("failed", True, {"error": "failed"}), ('{"code": 3}', True, {"error": {"code": 3}}),
])
def test_tool_response_object(text: str, is_error: bool, expected: dict[str, Any]) -> None:
    assert tool_response_object(text, is_error) == expected


# -- replay of decoded turns ----------------------------------------------------------
def decoded_message() -> Message:
    return Message(role="assistant", content="Answer.", tool_calls=(
        ToolCall(id="x1", name="f", arguments={"a": 1},
                 metadata={"gemini": {"thoughtSignature": "RkM="}}),),
        metadata={"reasoning": "Think A.Think B.", "gemini": {"parts": [
            {"type": "thought", "chars": 8}, {"type": "thought", "chars": 8,
                                              "thoughtSignature": "VEg="},
            {"type": "text", "chars": 7, "thoughtSignature": "VFg="},
            {"type": "function_call", "id": "x1"},
            {"type": "raw", "part": {"executableCode": {"code": "1"}}},
        ]}})


def test_replay_puts_every_part_back_where_it_was() -> None:
    b = body(user("q"), decoded_message(), tool_result("x1", "ok"))
    assert b["contents"][1]["parts"] == [
        {"text": "Think A.", "thought": True},
        {"text": "Think B.", "thought": True, "thoughtSignature": "VEg="},
        {"text": "Answer.", "thoughtSignature": "VFg="},
        {"functionCall": {"id": "x1", "name": "f", "args": {"a": 1}}, "thoughtSignature": "RkM="},
        {"executableCode": {"code": "1"}},
    ]
    lean = body(user("q"), decoded_message(), tool_result("x1", "ok"),
                adapter_opts={"replay_thoughts": False})
    assert lean["contents"][1]["parts"][0] == {"text": "Think B.", "thought": True,
                                               "thoughtSignature": "VEg="}


def test_edited_message_falls_back_to_text_and_calls() -> None:
    from dataclasses import replace

    edited = replace(decoded_message(), content="Edited answer.")
    parts = body(user("q"), edited, tool_result("x1", "ok"))["contents"][1]["parts"]
    assert parts == [
        {"text": "Edited answer."},
        {"functionCall": {"id": "x1", "name": "f", "args": {"a": 1}}, "thoughtSignature": "RkM="},
    ]


# -- tools, tool choice, schemas -----------------------------------------------------
def test_tools_json_schema_mode() -> None:
    b = body(user("q"), tools=(WEATHER,), tool_choice="auto")
    decl = b["tools"][0]["functionDeclarations"][0]
    assert decl["name"] == "get_weather" and decl["description"] == "Weather for a city"
    assert "$schema" not in decl["parametersJsonSchema"]
    assert decl["parametersJsonSchema"]["additionalProperties"] is False
    assert b["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}


@pytest.mark.parametrize(("choice", "config"), [
    ("auto", {"mode": "AUTO"}), ("none", {"mode": "NONE"}), ("required", {"mode": "ANY"}),
    ("get_weather", {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
    ({"type": "function", "function": {"name": "get_weather"}},
     {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
    ({"type": "tool", "name": "get_weather"},
     {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
    ({"mode": "VALIDATED"}, {"mode": "VALIDATED"}),
])
def test_tool_choice(choice: Any, config: dict[str, Any]) -> None:
    b = body(user("q"), tools=(WEATHER,), tool_choice=choice)
    assert b["toolConfig"] == {"functionCallingConfig": config}


def test_tool_choice_unknown_and_no_tools() -> None:
    with pytest.raises(ValidationError):
        body(user("q"), tools=(WEATHER,), tool_choice="other_tool")
    assert "toolConfig" not in body(user("q"), tool_choice="required")


def test_bad_tool_name() -> None:
    with pytest.raises(ValidationError) as info:
        body(user("q"), tools=(Tool(name="has space"),))
    assert info.value.errors == [("tools.0.name", "invalid_name")]


def test_openapi_schema_mode() -> None:
    schema = {
        "$defs": {"Pet": {"type": "object", "properties": {
            "kind": {"const": "cat"}, "age": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "born": {"type": "string", "format": "date"},
            "tags": {"type": ["array", "null"], "items": {"type": "string"}},
        }, "required": ["kind"], "additionalProperties": False}},
        "type": "object", "properties": {"pet": {"$ref": "#/$defs/Pet"},
                                         "level": {"enum": [1, 2, 3], "type": "integer"}},
        "required": ["pet"], "additionalProperties": False,
    }
    out = to_openapi_schema(schema)
    assert out == {
        "type": "OBJECT",
        "properties": {
            "pet": {"type": "OBJECT", "properties": {
                "kind": {"enum": ["cat"], "type": "STRING"},
                "age": {"type": "INTEGER", "nullable": True},
                "born": {"type": "STRING", "description": "(format: date)"},
                "tags": {"type": "ARRAY", "items": {"type": "STRING"}, "nullable": True},
            }, "required": ["kind"]},
            "level": {"type": "INTEGER", "description": "Allowed values: 1, 2, 3"},
        },
        "required": ["pet"],
    }
    tool = Tool(name="adopt", parameters=schema)
    decl = body(user("q"), tools=(tool,), adapter_opts={"schema_mode": "openapi"})[
        "tools"][0]["functionDeclarations"][0]
    assert decl["parameters"] == out and "parametersJsonSchema" not in decl


def test_recursive_schema_needs_json_schema_mode() -> None:
    tree = {"$defs": {"Node": {"type": "object", "properties": {
        "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}}},
        "$ref": "#/$defs/Node"}
    with pytest.raises(ValidationError) as info:
        to_openapi_schema(tree)
    assert info.value.errors[0][1] == "recursive_schema"
    assert clean_json_schema(tree) == tree


def test_bad_schema_mode() -> None:
    with pytest.raises(ValidationError):
        body(user("q"), adapter_opts={"schema_mode": "yaml"})


# -- generation config, thinking, safety, passthrough ---------------------------------
def test_generation_config_params() -> None:
    b = body(user("q"), params={"temperature": 0.2, "top_p": 0.9, "top_k": 40, "max_tokens": 99,
                                "stop": "END", "seed": 7, "presence_penalty": 0.1,
                                "frequency_penalty": 0.3, "logprobs": 3, "user": "u-1"})
    assert b["generationConfig"] == {
        "temperature": 0.2, "topP": 0.9, "topK": 40, "maxOutputTokens": 99,
        "stopSequences": ["END"], "seed": 7, "presencePenalty": 0.1, "frequencyPenalty": 0.3,
        "responseLogprobs": True, "logprobs": 3}
    assert "generationConfig" not in body(user("q"))


def test_request_params_override_call_params() -> None:
    request = Request(messages=(user("q"),), params={"temperature": 0.5})
    b = CODEC.body(request, Call(model="m", params={"temperature": 1.0, "top_k": 3}))
    assert b["generationConfig"] == {"temperature": 0.5, "topK": 3}


@pytest.mark.parametrize(("fmt", "config"), [
    ("text", {}),
    ({"type": "json_object"}, {"responseMimeType": "application/json"}),
    ({"type": "json_schema", "name": "x", "schema": {"type": "object", "$schema": "s"}},
     {"responseMimeType": "application/json", "responseJsonSchema": {"type": "object"}}),
    ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
     {"responseMimeType": "application/json", "responseJsonSchema": {"type": "object"}}),
])
def test_response_format(fmt: Any, config: dict[str, Any]) -> None:
    assert body(user("q"), response_format=fmt).get("generationConfig", {}) == config


def test_response_format_openapi_and_errors() -> None:
    b = body(user("q"), response_format={"type": "json_schema", "schema": {
        "type": "object", "properties": {"a": {"type": "string"}}}},
        adapter_opts={"schema_mode": "openapi"})
    assert b["generationConfig"]["responseSchema"] == {
        "type": "OBJECT", "properties": {"a": {"type": "STRING"}}}
    with pytest.raises(ValidationError):
        body(user("q"), response_format={"type": "json_schema"})
    with pytest.raises(ValidationError):
        body(user("q"), response_format={"type": "xml"})


@pytest.mark.parametrize(("model", "params", "thinking"), [
    ("gemini-2.5-flash", {"thinking": True}, {"includeThoughts": True}),
    ("gemini-2.5-flash", {"thinking": 0}, {"thinkingBudget": 0}),
    ("gemini-2.5-flash", {"thinking": False}, {"thinkingBudget": 0}),
    ("gemini-2.5-pro", {"thinking": 2048}, {"thinkingBudget": 2048, "includeThoughts": True}),
    ("gemini-2.5-pro", {"thinking": {"thinkingBudget": -1}}, {"thinkingBudget": -1}),
    ("gemini-2.5-flash", {"reasoning_effort": "low"}, {"thinkingBudget": 1024}),
    ("gemini-2.5-flash", {"reasoning_effort": "high"}, {"thinkingBudget": 24576}),
    ("gemini-3-pro-preview", {"reasoning_effort": "low"}, {"thinkingLevel": "LOW"}),
    ("gemini-3-flash-preview", {"reasoning_effort": "minimal", "reasoning_summary": "auto"},
     {"thinkingLevel": "MINIMAL", "includeThoughts": True}),
    ("gemini-3-pro-preview", {"thinking": {"thinkingLevel": "HIGH"}, "reasoning_effort": "low"},
     {"thinkingLevel": "HIGH"}),
])
def test_thinking_config(model: str, params: dict[str, Any], thinking: dict[str, Any]) -> None:
    assert body(user("q"), model=model, params=params)["generationConfig"] == {
        "thinkingConfig": thinking}


def test_safety_settings_and_passthrough() -> None:
    settings = [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]
    b = body(user("q"), params={"safety_settings": settings,
                                "extra_body": {"generationConfig": {"responseModalities": [
                                    "TEXT"]}, "cachedContent": "cachedContents/abc"}},
             tools=(WEATHER,), options={"tools": [{"googleSearch": {}}]})
    assert b["safetySettings"] == settings
    assert b["generationConfig"] == {"responseModalities": ["TEXT"]}
    assert b["cachedContent"] == "cachedContents/abc"
    assert b["tools"][1] == {"googleSearch": {}}
    assert "functionDeclarations" in b["tools"][0]
    short = body(user("q"), params={"safety_settings": {"HARM_CATEGORY_HARASSMENT": "OFF"}})
    assert short["safetySettings"] == [{"category": "HARM_CATEGORY_HARASSMENT",
                                        "threshold": "OFF"}]
    with pytest.raises(ValidationError):
        body(user("q"), params={"safety_settings": "none"})


def test_body_is_compact_utf8_json() -> None:
    req = CODEC.build(Request(messages=(user([TextPart(text="héllo")]),)), Call(model="m"),
                      api_key="k", stream=False)
    assert "héllo" in req.content.decode("utf-8")
    assert json.loads(req.content)["contents"][0]["parts"] == [{"text": "héllo"}]
