"""`allm.testing`: a reusable conformance suite for chat adapters (ours or yours).

Owns the checks every `Adapter` must pass, independent of any provider:

- **order**: one model call's events are in a legal order: `message_started` first,
  `tool_call_started` before that id's deltas and completion, nothing but raw
  chunks after `message_completed`, a stream without `message_completed` ends in an
  `error` event, and only adapter-level event types appear;
- **fold**: the stream wire mode (`call.stream=True`) folds (`StreamCollector`) to
  the same response as the non-stream wire mode (text, tool calls, finish reason,
  usage);
- **parity**: `stream` and `astream` give equal events;
- **errors**: failures are typed (`AllmError`), raised at the call site or as
  `ErrorEvent`s, never a bare exception; a scenario marked `expect_error` must fail;
- **cancel**: closing the iterator after the first event runs the adapter's cleanup
  (for HTTP adapters: the HTTP response is closed).

HTTP adapters are driven by recorded responses (`Recorded`, e.g. from a fixture
file) served through an `httpx2.MockTransport`: the factory receives a `Wire` whose
`http_client` / `async_http_client` serve the scenario's responses and record the
requests and which response bodies were closed. Adapters without HTTP (like
`allm.providers.Fake`) ignore the wire; pass `cleaned_up=` to check cancellation.

Two ways to use it::

    report = run_conformance(lambda wire: MyAdapter(http_client=wire.http_client,
                                                    async_http_client=wire.async_http_client),
                             scenarios)
    report.raise_for_problems()

    class TestMyAdapter(AdapterConformance):       # pytest collects five tests
        def make_adapter(self, wire): ...
        def scenarios(self): return [Scenario(...)]

The checks call the async twin through `anyio.run`, so call them from synchronous
code (a plain pytest test), not from inside a running event loop. httpx2 is imported
only when a scenario has recorded responses.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import AllmError
from .events import (
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
from .providers.base import Adapter, Call
from .request import Request

if TYPE_CHECKING:
    import httpx2

__all__ = [
    "Recorded",
    "Scenario",
    "Wire",
    "Problem",
    "ConformanceReport",
    "ConformanceError",
    "CHECKS",
    "run_conformance",
    "check_event_order",
    "fold_view",
    "AdapterConformance",
]

CHECKS: tuple[str, ...] = ("order", "fold", "parity", "errors", "cancel")

ADAPTER_EVENTS: tuple[type, ...] = (
    MessageStarted,
    TextDelta,
    TextCompleted,
    ToolCallStarted,
    ToolCallDelta,
    ToolCallCompleted,
    MessageCompleted,
    RawChunk,
    ErrorEvent,
)
"""The event types one model call may produce (the loop emits the others)."""

_DROP_HEADERS = frozenset({"content-length", "content-encoding", "transfer-encoding"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Recorded:
    """One HTTP response to serve. `chunk_size` splits a body into that many bytes
    per chunk (0: one chunk), to exercise chunk boundaries."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | str = b""
    chunk_size: int = 0

    @classmethod
    def from_fixture(
        cls, path: str | Path, interaction: int = 0, *, chunk_size: int = 0
    ) -> Recorded:
        """The response of interaction `interaction` of a recording in the
        ``../shared/fixtures`` format (``{"interactions": [{"response": {...}}]}``)."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        resp = data["interactions"][interaction]["response"]
        headers = {
            k: v for k, v in (resp.get("headers") or {}).items() if k.lower() not in _DROP_HEADERS
        }
        body = resp.get("body") or ""
        if not isinstance(body, str):
            body = json.dumps(body)
        return cls(status=int(resp.get("status", 200)), headers=headers, body=body,
                   chunk_size=chunk_size)

    def content(self) -> bytes:
        return self.body.encode("utf-8") if isinstance(self.body, str) else self.body


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """One model call to check.

    - `call`: its `stream` field is overridden per wire mode.
    - `stream` / `non_stream`: HTTP responses served, in order, for the stream and
      non-stream wire modes (None: that mode is not checked; leave both None for
      adapters without HTTP: both modes run).
    - `expect_error`: the call must fail (typed), e.g. a recorded 400.
    - `fold_equal`: compare the two modes' folds (set False when the recordings are
      not the same answer); `fold_ignore`: fields of `fold_view` not compared.
    """

    name: str
    request: Request
    call: Call = field(default_factory=Call)
    stream: Sequence[Recorded] | None = None
    non_stream: Sequence[Recorded] | None = None
    expect_error: bool = False
    fold_equal: bool = True
    fold_ignore: frozenset[str] = frozenset()

    @property
    def is_http(self) -> bool:
        return self.stream is not None or self.non_stream is not None

    def modes(self) -> tuple[bool, ...]:
        if not self.is_http:
            return (True, False)
        return tuple(m for m, r in ((True, self.stream), (False, self.non_stream)) if r is not None)


class Wire:
    """What an adapter factory receives: the `scenario`, mock HTTP clients serving
    `responses` (None for a scenario without HTTP), and what happened on them
    (`requests`, `opened` / `closed` response bodies)."""

    def __init__(self, responses: Sequence[Recorded] | None, scenario: Scenario | None = None) -> None:
        self.scenario = scenario  # so a factory can configure per scenario (a Fake's script)
        self.responses = list(responses) if responses is not None else None
        self.requests: list[httpx2.Request] = []
        self.opened = 0
        self.closed = 0
        self.http_client: httpx2.Client | None = None
        self.async_http_client: httpx2.AsyncClient | None = None
        if self.responses is not None:
            import httpx2

            transport = httpx2.MockTransport(self._handle)
            self.http_client = httpx2.Client(transport=transport)
            self.async_http_client = httpx2.AsyncClient(transport=transport)

    def _handle(self, request: httpx2.Request) -> httpx2.Response:
        import httpx2

        self.requests.append(request)
        queue = self.responses or []
        if not queue:
            return httpx2.Response(599, json={"error": "allm.testing: no recorded response left"})
        rec = queue.pop(0)
        self.opened += 1
        return httpx2.Response(rec.status, headers=dict(rec.headers),
                               stream=_tracked_body(self, rec.content(), rec.chunk_size))

    def all_closed(self) -> bool:
        return self.closed >= self.opened

    def close(self) -> None:
        if self.http_client is not None:
            self.http_client.close()


_BODY_CLASS: list[type] = []


def _tracked_body(wire: Wire, content: bytes, chunk_size: int) -> Any:
    """A response body (sync and async) that records being closed. The class is
    built on first use so that importing this module does not import httpx2."""
    if not _BODY_CLASS:
        import httpx2

        class TrackedBody(httpx2.SyncByteStream, httpx2.AsyncByteStream):
            def __init__(self, wire: Wire, content: bytes, chunk_size: int) -> None:
                self._wire = wire
                self._content = content
                self._size = chunk_size if chunk_size > 0 else max(len(content), 1)
                self._closed = False

            def __iter__(self) -> Iterator[bytes]:
                c, n = self._content, self._size
                for i in range(0, len(c), n):
                    yield c[i : i + n]

            async def __aiter__(self) -> AsyncIterator[bytes]:
                for chunk in self.__iter__():
                    yield chunk

            def close(self) -> None:
                if not self._closed:
                    self._closed = True
                    self._wire.closed += 1

            async def aclose(self) -> None:
                self.close()

        _BODY_CLASS.append(TrackedBody)
    return _BODY_CLASS[0](wire, content, chunk_size)


@dataclass(frozen=True, slots=True)
class Problem:
    scenario: str
    check: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.scenario}] {self.check}: {self.detail}"


class ConformanceError(AssertionError):
    """Raised by `ConformanceReport.raise_for_problems` (an AssertionError, so pytest
    shows it as a test failure)."""


@dataclass
class ConformanceReport:
    problems: list[Problem] = field(default_factory=list)
    runs: int = 0  # adapter calls made

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_for_problems(self) -> None:
        if self.problems:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            raise ConformanceError(f"{len(self.problems)} conformance problem(s):\n{lines}")


# -- checks on one event sequence ---------------------------------------------------------


def check_event_order(events: Sequence[Any]) -> list[str]:
    """Problems with the order of one model call's events (empty list: legal)."""
    problems: list[str] = []
    if not events:
        return ["no events at all (a call must end in message_completed or an error)"]
    started: set[str] = set()
    completed: set[str] = set()
    seen_completed = False
    for i, ev in enumerate(events):
        if not isinstance(ev, ADAPTER_EVENTS):
            problems.append(f"event {i}: {type(ev).__name__} is not an adapter event")
            continue
        if isinstance(ev, ErrorEvent):
            if not isinstance(ev.error, AllmError):
                problems.append(f"event {i}: error event carries {type(ev.error).__name__}")
            continue
        if isinstance(ev, MessageStarted):
            if i != 0:
                problems.append(f"event {i}: message_started is not the first event")
            continue
        name = getattr(ev, "type", type(ev).__name__)
        if i == 0:
            problems.append(f"event 0: {name} before message_started")
        if seen_completed and not isinstance(ev, RawChunk):
            problems.append(f"event {i}: {name} after message_completed")
        if isinstance(ev, ToolCallStarted):
            if ev.id in started:
                problems.append(f"event {i}: tool call {ev.id!r} started twice")
            started.add(ev.id)
        elif isinstance(ev, ToolCallDelta):
            if ev.id not in started:
                problems.append(f"event {i}: delta for tool call {ev.id!r} before its start")
            if ev.id in completed:
                problems.append(f"event {i}: delta for tool call {ev.id!r} after completion")
        elif isinstance(ev, ToolCallCompleted):
            if ev.id not in started:
                problems.append(f"event {i}: tool call {ev.id!r} completed before started")
            if ev.id in completed:
                problems.append(f"event {i}: tool call {ev.id!r} completed twice")
            completed.add(ev.id)
        elif isinstance(ev, MessageCompleted):
            if seen_completed:
                problems.append(f"event {i}: second message_completed")
            seen_completed = True
    last = events[-1]
    if not seen_completed and not isinstance(last, ErrorEvent):
        problems.append("stream ended without message_completed or an error event")
    return problems


