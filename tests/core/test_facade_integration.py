"""The facade's use of the model catalog (pre-flight, costs) and telemetry hooks."""

from __future__ import annotations

from typing import Any

import pytest

import allm
from allm import telemetry
from allm.errors import ValidationError
from allm.providers import Fake
from allm.tool import Tool

MSGS = [allm.user("hi")]


def test_catalog_preflight_blocks_known_incapable_model() -> None:
    engine = allm.Engine(adapter=Fake(provider="openai", scripts=[[("text", "x")]] * 2),
                         model="o1-mini", tools=[Tool(name="t")])
    with pytest.raises(ValidationError) as info:
        allm.generate(engine, MSGS)
    assert info.value.reason == "unsupported_capability"
    assert ("tools", "tools_disabled") in info.value.errors
    assert engine.adapter.cursor == 0  # type: ignore[union-attr]  # nothing sent
    assert allm.generate(engine, MSGS, preflight=False).output_text == "x"


def test_costs_filled_from_catalog() -> None:
    engine = allm.Engine(adapter=Fake(provider="openai", script=[
        ("text", "x"), ("usage", {"input_tokens": 1_000_000, "output_tokens": 1_000_000})]),
        model="gpt-4.1-mini")
    usage = allm.generate(engine, MSGS).usage
    price = allm.catalog.price("openai:gpt-4.1-mini")
    assert price is not None
    assert usage.input_cost == pytest.approx(price["input"])
    assert usage.output_cost == pytest.approx(price["output"])


def test_fake_provider_gets_no_costs() -> None:
    engine = allm.engine("fake:gpt-4.1-mini", script=[("usage", {"input_tokens": 10})])
    assert allm.generate(engine, MSGS).usage.input_cost is None


@pytest.fixture
def hook_events() -> Any:
    seen: list[tuple[str, dict[str, Any]]] = []
    handle = telemetry.attach(lambda name, data: seen.append((name, data)))
    yield seen
    telemetry.detach(handle)


def test_generate_span_hooks(hook_events: list[tuple[str, dict[str, Any]]]) -> None:
    r = allm.generate(allm.engine("fake:demo", script=[("text", "x")]), MSGS, request_id="r1")
    names = [n for n, _ in hook_events]
    assert names == ["generate.start", "generate.stop"]
    stop = hook_events[-1][1]
    assert stop["request_id"] == "r1" and stop["response"] == r and stop["model"] == "demo"


def test_generate_span_exception(hook_events: list[tuple[str, dict[str, Any]]]) -> None:
    with pytest.raises(allm.AdapterError):
        allm.generate(allm.engine("fake:demo", script=[("error", "rate_limited")]), MSGS)
    assert [n for n, _ in hook_events] == ["generate.start", "generate.exception"]


def test_stream_span_hooks(hook_events: list[tuple[str, dict[str, Any]]]) -> None:
    fake = Fake(script=[("text", "a"), ("text", "b")])
    it = allm.stream_generate(allm.Engine(adapter=fake), MSGS)
    assert hook_events == []  # lazy: the span starts on the first event
    next(it)
    it.close()  # type: ignore[attr-defined]
    assert [n for n, _ in hook_events] == ["stream.start", "stream.stop"]
    assert fake.cleanups == 1


@pytest.mark.anyio
async def test_async_span_hooks(hook_events: list[tuple[str, dict[str, Any]]]) -> None:
    await allm.agenerate(allm.engine("fake:demo", script=[("text", "x")]), MSGS)
    evs = [e async for e in allm.astream_generate(allm.engine("fake:d", script=[]), MSGS)]
    assert len(evs) == 2
    assert [n for n, _ in hook_events] == ["generate.start", "generate.stop", "stream.start",
                                           "stream.stop"]


def test_nested_calls_inherit_request_id(hook_events: list[tuple[str, dict[str, Any]]]) -> None:
    with telemetry.span("chat", request_id="outer"):
        r = allm.generate(allm.engine("fake:demo", script=[("text", "x")]), MSGS)
    assert r.request_id == "outer"
