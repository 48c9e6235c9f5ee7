"""`allm.validate`: every reason, every path, all failures collected at once."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

import allm
from allm import validate
from allm.errors import ValidationError

IMG = allm.Image.from_bytes(b"\x89PNG\r\n\x1a\n0000")


def errors_of(fn: Any, value: Any, reason: str) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as info:
        fn(value)
    assert info.value.reason == reason
    return info.value.errors


# -- messages ---------------------------------------------------------------------------

GOOD_MESSAGES = [
    allm.system("s"),
    allm.user("hi"),
    allm.user(["look", IMG, allm.ImagePart(image=IMG, detail="high")]),
    allm.user([]),
    allm.assistant("x", tool_calls=[allm.ToolCall(id="c1", name="f", arguments={"a": 1})]),
    allm.tool_result("c1", {"ok": True}),
    allm.Message(role="user", content=[allm.TextPart(text="a")]),  # a list is fine too
]


@pytest.mark.parametrize("m", GOOD_MESSAGES)
def test_valid_messages_pass(m: allm.Message) -> None:
    assert validate.message(m) is None


@pytest.mark.parametrize(("m", "expected"), [
    (allm.Message(role="robot", content="x"), [("role", "unknown")]),  # type: ignore[arg-type]
    (allm.Message(role=["user"], content="x"), [("role", "unknown")]),  # type: ignore[arg-type]
    (allm.Message(role="user", content=None), [("content", "invalid_type")]),  # type: ignore[arg-type]
    (allm.Message(role="user", content={"text": "x"}), [("content", "invalid_type")]),  # type: ignore[arg-type]
    (allm.Message(role="tool", content="r"), [("tool_call_id", "required")]),
    (allm.Message(role="tool", content="r", tool_call_id=""), [("tool_call_id", "required")]),
    (allm.Message(role="user", content=(allm.TextPart(text=3),)),  # type: ignore[arg-type]
     [("content.0.text", "not_a_string")]),
    (allm.Message(role="user", content=(allm.ImagePart(image="x.png"),)),  # type: ignore[arg-type]
     [("content.0.image", "invalid_image")]),
    (allm.Message(role="user", content=(allm.ImagePart(image=IMG, detail="ultra"),)),  # type: ignore[arg-type]
     [("content.0.detail", "unknown")]),
    (allm.Message(role="assistant", content="", tool_calls=[1]),  # type: ignore[list-item]
     [("tool_calls.0", "invalid_type")]),
    (allm.Message(role="assistant", content="", tool_calls="f"),  # type: ignore[arg-type]
     [("tool_calls", "invalid_type")]),
    (allm.Message(role="assistant", content="", tool_calls=(
        allm.ToolCall(id="", name="", arguments=[1]),)),  # type: ignore[arg-type]
     [("tool_calls.0.id", "empty"), ("tool_calls.0.name", "empty"),
      ("tool_calls.0.arguments", "not_a_map")]),
    (allm.Message(role="user", content="", tool_calls=(allm.ToolCall(id="a", name="f"),)),
     [("tool_calls", "not_allowed_for_role")]),
    (allm.Message(role="user", content="", metadata=[]),  # type: ignore[arg-type]
     [("metadata", "not_a_map")]),
])
def test_message_reasons(m: allm.Message, expected: list[tuple[str, str]]) -> None:
    assert errors_of(validate.message, m, "invalid_message") == expected


def test_invalid_part_type_names_what_it_got() -> None:
    m = allm.Message(role="user", content=(allm.TextPart(text="ok"), {"type": "text"}))  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as info:
        validate.message(m)
    assert info.value.errors == [("content.1", "invalid_part_type")]
    assert info.value.metadata["invalid_part_type"] == {
        "expected": ["TextPart", "ImagePart"], "got": "dict"}
    assert "content element 1 is not a TextPart or an ImagePart (got: dict)" in str(info.value)


def test_all_message_errors_are_collected() -> None:
    m = allm.Message(role="tool", content=5)  # type: ignore[arg-type]
    assert errors_of(validate.message, m, "invalid_message") == [
        ("content", "invalid_type"), ("tool_call_id", "required")]


# -- tools ------------------------------------------------------------------------------------


def test_valid_tool_passes() -> None:
    assert validate.tool(allm.Tool(name="get-weather_2", description="d")) is None
    assert validate.tool(allm.Tool(name="x" * 64)) is None


@pytest.mark.parametrize(("t", "expected"), [
    (allm.Tool(name=""), [("name", "empty")]),
    (allm.Tool(name="auto"), [("name", "reserved_tool_name")]),
    (allm.Tool(name="none"), [("name", "reserved_tool_name")]),
    (allm.Tool(name="required"), [("name", "reserved_tool_name")]),
    (allm.Tool(name="get weather"), [("name", "invalid_format")]),
    (allm.Tool(name="x" * 65), [("name", "invalid_format")]),
    (allm.Tool(name="wetter.heute"), [("name", "invalid_format")]),
    (allm.Tool(name=None), [("name", "invalid_format")]),  # type: ignore[arg-type]
    (allm.Tool(name="f", description=None), [("description", "not_a_string")]),  # type: ignore[arg-type]
    (allm.Tool(name="f", parameters="{}"), [("parameters", "not_a_map")]),  # type: ignore[arg-type]
    (allm.Tool(name="", description=1, parameters=None),  # type: ignore[arg-type]
     [("name", "empty"), ("description", "not_a_string"), ("parameters", "not_a_map")]),
])
def test_tool_reasons(t: allm.Tool, expected: list[tuple[str, str]]) -> None:
    assert errors_of(validate.tool, t, "invalid_tool") == expected


# -- threads ---------------------------------------------------------------------------------


def test_thread_paths() -> None:
    assert validate.thread(allm.Thread(messages=tuple(GOOD_MESSAGES))) is None
    assert validate.thread(allm.Thread()) is None
    t = allm.Thread(messages=(allm.user("a"), allm.user("b"),
                              allm.Message(role="user", content=None),  # type: ignore[arg-type]
                              allm.Message(role="tool", content="x")))
    assert errors_of(validate.thread, t, "invalid_thread") == [
        ("messages.2.content", "invalid_type"), ("messages.3.tool_call_id", "required")]
    assert errors_of(validate.thread, SimpleNamespace(messages=None), "invalid_thread") == [
        ("messages", "invalid_type")]


# -- params -----------------------------------------------------------------------------------


def test_known_params_pass() -> None:
    assert validate.params({"temperature": 0.7, "max_tokens": 100, "top_p": 0.9,
                            "timeout": 10, "read_timeout": 5, "seed": None}) is None
    assert validate.params({}) is None
    assert validate.params({"temperature": 0, "max_tokens": None}) is None
    assert validate.params({"temperature": 2}) is None


def test_unknown_params_suggest_the_closest_name() -> None:
    with pytest.raises(ValidationError) as info:
        validate.params({"temprature": 0.5, "max_token": 10, "zzz": 1})
    err = info.value
    assert err.reason == "invalid_params"
    assert err.errors == [("temprature", "unknown_param"), ("max_token", "unknown_param"),
                          ("zzz", "unknown_param")]
    assert "'temprature' (did you mean 'temperature'?)" in err.message
    assert "'max_token' (did you mean 'max_tokens'?)" in err.message
    assert "'zzz'" in err.message


@pytest.mark.parametrize(("value", "expected"), [
    ({"temperature": 2.5}, [("temperature", "out_of_range")]),
    ({"temperature": -0.1}, [("temperature", "out_of_range")]),
    ({"temperature": "hot"}, [("temperature", "out_of_range")]),
    ({"temperature": True}, [("temperature", "out_of_range")]),
    ({"max_tokens": 0}, [("max_tokens", "must_be_positive")]),
    ({"max_tokens": -5}, [("max_tokens", "must_be_positive")]),
    ({"max_tokens": 1.5}, [("max_tokens", "must_be_positive")]),
    ({"max_tokens": True}, [("max_tokens", "must_be_positive")]),
    ([("temperature", 1)], [("params", "invalid_type")]),
])
def test_param_values(value: Any, expected: list[tuple[str, str]]) -> None:
    assert errors_of(validate.params, value, "invalid_params") == expected


# -- requests --------------------------------------------------------------------------------


def req(**kw: Any) -> allm.Request:
    kw.setdefault("messages", (allm.user("hi"),))
    return allm.Request(**kw)


SCHEMA_RF = {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": True}


@pytest.mark.parametrize("r", [
    req(),
    req(tools=(allm.Tool(name="a"), allm.Tool(name="b")), tool_choice="auto"),
    req(params={"temperature": 1.0, "max_tokens": 5}),
    req(response_format="text"),
    req(response_format={"type": "json_object"}),
    req(response_format={"type": "something_else", "x": 1}),  # an escape hatch
    req(response_format=SCHEMA_RF, structured_finalize=True),
    req(tool_choice={"type": "function", "function": {"name": "a"}}),
])
def test_valid_requests_pass(r: allm.Request) -> None:
    assert validate.request(r) is None


@pytest.mark.parametrize(("r", "expected"), [
    (req(messages=()), [("messages", "empty")]),
    (req(messages=None), [("messages", "invalid_type")]),
    (req(messages=(allm.user("a"), allm.Message(role="x", content="y"))),  # type: ignore[arg-type]
     [("messages.1.role", "unknown")]),
    (req(tools=(allm.Tool(name="ok"), allm.Tool(name="bad name"))),
     [("tools.1.name", "invalid_format")]),
    (req(tools=(allm.Tool(name="a"), allm.Tool(name="a"))), [("tools", "duplicate_name")]),
    (req(tools="a"), [("tools", "invalid_type")]),  # type: ignore[arg-type]
    (req(tool_choice=3), [("tool_choice", "invalid_type")]),  # type: ignore[arg-type]
    (req(params={"temperature": 3}), [("params.temperature", "out_of_range")]),
    (req(params={"max_tokens": 0}), [("params.max_tokens", "must_be_positive")]),
    (req(params={"temprature": 1}), [("params.temprature", "unknown_param")]),
    (req(params=None), [("params", "invalid_type")]),  # type: ignore[arg-type]
    (req(response_format="json"), [("response_format", "invalid_shape")]),
    (req(response_format=5), [("response_format", "invalid_shape")]),  # type: ignore[arg-type]
    (req(response_format={"type": "json_schema", "name": "x"}),
     [("response_format.schema", "not_a_map")]),
    (req(structured_finalize=True), [("structured_finalize", "requires_json_schema")]),
    (req(response_format={"type": "json_object"}, structured_finalize=True),
     [("structured_finalize", "requires_json_schema")]),
])
def test_request_reasons(r: allm.Request, expected: list[tuple[str, str]]) -> None:
    assert errors_of(validate.request, r, "invalid_request") == expected


def test_request_collects_everything_in_order() -> None:
    r = allm.Request(
        messages=(allm.Message(role="tool", content="x"),),
        tools=(allm.Tool(name="auto"), allm.Tool(name="f"), allm.Tool(name="f")),
        params={"temperature": 9, "max_tokns": 3},
        response_format="yaml",
        structured_finalize=True,
    )
    with pytest.raises(ValidationError) as info:
        validate.request(r)
    assert info.value.errors == [
        ("messages.0.tool_call_id", "required"),
        ("tools.0.name", "reserved_tool_name"),
        ("tools", "duplicate_name"),
        ("params.temperature", "out_of_range"),
        ("params.max_tokns", "unknown_param"),
        ("response_format", "invalid_shape"),
        ("structured_finalize", "requires_json_schema"),
    ]
    assert "did you mean 'max_tokens'" in info.value.message


# -- sessions --------------------------------------------------------------------------------


def session(**kw: Any) -> SimpleNamespace:
    base: dict[str, Any] = {"status": "idle", "thread": allm.Thread(), "pending_question": None,
                            "pending_tool_calls": (), "metadata": {}}
    return SimpleNamespace(**{**base, **kw})


@pytest.mark.parametrize("s", [
    session(),
    session(status="completed"),
    session(status="awaiting_user", pending_question="Which city?"),
    session(status="awaiting_tools", pending_tool_calls=(allm.ToolCall(id="1", name="f"),)),
    session(status="error", metadata={"error": allm.EngineError("missing_key")}),
    session(status="error", error=allm.EngineError("missing_key")),
])
def test_valid_sessions_pass(s: Any) -> None:
    assert validate.session(s) is None


@pytest.mark.parametrize(("s", "expected"), [
    (session(status="sleeping"), [("status", "unknown")]),
    (session(status=None), [("status", "unknown")]),
    (session(status="awaiting_user"), [("pending_question", "required_for_status")]),
    (session(status="awaiting_tools"), [("pending_tool_calls", "required_for_status")]),
    (session(status="error"), [("metadata", "error_required_for_status")]),
    (session(thread=allm.Thread(messages=(allm.user("a"), allm.Message(role="tool", content="")))),
     [("thread.messages.1.tool_call_id", "required")]),
])
def test_session_reasons(s: Any, expected: list[tuple[str, str]]) -> None:
    assert errors_of(validate.session, s, "invalid_session") == expected


# -- image requests ---------------------------------------------------------------------------


@pytest.mark.parametrize("r", [
    allm.ImageRequest(prompt="a cat"),
    allm.ImageRequest(prompt="a cat", size="1024x1024", n=2, response_format="url"),
    allm.ImageRequest(prompt="a cat", size="16:9"),
    allm.ImageRequest(operation="edit", prompt="add a hat", input_images=(IMG,), mask=IMG),
    allm.ImageRequest(operation="edit", prompt="merge", input_images=(IMG,) * 16),
    allm.ImageRequest(operation="variation", input_images=(IMG,)),
    allm.ImageRequest(operation="variation", prompt="", input_images=(IMG,)),
])
def test_valid_image_requests_pass(r: allm.ImageRequest) -> None:
    assert validate.image_request(r) is None


def ir(**kw: Any) -> allm.ImageRequest:
    return allm.ImageRequest(**kw)


@pytest.mark.parametrize(("r", "expected"), [
    (ir(operation="upscale", prompt="x"), [("operation", "unknown")]),
    (ir(prompt="x", n=0), [("n", "must_be_positive")]),
    (ir(prompt="x", n=True), [("n", "must_be_positive")]),
    (ir(prompt="x", response_format="base64"), [("response_format", "unknown")]),
    (ir(prompt="x", size=""), [("size", "invalid_shape")]),
    (ir(prompt="x", size=1024), [("size", "invalid_shape")]),
    (ir(prompt="x", size=(0, 5)), [("size", "invalid_shape")]),
    (ir(operation="edit", prompt="x", input_images=IMG), [("input_images", "not_a_list")]),
    (ir(operation="edit", prompt="x", input_images=(IMG, "b.png")),
     [("input_images.1", "invalid_image")]),
    (ir(operation="edit", prompt="x", input_images=(IMG,), mask=b"png"),
     [("mask", "invalid_image")]),
    (ir(prompt=None), [("prompt", "required_for_operation")]),
    (ir(prompt="   "), [("prompt", "required_for_operation")]),
    (ir(prompt="x", input_images=(IMG,)), [("input_images", "must_be_empty")]),
    (ir(operation="edit", input_images=(IMG,)), [("prompt", "required_for_operation")]),
    (ir(operation="edit", prompt="x"), [("input_images", "invalid_count")]),
    (ir(operation="edit", prompt="x", input_images=(IMG,) * 17),
     [("input_images", "invalid_count")]),
    (ir(operation="variation", prompt="x", input_images=(IMG,)),
     [("prompt", "not_allowed_for_operation")]),
    (ir(operation="variation", input_images=(IMG, IMG)), [("input_images", "invalid_count")]),
    (ir(operation="variation"), [("input_images", "invalid_count")]),
])
def test_image_request_reasons(r: Any, expected: list[tuple[str, str]]) -> None:
    assert errors_of(validate.image_request, r, "invalid_image_request") == expected


def test_image_request_collects_every_rule() -> None:
    r = ir(operation="variation", prompt="x", n=0, response_format="gif", size=[1],
           input_images=(IMG, 1), mask="m")
    assert errors_of(validate.image_request, r, "invalid_image_request") == [
        ("n", "must_be_positive"), ("response_format", "unknown"), ("size", "invalid_shape"),
        ("input_images.1", "invalid_image"), ("mask", "invalid_image"),
        ("prompt", "not_allowed_for_operation"), ("input_images", "invalid_count")]


def test_validate_is_reachable_from_the_package() -> None:
    assert allm.validate is validate