def fold_view(events: Sequence[Any]) -> dict[str, Any]:
    """What the fold of `events` says, in comparable form (text, tool calls,
    finish reason, usage, error)."""
    from .collector import StreamCollector

    resp = StreamCollector().collect(events).to_response()
    error = resp.metadata.get("error")
    return {
        "text": resp.output_text,
        "tool_calls": [(tc.id, tc.name, tc.arguments) for tc in resp.tool_calls],
        "finish_reason": resp.finish_reason,
        "usage": resp.usage,
        "error": None if error is None else (type(error).__name__, error.reason),
    }


# -- running --------------------------------------------------------------------------------

AdapterFactory = Callable[[Wire], Adapter]
CleanedUp = Callable[[Adapter], "bool | None"]


@dataclass
class _Outcome:
    events: list[Any]
    raised: BaseException | None = None


def _run_sync(adapter: Adapter, request: Request, call: Call) -> _Outcome:
    events: list[Any] = []
    try:
        for ev in adapter.stream(request, call):
            events.append(ev)
    except Exception as exc:
        return _Outcome(events, exc)
    return _Outcome(events)


def _run_async(adapter: Adapter, request: Request, call: Call) -> _Outcome:
    import anyio

    async def main() -> _Outcome:
        events: list[Any] = []
        try:
            async for ev in adapter.astream(request, call):
                events.append(ev)
        except Exception as exc:
            return _Outcome(events, exc)
        finally:
            await adapter.aclose()
        return _Outcome(events)

    return anyio.run(main)


