"""The facade: generate == fold(stream_generate), sync/async parity, errors, filters."""

from __future__ import annotations

import re
from typing import Any

import pytest

import allm
from allm.collector import StreamCollector
from allm.errors import AdapterError, AllmError, EngineError, StreamError, ValidationError
from allm.events import ErrorEvent, RawChunk, TextDelta, ToolCallDelta
from allm.facade import build_request, new_request_id
from allm.providers import Fake
from allm.request import Request, Response

from ._scripts import ALL_SCRIPTS, ERROR_SCRIPTS, SCRIPTS, SECRET

MSGS = [allm.user("hi")]


def eng(script: list[Any], **kw: Any) -> allm.Engine:
    return allm.engine("fake:demo", script=script, **kw)


def strip_rid(r: Response) -> Response:
    from dataclasses import replace

    return replace(r, request_id=None)


def gen_or_partial(engine: allm.Engine, **opts: Any) -> Response:
    try:
        return allm.generate(engine, MSGS, **opts)
    except AllmError as exc:
        return exc.partial  # type: ignore[attr-defined,no-any-return]


async def agen_or_partial(engine: allm.Engine, **opts: Any) -> Response:
    try:
        return await allm.agenerate(engine, MSGS, **opts)
    except AllmError as exc:
        return exc.partial  # type: ignore[attr-defined,no-any-return]


def fold_stream(engine: allm.Engine, **opts: Any) -> Response:
    events = list(allm.stream_generate(engine, MSGS, **opts))
    r = StreamCollector().collect(events).to_response()
    from dataclasses import replace

    return replace(r, model=r.model or "demo")


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(ALL_SCRIPTS))
async def test_generate_equals_fold_of_stream_and_async_parity(name: str) -> None:
    script = ALL_SCRIPTS[name]
    g = strip_rid(gen_or_partial(eng(script)))
    g_stream_wire = strip_rid(gen_or_partial(eng(script), stream=True))
    folded = fold_stream(eng(script))
    ag = strip_rid(await agen_or_partial(eng(script)))
    sync_events = list(allm.stream_generate(eng(script), MSGS))
    async_events = [e async for e in allm.astream_generate(eng(script), MSGS)]
    assert g == folded == g_stream_wire == ag
    assert sync_events == async_events
    assert g.message is not None and g.message.role == "assistant"


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_scripts_without_errors_do_not_raise(name: str) -> None:
    r = allm.generate(eng(SCRIPTS[name]), MSGS)
    assert r.finish_reason in {"stop", "tool_calls", "length", "content_filter"}
    assert len(r.request_id or "") == 22


def test_generate_basic_fields() -> None:
    r = allm.generate(eng(SCRIPTS["text_usage"]), MSGS, request_id="rid-1")
    assert r.output_text == "Hi" and r.finish_reason == "stop"
    assert r.usage.total_tokens == 5 and r.request_id == "rid-1"
    assert r.model == "demo" and r.id == "fake-1"
    assert allm.unwrap(r) == "Hi"


@pytest.mark.parametrize("name", sorted(ERROR_SCRIPTS))
def test_mid_stream_error_raises_with_partial(name: str) -> None:
    engine = eng(ERROR_SCRIPTS[name])
    with pytest.raises((AdapterError, StreamError)) as info:
        allm.generate(engine, MSGS)
    err = info.value
    partial = err.partial
    assert isinstance(partial, Response)
    assert partial.finish_reason == "error"
    event_error = partial.metadata["error"]
    assert event_error is not err  # a copy: the event's error object is not mutated
    assert getattr(event_error, "partial", None) is None
    assert event_error.reason == err.reason
    # the stream shows the same error as an event
    evs = list(allm.stream_generate(eng(ERROR_SCRIPTS[name]), MSGS))
    assert any(isinstance(e, ErrorEvent) for e in evs)


def test_partial_keeps_text_and_usage() -> None:
    with pytest.raises(AdapterError) as info:
        allm.generate(eng([("text", "so far"), ("usage", {"input_tokens": 4}),
                           ("error", "rate_limited")]), MSGS)
    assert info.value.reason == "rate_limited"
    assert info.value.partial.output_text == "so far"
    assert info.value.partial.usage.input_tokens == 4


@pytest.mark.anyio
async def test_agenerate_mid_stream_error() -> None:
    with pytest.raises(StreamError) as info:
        await allm.agenerate(eng(ERROR_SCRIPTS["stream_error"]), MSGS)
    assert info.value.partial.output_text == "p"


