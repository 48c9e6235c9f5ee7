"""The facade's model-call spans record the input messages when content recording is
on (``gen_ai.input.messages``), for generate and for streams, and never by default."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import allm
from allm import telemetry
from allm.providers import Fake

pytest.importorskip("opentelemetry.sdk")

PROMPT = "what is the capital of Norway?"


def _engine() -> allm.Engine:
    return allm.Engine(adapter=Fake(script=[("text", "Oslo")]), model="fake-model")


def _model_spans(exporter: Any) -> list[Any]:
    return [s for s in exporter.get_finished_spans()
            if s.attributes.get("allm.operation") in ("generate", "stream")]


def test_generate_and_stream_record_input_messages(exporter: Any) -> None:
    telemetry.configure(record_content=True)
    allm.generate(_engine(), [allm.user(PROMPT)])
    list(allm.stream_generate(_engine(), [allm.user(PROMPT)]))

    async def main() -> None:
        await allm.agenerate(_engine(), [allm.user(PROMPT)])

    anyio.run(main)
    spans = _model_spans(exporter)
    assert {s.attributes["allm.operation"] for s in spans} == {"generate", "stream"}
    for span in spans:
        assert PROMPT in span.attributes["gen_ai.input.messages"]


def test_input_messages_are_not_recorded_by_default(exporter: Any) -> None:
    allm.generate(_engine(), [allm.user(PROMPT)])
    list(allm.stream_generate(_engine(), [allm.user(PROMPT)]))
    spans = _model_spans(exporter)
    assert spans
    for span in spans:
        assert "gen_ai.input.messages" not in span.attributes
        assert PROMPT not in repr(dict(span.attributes))
