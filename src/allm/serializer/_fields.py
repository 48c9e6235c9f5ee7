"""Per-class codecs compiled from type hints: how each field kind (str, float, tuples,
frozensets, bytes, unions, registered classes, `dict[str, X]`, untyped) is encoded
and decoded, and the dataclass and error codecs built from them on first use.

Must not know the wire envelope (`allm`, `value`) or the public API.
"""

from __future__ import annotations

import base64
import dataclasses
import sys
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from ..errors import ERROR_TYPES, AllmError, ValidationError
from ._core import _BY_CLASS, _BY_TAG, _DATA, _JSON_SCALARS, _TAG, _Fail, _NoneType
from ._registry import _lazy_register_class
from ._values import (
    _b64decode,
    _dec_any,
    _dec_dict,
    _dec_tagged,
    _enc_any,
    _enc_dict,
    _enc_float,
)


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


_FieldSpec = tuple[frozenset[type], Callable[[Any], Any]]  # (passes as it is, decoder)


def _dec_fields(data: Any, specs: Mapping[str, _FieldSpec]) -> dict[str, Any]:
    """A tagged object's ``data``: each known field decoded, an unknown one refused."""
    if type(data) is not dict:
        raise _Fail("invalid_type")
    out: dict[str, Any] = {}
    for name, x in data.items():
        spec = specs.get(name)
        if spec is None:
            raise _Fail("unknown_field", name)
        if type(x) in spec[0]:
            out[name] = x
        else:
            try:
                out[name] = spec[1](x)
            except _Fail as e:
                e.segments.append(name)
                raise
    return out


def _dataclass_codec(cls: type, tag: str) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    hints = _type_hints(cls)
    fields: list[tuple[str, frozenset[type], Callable[[Any], Any], type, Any]] = []
    dec_fields: dict[str, _FieldSpec] = {}
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
        kwargs = _dec_fields(data, dec_fields)
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
    dec_fields = {n: (k.dec_direct, k.dec) for n, k in kinds.items()}
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
        fields = _dec_fields(data, dec_fields)
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

