"""`allm._jsoncompact.compact_dumps` equals `json.dumps` with the same options, errors
included (the tool result encoder and the Fake adapter use it)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import math
from typing import Any

import pytest

from allm._jsoncompact import compact_dumps
from allm.tools._exec import _json_default


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: float


cyclic: list[Any] = [1]
cyclic.append(cyclic)
cyclic_dict: dict[str, Any] = {}
cyclic_dict["self"] = cyclic_dict

VALUES: list[Any] = [
    None, True, 0, -3, 1.5, math.inf, -math.inf, math.nan, 1e300, "", "é ü 😀 \n\t\"\\",
    "\u2028", [], {}, (1, 2), {"a": [1, {"b": None}], "ü": "x"}, {1: "int key", 2.5: "f",
                                                                    None: "n", False: "f"},
    [Color.RED, dt.date(2024, 1, 2), Point(1, 2.0), {1, 2}, b"bytes"], object(),
    {"nested": object()}, {(1, 2): "tuple key"}, cyclic, cyclic_dict, 2**80,
    [[[[[[[[[["deep"]]]]]]]]]],
]


def _outcome(fn: Any, value: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(value)
    except Exception as exc:
        return type(exc).__name__, str(exc)


@pytest.mark.parametrize("default", [None, _json_default], ids=["plain", "tool_default"])
@pytest.mark.parametrize("index", range(len(VALUES)))
def test_equals_json_dumps(default: Any, index: int) -> None:
    value = VALUES[index]
    fast = compact_dumps(default)

    def reference(v: Any) -> str:
        return json.dumps(v, separators=(",", ":"), ensure_ascii=False, default=default)

    assert _outcome(fast, value) == _outcome(reference, value)
    # a failure leaves nothing behind for the next call
    assert fast({"after": [1, 2]}) == '{"after":[1,2]}'


def test_too_deep_is_the_same_error() -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    fast = compact_dumps()
    with pytest.raises(RecursionError):
        fast(deep)
    assert fast([1]) == "[1]"
