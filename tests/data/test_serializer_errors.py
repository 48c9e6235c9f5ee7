"""The serializer's failure modes: every one is `ValidationError(reason="invalid_json")`
naming the path; decoding never imports or runs anything the input names."""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
import types
from typing import Any

import pytest

import allm
from allm import serializer
from allm.errors import ValidationError
from allm.providers.base import Call


def env(value: Any, version: Any = 1) -> str:
    return json.dumps({"allm": version, "value": value})


def tagged(tag: str, data: Any) -> dict[str, Any]:
    return {"__type__": tag, "data": data}


def msg(**data: Any) -> dict[str, Any]:
    return tagged("Message", {"role": "user", "content": "hi", **data})


def thread_with(bad: dict[str, Any]) -> str:
    return env(tagged("Thread", {"messages": [msg(), msg(), msg(), bad]}))


def load_error(text: str | bytes) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        allm.loads(text)
    err = info.value
    assert err.reason == "invalid_json"
    assert len(err.errors) == 1
    assert err.errors[0][0] in err.message  # the message names the path too
    return err


MALFORMED: list[tuple[str, str | bytes, tuple[str, str]]] = [
    ("not json", "{", ("$", "malformed")),
    ("empty", "", ("$", "malformed")),
    ("bad utf-8", b"\xff\xfe{", ("$", "malformed")),
    ("NaN", '{"allm": 1, "value": NaN}', ("$", "malformed")),
    ("top-level list", "[1, 2]", ("$", "invalid_type")),
    ("missing version", json.dumps({"value": 1}), ("allm", "missing")),
    ("missing value", json.dumps({"allm": 1}), ("value", "missing")),
    ("wrong version", env(1, version=2), ("allm", "unsupported_version")),
    ("string version", env(1, version="1"), ("allm", "unsupported_version")),
    ("bool version", env(1, version=True), ("allm", "unsupported_version")),
    ("extra top-level key", json.dumps({"allm": 1, "value": 1, "x": 2}), ("x", "unknown_field")),
    ("unknown tag", env(tagged("Nope", {})), ("value.__type__", "unknown_type")),
    ("missing data", env({"__type__": "Message"}), ("value.data", "missing")),
    ("extra key next to data", env({**msg(), "x": 1}), ("value.x", "unknown_field")),
    ("non-string tag", env({"__type__": 5, "data": {}}), ("value.__type__", "invalid_type")),
    ("data not an object", env(tagged("Message", [1])), ("value.data", "invalid_type")),
    ("wrong role type", thread_with(msg(role=5)), ("value.data.messages.3.data.role", "invalid_type")),
    ("missing required", env(tagged("Message", {"content": "x"})), ("value.data.role", "missing")),
    ("unknown field", thread_with(msg(colour="red")),
     ("value.data.messages.3.data.colour", "unknown_field")),
    ("tuple field not a list", env(msg(tool_calls={"a": 1})), ("value.data.tool_calls", "invalid_type")),
    ("wrong class in typed field", env(msg(tool_calls=[tagged("Usage", {})])),
     ("value.data.tool_calls.0.__type__", "unexpected_type")),
    ("part of wrong class", env(msg(content=[tagged("ToolCall", {"id": "a", "name": "b"})])),
     ("value.data.content.0.__type__", "unexpected_type")),
    ("untagged part", env(msg(content=[{"text": "x"}])), ("value.data.content.0.__type__", "missing")),
    ("bad part field", env(msg(content=[tagged("TextPart", {"text": 3})])),
     ("value.data.content.0.data.text", "invalid_type")),
    ("int field as float", env(tagged("Usage", {"input_tokens": 1.5})),
     ("value.data.input_tokens", "invalid_type")),
    ("bool as int", env(tagged("Usage", {"input_tokens": True})),
     ("value.data.input_tokens", "invalid_type")),
    ("metadata not a dict", env(msg(metadata=[1])), ("value.data.metadata", "invalid_type")),
    ("nested unknown tag in metadata", env(msg(metadata={"k": [tagged("Evil", {})]})),
     ("value.data.metadata.k.0.__type__", "unknown_type")),
    ("bad base64", env(tagged("Image", {"data": "not base64!"})), ("value.data.data", "invalid_base64")),
    ("image without source", env(tagged("Image", {})), ("value.data", "one_source_required")),
    ("bad bytes tag", env({"k": tagged("bytes", "%%")}), ("value.k.data", "invalid_base64")),
    ("bad tuple tag", env(tagged("tuple", {"a": 1})), ("value.data", "invalid_type")),
    ("unknown error reason", env(tagged("AdapterError", {"reason": "nope"})),
     ("value.data.reason", "unknown_reason")),
    ("error without reason", env(tagged("ToolError", {"message": "m"})),
     ("value.data.reason", "missing")),
    ("error unknown field", env(tagged("ToolError", {"reason": "timeout", "status": 1})),
     ("value.data.status", "unknown_field")),
    ("error field type", env(tagged("AdapterError", {"reason": "timeout", "status": "429"})),
     ("value.data.status", "invalid_type")),
    ("validation errors shape", env(tagged("ValidationError", {"reason": "invalid_json",
                                                               "errors": [["a"]]})),
     ("value.data.errors", "invalid_value")),
    ("frozenset item type", env(tagged("RetryPolicy", {"retry_on": [1.5]})),
     ("value.data.retry_on.0", "invalid_type")),
    ("event field", env(tagged("TextDelta", {"delta": None})), ("value.data.delta", "invalid_type")),
    ("event needs an error", env(tagged("ErrorEvent", {"error": tagged("Usage", {})})),
     ("value.data.error.__type__", "unexpected_type")),
]


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in MALFORMED],
                         ids=[n for n, _, _ in MALFORMED])