def test_preflight_errors_raise_at_call_site() -> None:
    # missing adapter
    with pytest.raises(EngineError) as info:
        allm.stream_generate(allm.Engine(model="x"), MSGS)
    assert info.value.reason == "missing_adapter"
    # adapter pre-flight: raised by stream_generate itself, before iteration
    engine = eng([("preflight_error", "authentication_failed")])
    with pytest.raises(AdapterError):
        allm.stream_generate(engine, MSGS)
    # invalid thread
    with pytest.raises(ValidationError) as vinfo:
        allm.stream_generate(eng([]), [])
    assert ("messages", "empty") in vinfo.value.errors
    with pytest.raises(ValidationError) as vinfo:
        allm.generate(eng([]), [allm.user("a"), "b"])  # type: ignore[list-item]
    assert ("messages.1", "not_a_message") in vinfo.value.errors
    # exhausted
    engine = eng([])
    allm.generate(engine, MSGS)
    with pytest.raises(AdapterError) as ainfo:
        allm.stream_generate(engine, MSGS)
    assert ainfo.value.reason == "no_scripted_response"
    with pytest.raises(EngineError):
        allm.generate("not an engine", MSGS)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_async_preflight_raises_at_call_site() -> None:
    with pytest.raises(AdapterError):
        allm.astream_generate(eng([("preflight_error", "rate_limited")]), MSGS)
    with pytest.raises(AdapterError):
        await allm.agenerate(eng([("preflight_error", "rate_limited")]), MSGS)


def test_unknown_option_is_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        allm.generate(eng([]), MSGS, temprature=0.2)
    assert info.value.reason == "invalid_params"
    assert ("temprature", "unknown_option") in info.value.errors
    assert "temprature" in str(info.value)


def test_params_tools_and_call_resolution() -> None:
    from allm.tool import Tool

    t1, t2, t1b = Tool(name="a"), Tool(name="b"), Tool(name="a", description="new")
    engine = allm.engine("fake:demo", script=[], tools=[t1, t2],
                         params={"temperature": 0.1, "max_tokens": 10},
                         adapter_opts={"x": 1, "y": 1})
    req, call, filters = build_request(
        engine, MSGS, temperature=0.5, tools=[t1b, Tool(name="c")], adapter_opts={"y": 2},
        api_key=SECRET, timeout=3, stream_timeout=4, retry=False, tool_choice="auto",
    )
    assert req.params == {"temperature": 0.5, "max_tokens": 10} == call.params
    assert [t.name for t in req.tools] == ["a", "b", "c"] and req.tools[0] is t1b
    assert call.adapter_opts == {"x": 1, "y": 2}
    assert call.api_key == SECRET and SECRET not in repr(call)
    assert call.timeout == 3 and call.read_timeout == 4
    assert call.retry is not None and call.retry.max_attempts == 1
    assert call.stream is False and req.stream is False
    assert req.tool_choice == "auto" and req.model == "demo" == call.model
    assert filters.is_default


def test_request_input_wins() -> None:
    engine = allm.engine("fake:demo", script=[], params={"temperature": 0.1})
    req = Request(messages=tuple(MSGS), model="own", params={"temperature": 0.9})
    out, call, _ = build_request(engine, req, model="ignored", temperature=0.3)
    assert out.model == "own" == call.model
    assert out.params["temperature"] == 0.9


def test_fake_records_the_request() -> None:
    fake = Fake(script=[("text", "x")], record=True)
    engine = allm.Engine(adapter=fake, model="m")
    allm.generate(engine, MSGS, temperature=0.2, api_key=SECRET)
    ((req, call),) = fake.calls
    assert req.messages == tuple(MSGS) and req.params == {"temperature": 0.2}
    assert call.api_key == "[redacted]"


def test_filters() -> None:
    script = [("raw_chunk", {"r": 1}), ("text", "a"),
              ("tool_call_delta", {"id": "c", "name": "f", "arguments_delta": "{}"}),
              ("raw_chunk", allm.Usage(input_tokens=1))]
    evs = list(allm.stream_generate(eng(script), MSGS))
    raws = [e for e in evs if isinstance(e, RawChunk)]
    assert raws == [RawChunk(usage=allm.Usage(input_tokens=1))]  # usage always passes
    evs = list(allm.stream_generate(eng(script), MSGS, include_raw_chunks=True,
                                    emit_text_deltas=False, emit_tool_deltas=False))
    assert len([e for e in evs if isinstance(e, RawChunk)]) == 2
    assert not any(isinstance(e, (TextDelta, ToolCallDelta)) for e in evs)
    seen: list[Any] = []
    r = allm.generate(eng(script), MSGS, on_event=seen.append, emit_text_deltas=False)
    assert len(seen) == len(evs) + 2  # on_event sees every event, before the filters
    assert r.output_text == "a"  # text_completed still folds


