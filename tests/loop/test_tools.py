"""@allm.tool schemas, argument validation, the executor and the result encoder."""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import sys
from typing import Any, Literal

import anyio
import pytest
from pydantic import BaseModel, Field

import allm
from allm.messages import ToolCall
from allm.tools import (
    ToolContext,
    ToolExecutor,
    ToolResultEncoder,
    parse_docstring,
    settle,
    validate_json,
)


def test_import_allm_does_not_import_pydantic() -> None:
    code = ("import sys, allm, allm.loop, allm.session, allm.drivers; allm.tool; allm.chat;"
            "print('pydantic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"


def test_allm_tool_is_the_decorator() -> None:
    assert callable(allm.tool) and allm.tool.__module__ == "allm.tools._build"


def test_schema_from_signature_and_docstring() -> None:
    @allm.tool
    def get_weather(city: str, unit: Literal["c", "f"] = "c", days: int | None = None) -> dict:
        """Get the weather forecast.

        Uses the national service.

        Args:
            city: The city name,
                for example Oslo.
            unit (str): Temperature unit.
        """
        return {}

    assert get_weather.name == "get_weather"
    assert get_weather.description == "Get the weather forecast.\n\nUses the national service."
    props = get_weather.parameters["properties"]
    assert props["city"] == {"type": "string", "description": "The city name, for example Oslo."}
    assert props["unit"]["enum"] == ["c", "f"] and props["unit"]["default"] == "c"
    assert get_weather.parameters["required"] == ["city"]
    assert "title" not in get_weather.parameters


def test_decorator_options_and_context_param() -> None:
    seen: list[Any] = []

    @allm.tool(name="lookup", description="Look up.", strict=True)
    def f(query: str, ctx: ToolContext) -> str:
        seen.append(ctx.context)
        return query.upper()

    assert (f.name, f.description, f.strict) == ("lookup", "Look up.", True)
    assert list(f.parameters["properties"]) == ["query"]
    out = ToolExecutor().execute(f, {"query": "x"}, ToolContext(context={"u": 1}))
    assert out == "X" and seen == [{"u": 1}]


def test_pydantic_model_tool_and_model_param() -> None:
    class Search(BaseModel):
        """Search the docs."""
        q: str = Field(description="query")
        n: int = 3

    t = allm.tool(Search, handler=lambda m: m.n * 2)
    assert t.name == "search" and t.description == "Search the docs."
    assert t.parameters["properties"]["q"]["description"] == "query"
    assert ToolExecutor().execute(t, {"q": "a", "n": "4"}, ToolContext()) == 8

    @allm.tool
    def run_search(s: Search, ctx: ToolContext) -> str:
        return f"{s.q}:{s.n}:{ctx.session_id}"

    assert run_search.parameters["properties"].keys() == {"q", "n"}
    assert ToolExecutor().execute(run_search, {"q": "z"}, ToolContext(session_id="s")) == "z:3:s"


def test_raw_handlers_by_arity_and_explicit_schema() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    one = allm.Tool(name="one", parameters=schema, handler=lambda args: args["a"] + 1)
    two = allm.Tool(name="two", parameters=schema, handler=lambda args, ctx: ctx.request_id)
    ex = ToolExecutor()
    assert ex.execute(one, {"a": 1}, ToolContext()) == 2
    assert ex.execute(two, {"a": 1}, ToolContext(request_id="r")) == "r"
    with pytest.raises(allm.ToolError) as err:
        ex.execute(one, {"a": "1"}, ToolContext())
    assert err.value.reason == "invalid_arguments"
    built = allm.tool(name="three", parameters=schema, handler=lambda args: "ok")
    assert built.name == "three" and ex.execute(built, {"a": 0}, ToolContext()) == "ok"


def test_async_handlers_in_both_executors() -> None:
    @allm.tool
    async def ping(n: int) -> int:
        await anyio.sleep(0)
        return n + 1

    assert ToolExecutor().execute(ping, {"n": 1}, ToolContext()) == 2
    assert anyio.run(lambda: ToolExecutor().aexecute(ping, {"n": 2}, ToolContext())) == 3


def test_missing_handler_is_not_found() -> None:
    with pytest.raises(allm.ToolError) as err:
        ToolExecutor().execute(allm.Tool(name="x"), {}, ToolContext())
    assert err.value.reason == "not_found"


def test_docstring_styles() -> None:
    assert parse_docstring(":param a: first\n:param b: second")[1] == {"a": "first",
                                                                      "b": "second"}
    numpy = "Do it.\n\nParameters\n----------\na : int\n    The a.\nb : str\n    The b.\n"
    assert parse_docstring(numpy) == ("Do it.", {"a": "The a.", "b": "The b."})


@pytest.mark.parametrize(("schema", "value", "ok"), [
    ({"type": "object", "required": ["a"]}, {}, False),
    ({"type": "object", "properties": {"a": {"type": "integer"}}}, {"a": True}, False),
    ({"type": "object", "additionalProperties": False, "properties": {}}, {"x": 1}, False),
    ({"type": "string", "enum": ["a", "b"]}, "c", False),
    ({"type": "array", "items": {"type": "number"}, "maxItems": 2}, [1, 2.5], True),
    ({"type": "array", "items": {"type": "number"}, "maxItems": 2}, [1, 2, 3], False),
    ({"type": "integer", "minimum": 0, "maximum": 5}, 7, False),
    ({"type": "string", "nullable": True}, None, True),
    ({"anyOf": [{"type": "string"}, {"type": "null"}]}, None, True),
    ({"oneOf": [{"type": "integer"}, {"type": "number"}]}, 1, False),
    ({"$defs": {"P": {"type": "object", "required": ["n"]}},
      "type": "object", "properties": {"p": {"$ref": "#/$defs/P"}}}, {"p": {}}, False),
    ({"type": "string", "pattern": "^[a-z]+$", "minLength": 2}, "ab", True),
])
def test_validator(schema: dict[str, Any], value: Any, ok: bool) -> None:
    assert (validate_json(schema, value) == []) is ok


def test_encoder_rules() -> None:
    enc = ToolResultEncoder()

    class M(BaseModel):
        a: int

    @dataclasses.dataclass
    class D:
        when: dt.date

    assert enc.encode("plain") == "plain"
    assert enc.encode({"a": [1, None]}) == '{"a":[1,null]}'
    assert enc.encode(M(a=1)) == '{"a":1}'
    assert enc.encode(D(dt.date(2024, 1, 2))) == '{"when":"2024-01-02"}'
    with pytest.raises(TypeError):
        enc.encode(object())
    assert enc.encode_error(allm.tool_error("nope", {"k": 1})) == '{"error":"nope","data":{"k":1}}'


def call(name: str = "t") -> ToolCall:
    return ToolCall(id="c1", name=name)


def test_settle_routing() -> None:
    enc = ToolResultEncoder()
    out = settle(call(), exc=ValueError("bad"), encoder=enc)
    assert out.kind == "error" and out.error is not None and out.error.reason == "handler_raised"
    assert out.content == '{"error":"ValueError: bad"}'
    assert settle(call(), raw=allm.tool_error("x"), encoder=enc, on_tool_error="halt").halt_reason \
        == "tool_error"
    reserved = settle(call(), raw=allm.halt("completed"), encoder=enc)
    assert reserved.kind == "error" and reserved.error is not None
    assert reserved.error.reason == "invalid_return"
    enc_fail = settle(call(), raw=object(), encoder=enc)
    assert enc_fail.error is not None and enc_fail.error.reason == "encoding_failed"
    replaced = settle(call(), exc=ValueError("bad"), encoder=enc,
                      on_tool_error=lambda tc, err: {"fallback": err.reason})
    assert replaced.kind == "error" and replaced.content == '{"fallback":"handler_raised"}'

    def raising(tc: ToolCall, err: Exception) -> Any:
        raise KeyError("policy")

    halted = settle(call(), exc=ValueError("bad"), encoder=enc, on_tool_error=raising)
    assert halted.halt_reason == "tool_error"
    assert "on_tool_error_exception" in halted.metadata
    ask = settle(call(), raw=allm.ask_user("Q?", choices=[1]), encoder=enc)
    assert (ask.kind, ask.question, ask.options) == ("ask_user", "Q?", {"choices": [1]})


def test_unresolvable_annotation_becomes_any() -> None:
    @allm.tool
    def f(a: int, b: NoSuchType) -> str:  # type: ignore[name-defined]  # noqa: F821
        return f"{a}{b}"

    assert f.parameters["properties"]["a"]["type"] == "integer"
    assert "type" not in f.parameters["properties"]["b"]
    assert ToolExecutor().execute(f, {"a": 1, "b": "x"}, ToolContext()) == "1x"
