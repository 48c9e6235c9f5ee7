"""The Fake adapter: vocabulary, validation, cursor, recording, cleanup."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import allm
from allm.errors import AdapterError, StreamError, ValidationError
from allm.events import (
    ErrorEvent,
    MessageCompleted,
    MessageStarted,
    RawChunk,
    TextCompleted,
    TextDelta,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
)
from allm.providers import Fake
from allm.providers.base import Call
from allm.request import Request, Usage
from allm.retry import RetryPolicy

from ._scripts import ALL_SCRIPTS, SECRET

REQ = Request(messages=(allm.user("hi"),))


def events(fake: Fake, call: Call | None = None) -> list[Any]:
    return list(fake.stream(REQ, call or Call()))


async def aevents(fake: Fake, call: Call | None = None) -> list[Any]:
    return [e async for e in fake.astream(REQ, call or Call())]


def test_text_sequence() -> None:
    evs = events(Fake(script=[("text", "a"), ("text", "b"), ("finish", "stop")]))
    assert [type(e) for e in evs] == [MessageStarted, TextDelta, TextDelta, TextCompleted,
                                      MessageCompleted]
    assert evs[3].text == "ab"
    assert evs[-1].finish_reason == "stop"


def test_tool_call_and_default_finish() -> None:
    evs = events(Fake(script=[("tool_call", {"id": "c", "name": "f", "arguments": {"x": 1}})]))
    assert [type(e) for e in evs] == [MessageStarted, ToolCallStarted, ToolCallCompleted,
                                      MessageCompleted]
    assert evs[2].raw_arguments == '{"x":1}'
    assert evs[-1].finish_reason == "tool_calls"
    assert evs[-1].message.tool_calls[0].name == "f"


def test_tool_call_deltas_complete_at_close() -> None:
    evs = events(Fake(script=[
        ("tool_call_delta", {"id": "c", "name": "f", "arguments_delta": '{"a":'}),
        ("tool_call_delta", {"id": "c", "arguments_delta": "1}"}),
    ]))
    assert [type(e) for e in evs] == [MessageStarted, ToolCallStarted, ToolCallDelta,
                                      ToolCallDelta, ToolCallCompleted, MessageCompleted]
    assert evs[4].arguments == {"a": 1}


def test_usage_on_message_completed_and_override() -> None:
    evs = events(Fake(script=[("usage", {"input_tokens": 1}), ("usage", {"output_tokens": 2})]))
    assert evs[-1].usage == Usage(output_tokens=2)  # last wins
    fake = Fake(script=[("usage", {"input_tokens": 1})], usage={"input_tokens": 9})
    assert events(fake)[-1].usage == Usage(input_tokens=9)


def test_raw_chunk() -> None:
    evs = events(Fake(script=[("raw_chunk", {"a": 1}), ("raw_chunk", Usage(input_tokens=1))]))
    assert evs[1] == RawChunk(data={"a": 1})
    assert evs[2] == RawChunk(usage=Usage(input_tokens=1))


def test_error_shapes() -> None:
    (_, ev, _) = events(Fake(script=[("error", "rate_limited")]))
    assert isinstance(ev, ErrorEvent) and ev.error.reason == "rate_limited"
    evs = events(Fake(script=[("error", "not-a-reason")]))
    assert evs[1].error.reason == "unknown" and evs[1].error.cause == "not-a-reason"
    assert evs[-1].finish_reason is None  # an error leaves the finish to the collector
    evs = events(Fake(script=[("error", "invalid_request", {"status": 400, "message": "m"})]))
    assert evs[1].error.status == 400 and evs[1].error.message == "m"
    evs = events(Fake(script=[("stream_error", "cancelled")]))
    assert isinstance(evs[1].error, StreamError)
    evs = events(Fake(script=[("error_event", "timeout"), ("text", "after")]))
    assert isinstance(evs[1].error, AdapterError) and evs[2] == TextDelta(delta="after")


def test_preflight_error_raises_at_call_site() -> None:
    fake = Fake(scripts=[[("preflight_error", "authentication_failed", {"status": 401})],
                         [("text", "next")]])
    with pytest.raises(AdapterError) as info:
        fake.stream(REQ, Call())
    assert info.value.reason == "authentication_failed" and info.value.status == 401
    assert fake.cursor == 1
    assert events(fake)[1] == TextDelta(delta="next")


def test_ok_harness_entry() -> None:
    evs = events(Fake(script=ALL_SCRIPTS["ok"]))
    assert evs[-1].id == "resp_1" and evs[-1].finish_reason == "stop"
    assert evs[-1].metadata == {"k": "v"}


@pytest.mark.parametrize(
    ("kwargs", "path", "why"),
    [
        ({"script": [("text", "a"), ("bogus", 1)]}, "script.1", "unknown_entry"),
        ({"script": [("text", 3)]}, "script.0", "expected_text"),
        ({"scripts": [[("finish", "stop")], [("finish", "nope")]]}, "scripts.1.0",
         "unknown_finish_reason"),
        ({"script": [("usage", {"tokens": 1})]}, "script.0", "unknown_usage_field"),
        ({"script": [("text", "a"), ("preflight_error", "timeout")]}, "script.1",
         "must_be_first"),
        ({"script": [("error_event", "nope")]}, "script.0", "unknown_error_reason"),
        ({"script": [("stream_error", "timeout", {"status": 1})]}, "script.0",
         "unknown_error_option"),
        ({"script": [("delay", -1)]}, "script.0", "expected_seconds"),
        ({"script": ["text"]}, "script.0", "not_a_tuple"),
        ({"script": [("tool_call", {"name": "x"})]}, "script.0", "missing_id_or_name"),
        ({"script": [], "scripts": []}, "script", "conflicts_with_scripts"),
        ({"stream_script": [[("text", "a")], [("zzz",)]]}, "stream_script.1.0",
         "unknown_entry"),
        ({"script": [("ok", {"bogus": 1})]}, "script.0", "unknown_response_field"),
    ],
)
def test_validation_names_the_entry(kwargs: dict[str, Any], path: str, why: str) -> None:
    with pytest.raises(ValidationError) as info:
        Fake(**kwargs)
    assert info.value.reason == "invalid_script"
    assert (path, why) in info.value.errors
    assert path in str(info.value)


def test_cursor_is_per_instance_and_exhaustion() -> None:
    script = [("text", "same")]
    a, b = Fake(script=script), Fake(script=script)
    assert events(a)[1].delta == "same"
    assert events(b)[1].delta == "same"  # content-equal scripts do not share a cursor
    with pytest.raises(AdapterError) as info:
        a.stream(REQ, Call())  # raises at the call site, not on iteration
    assert info.value.reason == "no_scripted_response"
    a.reset()
    assert a.cursor == 0 and events(a)[1].delta == "same"


def test_scripts_and_stream_script_precedence() -> None:
    fake = Fake(scripts=[[("text", "1")], [("text", "2")]])
    assert [events(fake)[1].delta for _ in range(2)] == ["1", "2"]
    fake = Fake(scripts=[[("text", "s")]], stream_script=[("text_delta", "flat")])
    assert events(fake)[1].delta == "flat"
    fake = Fake(stream_script=[[("text_delta", "a")], [("text_delta", "b")]])
    assert [events(fake)[1].delta for _ in range(2)] == ["a", "b"]
    fake = Fake(stream_script=[])
    assert [type(e) for e in events(fake)] == [MessageStarted, MessageCompleted]


def test_no_script_at_all_is_exhausted() -> None:
    with pytest.raises(AdapterError):
        Fake().stream(REQ, Call())


def test_record_redacts_key() -> None:
    fake = Fake(scripts=[[("text", "a")], [("text", "b")]], record=True)
    events(fake, Call(api_key=SECRET, model="m"))
    events(fake, Call(model="m"))
    (req, call), (_, call2) = fake.calls
    assert req is REQ and call.model == "m"
    assert call.api_key == "[redacted]" and call2.api_key is None
    assert SECRET not in repr(fake.calls)


def test_cleanup_runs_on_early_close() -> None:
    fake = Fake(script=[("text", "a"), ("text", "b"), ("text", "c")])
    it = fake.stream(REQ, Call())
    next(it)
    next(it)
    it.close()  # type: ignore[attr-defined]
    assert fake.cleanups == 1
    fake.reset()
    list(fake.stream(REQ, Call()))
    assert fake.cleanups == 1


@pytest.mark.anyio
async def test_async_cleanup_runs_on_early_close() -> None:
    fake = Fake(script=[("text", "a"), ("delay", 0.001), ("text", "b")])
    it = fake.astream(REQ, Call())
    await it.__anext__()
    await it.aclose()  # type: ignore[attr-defined]
    assert fake.cleanups == 1


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(ALL_SCRIPTS))
async def test_sync_async_and_wire_mode_give_identical_events(name: str) -> None:
    script = ALL_SCRIPTS[name]
    sync = events(Fake(script=script), Call(stream=True))
    nonstream = events(Fake(script=script), Call(stream=False))
    asyn = await aevents(Fake(script=script), Call(stream=True))
    assert sync == nonstream == asyn


def test_retry_until_call_with_retry_policy() -> None:
    retries: list[tuple[int, float, Any]] = []
    policy = RetryPolicy(max_attempts=5, base_delay=0.0, jitter=0.0)
    fake = Fake(script=[("retry_until_call", 3), ("text", "ok")])
    evs = events(fake, Call(retry=policy, on_retry=lambda a, d, e: retries.append((a, d, e))))
    assert [a for a, _, _ in retries] == [1, 2]
    assert retries[0][2].reason == "timeout"
    assert [type(e) for e in evs] == [MessageStarted, TextDelta, TextCompleted, MessageCompleted]


def test_retry_until_call_without_retry_is_a_mid_stream_error() -> None:
    fake = Fake(scripts=[[("retry_until_call", 2), ("text", "ok")]])
    evs = events(fake)
    assert [type(e) for e in evs] == [MessageStarted, ErrorEvent]
    assert evs[1].error.reason == "timeout"


def test_thread_safe_cursor() -> None:
    n = 200
    fake = Fake(scripts=[[("text", str(i))] for i in range(n)])
    seen: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(n // 4):
            ev = events(fake)[1]
            with lock:
                seen.append(ev.delta)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen, key=int) == [str(i) for i in range(n)]


def test_adapter_protocol() -> None:
    from allm.providers.base import Adapter

    assert isinstance(Fake(), Adapter)


def test_provider_name_on_errors_and_ok_message_metadata() -> None:
    fake = Fake(scripts=[[("error", "timeout")], [("preflight_error", "rate_limited")],
                         [("ok", {"output_text": "t", "raw_finish_reason": "end_turn",
                                  "message": allm.assistant("t", metadata={"p": {"sig": 1}})})]],
                provider="anthropic", record=True)
    assert events(fake)[1].error.provider == "anthropic"
    with pytest.raises(AdapterError) as info:
        fake.stream(REQ, Call())
    assert info.value.provider == "anthropic"
    done = events(fake)[-1]
    assert done.raw_finish_reason == "end_turn"
    assert done.message.metadata == {"p": {"sig": 1}}
    assert fake.requests == [REQ, REQ, REQ] and fake.remaining == 0