def test_on_event_exceptions_propagate() -> None:
    def boom(_: Any) -> None:
        raise RuntimeError("consumer bug")

    with pytest.raises(RuntimeError):
        allm.generate(eng(SCRIPTS["text"]), MSGS, on_event=boom)


def test_early_close_runs_adapter_cleanup() -> None:
    fake = Fake(script=[("text", "a"), ("text", "b"), ("text", "c")])
    it = allm.stream_generate(allm.Engine(adapter=fake), MSGS)
    next(it)
    next(it)
    it.close()  # type: ignore[attr-defined]
    assert fake.cleanups == 1
    # breaking out of a for loop over a generator also closes it once collected
    fake = Fake(script=[("text", "a"), ("text", "b")])
    for _ in allm.stream_generate(allm.Engine(adapter=fake), MSGS, on_event=lambda e: None):
        break
    import gc

    gc.collect()
    assert fake.cleanups == 1


@pytest.mark.anyio
async def test_async_early_close_runs_adapter_cleanup() -> None:
    fake = Fake(script=[("text", "a"), ("delay", 0.001), ("text", "b")])
    it = allm.astream_generate(allm.Engine(adapter=fake), MSGS)
    await it.__anext__()
    await it.aclose()  # type: ignore[attr-defined]
    assert fake.cleanups == 1


def test_stream_generate_is_lazy() -> None:
    fake = Fake(script=[("text", "a")])
    it = allm.stream_generate(allm.Engine(adapter=fake), MSGS)
    assert fake.cursor == 1 and fake.cleanups == 0  # script taken, nothing run yet
    assert len(list(it)) == 4 and fake.cleanups == 1


def test_request_id_format() -> None:
    rid = new_request_id()
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", rid)
    assert rid != new_request_id()


def test_key_never_leaks() -> None:
    engine = allm.engine("fake:demo", scripts=[[("error", "authentication_failed")],
                                               [("preflight_error", "rate_limited")]])
    texts = [repr(engine), str(engine)]
    with pytest.raises(AdapterError) as info:
        allm.generate(engine, MSGS, api_key=SECRET)
    texts += [repr(info.value), str(info.value), repr(info.value.partial)]
    with pytest.raises(AdapterError) as info2:
        allm.generate(engine, MSGS, api_key=SECRET)
    texts += [repr(info2.value), str(info2.value)]
    _, call, _ = build_request(engine, MSGS, api_key=SECRET)
    texts += [repr(call), str(call)]
    with pytest.raises(EngineError) as info3:
        allm.engine("openai:gpt-4.1-mini", api_key=SECRET)
    texts += [repr(info3.value), str(info3.value)]
    for text in texts:
        assert SECRET not in text
        assert "SECRET123" not in text


def test_json_schema_and_unwrap() -> None:
    fmt = allm.json_schema("city", {"type": "object"})
    assert fmt == {"type": "json_schema", "name": "city", "schema": {"type": "object"},
                   "strict": True}
    assert allm.json_schema("c", {}, strict=False)["strict"] is False
    with pytest.raises(ValidationError):
        allm.json_schema("c", 3)

    r = allm.generate(eng(SCRIPTS["content_filter"]), MSGS)
    with pytest.raises(ValidationError) as info:
        allm.unwrap(r)
    assert ("finish_reason", "content_filter") in info.value.errors
    r = allm.generate(eng(SCRIPTS["tool_call"]), MSGS)
    with pytest.raises(ValidationError, match="tool"):
        allm.unwrap(r)
    with pytest.raises(AdapterError) as ainfo:
        allm.generate(eng(ERROR_SCRIPTS["error_reason"]), MSGS)
    with pytest.raises(AdapterError) as uinfo:
        allm.unwrap(ainfo.value.partial)
    assert uinfo.value.reason == "rate_limited"
    assert uinfo.value.partial is ainfo.value.partial
    assert allm.unwrap(Response(output_text="", finish_reason="stop")) == ""


def test_json_schema_accepts_pydantic_model() -> None:
    pydantic = pytest.importorskip("pydantic")

    class City(pydantic.BaseModel):  # type: ignore[misc,name-defined]
        name: str

    fmt = allm.json_schema("city", City)
    assert fmt["schema"]["properties"]["name"]["type"] == "string"


def test_sandbox_is_not_consulted_implicitly() -> None:
    with allm.sandbox.use_engine(eng([("text", "sandboxed")])), \
            pytest.raises(EngineError):
        allm.generate(allm.Engine(), MSGS)