def _cancel(adapter: Adapter, request: Request, call: Call, *, use_async: bool) -> str | None:
    """Close the iterator after its first event; a problem description or None."""
    if not use_async:
        it = adapter.stream(request, call)
        try:
            next(iter(it))
        except StopIteration:
            return None
        close = getattr(it, "close", None)
        if close is None:
            return "the iterator returned by stream() has no close()"
        close()
        return None

    import anyio

    async def main() -> str | None:
        ait = adapter.astream(request, call)
        try:
            await ait.__anext__()
        except StopAsyncIteration:
            return None
        aclose = getattr(ait, "aclose", None)
        if aclose is None:
            return "the iterator returned by astream() has no aclose()"
        await aclose()
        await adapter.aclose()
        return None

    return anyio.run(main)


def run_conformance(
    factory: AdapterFactory,
    scenarios: Sequence[Scenario],
    *,
    checks: Sequence[str] = CHECKS,
    cleaned_up: CleanedUp | None = None,
) -> ConformanceReport:
    """Run `checks` for every scenario; `factory(wire)` must build a fresh adapter
    (it is called once per run). Returns a report (see `raise_for_problems`)."""
    unknown = set(checks) - set(CHECKS)
    if unknown:
        raise ValueError(f"unknown checks {sorted(unknown)}; expected some of {CHECKS}")
    report = ConformanceReport()
    for sc in scenarios:
        _run_scenario(factory, sc, set(checks), cleaned_up, report)
    return report


def _responses(sc: Scenario, mode: bool) -> Sequence[Recorded] | None:
    return (sc.stream if mode else sc.non_stream) if sc.is_http else None


