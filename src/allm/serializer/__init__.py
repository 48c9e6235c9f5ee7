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
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import importlib
import json
import math
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from .errors import ERROR_TYPES, AllmError, ValidationError

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


# ----------------------------------------------------------------------------------
# Untyped values (metadata, options, results, ...)
# ----------------------------------------------------------------------------------


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
# Tagged values: the registry
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


class _Kind(NamedTuple):
    """How one field is converted. Values whose type is in a `*_direct` set pass as
    they are (no call); others go through `enc` / `dec`, which raise `_Fail`."""

    enc_direct: frozenset[type]
    enc: Callable[[Any], Any]
    dec_direct: frozenset[type]
    dec: Callable[[Any], Any]


def _reject(_: Any) -> Any:
    raise _Fail("invalid_type")


_ANY = _Kind(frozenset({str, int, bool, _NoneType}), _enc_any, _JSON_SCALARS, _dec_any)
_SKIP = _Kind(frozenset(), _reject, frozenset(), _reject)  # never serialized (handlers)


def _enc_float_field(v: Any) -> Any:
    if isinstance(v, (float, int)) and not isinstance(v, bool):
        return _enc_float(float.__float__(v)) if isinstance(v, float) else int.__int__(v)
    raise _Fail("invalid_type")


def _enc_str_field(v: Any) -> Any:
    if isinstance(v, str):  # a StrEnum member, say: stored as its plain value
        return str.__str__(v)
    raise _Fail("invalid_type")


def _enc_int_field(v: Any) -> Any:
    if isinstance(v, int) and not isinstance(v, bool):  # an IntEnum (HTTP status)
        return int.__int__(v)
    raise _Fail("invalid_type")


def _prim_kind(tp: type) -> _Kind:
    if tp is float:  # an int is a fine float; JSON may print 2.0 as 2 elsewhere
        return _Kind(frozenset({int}), _enc_float_field, frozenset({float, int}), _reject)
    enc = _enc_str_field if tp is str else _enc_int_field if tp is int else _reject
    return _Kind(frozenset({tp}), enc, frozenset({tp}), _reject)


def _tuple_kind(item: _Kind) -> _Kind:
    edirect, enc, ddirect, dec = item

    def enc_tuple(v: Any) -> Any:
        if type(v) is not tuple and type(v) is not list:
            raise _Fail("invalid_type")
        out: list[Any] = []
        for i, x in enumerate(v):
            if type(x) in edirect:
                out.append(x)
            else:
                try:
                    out.append(enc(x))
                except _Fail as e:
                    e.segments.append(i)
                    raise
        return out

    def dec_tuple(v: Any) -> Any:
        if type(v) is not list:
            raise _Fail("invalid_type")
        out: list[Any] = []
        for i, x in enumerate(v):
            if type(x) in ddirect:
                out.append(x)
            else:
                try:
                    out.append(dec(x))
                except _Fail as e:
                    e.segments.append(i)
                    raise
        return tuple(out)

    return _Kind(frozenset(), enc_tuple, frozenset(), dec_tuple)


def _frozenset_kind(item: _Kind) -> _Kind:
    tk = _tuple_kind(item)

    def enc_set(v: Any) -> Any:
        if not isinstance(v, (set, frozenset)):
            raise _Fail("invalid_type")
        # Sorted so equal sets give equal JSON; mixed types sort by type name first.
        return tk.enc(sorted(v, key=lambda x: (type(x).__name__, x)))

    def dec_set(v: Any) -> Any:
        return frozenset(tk.dec(v))

    return _Kind(frozenset(), enc_set, frozenset(), dec_set)


def _enc_dict_field(v: Any) -> Any:
    if type(v) is not dict:
        if not isinstance(v, Mapping):
            raise _Fail("invalid_type")
        v = dict(v)
    return _enc_dict(v) if v else {}


def _dec_dict_field(v: Any) -> Any:
    if type(v) is not dict:
        raise _Fail("invalid_type")
    if _TAG in v:  # an escaped plain dict
        result = _dec_tagged(v, None)
        if type(result) is not dict:
            raise _Fail("invalid_type")
        return result
    return _dec_dict(v) if v else {}


