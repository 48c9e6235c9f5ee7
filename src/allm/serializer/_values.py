"""The walk over untyped values (`metadata`, `options`, tool results, `cause`, ...):
JSON values as they are, registered classes through their codec, builtin tags for
the few Python values JSON has no form for, and the dispatch of tagged objects.

Must not know how a class's fields are converted (`_fields` does that, through the
codec each registered class carries).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import math
import re
from collections.abc import Mapping
from typing import Any

from ..errors import AllmError
from ._core import _BUILTIN_TAGS, _BY_CLASS, _BY_TAG, _DATA, _TAG, _Codec, _Fail
from ._registry import _lazy_codec, _lazy_register_class


def _enc_float(v: float) -> float:
    if math.isfinite(v):
        return v
    raise _Fail("not_finite")


def _enc_dict(v: dict[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, x in v.items():
        if type(k) is not str:
            f = _Fail("non_string_key")
            f.detail = f"a {type(k).__name__} key"
            raise f
        t = type(x)
        if t is str or t is int or t is bool or x is None:
            out[k] = x
        else:
            try:
                out[k] = _enc_any(x)
            except _Fail as e:
                e.segments.append(k)
                raise
    if _TAG in out:
        return {_TAG: "dict", _DATA: out}
    return out


def _enc_list(v: list[Any] | tuple[Any, ...]) -> list[Any]:
    out: list[Any] = []
    append = out.append
    for i, x in enumerate(v):
        t = type(x)
        if t is str or t is int or t is bool or x is None:
            append(x)
        else:
            try:
                append(_enc_any(x))
            except _Fail as e:
                e.segments.append(i)
                raise
    return out


def _enc_any(v: Any) -> Any:
    t = type(v)
    if t is str or t is int or t is bool or v is None:
        return v
    if t is dict:
        return _enc_dict(v) if v else {}
    if t is list:
        return _enc_list(v)
    if t is float:
        return _enc_float(v)
    codec = _BY_CLASS.get(t)
    if codec is not None:
        return codec.encode(v)
    if t is tuple:
        try:
            return {_TAG: "tuple", _DATA: _enc_list(v)}
        except _Fail as e:
            e.segments.append(_DATA)
            raise
    if t is bytes or t is bytearray:
        return {_TAG: "bytes", _DATA: base64.b64encode(v).decode("ascii")}
    return _enc_other(v)


# A foreign exception's text may quote a URL or header; never let a credential through.
_SECRET_RE = re.compile(
    r"((?:[?&](?:key|api_key|apikey|access_token|token)=)|(?:bearer\s+)|(?:x-api-key:\s*)"
    r"|(?:x-goog-api-key:\s*))[^&\s'\"]+",
    re.IGNORECASE,
)


def _scrub(text: str) -> str:
    return _SECRET_RE.sub(r"\1[REDACTED]", text)


def _enc_other(v: Any) -> Any:
    t = type(v)
    # Subclasses of JSON types (StrEnum, IntEnum, OrderedDict, ...) as their plain
    # form: equal to the original, so a round trip still compares equal.
    if isinstance(v, str):
        return str.__str__(v)
    if isinstance(v, int):
        return int.__int__(v)
    if isinstance(v, float):
        return _enc_float(float.__float__(v))
    if isinstance(v, Mapping):
        return _enc_dict(dict(v))
    if isinstance(v, list):
        return _enc_list(v)
    if t.__name__ == "Call" and t.__module__.startswith("allm."):
        f = _Fail("not_serializable")
        f.detail = "a Call may hold an API key and is never serialized"
        raise f
    if dataclasses.is_dataclass(v) and _lazy_register_class(t):
        return _BY_CLASS[t].encode(v)
    if isinstance(v, BaseException):
        if isinstance(v, AllmError):  # a subclass we do not know: refuse, do not guess
            f = _Fail("unsupported_type")
            f.detail = f"unregistered error class {t.__name__}"
            raise f
        return {_TAG: "exception",
                _DATA: {"type": f"{t.__module__}.{t.__qualname__}", "message": _scrub(str(v))}}
    dump = getattr(v, "model_dump", None)
    if callable(dump) and hasattr(t, "model_fields"):  # a pydantic model: its JSON form
        try:
            return _enc_any(dump(mode="json"))
        except _Fail:
            raise
        except Exception as exc:  # pragma: no cover - a model that cannot dump itself
            f = _Fail("unsupported_type")
            f.detail = f"{t.__name__}.model_dump failed: {exc}"
            raise f from None
    f = _Fail("unsupported_type")
    f.detail = f"cannot encode a {t.__module__}.{t.__qualname__}"
    raise f


def _dec_any(v: Any) -> Any:
    t = type(v)
    if t is dict:
        if _TAG in v:
            return _dec_tagged(v, None)
        return _dec_dict(v) if v else {}
    if t is list:
        return _dec_list(v)
    return v


def _dec_dict(v: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, x in v.items():
        tx = type(x)
        if tx is dict or tx is list:
            try:
                out[k] = _dec_any(x)
            except _Fail as e:
                e.segments.append(k)
                raise
        else:
            out[k] = x
    return out


def _dec_list(v: list[Any]) -> list[Any]:
    out: list[Any] = []
    append = out.append
    for i, x in enumerate(v):
        tx = type(x)
        if tx is dict or tx is list:
            try:
                append(_dec_any(x))
            except _Fail as e:
                e.segments.append(i)
                raise
        else:
            append(x)
    return out


def _dec_builtin(tag: str, data: Any) -> Any:
    try:
        if tag == "tuple":
            if type(data) is not list:
                raise _Fail("invalid_type")
            return tuple(_dec_list(data))
        if tag == "bytes":
            return _b64decode(data)
        if tag == "dict":
            if type(data) is not dict:
                raise _Fail("invalid_type")
            return _dec_dict(data)
        # "exception": a foreign exception, kept as the plain description it was.
        if (type(data) is not dict or set(data) != {"type", "message"}
                or not all(type(x) is str for x in data.values())):
            raise _Fail("invalid_type")
        return dict(data)
    except _Fail as e:
        e.segments.append(_DATA)
        raise


def _b64decode(data: Any) -> bytes:
    if type(data) is not str:
        raise _Fail("invalid_type")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise _Fail("invalid_base64") from None


# ----------------------------------------------------------------------------------
# Tagged values
# ----------------------------------------------------------------------------------


def _dec_tagged(v: dict[str, Any], expected: type | tuple[type, ...] | None) -> Any:
    tag = v.get(_TAG)
    codec = _BY_TAG.get(tag) if type(tag) is str else None
    if (codec is None or len(v) != 2 or _DATA not in v
            or (expected is not None and not issubclass(codec.cls, expected))):
        codec = _check_tagged(v, expected)
        if codec is None:
            return _dec_builtin(v[_TAG], v[_DATA])
    try:
        return codec.decode(v[_DATA])
    except _Fail as e:
        e.segments.append(_DATA)
        raise


def _check_tagged(v: dict[str, Any], expected: type | tuple[type, ...] | None) -> _Codec | None:
    """Off the fast path: diagnose a bad tagged object, or resolve a lazy tag
    (returns its codec) or a builtin one (returns None)."""
    tag = v.get(_TAG)
    if type(tag) is not str:
        raise _Fail("missing" if tag is None else "invalid_type", _TAG)
    if _DATA not in v:
        raise _Fail("missing", _DATA)
    if len(v) != 2:
        extra = sorted(k for k in v if k not in (_TAG, _DATA))
        raise _Fail("unknown_field", extra[0])
    codec = _BY_TAG.get(tag)
    if codec is None:
        if expected is None and tag in _BUILTIN_TAGS:
            return None
        codec = _lazy_codec(tag)
        if codec is None:
            f = _Fail("unknown_type", _TAG)
            f.detail = f"unknown tag {tag[:80]!r}"
            raise f
    if expected is not None and not issubclass(codec.cls, expected):
        f = _Fail("unexpected_type", _TAG)
        f.detail = f"{tag} is not allowed here"
        raise f
    return codec

