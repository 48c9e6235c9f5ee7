"""Observability test fixtures: a clean hook registry and an in-memory OTel exporter."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from allm import catalog, telemetry


@pytest.fixture(autouse=True)
def _clean_telemetry() -> Iterator[None]:
    for handle in telemetry.handlers():
        telemetry.detach(handle)
    telemetry.configure(record_content=False, otel="auto", tracer_provider=False)
    yield
    for handle in telemetry.handlers():
        telemetry.detach(handle)
    telemetry.configure(record_content=False, otel="auto", tracer_provider=False)
    catalog.reset()
    catalog.configure(price_source="bundled")


@pytest.fixture
def recorded() -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    telemetry.attach(lambda name, data: events.append((name, data)))
    return events


@pytest.fixture
def exporter() -> Any:
    """An SDK tracer provider with an in-memory exporter, handed to allm explicitly."""
    sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    telemetry.configure(tracer_provider=provider)
    return memory
