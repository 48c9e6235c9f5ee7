"""Telemetry, pre-flight and costs wired into the facade and the loop (Fake provider)."""

from __future__ import annotations

from typing import Any

import pytest

import allm
from allm import ValidationError, telemetry
from allm.providers import Fake

pytest.importorskip("opentelemetry.sdk")

SECRET_KEY = "sk-test-DO-NOT-LEAK-1234567890"
PROMPT = "PROMPT-TEXT: what's the weather and time in Oslo?"
ANSWER = "ANSWER-TEXT: sunny, noon."


@allm.tool
def get_weather(city: str) -> dict[str, Any]:
    """Weather for a city."""
    return {"city": city, "forecast": "sunny"}


@allm.tool
def get_time(city: str) -> str:
    """Local time in a city."""
    return f"12:00 in {city}"


def _scripts() -> list[list[Any]]:
    return [
        [("tool_call", {"id": "call_w", "name": "get_weather", "arguments": {"city": "Oslo"}}),
         ("tool_call", {"id": "call_t", "name": "get_time", "arguments": {"city": "Oslo"}}),
         ("usage", {"input_tokens": 100, "output_tokens": 20})],
        [("text", ANSWER), ("usage", {"input_tokens": 180, "output_tokens": 8})],
    ]


def _engine(provider: str = "fake", model: str = "fake-model") -> allm.Engine:
    return allm.Engine(adapter=Fake(scripts=_scripts(), provider=provider), model=model,
                       tools=[get_weather, get_time])


