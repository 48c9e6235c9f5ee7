"""`json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=default)`
with the C encoder built once.

`json.dumps` with options builds a `JSONEncoder` and its C encoder on every call
(~2 µs of a small value's ~3 µs); the loop encodes a tool result per call and the
Fake adapter the arguments of each scripted tool call (issue 10). The prebuilt
encoder runs without circular-reference markers (a marker dict left over by a failed
call would poison the next one), so any failure is retried with `json.dumps` itself:
errors (a cycle, an unencodable value, a `default` that raises) stay exactly the
ones `json.dumps` gives.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["compact_dumps"]


def compact_dumps(default: Callable[[Any], Any] | None = None) -> Callable[[Any], str]:
    """A function equal to ``json.dumps(value, separators=(",", ":"),
    ensure_ascii=False, default=default)``."""
    from json import encoder

    def slow(value: Any) -> str:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=default)

    make = getattr(encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython without the _json accelerator
        return slow

    def fail(value: Any) -> Any:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")

    # (markers, default, encoder, indent, key_sep, item_sep, sort_keys, skipkeys,
    # allow_nan): what `JSONEncoder.iterencode` passes for these options.
    fast = make(None, default or fail, encoder.encode_basestring, None, ":", ",",
                False, False, True)
    basestring = encoder.encode_basestring

    def dumps(value: Any) -> str:
        if isinstance(value, str):  # what `JSONEncoder.encode` does first
            return basestring(value)  # type: ignore[no-any-return]
        try:
            return "".join(fast(value, 0))
        except Exception:  # a cycle, RecursionError, TypeError...: json's own error
            return slow(value)

    return dumps
