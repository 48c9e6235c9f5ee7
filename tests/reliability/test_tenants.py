"""Keys and tenants: 200 concurrent async calls for 20 tenants, each with its own
per-call key, over the four wire formats against one loopback server that checks
every request carries its own tenant's key in the provider's auth header.

Then no key may appear anywhere a user could see it: repr/str of every result,
error and event, `allm.dumps` output, log records (DEBUG, all loggers, httpx2 and
httpcore included), telemetry hook data and OpenTelemetry spans (content recording
on), and the provider's error body when it echoes the key back (OpenAI's 401 does:
"Incorrect API key provided: sk-...").
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

import allm
from allm import telemetry
from allm.errors import AdapterError, AllmError
from allm.events import ErrorEvent, Event
from allm.retry import RetryPolicy

from .faultserver import FaultServer, Reply, Seen
from .wire import GEMINI, WIRES, Wire, key_of

TENANTS = 20
CALLS = 200
KEYS = {t: f"sk-t{t:02d}-{secrets.token_hex(16)}" for t in range(TENANTS)}
MARK = re.compile(rb"tenant-(\d+) call-(\d+)")
RETRY = RetryPolicy(max_attempts=3, base_delay=0.01, jitter=0.0)


def wire_for_path(path: str) -> Wire:
    if path.endswith("/chat/completions"):
        return WIRES[0]
    if path.endswith("/responses"):
        return WIRES[1]
    if path.endswith("/messages"):
        return WIRES[2]
    return GEMINI


class Checker:
    """The server side: every request must carry exactly its own tenant's key."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.attempts: dict[int, int] = {}
        self.problems: list[str] = []
        self.checked = 0

    def __call__(self, seen: Seen) -> Reply:
        wire = wire_for_path(seen.path)
        m = MARK.search(seen.body)
        if m is None:
            self.fail(f"no marker in {seen.path}")
            return Reply(status=400, body=b"{}")
        tenant, call = int(m.group(1)), int(m.group(2))
        key = key_of(wire, seen.headers)
        blob = json.dumps(seen.headers).encode() + seen.body
        others = [t for t, k in KEYS.items() if t != tenant and k.encode() in blob]
        with self.lock:
            self.checked += 1
            attempt = self.attempts[call] = self.attempts.get(call, 0) + 1
        if key != KEYS[tenant] or others:
            self.fail(f"call {call}: tenant {tenant} sent key of {others or key!r:.12}")
            return Reply(status=401, body=b"{}")
        if call % 10 == 3:  # the provider echoes the key in its error body
            msg = f"Incorrect API key provided: {key}. You can find your API key at ..."
            body: dict[str, Any] = {"error": {"message": msg, "type": "invalid_request_error",
                              "code": "invalid_api_key", "param": None, "key": key}}
            if wire.name == "anthropic":
                body = {"type": "error", "error": {"type": "authentication_error",
                                                   "message": msg}}
            elif wire is GEMINI:
                body = {"error": {"code": 400, "message": f"API key not valid: {key}",
                                  "status": "INVALID_ARGUMENT"}}
            return Reply(status=401, body=json.dumps(body).encode())
        if call % 10 == 7 and attempt == 1:
            return Reply(status=429, headers={"retry-after-ms": "20"}, body=wire.rate_limited)
        words = [f"tenant-{tenant} ", f"call-{call}"]
        if "stream" in seen.path or json.loads(seen.body).get("stream"):
            return Reply(chunks=wire.stream_chunks(words))
        return Reply(body=wire.json_body("".join(words)))

    def fail(self, text: str) -> None:
        with self.lock:
            self.problems.append(text)


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage() + repr(record.args) + repr(record.__dict__)
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.texts.append(text)


@pytest.fixture
def capture_logs() -> Iterator[Capture]:
    handler = Capture()
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    names = ["httpx2", "httpx", "httpcore", "httpcore2", "allm", "anyio", "asyncio"]
    loggers = [logging.getLogger(n) for n in names]
    old_levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(old)
    for lg, level in zip(loggers, old_levels, strict=True):
        lg.setLevel(level)


@pytest.fixture
def otel() -> Iterator[Any]:
    sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    hooked: list[tuple[str, Any]] = []
    handle = telemetry.attach(lambda name, data: hooked.append((name, data)))
    telemetry.configure(tracer_provider=provider, record_content=True, otel=True)
    yield memory, hooked
    telemetry.detach(handle)
    telemetry.configure(record_content=False, otel="auto", tracer_provider=False)


