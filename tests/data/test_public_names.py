"""Every name in `allm.__all__` resolves (the lazy ones included), and the tagged-JSON
dict functions are public: `allm.to_jsonable` / `allm.from_jsonable`."""

from __future__ import annotations

import json

import allm
from allm import serializer


def test_every_public_name_resolves() -> None:
    for name in allm.__all__:
        assert getattr(allm, name) is not None, name
    assert set(allm._LAZY) <= set(allm.__all__)


def test_to_and_from_jsonable_at_the_top_level() -> None:
    assert allm.to_jsonable is serializer.to_jsonable
    assert allm.from_jsonable is serializer.from_jsonable
    thread = allm.Thread(messages=(allm.user("hi"), allm.assistant("hello")))
    obj = allm.to_jsonable(thread)
    assert obj["allm"] == serializer.SCHEMA_VERSION
    assert json.loads(json.dumps(obj)) == obj  # plain JSON values only
    assert allm.from_jsonable(obj) == thread
    assert allm.from_jsonable(json.loads(allm.dumps(thread))) == thread
