"""OpenTelemetry spans (SDK in-memory exporter) driven by allm.telemetry directly."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from allm import AdapterError, Response, Usage, assistant, telemetry, user

pytest.importorskip("opentelemetry.sdk")


def _by_name(spans: Any) -> dict[str, Any]:
    return {s.name: s for s in spans}


def test_generate_span_semconv_attributes(exporter: Any) -> None:
    resp = Response(id="resp_1", model="gpt-4.1-mini-2025-04-14", output_text="hi",
                    message=assistant("hi"), finish_reason="stop",
                    usage=Usage(input_tokens=10, output_tokens=3, cached_input_tokens=4,
                                total_cost=0.5))
    with telemetry.span("generate", provider="openai", model="gpt-4.1-mini",
                        params={"temperature": 0.2, "max_tokens": 50, "stop": ["x"]}) as sp:
        sp.set_input([user("secret question")])
        sp.set_response(resp)
    (span,) = exporter.get_finished_spans()
    a = dict(span.attributes)
    assert span.name == "chat gpt-4.1-mini"
    assert span.kind.name == "CLIENT"
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-4.1-mini"
    assert a["gen_ai.request.stream"] is False
    assert a["gen_ai.request.temperature"] == 0.2 and a["gen_ai.request.max_tokens"] == 50
    assert a["gen_ai.request.stop_sequences"] == ("x",)
    assert a["gen_ai.response.id"] == "resp_1"
    assert a["gen_ai.response.model"] == "gpt-4.1-mini-2025-04-14"
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["gen_ai.usage.input_tokens"] == 10 and a["gen_ai.usage.output_tokens"] == 3
    assert a["gen_ai.usage.cache_read.input_tokens"] == 4
    assert a["allm.usage.cost"] == 0.5
    assert len(a["allm.request_id"]) == 22
    # content is opt-in
    assert "gen_ai.input.messages" not in a and "gen_ai.output.messages" not in a
    assert "secret question" not in repr(a)


def test_record_content_opt_in(exporter: Any) -> None:
    telemetry.configure(record_content=True)
    with telemetry.span("generate", provider="anthropic", model="claude-x") as sp:
        sp.set_input([user("what is 2+2")])
        sp.set_response(Response(message=assistant("4"), output_text="4"))
    (span,) = exporter.get_finished_spans()
    assert "what is 2+2" in span.attributes["gen_ai.input.messages"]
    assert '"4"' in span.attributes["gen_ai.output.messages"]


def test_gemini_uses_generate_content(exporter: Any) -> None:
    with telemetry.span("generate", provider="gemini", model="gemini-2.5-flash"):
        pass
    (span,) = exporter.get_finished_spans()
    assert span.name == "generate_content gemini-2.5-flash"
    assert span.attributes["gen_ai.provider.name"] == "gcp.gemini"


def test_span_tree_and_tool_attributes(exporter: Any) -> None:
    with telemetry.span("chat", provider="fake", model="m"), \
         telemetry.span("step", provider="fake", model="m", turn=1):
        with telemetry.span("generate", provider="fake", model="m"):
            pass
        with telemetry.span("tool", tool_name="get_weather", tool_call_id="call_1") as sp:
            sp.set_result({"temp": 3})
    spans = _by_name(exporter.get_finished_spans())
    chat, step = spans["invoke_agent allm.chat"], spans["step m"]
    gen, tool = spans["chat m"], spans["execute_tool get_weather"]
    assert chat.parent is None
    assert step.parent.span_id == chat.context.span_id
    assert gen.parent.span_id == step.context.span_id
    assert tool.parent.span_id == step.context.span_id
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool.attributes["gen_ai.tool.name"] == "get_weather"
    assert tool.attributes["gen_ai.tool.call.id"] == "call_1"
    assert "gen_ai.tool.call.result" not in tool.attributes
    assert chat.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert step.attributes["allm.turn"] == 1
    assert len({s.context.trace_id for s in spans.values()}) == 1


def test_error_type_and_status(exporter: Any) -> None:
    err = AdapterError("rate_limited", "slow down: user said hello", provider="openai", status=429)
    with pytest.raises(AdapterError), telemetry.span("generate", provider="openai", model="m"):
        raise err
    (span,) = exporter.get_finished_spans()
    assert span.attributes["error.type"] == "rate_limited"
    assert span.status.status_code.name == "ERROR"
    assert "user said hello" not in repr(span.status.description)
    with pytest.raises(ZeroDivisionError), telemetry.span("tool", tool_name="t"):
        1 / 0  # noqa: B018
    assert exporter.get_finished_spans()[-1].attributes["error.type"] == "ZeroDivisionError"


def test_retries_become_span_events(exporter: Any) -> None:
    with telemetry.span("generate", provider="openai", model="m"):
        telemetry.emit("adapter.retry", {"attempt": 1, "delay": 0.5,
                                         "error": AdapterError("overloaded", status=529)})
    (span,) = exporter.get_finished_spans()
    (event,) = [e for e in span.events if e.name == "gen_ai.retry"]
    assert event.attributes["allm.retry.attempt"] == 1
    assert event.attributes["error.type"] == "overloaded"


def test_stream_span_ttfc_usage_and_error_event(exporter: Any) -> None:
    from allm.events import ErrorEvent, MessageCompleted, MessageStarted, TextDelta

    events = [MessageStarted(id="r1", model="m"), TextDelta(delta="x"),
              MessageCompleted(id="r1", model="m-1", finish_reason="stop",
                               usage=Usage(input_tokens=5, output_tokens=2))]
    list(telemetry.span_for_stream("stream", iter(events), provider="anthropic", model="m"))
    (span,) = exporter.get_finished_spans()
    a = span.attributes
    assert span.name == "chat m" and a["gen_ai.request.stream"] is True
    assert a["gen_ai.response.time_to_first_chunk"] >= 0
    assert a["gen_ai.response.model"] == "m-1" and a["gen_ai.usage.output_tokens"] == 2
    assert span.status.status_code.name == "UNSET"

    exporter.clear()
    failing = [MessageStarted(), ErrorEvent(error=AdapterError("network_error"))]
    list(telemetry.span_for_stream("stream", iter(failing), provider="openai", model="m"))
    (span,) = exporter.get_finished_spans()
    assert span.attributes["error.type"] == "network_error"


def test_stream_span_parenting_and_close(exporter: Any) -> None:
    def inner() -> Any:
        with telemetry.span("tool", tool_name="t"):
            pass
        yield 1
        yield 2

    stream = telemetry.span_for_stream("chat", inner(), model="m")
    next(stream)
    stream.close()
    spans = _by_name(exporter.get_finished_spans())
    assert spans["execute_tool t"].parent.span_id == spans["invoke_agent allm.chat"].context.span_id


def test_auto_mode_needs_a_real_provider() -> None:
    # No explicit provider and (in this process) the global one is the API's proxy.
    import opentelemetry.trace as trace

    if type(trace.get_tracer_provider()).__name__ != "ProxyTracerProvider":
        pytest.skip("a global tracer provider was installed by another test")
    with telemetry.span("generate") as sp:
        assert sp._otel is None
    telemetry.configure(otel=True)  # through the API's no-op tracer
    with telemetry.span("generate") as sp:
        assert sp._otel is not None and not sp._otel.is_recording()
    telemetry.configure(otel=False)
    with telemetry.span("generate") as sp:
        assert sp._otel is None
    assert "opentelemetry.trace" in sys.modules
