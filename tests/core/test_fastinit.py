"""`_fastinit.fast_init`: the swapped ``__init__`` behaves as the dataclass one."""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from typing import Any

import pytest

from allm import events, messages, request, results
from allm._fastinit import fast_init
from allm.providers._codec import HttpRequest
from allm.providers.base import Call

PATCHED = [*events.EVENT_TYPES.values(), messages.TextPart, messages.ImagePart,
           messages.ToolCall, messages.Message, messages.Thread, request.Usage,
           request.Request, request.Response, results.StepResult, results.ChatResult, Call,
           HttpRequest]


def _reference(cls: type) -> type:
    """The same fields in a plain (not patched) frozen slotted kw-only dataclass."""
    specs = []
    for f in dataclasses.fields(cls):
        kw: dict[str, Any] = {}
        if f.default is not dataclasses.MISSING:
            kw["default"] = f.default
        if f.default_factory is not dataclasses.MISSING:
            kw["default_factory"] = f.default_factory
        specs.append((f.name, Any, field(**kw)))
    return dataclasses.make_dataclass("Ref", specs, frozen=True, slots=True, kw_only=True)


@pytest.mark.parametrize("cls", PATCHED, ids=lambda c: c.__name__)
def test_patched_init_matches_the_dataclass_one(cls: type) -> None:
    assert "fast __init__" in cls.__init__.__code__.co_filename
    ref = _reference(cls)
    fields = dataclasses.fields(cls)
    required = {f.name: f"<{f.name}>" for f in fields
                if f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING}
    # Defaults and factories: same values, and a fresh object per instance.
    a, b, r = cls(**required), cls(**required), ref(**required)
    for f in fields:
        assert getattr(a, f.name) == getattr(r, f.name), f.name
        if f.default_factory is not dataclasses.MISSING:
            assert getattr(a, f.name) is not getattr(b, f.name), f.name
    # Every field given: stored as given.
    given = {f.name: (f.name, 1) for f in fields}
    full = cls(**given)
    assert all(getattr(full, n) == v for n, v in given.items())
    # Still frozen, still keyword-only, still strict about names.
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(full, fields[0].name, "x")
    with pytest.raises(TypeError):
        cls(*given.values())
    with pytest.raises(TypeError):
        cls(**given, not_a_field=1)
    if required:
        with pytest.raises(TypeError):
            cls()
    assert list(inspect.signature(cls).parameters) == [f.name for f in fields]


def test_classes_it_cannot_reproduce_are_left_alone() -> None:
    @dataclass(frozen=True, slots=True, kw_only=True)
    class Post:
        x: int = 0

        def __post_init__(self) -> None:
            object.__setattr__(self, "x", self.x + 1)

    @dataclass(frozen=True, slots=True)
    class Positional:
        x: int

    @dataclass(frozen=True, slots=True, kw_only=True)
    class NotInit:
        x: int = field(default=0, init=False)

    for cls in (Post, Positional, NotInit):
        before = cls.__init__
        assert fast_init(cls) is cls and cls.__init__ is before
    assert Post(x=1).x == 2
