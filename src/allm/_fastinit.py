"""A faster ``__init__`` for our frozen, slotted, keyword-only dataclasses.

A frozen dataclass's generated ``__init__`` stores each field through
``object.__setattr__(self, name, value)`` (the class's own ``__setattr__`` refuses),
which looks the slot up by name on every store. Events, messages, usage and
responses are built for every streamed chunk and every model call (issue 10), so
`fast_init` swaps in an ``__init__`` that stores through the slots' own descriptors,
bound once: the same signature, defaults and default factories, the same stored
values, about 35 % cheaper (`Usage()` 1.9 -> 1.2 µs, `TextDelta` 0.70 -> 0.51 µs).
Instances stay frozen: only ``__init__`` changes.

Classes it cannot reproduce exactly (a ``__post_init__``, ``InitVar``s, fields with
``init=False`` or positional fields) keep their generated ``__init__``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

__all__ = ["fast_init"]

T = TypeVar("T")

class _Factory:
    """The default of a field with a default factory ("no argument": the factory
    runs); shown as ``<factory>`` in signatures, as dataclasses show it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<factory>"


_NOTHING = _Factory()


def fast_init(cls: type[T]) -> type[T]:
    """Replace `cls.__init__` (a frozen slotted kw-only dataclass) as described above;
    returns `cls`."""
    if not dataclasses.is_dataclass(cls) or "__slots__" not in cls.__dict__:
        return cls
    if hasattr(cls, "__post_init__"):
        return cls
    fields = dataclasses.fields(cls)
    # `fields()` leaves out InitVars and ClassVars; InitVars would need __post_init__
    # (refused above). Every field must be keyword-only and set by __init__.
    if any(not f.init or not f.kw_only for f in fields):
        return cls
    ns: dict[str, Any] = {"_NOTHING": _NOTHING}
    params: list[str] = []
    body: list[str] = []
    for i, f in enumerate(fields):
        descriptor = cls.__dict__.get(f.name)
        if descriptor is None or not hasattr(descriptor, "__set__"):
            return cls  # not a slot of this very class
        ns[f"_set{i}"] = descriptor.__set__
        if f.default is not dataclasses.MISSING:
            ns[f"_default{i}"] = f.default
            params.append(f"{f.name}=_default{i}")
            value = f.name
        elif f.default_factory is not dataclasses.MISSING:
            ns[f"_factory{i}"] = f.default_factory
            params.append(f"{f.name}=_NOTHING")
            value = f"_factory{i}() if {f.name} is _NOTHING else {f.name}"
        else:
            params.append(f.name)
            value = f.name
        body.append(f"    _set{i}(self, {value})")
    if not fields:
        return cls
    source = f"def __init__(self, *, {', '.join(params)}) -> None:\n" + "\n".join(body)
    exec(compile(source, f"<allm fast __init__ of {cls.__qualname__}>", "exec"), ns)
    init = ns["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = cls.__init__.__doc__
    init.__annotations__ = dict(cls.__init__.__annotations__)
    setattr(cls, "__init__", init)  # noqa: B010 (mypy refuses assigning a method)
    return cls
