"""`LoopState`: later steps copy the first step's request instead of rebuilding it.
What the adapter receives must equal what `build_request` gives for that thread."""

from __future__ import annotations

from typing import Any

import pytest
from scenario_tools import engine, tc

import allm
from allm import _loopstate
from allm.facade import build_request
from allm.messages import Thread
from allm.providers import Fake

SCRIPTS = [[tc("c1", "get_weather", city="Oslo")], [tc("c2", "get_time", city="Oslo")],
           [("text", "done")]]


@pytest.mark.parametrize("opts", [
    {},
    {"temperature": 0.2, "max_tokens": 50, "metadata": {"k": "v"}, "options": {"x": 1},
     "adapter_opts": {"a": 1}, "tool_choice": "auto", "timeout": 9},
    {"params": {"top_p": 0.5}, "model": "other-model"},
])
def test_later_requests_equal_a_fresh_build(opts: dict[str, Any]) -> None:
    eng = engine(SCRIPTS)
    result = allm.chat(eng, "hi", **opts)
    assert result.halted_reason == "completed"
    calls = eng.adapter.calls  # type: ignore[union-attr]
    assert len(calls) == 3
    first_call = calls[0][1]
    for request, call in calls:
        expected, ecall, _ = build_request(
            eng, Thread(messages=request.messages), stream=False,
            request_id=first_call.request_id, response_format=None, **opts)
        assert request == expected
        assert call == ecall
    # each request has its own mutable parts, like a fresh build
    for (r1, c1), (r2, c2) in zip(calls, calls[1:], strict=False):
        assert r1.params is not r2.params and r1.options is not r2.options
        assert r1.metadata is not r2.metadata and c1.adapter_opts is not c2.adapter_opts
        assert r2.params is c2.params  # as build_request: one dict for both


def test_structured_finalize_builds_pass_two_afresh() -> None:
    eng = engine([[tc("c1", "get_time", city="x")], [("text", "plain")],
                  [("text", '{"a": 1}')]])
    fmt = allm.json_schema("out", {"type": "object", "properties": {"a": {"type": "integer"}}})
    result = allm.chat(eng, "hi", response_format=fmt, structured_finalize=True)
    assert result.output == {"a": 1}
    requests = eng.adapter.requests  # type: ignore[union-attr]
    assert [r.response_format for r in requests] == [None, None, fmt]
    assert [r.tool_choice for r in requests] == [None, None, "none"]


def test_catalog_preflight_runs_for_every_request(monkeypatch: Any) -> None:
    seen: list[int] = []
    real = _loopstate.catalog_preflight

    def spy(engine: Any, request: Any) -> None:
        seen.append(len(request.messages))
        real(engine, request)

    monkeypatch.setattr(_loopstate, "catalog_preflight", spy)
    fake = Fake(scripts=SCRIPTS, provider="unknown-provider")
    eng = allm.Engine(adapter=fake, model="m", tools=engine([]).tools)
    assert allm.chat(eng, "hi").halted_reason == "completed"
    assert seen == [3, 5]  # steps 2 and 3 (step 1 ran inside build_request)
    seen.clear()
    allm.chat(allm.Engine(adapter=Fake(scripts=SCRIPTS, provider="unknown-provider"),
                          model="m", tools=engine([]).tools), "hi", preflight=False)
    assert seen == []


def test_a_later_preflight_failure_ends_the_loop_with_an_error(monkeypatch: Any) -> None:
    def refuse(engine: Any, request: Any) -> None:
        raise allm.ValidationError("unsupported_capability", "no tools for this model")

    monkeypatch.setattr(_loopstate, "catalog_preflight", refuse)
    eng = allm.Engine(adapter=Fake(scripts=SCRIPTS, provider="unknown-provider"),
                      model="m", tools=engine([]).tools)
    result = allm.chat(eng, "hi")
    assert result.halted_reason == "error" and len(result.steps) == 1
    assert result.metadata["error"].reason == "unsupported_capability"