def _run_scenario(
    factory: AdapterFactory,
    sc: Scenario,
    checks: set[str],
    cleaned_up: CleanedUp | None,
    report: ConformanceReport,
) -> None:
    def problem(check: str, detail: str) -> None:
        report.problems.append(Problem(sc.name, check, detail))

    folds: dict[bool, dict[str, Any]] = {}
    for mode in sc.modes():
        call = replace(sc.call, stream=mode)
        label = "stream" if mode else "non-stream"
        outcomes: dict[str, _Outcome] = {}
        for shell in ("sync", "async"):
            if shell == "async" and not checks & {"parity", "order", "errors"}:
                continue
            wire = Wire(_responses(sc, mode), sc)
            try:
                adapter = factory(wire)
                runner = _run_sync if shell == "sync" else _run_async
                outcome = runner(adapter, sc.request, call)
                if shell == "sync":
                    adapter.close()
            finally:
                wire.close()
            report.runs += 1
            outcomes[shell] = outcome
            where = f"{label}/{shell}"
            if outcome.raised is not None and not isinstance(outcome.raised, AllmError):
                if "errors" in checks:
                    problem("errors", f"{where}: untyped {type(outcome.raised).__name__}: "
                                      f"{outcome.raised}")
                continue
            failed = outcome.raised is not None or any(
                isinstance(e, ErrorEvent) for e in outcome.events
            )
            if "errors" in checks:
                if sc.expect_error and not failed:
                    problem("errors", f"{where}: expected a typed error, the call succeeded")
                if not sc.expect_error and failed:
                    err = outcome.raised or next(
                        e.error for e in outcome.events if isinstance(e, ErrorEvent)
                    )
                    problem("errors", f"{where}: unexpected error {err!r}")
            if "order" in checks and outcome.raised is None:
                for bad in check_event_order(outcome.events):
                    problem("order", f"{where}: {bad}")
            if "order" in checks and wire.responses and not failed:
                problem("order", f"{where}: {len(wire.responses)} recorded response(s) unused")
        sync_out, async_out = outcomes.get("sync"), outcomes.get("async")
        if "parity" in checks and sync_out is not None and async_out is not None:
            if sync_out.events != async_out.events:
                problem("parity", f"{label}: stream() and astream() events differ:\n"
                                  f"    sync:  {sync_out.events!r}\n    async: {async_out.events!r}")
            if (type(sync_out.raised), _err_fields(sync_out.raised)) != (
                type(async_out.raised), _err_fields(async_out.raised)
            ):
                problem("parity", f"{label}: sync raised {sync_out.raised!r}, "
                                  f"async raised {async_out.raised!r}")
        if sync_out is not None and sync_out.raised is None:
            folds[mode] = fold_view(sync_out.events)
        if "cancel" in checks and mode and not sc.expect_error:
            for use_async in (False, True):
                wire = Wire(_responses(sc, mode), sc)
                try:
                    adapter = factory(wire)
                    detail = _cancel(adapter, sc.request, call, use_async=use_async)
                    if not use_async:
                        adapter.close()
                finally:
                    wire.close()
                report.runs += 1
                shell = "async" if use_async else "sync"
                if detail:
                    problem("cancel", f"{shell}: {detail}")
                elif wire.responses is not None and not wire.all_closed():
                    problem("cancel", f"{shell}: the HTTP response was not closed "
                                      "after the iterator was closed")
                elif cleaned_up is not None and cleaned_up(adapter) is False:
                    problem("cancel", f"{shell}: the adapter's cleanup did not run")
    if "fold" in checks and sc.fold_equal and True in folds and False in folds:
        a, b = folds[True], folds[False]
        diff = {k: (a[k], b[k]) for k in a if k not in sc.fold_ignore and a[k] != b[k]}
        if diff:
            problem("fold", "stream fold != non-stream fold: "
                            + "; ".join(f"{k}: {s!r} != {n!r}" for k, (s, n) in diff.items()))


def _err_fields(exc: BaseException | None) -> Any:
    if isinstance(exc, AllmError):
        return exc.to_fields()
    return None if exc is None else str(exc)


# -- pytest mixin ---------------------------------------------------------------------------------


class AdapterConformance:
    """Mix into a pytest class named ``Test...``; implement `make_adapter` and
    `scenarios` (and `cleaned_up` for adapters without HTTP). Each check is a test."""

    def make_adapter(self, wire: Wire) -> Adapter:
        raise NotImplementedError

    def scenarios(self) -> Sequence[Scenario]:
        raise NotImplementedError

    def cleaned_up(self, adapter: Adapter) -> bool | None:
        """True/False once a closed stream's cleanup ran / did not; None: unknown."""
        return None

    def _check(self, check: str) -> None:
        report = run_conformance(
            self.make_adapter, self.scenarios(), checks=(check,), cleaned_up=self.cleaned_up
        )
        report.raise_for_problems()

    def test_conformance_event_order(self) -> None:
        self._check("order")

    def test_conformance_stream_fold_equals_non_stream(self) -> None:
        self._check("fold")

    def test_conformance_sync_async_parity(self) -> None:
        self._check("parity")

    def test_conformance_errors_typed(self) -> None:
        self._check("errors")

    def test_conformance_cancellation_cleans_up(self) -> None:
        self._check("cancel")