# `dict[str, X]` fields: string keys, values as in untyped positions.
_DICT = _Kind(frozenset(), _enc_dict_field, frozenset(), _dec_dict_field)


def _class_kind(cls: type | tuple[type, ...]) -> _Kind:
    def enc_obj(v: Any) -> Any:
        codec = _BY_CLASS.get(type(v))
        if codec is None or not issubclass(codec.cls, cls):
            if isinstance(v, cls):
                return _enc_any(v)
            raise _Fail("invalid_type")
        return codec.encode(v)

    def dec_obj(v: Any) -> Any:
        if type(v) is not dict:
            raise _Fail("invalid_type")
        return _dec_tagged(v, cls)

    return _Kind(frozenset(), enc_obj, frozenset(), dec_obj)


def _bytes_kind() -> _Kind:
    def enc_b(v: Any) -> Any:
        if type(v) is bytes or type(v) is bytearray:
            return base64.b64encode(v).decode("ascii")
        raise _Fail("invalid_type")

    return _Kind(frozenset(), enc_b, frozenset(), _b64decode)


def _union_kind(members: list[_Kind]) -> _Kind:
    if any(m is _ANY for m in members):
        return _ANY
    enc_direct = frozenset().union(*(m.enc_direct for m in members))
    dec_direct = frozenset().union(*(m.dec_direct for m in members))
    calls = [m for m in members if m.enc is not _reject]

    def enc_u(v: Any) -> Any:
        for m in calls:
            try:
                return m.enc(v)
            except _Fail as e:
                if e.reason != "invalid_type" or e.segments:
                    raise
        raise _Fail("invalid_type")

    dcalls = [m for m in members if m.dec is not _reject]

    def dec_u(v: Any) -> Any:
        for m in dcalls:
            try:
                return m.dec(v)
            except _Fail as e:
                if e.reason != "invalid_type" or e.segments:
                    raise
        raise _Fail("invalid_type")

    return _Kind(enc_direct, enc_u, dec_direct, dec_u)


def _kind_for(hint: Any) -> _Kind:
    if hint is Any or hint is object:
        return _ANY
    if hint is None or hint is _NoneType:
        return _prim_kind(_NoneType)
    if hint in (str, int, float, bool):
        return _prim_kind(hint)
    if hint is bytes:
        return _bytes_kind()
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        if any(typing.get_origin(a) is Callable or a is Callable for a in args):
            return _SKIP
        # Classes in one union share one tagged kind (the tag picks the class).
        classes = tuple(a for a in args if _is_tagged_class(a))
        members = [_kind_for(a) for a in args if a not in classes]
        if classes:
            members.append(_class_kind(classes if len(classes) > 1 else classes[0]))
        return _union_kind(members)
    if origin is typing.Literal:
        return _union_kind([_prim_kind(type(a)) for a in args])
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _tuple_kind(_kind_for(args[0]))
        return _ANY
    if origin in (frozenset, set):
        return _frozenset_kind(_kind_for(args[0]) if args else _ANY)
    if origin is dict:
        return _DICT if not args or args[0] is str else _ANY
    if origin is Callable or hint is Callable:
        return _SKIP
    if _is_tagged_class(hint):
        return _class_kind(hint)
    return _ANY


def _is_tagged_class(hint: Any) -> bool:
    if not isinstance(hint, type):
        return False
    if hint in _BY_CLASS or issubclass(hint, AllmError):
        return True
    return dataclasses.is_dataclass(hint) and _lazy_register_class(hint)


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
        if issubclass(self.cls, AllmError):
            self.encode, self.decode = _error_codec(self.cls, self.tag)
        else:
            self.encode, self.decode = _dataclass_codec(self.cls, self.tag)


class _NoDefault:
    """The default "type" of a required field: no value has it, so none is skipped."""


