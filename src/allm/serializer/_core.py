"""The serializer's shared core: wire constants, the failure type, the class registry
tables and the per-class codec holder.

Must not know how values are walked or how a class's fields are converted (that is
`_values` and `_fields`); it only holds what they share.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import AllmError, ValidationError

_TAG = "__type__"
_DATA = "data"
_BUILTIN_TAGS = frozenset({"tuple", "bytes", "dict", "exception"})

# Types registered lazily: tag -> the allm module that defines it. Only these fixed
# modules are ever imported on behalf of input (never a name taken from the input).
_LAZY_MODULES: dict[str, str] = {
    "Session": "allm.session",
    "StreamReducer": "allm.session",
    "ToolFailure": "allm.tools._results",
    "AskUser": "allm.tools._results",
    "Halt": "allm.tools._results",
}

_NoneType = type(None)
_JSON_SCALARS: frozenset[type] = frozenset({str, int, float, bool, _NoneType})


class _Fail(Exception):
    """Internal: a failure deep in the walk; callers append path segments on unwind."""

    def __init__(self, reason: str, *segments: str | int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.segments: list[str | int] = list(reversed(segments))  # innermost first
        self.detail = ""


def _error(fail: _Fail, root: str) -> ValidationError:
    fail.segments.append(root)
    path = ".".join(str(s) for s in reversed(fail.segments))
    detail = f" ({fail.detail})" if fail.detail else ""
    return ValidationError(
        "invalid_json", f"invalid allm JSON at {path}: {fail.reason}{detail}",
        errors=[(path, fail.reason)],
    )



class _Codec:
    """Encoder and decoder of one registered class, compiled on first use."""

    __slots__ = ("cls", "decode", "encode", "tag")

    def __init__(self, cls: type, tag: str) -> None:
        self.cls = cls
        self.tag = tag
        self.encode: Callable[[Any], Any] = self._first_encode
        self.decode: Callable[[Any], Any] = self._first_decode

    def _first_encode(self, v: Any) -> Any:
        self._compile()
        return self.encode(v)

    def _first_decode(self, v: Any) -> Any:
        self._compile()
        return self.decode(v)

    def _compile(self) -> None:
        from ._fields import _dataclass_codec, _error_codec  # built from type hints, once

        if issubclass(self.cls, AllmError):
            self.encode, self.decode = _error_codec(self.cls, self.tag)
        else:
            self.encode, self.decode = _dataclass_codec(self.cls, self.tag)


# Filled by `register` (never rebound: the walk binds these dicts by name).
_BY_TAG: dict[str, _Codec] = {}
_BY_CLASS: dict[type, _Codec] = {}
