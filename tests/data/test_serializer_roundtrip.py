"""Property tests: `loads(dumps(x)) == x` for every Layer A type, event and error."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import allm
from allm import serializer
from allm.errors import ERROR_TYPES
from allm.events import EVENT_TYPES

from .strategies import ERROR_STRATEGIES, EVENT_STRATEGIES, LAYER_A_STRATEGIES, any_value

_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large]
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=_HEALTH)
# Composite values (results holding threads holding messages) are slow to generate;
# fewer examples of them still cover every nested type many times over.
FEW = settings(max_examples=25, deadline=None, suppress_health_check=_HEALTH)
_COMPOSITE = {"ChatResult", "StepResult", "Request", "chat_completed", "step_completed",
              "message_completed", "error", "AdapterError", "StreamError"}


def _roundtrip(value: Any) -> None:
    text = allm.dumps(value)
    loaded = allm.loads(text)
    assert type(loaded) is type(value)
    assert loaded == value
    # The dict form and the pretty form hold the same value.
    assert serializer.from_jsonable(serializer.to_jsonable(value)) == value
    assert serializer.from_jsonable(json.loads(text)) == value
    assert allm.loads(allm.dumps(value, indent=2)) == value
    assert allm.loads(text.encode()) == value
    # Dumping what was loaded gives the same text (a stable format).
    assert allm.dumps(loaded) == text


def test_every_event_and_error_type_has_a_strategy() -> None:
    assert set(EVENT_STRATEGIES) == set(EVENT_TYPES)
    assert set(ERROR_STRATEGIES) == {*ERROR_TYPES, "AllmError"}


@pytest.mark.parametrize("name", sorted(LAYER_A_STRATEGIES))
def test_layer_a_roundtrip(name: str) -> None:
    @(FEW if name in _COMPOSITE else SETTINGS)
    @given(LAYER_A_STRATEGIES[name])
    def check(value: Any) -> None:
        _roundtrip(value)

    check()


@pytest.mark.parametrize("name", sorted(EVENT_STRATEGIES))
def test_event_roundtrip(name: str) -> None:
    @(FEW if name in _COMPOSITE else SETTINGS)
    @given(EVENT_STRATEGIES[name])
    def check(value: Any) -> None:
        _roundtrip(value)

    check()


@pytest.mark.parametrize("name", sorted(ERROR_STRATEGIES))
def test_error_roundtrip(name: str) -> None:
    @(FEW if name in _COMPOSITE else SETTINGS)
    @given(ERROR_STRATEGIES[name])
    def check(value: Any) -> None:
        _roundtrip(value)

    check()


@SETTINGS
@given(any_value)
def test_untyped_values_roundtrip(value: Any) -> None:
    assert allm.loads(allm.dumps(value)) == value
    loaded = allm.loads(allm.dumps({"v": value}))["v"]
    assert type(loaded) is type(value)


@FEW
@given(st.lists(st.one_of(list(EVENT_STRATEGIES.values())), max_size=3))
def test_a_list_of_events_roundtrips(events: list[Any]) -> None:
    assert allm.loads(allm.dumps(events)) == events


# -- Session (defined in allm.session, registered lazily) ---------------------------------

_SESSION_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "id": st.none() | st.text(max_size=8),
    "status": st.sampled_from(["idle", "awaiting_user", "awaiting_tools", "completed", "error"]),
    "pending_question": st.none() | st.text(max_size=8),
    "pending_tool_call_id": st.none() | st.text(max_size=8),
}


@pytest.fixture(scope="module")
def session_strategy() -> st.SearchStrategy[Any]:
    import dataclasses

    from .strategies import metadata, small_threads, tool_calls, usages

    session_mod = pytest.importorskip("allm.session")
    known = {**_SESSION_FIELDS, "thread": small_threads, "usage": usages, "metadata": metadata,
             "pending_tool_calls": st.lists(tool_calls, max_size=2).map(tuple)}
    names = {f.name for f in dataclasses.fields(session_mod.Session) if f.init}
    return st.builds(session_mod.Session, **{n: s for n, s in known.items() if n in names})


def test_session_roundtrip(session_strategy: st.SearchStrategy[Any]) -> None:
    @FEW
    @given(session_strategy)
    def check(value: Any) -> None:
        _roundtrip(value)

    check()


def test_session_loads_in_a_fresh_process() -> None:
    """A process that never imported allm.session can load a stored session."""
    import subprocess
    import sys

    session_mod = pytest.importorskip("allm.session")
    blob = allm.dumps(session_mod.Session(status="awaiting_user", pending_question="city?",
                                          thread=allm.Thread(messages=(allm.user("hi"),))))
    code = ("import sys, allm; s = allm.loads(sys.stdin.read()); "
            "print(type(s).__module__, type(s).__name__, s.status, s.pending_question)")
    out = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True,
                         text=True, check=True, timeout=60)
    assert out.stdout.split() == ["allm.session", "Session", "awaiting_user", "city?"]