def _type_hints(cls: type) -> dict[str, Any]:
    module = sys.modules.get(cls.__module__)
    globalns = dict(vars(module)) if module else {}
    localns: dict[str, Any] = {c.tag: c.cls for c in _BY_TAG.values()}
    localns.update(ERROR_TYPES)
    localns["AllmError"] = AllmError
    try:
        return typing.get_type_hints(cls, globalns=globalns, localns=localns)
    except Exception:  # unresolvable forward refs: treat every field as untyped
        return {}


def _dataclass_codec(cls: type, tag: str) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    hints = _type_hints(cls)
    fields: list[tuple[str, frozenset[type], Callable[[Any], Any], type, Any]] = []
    dec_fields: dict[str, tuple[frozenset[type], Callable[[Any], Any]]] = {}
    required: list[str] = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        kind = _kind_for(hints.get(f.name, Any))
        if kind is _SKIP:
            continue
        dec_fields[f.name] = (kind.dec_direct, kind.dec)
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            required.append(f.name)
            fields.append((f.name, kind.enc_direct, kind.enc, _NoDefault, None))
            continue
        fields.append((f.name, kind.enc_direct, kind.enc, type(default), default))
    enc_fields = tuple(fields)

    def encode(v: Any) -> Any:
        data: dict[str, Any] = {}
        for name, direct, enc, dtype, default in enc_fields:
            x = getattr(v, name)
            if type(x) is dtype and x == default:
                continue  # a field at its default is left out; loading restores it
            if type(x) in direct:
                data[name] = x
            else:
                try:
                    data[name] = enc(x)
                except _Fail as e:
                    e.segments.append(name)
                    e.segments.append(_DATA)
                    raise
        return {_TAG: tag, _DATA: data}

    def decode(data: Any) -> Any:
        if type(data) is not dict:
            raise _Fail("invalid_type")
        kwargs: dict[str, Any] = {}
        for name, x in data.items():
            spec = dec_fields.get(name)
            if spec is None:
                raise _Fail("unknown_field", name)
            if type(x) in spec[0]:
                kwargs[name] = x
            else:
                try:
                    kwargs[name] = spec[1](x)
                except _Fail as e:
                    e.segments.append(name)
                    raise
        try:
            return cls(**kwargs)
        except ValidationError as exc:
            where, why = exc.errors[0] if exc.errors else ("", "invalid_value")
            f = _Fail(why)
            f.detail = f"{cls.__name__}: {exc.message} [{where}]"
            raise f from None
        except (TypeError, ValueError) as exc:
            missing = [n for n in required if n not in kwargs]
            if missing:
                raise _Fail("missing", missing[0]) from None
            f = _Fail("invalid_value")
            f.detail = f"{cls.__name__}: {exc}"
            raise f from None

    return encode, decode


# Error fields: the common ones plus every subclass's `extra_fields`.
_ERROR_FIELD_KINDS: dict[str, _Kind] = {
    "reason": _prim_kind(str),
    "message": _prim_kind(str),
    "provider": _union_kind([_prim_kind(str), _prim_kind(_NoneType)]),
    "metadata": _DICT,
    "status": _union_kind([_prim_kind(int), _prim_kind(_NoneType)]),
    "retry_after": _union_kind([_prim_kind(float), _prim_kind(_NoneType)]),
    "request_id": _union_kind([_prim_kind(str), _prim_kind(_NoneType)]),
    "event_index": _union_kind([_prim_kind(int), _prim_kind(_NoneType)]),
    "tool_name": _union_kind([_prim_kind(str), _prim_kind(_NoneType)]),
    "tool_call_id": _union_kind([_prim_kind(str), _prim_kind(_NoneType)]),
    # ValidationError.errors: (path, reason) pairs as two-item lists.
    "errors": _tuple_kind(_tuple_kind(_prim_kind(str))),
}