def _check_tree(spans: Any, provider_name: str = "fake", model: str = "fake-model") -> None:
    by_id = {s.context.span_id: s for s in spans}

    def children(span: Any) -> list[Any]:
        return sorted((s for s in spans if s.parent is not None
                       and s.parent.span_id == span.context.span_id),
                      key=lambda s: (s.start_time, s.name))

    (root,) = [s for s in spans if s.parent is None]
    assert root.name == "invoke_agent allm.chat"
    assert root.attributes["gen_ai.operation.name"] == "invoke_agent"
    steps = children(root)
    assert [s.name for s in steps] == [f"step {model}", f"step {model}"]
    first, second = (children(s) for s in steps)
    assert sorted(s.name for s in first) == sorted(
        [f"chat {model}", "execute_tool get_time", "execute_tool get_weather"])
    assert [s.name for s in second] == [f"chat {model}"]
    assert len(by_id) == 7 and len({s.context.trace_id for s in spans}) == 1

    (call1,) = [s for s in first if s.name.startswith("chat ")]
    a = call1.attributes
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == provider_name
    assert a["gen_ai.request.model"] == model
    assert a["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert a["gen_ai.usage.input_tokens"] == 100 and a["gen_ai.usage.output_tokens"] == 20
    assert "gen_ai.response.time_to_first_chunk" in a
    tools = {s.attributes["gen_ai.tool.name"]: s for s in first if s.name.startswith("execute_tool")}
    assert tools["get_weather"].attributes["gen_ai.tool.call.id"] == "call_w"
    assert tools["get_time"].attributes["gen_ai.tool.call.id"] == "call_t"
    assert all(t.attributes["gen_ai.operation.name"] == "execute_tool" for t in tools.values())
    (call2,) = second
    assert call2.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    request_ids = {s.attributes["allm.request_id"] for s in spans}
    assert len(request_ids) == 1

    # No key and (by default) no message text anywhere.
    blob = repr([(s.name, dict(s.attributes), [(e.name, dict(e.attributes)) for e in s.events])
                 for s in spans])
    for secret in (SECRET_KEY, "PROMPT-TEXT", "ANSWER-TEXT", "12:00 in", "sunny"):
        assert secret not in blob, secret


def test_two_turn_tool_chat_span_tree(exporter: Any) -> None:
    result = allm.chat(_engine(), [allm.user(PROMPT)], api_key=SECRET_KEY)
    assert result.halted_reason == "completed" and result.output_text == ANSWER
    _check_tree(exporter.get_finished_spans())


@pytest.mark.anyio
async def test_two_turn_tool_chat_span_tree_async(exporter: Any) -> None:
    result = await allm.achat(_engine(), [allm.user(PROMPT)], api_key=SECRET_KEY)
    assert result.halted_reason == "completed"
    _check_tree(exporter.get_finished_spans())


def test_streamed_chat_closed_early_ends_every_span(exporter: Any) -> None:
    events = allm.stream(_engine(), [allm.user(PROMPT)])
    for event in events:
        if event.type == "tool_execution_completed":
            break
    events.close()  # type: ignore[attr-defined]
    spans = exporter.get_finished_spans()
    names = sorted(s.name for s in spans)
    assert "invoke_agent allm.chat" in names and "step fake-model" in names
    assert telemetry.current_request_id() is None


def test_record_content_opt_in_in_chat(exporter: Any) -> None:
    telemetry.configure(record_content=True)
    allm.chat(_engine(), [allm.user(PROMPT)])
    tool_spans = [s for s in exporter.get_finished_spans() if s.name.startswith("execute_tool")]
    assert any("Oslo" in s.attributes.get("gen_ai.tool.call.arguments", "") for s in tool_spans)


def test_hooks_in_chat_share_request_id(recorded: list[tuple[str, dict[str, Any]]]) -> None:
    allm.chat(_engine(), [allm.user(PROMPT)], api_key=SECRET_KEY)
    names = [n for n, _ in recorded]
    assert names[0] == "chat.start" and names[-1] == "chat.stop"
    assert names.count("step.start") == 2 and names.count("step.stop") == 2
    assert names.count("tool.start") == 2 and names.count("tool.stop") == 2
    assert names.count("stream.start") == 2
    assert len({d["request_id"] for _, d in recorded}) == 1
    stop = recorded[-1][1]
    assert isinstance(stop["result"], allm.ChatResult) and stop["duration"] > 0
    tool_stop = next(d for n, d in recorded if n == "tool.stop")
    assert tool_stop["tool_call"].id in {"call_w", "call_t"}
    assert SECRET_KEY not in repr(recorded)


def test_generate_span_and_costs(exporter: Any) -> None:
    engine = allm.Engine(adapter=Fake(script=[("text", "hi"), ("usage", {
        "input_tokens": 1000, "output_tokens": 100, "cached_input_tokens": 400})],
        provider="openai"), model="gpt-4o-2024-08-06")
    response = allm.generate(engine, [allm.user("hello")])
    assert response.usage.input_cost == pytest.approx((600 * 2.5 + 400 * 1.25) / 1e6)
    assert response.usage.output_cost == pytest.approx(100 * 10 / 1e6)
    (span,) = exporter.get_finished_spans()
    assert span.name == "chat gpt-4o-2024-08-06"
    assert span.attributes["gen_ai.provider.name"] == "openai"
    assert span.attributes["allm.usage.cost"] == pytest.approx(response.usage.total_cost)


def test_chat_result_sums_costs() -> None:
    result = allm.chat(_engine(provider="anthropic", model="claude-sonnet-4-5-20250929"),
                       [allm.user(PROMPT)])
    costs = [s.response.usage.total_cost for s in result.steps]
    assert costs == [pytest.approx((100 * 3 + 20 * 15) / 1e6), pytest.approx((180 * 3 + 8 * 15) / 1e6)]
    assert result.usage.total_cost == pytest.approx(sum(costs))
    assert result.usage.input_tokens == 280


def test_unknown_model_gets_no_cost_and_is_not_blocked() -> None:
    result = allm.chat(_engine(provider="openai", model="gpt-from-the-future"), [allm.user("x")])
    assert result.usage.total_cost is None and result.usage.input_tokens == 280


def test_facade_preflight_and_opt_out() -> None:
    engine = allm.Engine(adapter=Fake(script=[("text", "ok")], provider="openai"), model="o1-mini",
                         tools=[get_weather])
    with pytest.raises(ValidationError) as info:
        allm.generate(engine, [allm.user("x")])
    assert info.value.reason == "unsupported_capability"
    assert info.value.errors == [("tools", "tools_disabled")]
    with pytest.raises(ValidationError):
        allm.chat(engine, [allm.user("x")])
    assert allm.generate(engine, [allm.user("x")], preflight=False).output_text == "ok"


def test_no_telemetry_no_spans_and_usage_untouched_for_fake() -> None:
    assert not telemetry.active()
    result = allm.chat(_engine(), [allm.user(PROMPT)])
    assert result.usage.total_cost is None and result.usage.input_cost is None
    assert (result.usage.input_tokens, result.usage.output_tokens) == (280, 28)


def test_session_id_becomes_conversation_id(exporter: Any) -> None:
    allm.chat(_engine(), [allm.user(PROMPT)], session_id="sess-42")
    spans = exporter.get_finished_spans()
    chat = next(s for s in spans if s.parent is None)
    assert chat.attributes["gen_ai.conversation.id"] == "sess-42"
