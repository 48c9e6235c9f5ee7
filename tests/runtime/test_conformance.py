"""allm.testing: the conformance suite run on the tiny HTTP adapter and on Fake, and
shown to catch broken adapters."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from allm.errors import AdapterError
from allm.events import (
    ErrorEvent,
    Event,
    MessageCompleted,
    MessageStarted,
    TextDelta,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
)
from allm.messages import assistant, user
from allm.providers.base import Adapter, Call
from allm.providers.fake import Fake
from allm.request import Request
from allm.retry import NO_RETRY
from allm.testing import (
    AdapterConformance,
    Recorded,
    Scenario,
    Wire,
    check_event_order,
    run_conformance,
)

from .tinycodec import TinyAdapter, sse_body

REQ = Request(messages=(user("hi"),))
CALL = Call(api_key="sk-conf", retry=NO_RETRY)
SSE = {"content-type": "text/event-stream"}


def tiny(wire: Wire) -> Adapter:
    return TinyAdapter(base_url="http://tiny.test", http_client=wire.http_client,
                       async_http_client=wire.async_http_client)


TINY_SCENARIOS = [
    Scenario(
        name="hello",
        request=REQ,
        call=CALL,
        stream=[Recorded(headers=SSE, body=sse_body(["Hél", "lo 🌍"]), chunk_size=5)],
        non_stream=[Recorded(body=json.dumps({"id": "m1", "text": "Héllo 🌍"}))],
        fold_ignore=frozenset(),
    ),
    Scenario(
        name="unauthorized",
        request=REQ,
        call=CALL,
        stream=[Recorded(status=401, body='{"error": "bad key"}')],
        non_stream=[Recorded(status=401, body='{"error": "bad key"}')],
        expect_error=True,
    ),
]


class TestTinyAdapterConformance(AdapterConformance):
    def make_adapter(self, wire: Wire) -> Adapter:
        return tiny(wire)

    def scenarios(self) -> Sequence[Scenario]:
        return TINY_SCENARIOS


FAKE_SCRIPTS: dict[str, list[Any]] = {
    "text": [("text", "Hel"), ("text", "lo"), ("usage", {"input_tokens": 3, "output_tokens": 2})],
    "tool": [
        ("text", "calling"),
        ("tool_call", {"id": "c1", "name": "get_weather", "arguments": {"city": "Oslo"}}),
        ("tool_call_delta", {"id": "c2", "name": "f", "arguments_delta": '{"a": '}),
        ("tool_call_delta", {"id": "c2", "arguments_delta": "1}"}),
    ],
}


class TestFakeConformance(AdapterConformance):
    def make_adapter(self, wire: Wire) -> Adapter:
        assert wire.scenario is not None
        if wire.scenario.name == "error":
            return Fake(script=[("text", "par"), ("error", "rate_limited")])
        return Fake(script=FAKE_SCRIPTS[wire.scenario.name])

    def scenarios(self) -> Sequence[Scenario]:
        return [
            Scenario(name="text", request=REQ),
            Scenario(name="tool", request=REQ),
            Scenario(name="error", request=REQ, expect_error=True),
        ]

    def cleaned_up(self, adapter: Adapter) -> bool | None:
        assert isinstance(adapter, Fake)
        return adapter.cleanups >= 1


def test_recorded_fixture_scenario() -> None:
    fixtures = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"
    path = next(iter(sorted((fixtures / "openai").glob("*.json"))))
    rec = Recorded.from_fixture(path, chunk_size=64)
    assert rec.status in (200, 400, 404) and rec.content()
    assert not {k.lower() for k in rec.headers} & {"content-length", "content-encoding"}


# -- the suite catches broken adapters ------------------------------------------------------


class Broken:
    """An adapter with configurable defects."""

    provider = "broken"

    def __init__(self, events: Sequence[Any], *, async_events: Sequence[Any] | None = None,
                 raise_untyped: bool = False) -> None:
        self.events = events
        self.async_events = async_events if async_events is not None else events
        self.raise_untyped = raise_untyped

    def stream(self, request: Request, call: Call) -> Iterator[Event]:
        def gen() -> Iterator[Event]:
            yield from self.events
            if self.raise_untyped:
                raise KeyError("choices")

        return gen()

    def astream(self, request: Request, call: Call) -> AsyncIterator[Event]:
        async def gen() -> AsyncIterator[Event]:
            for ev in self.async_events:
                yield ev
            if self.raise_untyped:
                raise KeyError("choices")

        return gen()

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


GOOD = [MessageStarted(), TextDelta(delta="a"),
        MessageCompleted(message=assistant("a"), finish_reason="stop")]


def problems_of(adapter: Broken, **kw: Any) -> list[str]:
    report = run_conformance(lambda wire: adapter, [Scenario(name="s", request=REQ, **kw)])
    return [f"{p.check}: {p.detail}" for p in report.problems]


def test_good_adapter_passes() -> None:
    assert problems_of(Broken(GOOD)) == []


def test_catches_bad_order() -> None:
    bad = [TextDelta(delta="a"), MessageStarted(), ToolCallDelta(id="x", arguments_delta="{}"),
           ToolCallCompleted(id="y", name="f"), MessageCompleted(), TextDelta(delta="late")]
    found = "\n".join(problems_of(Broken(bad)))
    for needle in ("before message_started", "not the first event", "before its start",
                   "completed before started", "after message_completed"):
        assert needle in found
    assert check_event_order([MessageStarted(), TextDelta(delta="x")]) == [
        "stream ended without message_completed or an error event"
    ]
    assert check_event_order([ErrorEvent(error=AdapterError("timeout"))]) == []
    assert check_event_order([MessageStarted(), ToolCallStarted(id="a", name="f"),
                              ToolCallDelta(id="a", arguments_delta="{}"),
                              ToolCallCompleted(id="a", name="f"), MessageCompleted()]) == []


def test_catches_untyped_errors_and_parity() -> None:
    found = "\n".join(problems_of(Broken(GOOD[:2], raise_untyped=True)))
    assert "untyped KeyError" in found
    other = [MessageStarted(), TextDelta(delta="b"), MessageCompleted(finish_reason="stop")]
    found = "\n".join(problems_of(Broken(GOOD, async_events=other)))
    assert "parity" in found
    found = "\n".join(problems_of(Broken(GOOD), expect_error=True))
    assert "expected a typed error" in found


def test_catches_stream_fold_mismatch() -> None:
    class ModeDependent(Broken):
        def stream(self, request: Request, call: Call) -> Iterator[Event]:
            text = "stream" if call.stream else "json"
            return iter([MessageStarted(), TextDelta(delta=text), MessageCompleted()])

        def astream(self, request: Request, call: Call) -> AsyncIterator[Event]:
            events = list(self.stream(request, call))

            async def gen() -> AsyncIterator[Event]:
                for ev in events:
                    yield ev

            return gen()

    found = "\n".join(problems_of(ModeDependent([])))
    assert "fold: stream fold != non-stream fold: text: 'stream' != 'json'" in found


def test_catches_response_left_open() -> None:
    """An HTTP adapter that reads the body through a path that ignores close."""

    class Leaky(TinyAdapter):
        def stream(self, request: Request, call: Call) -> Iterator[Event]:
            assert self._user_client is not None
            resp = self._user_client.send(
                self._user_client.build_request("POST", "http://tiny.test/chat"), stream=True
            )

            def gen() -> Iterator[Event]:
                yield MessageStarted()
                for chunk in resp.iter_bytes():
                    yield TextDelta(delta=chunk.decode())
                yield MessageCompleted()

            return gen()

    sc = Scenario(name="leak", request=REQ, call=CALL,
                  stream=[Recorded(headers=SSE, body=sse_body(["a", "b"]), chunk_size=4)])
    report = run_conformance(
        lambda wire: Leaky(base_url="http://t", http_client=wire.http_client,
                           async_http_client=wire.async_http_client),
        [sc], checks=("cancel",),
    )
    assert any("not closed" in p.detail for p in report.problems)
    # the real runtime closes it
    assert run_conformance(tiny, [sc], checks=("cancel",)).ok


def test_unknown_check_rejected() -> None:
    with pytest.raises(ValueError):
        run_conformance(tiny, [], checks=("speed",))
