"""Every event the loop emits can be dumped and loaded (a UI relays them as SSE), whatever
the tool handler returns: handler values reach events in a JSON-safe form, while
`allm.dumps` itself stays strict about arbitrary objects."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
from typing import Any

import anyio
import pytest
from pydantic import BaseModel
from scenario_tools import engine, tc

import allm
from allm.tools import json_safe


class Opaque:
    def __repr__(self) -> str:
        return "Opaque()"


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class Color(enum.Enum):
    RED = "red"


class Point(BaseModel):
    x: int
    when: dt.date


@dataclasses.dataclass
class Box:
    label: str
    at: dt.datetime
    tags: set[str]


WHEN = dt.datetime(2026, 11, 24, 8, 0, tzinfo=dt.UTC)

# handler value -> the JSON form the events carry
CASES: list[tuple[str, Any, Any]] = [
    ("datetime", WHEN, "2026-11-24T08:00:00+00:00"),
    ("set", {3, 1, 2}, [1, 2, 3]),
    ("custom", Opaque(), "Opaque()"),
    ("bad_repr", BadRepr(), "<BadRepr object>"),
    ("pydantic", Point(x=1, when=dt.date(2026, 1, 2)), {"x": 1, "when": "2026-01-02"}),
    ("dataclass", Box(label="b", at=WHEN, tags={"t"}),
     {"label": "b", "at": "2026-11-24T08:00:00+00:00", "tags": ["t"]}),
    ("nested", {"when": WHEN, "color": Color.RED, 1: float("nan"), "ok": (1, "a")},
     {"when": "2026-11-24T08:00:00+00:00", "color": "red", "1": "nan", "ok": [1, "a"]}),
]


def _tool(value: Any, wrap: str) -> allm.Tool:
    def handler(args: dict[str, Any]) -> Any:
        if wrap == "halt":
            return allm.halt("done", value)
        if wrap == "ask":
            return allm.ask_user("Which?", choice=value)
        if wrap == "tool_error":
            return allm.tool_error("failed", data=value)
        return value

    return allm.Tool(name="t", handler=handler)


class LenientEncoder(allm.ToolResultEncoder):
    """Sends the model a repr where the default encoder refuses (so the raw value
    reaches the events instead of an `encoding_failed` error)."""

    def encode(self, value: Any) -> str:
        try:
            return super().encode(value)
        except Exception:
            return json.dumps(str(json_safe(value)))


def _events(value: Any, wrap: str) -> list[Any]:
    eng = engine([[tc("c1", "t")], [("text", "ok")]], tools=[_tool(value, wrap)],
                 tool_result_encoder=LenientEncoder())
    return list(allm.stream(eng, "go"))


def _roundtrip_all(events: list[Any]) -> None:
    for event in events:
        text = allm.dumps(event)
        json.loads(text)
        again = allm.loads(text)
        assert type(again) is type(event)


@pytest.mark.parametrize("wrap", ["plain", "halt", "ask", "tool_error"])
@pytest.mark.parametrize(("name", "value", "expected"), CASES, ids=[c[0] for c in CASES])
def test_every_loop_event_dumps_and_loads(name: str, value: Any, expected: Any,
                                          wrap: str) -> None:
    events = _events(value, wrap)
    _roundtrip_all(events)
    done = next(e for e in events if e.type == "tool_execution_completed")
    if wrap == "plain":
        if name == "pydantic":  # allm.dumps accepts a model as it is: kept
            assert done.result == value
        else:
            assert done.result == expected
        assert allm.loads(allm.dumps(done)).result == expected
    elif wrap == "halt":
        halt = next(e for e in events if e.type == "tool_halt")
        assert allm.loads(allm.dumps(halt)).result == expected
        result = events[-1].result
        assert result.halted_reason == "done"
        assert allm.loads(allm.dumps(result)).metadata["halt_result"] == expected
    elif wrap == "ask":
        ask = next(e for e in events if e.type == "ask_user_requested")
        assert allm.loads(allm.dumps(ask)).options == {"choice": expected}
        result = allm.loads(allm.dumps(events[-1].result))
        assert result.metadata["ask_user_options"] == {"choice": expected}
    else:
        assert done.is_error
        assert allm.loads(allm.dumps(done)).result.metadata["data"] == expected


def test_async_driver_events_dump_too() -> None:
    eng = engine([[tc("c1", "t")], [("text", "ok")]], tools=[_tool(Opaque(), "plain")],
                 tool_result_encoder=LenientEncoder())

    async def main() -> list[Any]:
        return [e async for e in allm.astream(eng, "go")]

    events = anyio.run(main)
    _roundtrip_all(events)
    done = next(e for e in events if e.type == "tool_execution_completed")
    assert done.result == "Opaque()"


def test_values_dumps_accepts_are_kept_as_they_are() -> None:
    image = allm.Image(data=b"\x89PNG\r\n\x1a\n" + b"\0" * 16)
    for value in ({"a": [1, 2.5, None]}, (1, 2), b"raw", image, [allm.user("hi")]):
        assert json_safe(value) is value


def test_the_serializer_stays_strict() -> None:
    with pytest.raises(allm.ValidationError):
        allm.dumps({"x": Opaque()})
    with pytest.raises(allm.ValidationError):
        allm.dumps(allm.ToolExecutionCompleted(id="1", name="t", result=WHEN))


def test_cycles_and_depth_end_in_a_repr() -> None:
    loop: list[Any] = [WHEN]
    loop.append(loop)
    out = json_safe(loop)
    json.dumps(out)
    assert out[0] == "2026-11-24T08:00:00+00:00"