def _error_codec(cls: type, tag: str) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    names = ("reason", "message", "provider", "cause", "metadata",
             *getattr(cls, "extra_fields", ()))
    kinds = {n: _ERROR_FIELD_KINDS.get(n, _ANY) for n in names}
    from_fields = cls.from_fields  # type: ignore[attr-defined]

    def encode(v: Any) -> Any:
        data: dict[str, Any] = {}
        for name, x in v.to_fields().items():
            kind = kinds.get(name, _ANY)
            try:
                data[name] = x if type(x) in kind.enc_direct else kind.enc(x)
            except _Fail as e:
                e.segments.append(name)
                e.segments.append(_DATA)
                raise
        return {_TAG: tag, _DATA: data}

    def decode(data: Any) -> Any:
        if type(data) is not dict:
            raise _Fail("invalid_type")
        fields: dict[str, Any] = {}
        for name, x in data.items():
            kind = kinds.get(name)
            if kind is None:
                raise _Fail("unknown_field", name)
            try:
                fields[name] = x if type(x) in kind.dec_direct else kind.dec(x)
            except _Fail as e:
                e.segments.append(name)
                raise
        if "reason" not in fields:
            raise _Fail("missing", "reason")
        if "errors" in fields:
            fields["errors"] = [tuple(e) for e in fields["errors"]]
            if any(len(e) != 2 for e in fields["errors"]):
                raise _Fail("invalid_value", "errors")
        try:
            return from_fields(fields)
        except ValueError:
            raise _Fail("unknown_reason", "reason") from None
        except TypeError as exc:
            f = _Fail("invalid_value")
            f.detail = f"{cls.__name__}: {exc}"
            raise f from None

    return encode, decode


_BY_TAG: dict[str, _Codec] = {}
_BY_CLASS: dict[type, _Codec] = {}


def register(cls: type, *, tag: str | None = None) -> type:
    """Make a dataclass (or an `AllmError` subclass) serializable under `tag`
    (default: its class name). Usable as a decorator. Fields are converted from
    their type hints; fields typed as callables are never written."""
    if not (dataclasses.is_dataclass(cls) or issubclass(cls, AllmError)):
        raise TypeError(f"register() needs a dataclass or an AllmError subclass, got {cls!r}")
    name = tag or cls.__name__
    if name in _BUILTIN_TAGS:
        raise ValueError(f"tag {name!r} is reserved")
    existing = _BY_TAG.get(name)
    if existing is not None and existing.cls is not cls:
        raise ValueError(f"tag {name!r} is already registered for {existing.cls!r}")
    codec = _Codec(cls, name)
    _BY_TAG[name] = codec
    _BY_CLASS[cls] = codec
    return cls


def _lazy_codec(tag: str) -> _Codec | None:
    """The codec for a tag defined in an allm module not imported yet (fixed table)."""
    module_name = _LAZY_MODULES.get(tag)
    if module_name is None:
        return None
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    if tag not in _BY_TAG:
        cls = getattr(module, tag, None)
        if isinstance(cls, type) and dataclasses.is_dataclass(cls):
            register(cls, tag=tag)
    return _BY_TAG.get(tag)


def _lazy_register_class(cls: type) -> bool:
    """Register an allm dataclass named in the lazy table on first encode."""
    if cls in _BY_CLASS:
        return True
    if _LAZY_MODULES.get(cls.__name__) == cls.__module__ and cls.__name__ not in _BY_TAG:
        register(cls)
        return True
    return False


def _register_builtins() -> None:
    from . import events
    from .image import Image
    from .image_types import ImageRequest, ImageResponse, ImageUsage
    from .messages import ImagePart, Message, TextPart, Thread, ToolCall
    from .request import ModelRef, Request, Response, Usage
    from .results import ChatResult, StepResult
    from .retry import RetryPolicy
    from .tool import Tool

    for cls in (Message, TextPart, ImagePart, Image, ToolCall, Tool, Thread, Request,
                Response, Usage, ModelRef, StepResult, ChatResult, ImageRequest,
                ImageResponse, ImageUsage, RetryPolicy, *events.EVENT_TYPES.values(),
                AllmError, *ERROR_TYPES.values()):
        register(cls)


_register_builtins()


# ----------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------


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