def test_malformed_input_names_the_path(text: str | bytes, expected: tuple[str, str]) -> None:
    assert load_error(text).errors == [expected]


def test_from_jsonable_rejects_non_objects() -> None:
    with pytest.raises(ValidationError) as info:
        serializer.from_jsonable([1])
    assert info.value.errors == [("$", "invalid_type")]
    with pytest.raises(ValidationError):
        allm.loads(123)  # type: ignore[arg-type]


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    deep = '{"allm": 1, "value": ' + "[" * 100_000 + "]" * 100_000 + "}"
    assert load_error(deep).errors[0][1] in {"malformed", "too_deep"}


# -- no code execution -------------------------------------------------------------------

EVIL_TAGS = ["os.system", "builtins.eval", "subprocess.Popen", "__import__", "os",
             "allm.providers.base.Call", "Call", "Engine", "allm_probe_module",
             "allm_probe_module.Probe", "__main__.X", "../etc/passwd", "dict.__class__"]


@pytest.mark.parametrize("tag", EVIL_TAGS)
def test_decoding_never_imports_or_runs_what_the_input_names(
        tag: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    # A module that records being imported, reachable on sys.path.
    (tmp_path / "allm_probe_module.py").write_text(
        "import builtins\nbuiltins.ALLM_PROBE_IMPORTED = True\n"
        "class Probe:\n    def __init__(self, **kw):\n        builtins.ALLM_PROBE_RAN = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    imported: list[str] = []
    real_import = importlib.import_module

    def spy(name: str, package: str | None = None) -> types.ModuleType:
        imported.append(name)
        return real_import(name, package)

    monkeypatch.setattr(importlib, "import_module", spy)
    for payload in (tagged(tag, {"command": "echo pwned"}), {"k": [tagged(tag, {})]},
                    msg(metadata={"x": tagged(tag, {"args": ["id"]})})):
        err = load_error(env(payload))
        assert err.errors[0][1] == "unknown_type"
    assert imported == []
    assert "allm_probe_module" not in sys.modules
    import builtins
    assert not hasattr(builtins, "ALLM_PROBE_IMPORTED")


def test_lazy_tags_only_import_their_fixed_allm_module(monkeypatch: pytest.MonkeyPatch) -> None:
    imported: list[str] = []

    def spy(name: str, package: str | None = None) -> types.ModuleType:
        imported.append(name)
        raise ImportError(name)

    monkeypatch.setattr(importlib, "import_module", spy)
    monkeypatch.delitem(serializer._BY_TAG, "Session", raising=False)
    err = load_error(env(tagged("Session", {})))
    assert err.errors == [("value.__type__", "unknown_type")]
    assert imported == ["allm.session"]


def test_lazy_registration_of_a_later_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """A type defined in a module named in the lazy table is registered on first use,
    for decoding (by tag) and for encoding (by class)."""

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Probe:
        status: str = "idle"
        thread: allm.Thread = dataclasses.field(default_factory=allm.Thread)
        pending: tuple[allm.ToolCall, ...] = ()

    module = types.ModuleType("allm._probe_later")
    Probe.__module__ = module.__name__
    module.Probe = Probe  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(serializer._LAZY_MODULES, "Probe", module.__name__)
    try:
        value = Probe(status="awaiting_tools", thread=allm.Thread(messages=(allm.user("x"),)),
                      pending=(allm.ToolCall(id="1", name="f"),))
        text = json.dumps({"allm": 1, "value": tagged("Probe", {"status": "idle"})})
        assert allm.loads(text) == Probe()
        assert allm.loads(allm.dumps(value)) == value
    finally:
        serializer._BY_TAG.pop("Probe", None)
        serializer._BY_CLASS.pop(Probe, None)


# -- encoding failures ----------------------------------------------------------------------


class Opaque:
    pass


def dump_error(value: Any) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        allm.dumps(value)
    assert info.value.reason == "invalid_json"
    return info.value


@pytest.mark.parametrize(("value", "expected"), [
    (allm.user("x", metadata={"f": print}), ("value.data.metadata.f", "unsupported_type")),
    (allm.Thread(messages=(allm.user("a"), allm.user("b", metadata={"o": [1, Opaque()]}))),
     ("value.data.messages.1.data.metadata.o.1", "unsupported_type")),
    (allm.user("x", metadata={1: "a"}), ("value.data.metadata", "non_string_key")),
    (allm.Usage(input_cost=float("nan")), ("value.data.input_cost", "not_finite")),
    (allm.user("x", metadata={"v": float("inf")}), ("value.data.metadata.v", "not_finite")),
    (allm.Usage(input_tokens="3"), ("value.data.input_tokens", "invalid_type")),  # type: ignore[arg-type]
    (allm.Message(role="user", content=5), ("value.data.content", "invalid_type")),  # type: ignore[arg-type]
    (allm.user("x", metadata={"s": {1, 2}}), ("value.data.metadata.s", "unsupported_type")),
    (lambda: 1, ("value", "unsupported_type")),
    ({"call": Call(model="m", api_key="sk-SECRET-123")}, ("value.call", "not_serializable")),
])
def test_unencodable_values_name_the_path(value: Any, expected: tuple[str, str]) -> None:
    err = dump_error(value)
    assert err.errors == [expected]
    assert "SECRET" not in str(err) and "SECRET" not in repr(err)


def test_unregistered_dataclass_is_rejected() -> None:
    @dataclasses.dataclass
    class Mine:
        x: int = 1

    assert dump_error({"m": Mine()}).errors == [("value.m", "unsupported_type")]


def test_tool_handler_is_dropped() -> None:
    tool = allm.Tool(name="add", handler=lambda a: a)
    text = allm.dumps(tool)
    assert "handler" not in text
    loaded = allm.loads(text)
    assert loaded.handler is None and loaded == tool


def test_adapter_error_partial_and_cause_roundtrip() -> None:
    inner = allm.StreamError("timeout", provider="anthropic", event_index=3)
    partial = allm.Response(output_text="so far", usage=allm.Usage(input_tokens=3),
                            finish_reason="error", metadata={"error": inner})
    err = allm.AdapterError("rate_limited", provider="openai", status=429, retry_after=1.5,
                            request_id="req_1", body={"error": {"type": "rate"}},
                            partial=partial, cause=inner)
    loaded = allm.loads(allm.dumps(err))
    assert loaded == err
    assert isinstance(loaded.partial, allm.Response)
    assert isinstance(loaded.partial.metadata["error"], allm.StreamError)
    assert isinstance(loaded.cause, allm.StreamError)
    assert str(loaded) == str(err)


def test_foreign_exception_cause_becomes_a_description() -> None:
    err = allm.AdapterError("network_error", cause=ConnectionResetError("peer reset"))
    loaded = allm.loads(allm.dumps(err))
    assert loaded.cause == {"type": "builtins.ConnectionResetError", "message": "peer reset"}


def test_pydantic_output_is_stored_as_its_json() -> None:
    import pydantic

    class Answer(pydantic.BaseModel):
        city: str
        temp: float

    result = allm.ChatResult(thread=allm.Thread(), output=Answer(city="Oslo", temp=3.5))
    loaded = allm.loads(allm.dumps(result))
    assert loaded.output == {"city": "Oslo", "temp": 3.5}
    assert Answer.model_validate(loaded.output) == result.output


def test_plain_dicts_with_the_tag_key_are_escaped() -> None:
    value = {"__type__": "Message", "data": {"role": "user"}}
    assert allm.loads(allm.dumps(value)) == value
    meta = allm.user("x", metadata={"__type__": "os.system", "data": "rm -rf"})
    assert allm.loads(allm.dumps(meta)) == meta


def test_fields_at_their_default_are_left_out() -> None:
    text = allm.dumps(allm.user("hi"))
    assert json.loads(text) == {"allm": 1, "value": {"__type__": "Message",
                                                     "data": {"role": "user", "content": "hi"}}}


def test_format_sample() -> None:
    """The documented shape: envelope, tags, base64 bytes, lists for tuples."""
    img = allm.Image.from_bytes(b"\x89PNG\r\n\x1a\nxx")
    value = allm.Message(role="assistant", content=(allm.ImagePart(image=img),),
                         tool_calls=(allm.ToolCall(id="c", name="f", arguments={"a": 1}),))
    obj = serializer.to_jsonable(value)
    assert obj["allm"] == serializer.SCHEMA_VERSION
    data = obj["value"]["data"]
    assert data["content"][0]["data"]["image"]["data"]["data"] == "iVBORw0KGgp4eA=="
    assert data["tool_calls"] == [{"__type__": "ToolCall",
                                   "data": {"id": "c", "name": "f", "arguments": {"a": 1}}}]


def test_register_custom_type() -> None:
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Note:
        text: str
        tags: tuple[str, ...] = ()
        blob: bytes | None = None

    serializer.register(Note, tag="TestNote")
    try:
        note = Note(text="x", tags=("a", "b"), blob=b"\x00\x01")
        assert allm.loads(allm.dumps(note)) == note
        with pytest.raises(ValueError):
            serializer.register(dataclasses.make_dataclass("Y", []),
                                tag="TestNote")
        with pytest.raises(ValueError):
            serializer.register(Note, tag="tuple")
        with pytest.raises(TypeError):
            serializer.register(Opaque)
    finally:
        serializer._BY_TAG.pop("TestNote", None)
        serializer._BY_CLASS.pop(Note, None)


def test_no_api_key_in_dumps_of_an_error() -> None:
    key = "sk-test-RECOGNIZABLE-0123456789"
    err = allm.EngineError("missing_key", provider="openai")
    assert key not in allm.dumps(allm.ErrorEvent(error=err))


def test_foreign_exception_text_never_carries_a_credential() -> None:
    key = "AIzaSy-RECOGNIZABLE-123"
    cause = RuntimeError(f"GET https://host/v1beta/models/m:generateContent?key={key} failed; "
                         f"Authorization: Bearer {key}; x-goog-api-key: {key}")
    text = allm.dumps(allm.AdapterError("network_error", cause=cause))
    assert key not in text
    assert "[REDACTED]" in text


def test_subclasses_of_json_types_are_stored_plain() -> None:
    import collections
    import enum
    import http

    class Role(enum.StrEnum):
        USER = "user"

    m = allm.Message(role=Role.USER, content="x",  # type: ignore[arg-type]
                     metadata={"od": collections.OrderedDict(a=1), "status": http.HTTPStatus.OK,
                               "dd": collections.defaultdict(list, {"k": [1]})})
    loaded = allm.loads(allm.dumps(m))
    assert loaded == m
    assert type(loaded.role) is str and type(loaded.metadata["status"]) is int
    err = allm.AdapterError("rate_limited", status=http.HTTPStatus.TOO_MANY_REQUESTS)
    assert allm.loads(allm.dumps(err)).status == 429
    proxy: Any = types.MappingProxyType({"a": 1})  # any Mapping, stored as a dict
    assert allm.loads(allm.dumps(allm.ModelRef(provider="p", id="m",
                                               limits=proxy))).limits == {"a": 1}
