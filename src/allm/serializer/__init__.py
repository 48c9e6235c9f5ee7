"""Tagged JSON for allm values: `dumps` / `loads`, `to_jsonable` / `from_jsonable`.

Owns the wire format of stored state (sessions in a database column, events relayed
to a UI as SSE). Must not know about providers, engines or I/O.

Format::

    {"allm": 1, "value": <tagged>}

- A registered dataclass is ``{"__type__": "<ClassName>", "data": {<every field>}}``,
  recursively; errors likewise (fields from `AllmError.to_fields`).
- Typed fields follow their annotation: `bytes` as base64 text, tuples as lists and
  frozensets as sorted lists (restored on load from the field's type).
- In untyped positions (`metadata`, `options`, tool results, `cause`, ...) JSON values
  pass as they are, registered values are tagged, and the few Python values JSON
  has no form for are tagged too so nothing changes type on the way back:
  ``{"__type__": "tuple" | "bytes", "data": ...}``; a plain dict that itself has a
  ``"__type__"`` key is wrapped as ``{"__type__": "dict", "data": {...}}``. A
  foreign exception (e.g. a transport error kept as `cause`) becomes
  ``{"__type__": "exception", "data": {"type": ..., "message": ...}}`` and loads
  back as that plain dict; a pydantic model (`ChatResult.output`) is stored as its
  JSON dict (re-validate it with your model). Anything else (functions, clients,
  arbitrary objects) raises `ValidationError` naming the path, never a silent repr.
- `Tool.handler` is never written (loaded tools have ``handler=None``); `Call` is
  never serializable (it can hold an API key).

Decoding never imports or executes anything named by the input: tags resolve only
through the registry (plus a fixed table of allm modules loaded lazily, e.g.
``"Session"`` -> `allm.session`). Every failure, encoding or decoding, is
`ValidationError(reason="invalid_json", errors=[(path, reason)])` with a dotted
path such as ``value.data.messages.3.data.role``.

Speed: each class's field list and per-field converters are built once, on first
use, from its type hints; values then go through plain loops and stdlib `json`.
Exceptions unwinding through the walk collect the path, so the success path never
builds path strings.

Layout: `_core` (tags, the failure type, the registry tables), `_values` (the walk
over untyped values and tagged dispatch), `_registry` (`register`, lazy tags, the
built-in types), `_fields` (per-class codecs from type hints); the API is here.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import ValidationError
from ._core import _BY_CLASS as _BY_CLASS
from ._core import _BY_TAG as _BY_TAG
from ._core import _LAZY_MODULES as _LAZY_MODULES
from ._core import _error, _Fail
from ._registry import register
from ._values import _dec_any, _enc_any

__all__ = [
    "SCHEMA_VERSION",
    "dumps",
    "loads",
    "to_jsonable",
    "from_jsonable",
    "register",
]

SCHEMA_VERSION = 1
_VERSION_KEY = "allm"



def _invalid(path: str, reason: str, detail: str) -> ValidationError:
    return ValidationError("invalid_json", f"invalid allm JSON at {path}: {reason} ({detail})",
                           errors=[(path, reason)])


def to_jsonable(value: Any) -> dict[str, Any]:
    """`value` as a JSON-ready dict: ``{"allm": 1, "value": <tagged>}``."""
    try:
        return {_VERSION_KEY: SCHEMA_VERSION, "value": _enc_any(value)}
    except _Fail as fail:
        raise _error(fail, "value") from None
    except RecursionError:
        raise _invalid("value", "too_deep", "nested too deeply to encode") from None


def from_jsonable(obj: Any) -> Any:
    """The value a `to_jsonable` dict (or `json.loads` of `dumps` output) holds."""
    if type(obj) is not dict:
        raise _invalid("$", "invalid_type", "the top level must be an object")
    version = obj.get(_VERSION_KEY)
    if version is None or "value" not in obj:
        missing = _VERSION_KEY if version is None else "value"
        raise _invalid(missing, "missing", f"no {missing!r} key at the top level")
    if type(version) is not int or version != SCHEMA_VERSION:
        raise _invalid(_VERSION_KEY, "unsupported_version",
                       f"version {version!r}; this reader knows {SCHEMA_VERSION}")
    if len(obj) != 2:
        extra = sorted(str(k) for k in obj if k not in (_VERSION_KEY, "value"))
        raise _invalid(extra[0], "unknown_field", "unexpected top-level key")
    try:
        return _dec_any(obj["value"])
    except _Fail as fail:
        raise _error(fail, "value") from None
    except RecursionError:
        raise _invalid("value", "too_deep", "nested too deeply") from None


_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def dumps(value: Any, *, indent: int | None = None) -> str:
    """Tagged JSON text for `value` (see the module docstring for the format)."""
    obj = to_jsonable(value)
    if indent is None:
        return _COMPACT.encode(obj)
    return json.dumps(obj, ensure_ascii=False, indent=indent, allow_nan=False)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(text: str | bytes | bytearray) -> Any:
    """The value `dumps` wrote. Raises `ValidationError(reason="invalid_json")`."""
    if not isinstance(text, (str, bytes, bytearray)):
        raise _invalid("$", "invalid_type", "loads() needs str or bytes")
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise _invalid("$", "malformed",
                       f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:  # bad UTF-8, NaN / Infinity, depth
        raise _invalid("$", "malformed", str(exc)[:200] or type(exc).__name__) from None
    return from_jsonable(obj)