def texts_of(value: Any) -> list[str]:
    """Every way a user could print or store `value`."""
    out = [repr(value), str(value)]
    try:
        out.append(allm.dumps(value))
    except AllmError:
        pass
    if isinstance(value, BaseException):
        out += [repr(value.args), repr(getattr(value, "__dict__", {}))]
    if isinstance(value, AllmError):
        out += [value.message, repr(value.to_fields())]
    return out


@pytest.mark.anyio
async def test_two_hundred_calls_twenty_tenants(capture_logs: Capture, otel: Any) -> None:
    memory, hooked = otel
    checker = Checker()
    results: dict[int, Any] = {}
    events: list[Event] = []

    async def one(engine: allm.Engine, call: int, wire: Wire) -> None:
        tenant = call % TENANTS
        prompt = f"tenant-{tenant} call-{call}"
        key = KEYS[tenant]
        try:
            if call % 3 == 0:  # streamed through astream_generate: keep every event
                async for ev in allm.astream_generate(engine, prompt, api_key=key, retry=RETRY,
                                                      timeout=20, include_raw_chunks=True):
                    events.append(ev)
                    if isinstance(ev, ErrorEvent):
                        raise ev.error
                results[call] = "streamed"
            else:
                results[call] = await allm.agenerate(engine, prompt, api_key=key, retry=RETRY,
                                                     timeout=20, stream=call % 2 == 0)
        except AllmError as exc:
            results[call] = exc

    with FaultServer(checker, max_seconds=60) as server:
        engines = {w.name: w.engine(server.url) for w in WIRES}
        async with anyio.create_task_group() as tg:
            for call in range(CALLS):
                wire = WIRES[call % len(WIRES)]
                tg.start_soon(one, engines[wire.name], call, wire)
        for engine in engines.values():
            await engine.adapter.aclose()  # type: ignore[union-attr]

    assert not checker.problems, checker.problems[:5]
    assert len(results) == CALLS
    for call, outcome in results.items():
        tenant = call % TENANTS
        if call % 10 == 3:
            assert isinstance(outcome, AdapterError), (call, outcome)
            assert outcome.reason in ("authentication_failed", "invalid_request"), outcome
        elif isinstance(outcome, allm.Response):
            assert outcome.output_text == f"tenant-{tenant} call-{call}"  # never crossed
        else:
            assert outcome == "streamed", (call, outcome)
    assert checker.checked >= CALLS + CALLS // 10  # every 429 was retried

    # -- no key anywhere -----------------------------------------------------------
    haystack: list[str] = []
    for outcome in results.values():
        haystack += texts_of(outcome)
        if isinstance(outcome, AdapterError):
            haystack.append(json.dumps(outcome.body, default=repr))
            haystack.append(repr(outcome.partial))
    for ev in events:
        haystack += texts_of(ev)
    haystack += capture_logs.texts
    haystack += [repr(item) for item in hooked]
    spans = memory.get_finished_spans()
    assert spans, "no spans recorded"
    haystack += [span.to_json() for span in spans]
    haystack += [repr(e) for e in engines.values()] + [repr(e.adapter) for e in engines.values()]
    assert capture_logs.texts, "nothing logged at DEBUG"
    joined = "\n".join(haystack)
    leaked = sorted(t for t, k in KEYS.items() if k in joined or k[8:] in joined)
    assert not leaked, f"keys of tenants {leaked} leaked: " + _context(joined, KEYS[leaked[0]])


def _context(text: str, key: str) -> str:
    i = text.find(key)
    if i < 0:
        i = text.find(key[8:])
    return text[max(0, i - 300): i + 80]


def test_loads_cannot_import_or_call() -> None:
    """An untrusted session blob names classes, modules and callables: loads resolves
    only allm's own registered tags and never imports or calls what the input names."""
    import sys

    before = set(sys.modules)
    hostile = [
        {"__type__": "os.system", "data": {"command": "touch /tmp/allm-pwned"}},
        {"__type__": "subprocess.Popen", "data": ["sh", "-c", "true"]},
        {"__type__": "builtins.eval", "data": "__import__('os')"},
        {"__type__": "Tool", "data": {"name": "x", "description": "",
                                      "parameters": {}, "handler": "os.system"}},
        {"__type__": "exception", "data": {"type": "SystemExit", "message": "bye"}},
        {"__type__": "Session", "data": {"status": "idle", "thread": {
            "__type__": "Thread", "data": {"messages": []}},
            "metadata": {"handler": {"__type__": "pickle.loads", "data": "gASVAAAA"}}}},
        {"__type__": "__main__.Evil", "data": {}},
        {"__type__": "allm.providers.openai.OpenAI", "data": {"base_url": "http://evil"}},
    ]
    for value in hostile:
        blob = json.dumps({"allm": 1, "value": value})
        try:
            loaded = allm.loads(blob)
        except AllmError:
            continue
        # Whatever loaded is plain data: no callables anywhere inside.
        assert not _has_callable(loaded), loaded
    assert not any(m.startswith(("subprocess", "pickle", "__main__.")) for m in
                   set(sys.modules) - before)
    import os.path

    assert not os.path.exists("/tmp/allm-pwned")


