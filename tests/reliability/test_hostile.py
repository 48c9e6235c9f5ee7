"""Hostile model output: whatever tool calls a model emits, allm only runs the
engine's own tools, by exact name, with validated arguments. Everything else becomes
a tool error fed back to the model (the next request carries it), never a crash and
never a lookup by attribute, path or import.

Driven through `allm.chat` / `achat` on the `Fake` provider, and through a real
provider stream (OpenAI Chat Completions SSE from the loopback server), so the wire
decoder, the loop and the executor are all in the path.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

import allm
from allm.messages import Message
from allm.providers import Fake
from allm.results import ChatResult

from .faultserver import FaultServer, Reply, Seen
from .wire import OPENAI_CHAT, sse

HOSTILE_NAMES = [
    "../../etc/passwd", "__class__", "os.system", "tool.__init__", "get_weather.__globals__",
    "__import__", "eval", "builtins.exec", "get_weather/../../x", "get_weather ", "GET_WEATHER",
    "", "\x00get_weather", "get_weather\n", "subprocess.Popen", "__builtins__", "tools[0]",
]

CALLS: list[dict[str, Any]] = []
_lock = threading.Lock()


@allm.tool
def get_weather(city: str, days: int = 1) -> str:
    """Weather for a city."""
    with _lock:
        CALLS.append({"city": city, "days": days})
    return f"sunny in {city}"


def engine_for(adapter: Any) -> allm.Engine:
    return allm.engine(adapter=adapter, model="m", tools=[get_weather])


def tool_messages(result: ChatResult) -> list[Message]:
    return [m for m in result.thread.messages if m.role == "tool"]


@pytest.fixture(autouse=True)
def _reset() -> None:
    CALLS.clear()


def hostile_script() -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = [
        ("tool_call", {"id": f"h{i}", "name": name, "arguments": {"city": "Oslo"}})
        for i, name in enumerate(HOSTILE_NAMES)
    ]
    calls += [
        ("tool_call_delta", {"id": "bad-json", "name": "get_weather",
                             "arguments_delta": "{\"city\": \"Oslo\""}),  # never closed
        ("tool_call_delta", {"id": "not-object", "name": "get_weather",
                             "arguments_delta": "[1, 2, 3]"}),
        ("tool_call", {"id": "wrong-type", "name": "get_weather", "arguments": {"city": 42}}),
        ("tool_call", {"id": "missing", "name": "get_weather", "arguments": {}}),
        ("tool_call", {"id": "extra", "name": "get_weather",
                       "arguments": {"city": "Oslo", "__class__": "x", "days": "1; rm -rf /"}}),
        ("tool_call", {"id": "good", "name": "get_weather", "arguments": {"city": "Bergen"}}),
    ]
    return calls


def check_hostile(result: ChatResult, adapter: Fake) -> None:
    assert result.halted_reason == "completed"
    # Only the one valid call ran; it ran with exactly its validated arguments.
    assert CALLS == [{"city": "Bergen", "days": 1}]
    by_id = {m.tool_call_id or "": m for m in tool_messages(result)}
    expected_ids = [f"h{i}" for i in range(len(HOSTILE_NAMES))] + [
        "bad-json", "not-object", "wrong-type", "missing", "extra", "good"]
    assert sorted(by_id) == sorted(expected_ids)  # every call answered, none twice
    for cid in expected_ids[:-1]:
        assert by_id[cid].is_error, cid
        assert "error" in json.loads(by_id[cid].text)
    assert not by_id["good"].is_error and by_id["good"].text == "sunny in Bergen"
    assert "unknown tool" in by_id["h0"].text
    # The errors went back to the model: the second request carries every result.
    second = adapter.requests[1]
    sent = {m.tool_call_id or "": m for m in second.messages if m.role == "tool"}
    assert sorted(sent) == sorted(expected_ids)


def test_hostile_tool_calls_through_chat() -> None:
    adapter = Fake(scripts=[hostile_script(), [("text", "ok")]], record=True)
    result = allm.chat(engine_for(adapter), "weather?")
    check_hostile(result, adapter)


@pytest.mark.anyio
async def test_hostile_tool_calls_through_achat() -> None:
    adapter = Fake(scripts=[hostile_script(), [("text", "ok")]], record=True)
    result = await allm.achat(engine_for(adapter), "weather?")
    check_hostile(result, adapter)


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.anyio
async def test_thousands_of_tool_calls_are_bounded(mode: str) -> None:
    n = 3000
    script = [("tool_call", {"id": f"c{i}", "name": "get_weather",
                             "arguments": {"city": f"c{i}"}}) for i in range(n)]
    adapter = Fake(scripts=[script, [("text", "ok")]], record=True)
    engine = engine_for(adapter)
    t0 = time.monotonic()
    if mode == "sync":
        result = allm.chat(engine, "go", max_tool_calls_per_step=16)
    else:
        result = await allm.achat(engine, "go", max_tool_calls_per_step=16)
    elapsed = time.monotonic() - t0
    assert len(CALLS) == 16  # only the first 16 ran
    msgs = tool_messages(result)
    assert len(msgs) == n  # every call has an answer, so the thread stays valid
    assert sum(m.is_error for m in msgs) == n - 16
    assert all("at most 16 tool calls" in m.text for m in msgs[16:])
    assert result.halted_reason == "completed"
    assert elapsed < 15, elapsed


def test_default_cap_is_64() -> None:
    script = [("tool_call", {"id": f"c{i}", "name": "get_weather",
                             "arguments": {"city": "x"}}) for i in range(200)]
    adapter = Fake(scripts=[script, [("text", "ok")]])
    allm.chat(engine_for(adapter), "go")
    assert len(CALLS) == 64


def test_tool_names_never_resolve_attributes_of_the_engine_or_handler() -> None:
    # A model that names a real attribute path of the tool or engine gets not_found.
    names = ["get_weather.handler", "handler", "adapter", "engine.adapter", "context",
             "get_weather.__call__", "get_weather.__wrapped__"]
    script = [("tool_call", {"id": f"a{i}", "name": n, "arguments": {"city": "x"}})
              for i, n in enumerate(names)]
    adapter = Fake(scripts=[script, [("text", "ok")]])
    result = allm.chat(engine_for(adapter), "go")
    assert CALLS == []
    assert all(m.is_error and "unknown tool" in m.text for m in tool_messages(result))


# -- the same through a provider wire stream (OpenAI Chat Completions SSE) ----------------


def _chat_tool_chunks() -> list[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return sse({"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4.1-mini",
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    calls = [("t0", "../../etc/passwd", '{"city": "Oslo"}'),
             ("t1", "__class__", "{}"),
             ("t2", "os.system", '{"command": "rm -rf /"}'),
             ("t3", "tool.__init__", "{}"),
             ("t4", "get_weather", '{"city": "Oslo"'),  # cut JSON
             ("t5", "get_weather", '{"city": 7}'),  # schema violation
             ("t6", "get_weather", '{"city": "Tromso"}')]
    out = [chunk({"role": "assistant", "content": None})]
    for i, (cid, name, args) in enumerate(calls):
        out.append(chunk({"tool_calls": [{"index": i, "id": cid, "type": "function",
                                          "function": {"name": name, "arguments": ""}}]}))
        half = len(args) // 2
        for piece in (args[:half], args[half:]):
            out.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}))
    out += [chunk({}, "tool_calls"), b"data: [DONE]\n\n"]
    return out


def test_hostile_tool_calls_from_a_provider_stream() -> None:
    bodies: list[dict[str, Any]] = []

    def handler(seen: Seen) -> Reply:
        bodies.append(json.loads(seen.body))
        if len(bodies) == 1:
            return Reply(chunks=_chat_tool_chunks())
        return Reply(chunks=OPENAI_CHAT.stream_chunks(["fine"]))

    with FaultServer(handler) as server:
        engine = allm.engine(adapter=OPENAI_CHAT.adapter(server.url), model="gpt-4.1-mini",
                             tools=[get_weather])
        result = allm.chat(engine, "weather?", api_key="sk-hostile-000000", stream=True)
        engine.adapter.close()  # type: ignore[union-attr]
    assert CALLS == [{"city": "Tromso", "days": 1}]
    assert result.final_response is not None and result.final_response.output_text == "fine"
    sent = [m for m in bodies[1]["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in sent] == [f"t{i}" for i in range(7)]
    errors = [json.loads(m["content"]) for m in sent[:6]]
    assert all("error" in e for e in errors)
    assert sent[6]["content"] == "sunny in Tromso"


HOSTILE_WIRE_CALLS = [("t0", "../../etc/passwd", {"city": "Oslo"}),
                      ("t1", "__class__", {}),
                      ("t2", "os.system", {"command": "rm -rf /"}),
                      ("t3", "tool.__init__", {}),
                      ("t4", "get_weather", {"city": 7}),
                      ("t5", "get_weather", {"city": "Tromso"})]


def _anthropic_tool_chunks() -> list[bytes]:
    from .wire import ANTHROPIC

    out = ANTHROPIC.stream_head()[:1]
    for i, (cid, name, args) in enumerate(HOSTILE_WIRE_CALLS):
        out.append(sse({"type": "content_block_start", "index": i, "content_block": {
            "type": "tool_use", "id": cid, "name": name, "input": {}}}, "content_block_start"))
        text = json.dumps(args)
        for piece in (text[:3], text[3:]):
            out.append(sse({"type": "content_block_delta", "index": i, "delta": {
                "type": "input_json_delta", "partial_json": piece}}, "content_block_delta"))
        out.append(sse({"type": "content_block_stop", "index": i}, "content_block_stop"))
    # a tool_use block whose JSON never becomes valid
    n = len(HOSTILE_WIRE_CALLS)
    out.append(sse({"type": "content_block_start", "index": n, "content_block": {
        "type": "tool_use", "id": "t6", "name": "get_weather", "input": {}}},
        "content_block_start"))
    out.append(sse({"type": "content_block_delta", "index": n, "delta": {
        "type": "input_json_delta", "partial_json": '{"city": "Os'}}, "content_block_delta"))
    out.append(sse({"type": "content_block_stop", "index": n}, "content_block_stop"))
    out.append(sse({"type": "message_delta", "delta": {"stop_reason": "tool_use"},
                    "usage": {"output_tokens": 9}}, "message_delta"))
    out.append(sse({"type": "message_stop"}, "message_stop"))
    return out


def _gemini_tool_chunks() -> list[bytes]:
    parts = [{"functionCall": {"id": cid, "name": name, "args": args}}
             for cid, name, args in HOSTILE_WIRE_CALLS]
    obj = {"candidates": [{"content": {"role": "model", "parts": parts},
                           "finishReason": "STOP", "index": 0}],
           "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1}}
    return [b"data: " + json.dumps(obj).encode() + b"\r\n\r\n"]


@pytest.mark.parametrize("name", ["anthropic", "gemini"])
def test_hostile_tool_calls_from_anthropic_and_gemini_streams(name: str) -> None:
    from .wire import ANTHROPIC, GEMINI

    wire = ANTHROPIC if name == "anthropic" else GEMINI
    first = _anthropic_tool_chunks() if name == "anthropic" else _gemini_tool_chunks()
    bodies: list[bytes] = []

    def handler(seen: Seen) -> Reply:
        bodies.append(seen.body)
        if len(bodies) == 1:
            return Reply(chunks=first)
        return Reply(chunks=wire.stream_chunks(["fine"]))

    with FaultServer(handler) as server:
        engine = allm.engine(adapter=wire.adapter(server.url), model=wire.model,
                             tools=[get_weather])
        result = allm.chat(engine, "weather?", api_key="sk-hostile-000000", stream=True)
        engine.adapter.close()  # type: ignore[union-attr]
    assert CALLS == [{"city": "Tromso", "days": 1}]
    assert result.final_response is not None and result.final_response.output_text == "fine"
    msgs = tool_messages(result)
    expected = len(HOSTILE_WIRE_CALLS) + (1 if name == "anthropic" else 0)
    assert len(msgs) == expected
    assert [m.is_error for m in msgs] == [True] * 5 + [False] + [True] * (expected - 6)
    # The second request carries every result back to the model.
    second = bodies[1].decode()
    assert second.count("unknown tool") == 4 and "sunny in Tromso" in second