def _has_callable(value: Any, depth: int = 0) -> bool:
    if depth > 20:
        return False
    if callable(value) and not isinstance(value, type):
        return True
    if isinstance(value, dict):
        return any(_has_callable(v, depth + 1) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_callable(v, depth + 1) for v in value)
    handler = getattr(value, "handler", None)
    if handler is not None:
        return True
    fields = getattr(value, "__dataclass_fields__", None)
    if fields:
        return any(_has_callable(getattr(value, f), depth + 1) for f in fields)
    return False


def test_loaded_session_resolves_tools_only_by_the_engines_own_names() -> None:
    """A stored session whose pending call names another tool (or a dotted path) runs
    nothing but the engine's tool of exactly that name."""
    ran: list[str] = []

    @allm.tool
    def lookup(q: str) -> str:
        """Look something up."""
        ran.append(q)
        return "found"

    engine = allm.engine("fake:m", tools=[lookup], scripts=[[("text", "ok")]] * 4)
    for name in ["os.system", "lookup.__globals__", "../lookup", "lookup"]:
        blob = allm.dumps(allm.Session(
            status="awaiting_tools",
            thread=allm.Thread(messages=(
                allm.user("hi"),
                allm.assistant("", tool_calls=(allm.ToolCall(id="c1", name=name,
                                                             arguments={"q": "x"}),)),
            )),
            pending_tool_calls=(allm.ToolCall(id="c1", name=name, arguments={"q": "x"}),),
        ))
        session = allm.loads(blob)
        # Submitting a result is the only way forward; the engine never runs `name`.
        new, _ = session.submit_tool_result(engine, "c1", "done")
        assert new.status == "completed"
    assert ran == []


def _stream_error_event(wire: Wire, key: str) -> bytes:
    from .wire import sse

    msg = f"Internal error while serving key {key}"
    if wire.name == "openai-chat":
        return sse({"error": {"message": msg, "type": "server_error", "key": key}})
    if wire.name == "openai-responses":
        return sse({"type": "error", "code": "server_error", "message": msg, "param": key},
                   "error")
    if wire.name == "anthropic":
        return sse({"type": "error", "error": {"type": "api_error", "message": msg}}, "error")
    return b"data: " + json.dumps({"error": {"code": 500, "message": msg,
                                             "status": "INTERNAL"}}).encode() + b"\r\n\r\n"


@pytest.mark.parametrize("wire", WIRES, ids=[w.name for w in WIRES])
@pytest.mark.parametrize("where", ["mid-stream", "first-event", "json-body"])
def test_key_echoed_in_a_200_error_event_is_redacted(wire: Wire, where: str) -> None:
    key = KEYS[0]
    if where == "json-body":
        raw = _stream_error_event(wire, key)
        payload = raw.split(b"data: ", 1)[1].strip()
        if wire.name == "openai-responses":  # a whole response object that failed
            payload = json.dumps({"id": "resp_1", "object": "response", "status": "failed",
                                  "output": [], "error": {"code": "server_error",
                                                          "message": f"bad key {key}"}}).encode()
        replies = [Reply(body=payload)]
    else:
        words = ["some ", "text"] if where == "mid-stream" else []
        replies = [Reply(chunks=wire.stream_chunks(words, complete=False)
                         + [_stream_error_event(wire, key)])]
    with FaultServer(replies) as server:
        engine = wire.engine(server.url)
        events: list[Event] = []
        try:
            for ev in allm.stream_generate(engine, "hi", api_key=key, retry=False,
                                           stream=where != "json-body"):
                events.append(ev)
        finally:
            engine.adapter.close()  # type: ignore[union-attr]
    errors = [ev.error for ev in events if isinstance(ev, ErrorEvent)]
    assert errors, events
    text = "\n".join(t for ev in events for t in texts_of(ev))
    text += "\n".join(t for e in errors for t in texts_of(e))
    text += "\n".join(json.dumps(getattr(e, "body", None), default=repr) for e in errors)
    assert key not in text, _context(text, key)
