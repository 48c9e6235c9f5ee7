"""The two thin shells that run the loop generator (`allm.loopgen`): sync and async.

Owns only I/O: opening the adapter's event stream, pulling its events, running a
step's tool calls concurrently under the per-call timeout, and cleanup when the
consumer stops early (the adapter stream is closed, tool work is abandoned). Every
decision lives in the generator.

- Sync: tools run in the run's worker threads (`allm._toolthreads`, each job in a
  copy of the caller's contextvars); a call that exceeds its timeout is abandoned
  (Python threads cannot be killed) and reported as ``ToolError("timeout")``; its
  thread runs on to its end (and the interpreter waits for it at exit). Results
  reach the generator in completion order, as they finish.
- Async: tools run in an anyio task group, each under `anyio.move_on_after`; async
  handlers are cancelled on timeout, sync ones run in worker threads and are
  abandoned. The whole batch runs inside the task group and its results are then
  fed in completion order: an async generator must not yield to its consumer from
  inside a task group (the cancel scope would cross the yield).
"""

from __future__ import annotations

import contextvars
import time
import types
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from queue import Empty, SimpleQueue
from types import CoroutineType
from typing import Any, TypeVar

from . import telemetry
from ._toolthreads import Crew
from .errors import ToolError
from .events import Event, StepCompleted
from .facade import amodel_events, model_events
from .loopgen import NEXT_TOOL, Emit, Job, OpenModel, Pump, RunTools

__all__ = ["SyncRun", "AsyncRun"]

_E = TypeVar("_E")


class _Steps:
    """Telemetry: one ``step`` span per loop step inside a chat span (see
    `allm.telemetry`). A step starts at its first command and ends at its
    `StepCompleted` (or when the next step opens / the loop ends). The driver
    activates it around every command, never across a yield to the consumer."""

    __slots__ = ("attrs", "span")

    def __init__(self, attrs: dict[str, Any]) -> None:
        self.attrs = attrs
        self.span: telemetry.Span | None = None

    def enter(self, cmd: Any) -> telemetry.Span:
        if type(cmd) is OpenModel and self.span is not None:
            self.span.finish()  # the previous step ended without StepCompleted
            self.span = None
        if self.span is None:
            self.span = telemetry.Span("step", self.attrs).start()
        self.span.activate()
        return self.span

    def emitted(self, event: Any) -> None:
        if type(event) is StepCompleted and self.span is not None:
            self.span.set_response(event.response)
            self.span.finish()
            self.span = None

    def close(self, exc: BaseException | None) -> None:
        if self.span is not None:
            if exc is not None and not isinstance(exc, GeneratorExit):
                self.span.fail(exc)
            else:
                self.span.finish()
            self.span = None


def _spanned(events: Iterator[Event], span: telemetry.Span) -> Iterator[Event]:
    """Pull `events` with `span` active, deactivating it before each yield."""
    span.deactivate()  # `enter` activated it
    while True:
        span.activate()
        try:
            event = next(events)
        except StopIteration:
            return
        finally:
            span.deactivate()
        yield event


async def _aspanned(events: AsyncIterator[Event], span: telemetry.Span
                    ) -> AsyncIterator[Event]:
    span.deactivate()  # `enter` activated it
    while True:
        span.activate()
        try:
            event = await events.__anext__()
        except StopAsyncIteration:
            return
        finally:
            span.deactivate()
        yield event


def _tool_attrs(job: Job, engine: Any) -> dict[str, Any]:
    return {"tool_name": job.tool.name, "tool_call_id": job.call.id, "tool_call": job.call,
            "provider": getattr(engine, "provider", None), "model": getattr(engine, "model", None)}


def _timeout_error(job: Job, timeout: float | None) -> ToolError:
    return ToolError("timeout", f"tool {job.tool.name!r} timed out after {timeout:g} s",
                     tool_name=job.tool.name, tool_call_id=job.call.id)


def _open(engine: Any, cmd: OpenModel) -> Iterator[Event]:
    if cmd.direct and not telemetry.active():  # see `OpenModel.direct`
        return engine.adapter.stream(cmd.request, cmd.call)  # type: ignore[no-any-return]
    return model_events(engine, cmd.request, cmd.call, cmd.filters)


def _aopen(engine: Any, cmd: OpenModel) -> AsyncIterator[Event]:
    if cmd.direct and not telemetry.active():
        return engine.adapter.astream(cmd.request, cmd.call)  # type: ignore[no-any-return]
    return amodel_events(engine, cmd.request, cmd.call, cmd.filters)


def _open_first(run: SyncRun | AsyncRun, open_events: Callable[..., _E]) -> _E | None:
    """The eager part both drivers' `start` share: run the flow to its first model
    call and open it (pre-flight errors raise here, after closing the flow). None
    when the flow ended first (its return value is then in `run.result`)."""
    flow = run.flow
    try:
        cmd = next(flow)
        while isinstance(cmd, Emit):  # nothing is emitted before the first call today
            cmd = flow.send(None)
        if not isinstance(cmd, OpenModel):  # pragma: no cover - it always opens first
            raise RuntimeError(f"the loop must open the model first, got {cmd!r}")
        return open_events(run.engine, cmd)
    except StopIteration as stop:
        run.result = stop.value
        flow.close()
        return None
    except BaseException:
        flow.close()
        raise


class SyncRun:
    """Runs a loop generator synchronously. `start()` performs everything up to the
    first model call eagerly (so pre-flight errors raise at the call site);
    `events()` is the lazy rest. The generator's return value ends up in `result`."""

    def __init__(self, engine: Any, flow: Generator[Any, Any, Any],
                 steps: _Steps | None = None) -> None:
        self.engine = engine
        self.flow = flow
        self.result: Any = None
        self.steps = steps
        self._events: Iterator[Event] | None = None
        self._crew: Crew | None = None
        self._results: SimpleQueue[Any] = SimpleQueue()  # every crew of the run reports here
        self._ticket = 0
        self._abandoned = False  # a call of the current crew was abandoned
        self._pending: dict[int, Job] = {}  # ticket -> the call it runs
        self._done: list[tuple[int, Any, BaseException | None]] = []
        self._timeout: float | None = None

    def start(self) -> SyncRun:
        self._events = _open_first(self, _open)
        return self

    def events(self, emit: bool = True) -> Iterator[Event]:
        """Run the loop, yielding its events. ``emit=False`` (the non-streaming
        `chat`, which only wants `result`): the same run, yielding nothing, so no
        event pays a generator round trip to a consumer that drops it."""
        flow = self.flow
        steps = self.steps
        send: Any = None
        exc: BaseException | None = None
        failure: BaseException | None = None
        try:
            while True:
                try:
                    cmd = flow.throw(exc) if exc is not None else flow.send(send)
                except StopIteration as stop:
                    self.result = stop.value
                    return
                send, exc = None, None
                if type(cmd) is Emit:
                    if steps is not None:
                        steps.emitted(cmd.event)
                    if emit:
                        yield cmd.event
                    continue
                if type(cmd) is Pump:
                    accept = cmd.accept
                    events = self._events
                    assert events is not None
                    try:
                        if steps is None:
                            if emit:
                                for event in events:
                                    if accept(event):
                                        yield event
                            else:
                                fold = cmd.fold
                                for event in events:
                                    fold(event)
                        else:  # the step span is active while pulling, never across a yield
                            for event in _spanned(events, steps.enter(cmd)):
                                if accept(event) and emit:
                                    yield event
                    except Exception as e:
                        exc = e
                    self._close_events()
                    continue
                span = steps.enter(cmd) if steps is not None else None
                try:
                    if cmd is NEXT_TOOL:
                        send = self._next_done()
                    elif type(cmd) is OpenModel:
                        self._close_events()
                        try:
                            self._events = _open(self.engine, cmd)
                        except Exception as e:
                            exc = e
                    elif type(cmd) is RunTools:
                        self._run_tools(cmd)
                        send = self._next_done()
                    else:  # pragma: no cover
                        raise RuntimeError(f"unknown loop command {cmd!r}")
                finally:
                    if span is not None:
                        span.deactivate()
        except BaseException as e:
            failure = e
            raise
        finally:
            self._close_events()
            self._shutdown_pool()
            flow.close()
            if steps is not None:
                steps.close(failure)

    # -- tools ------------------------------------------------------------------------

    def _run_tools(self, cmd: RunTools) -> None:
        crew = self._crew
        # Keep the run's crew from step to step (its threads are warm) unless a call
        # was abandoned in it: that thread may stay busy for as long as the call runs.
        if crew is None or self._abandoned:
            self._shutdown_pool()
            self._abandoned = False
            self._crew = crew = Crew(self._results)
        self._timeout = cmd.timeout
        self._done = []
        executor = cmd.executor
        traced = telemetry.active()
        engine = self.engine

        def run(job: Job) -> Any:
            if traced:
                with telemetry.span("tool", **_tool_attrs(job, engine)) as sp:
                    value = executor.execute(job.tool, job.call.arguments, job.context)
                    sp.set_result(value)
                return value
            return executor.execute(job.tool, job.call.arguments, job.context)

        copy_context = contextvars.copy_context
        for job in cmd.jobs:
            self._ticket += 1
            self._pending[self._ticket] = job
            crew.submit(self._ticket, copy_context(), run, job)
        # Threads join after the calls are queued: a thread new to the crew then
        # finds its first call waiting instead of being woken twice.
        crew.ensure(max(1, min(len(cmd.jobs), cmd.max_concurrency)))

    def _next_done(self) -> tuple[int, Any, BaseException | None]:
        pending = self._pending
        crew = self._crew
        assert crew is not None
        started = crew.started
        results = self._results
        if len(pending) == 1 and not self._done:
            # One call (the common step): wait for its result alone; a timeout or
            # a late result of an abandoned call falls through to the general case.
            ((only, only_job),) = pending.items()
            limit = self._timeout
            if limit is not None and only in started:
                limit = max(0.0, started[only] + limit - time.monotonic())
            try:
                item = results.get(timeout=limit)
            except Empty:
                item = None
            if item is not None and item[0] == only:
                del pending[only]
                started.pop(only, None)
                return only_job.index, item[1], item[2]
        while not self._done:
            if not pending:  # pragma: no cover - the flow asks once per job
                raise RuntimeError("no tool call is running")
            timeout = self._timeout
            wait_for: float | None = None
            if timeout is not None:
                deadlines = [started[t] + timeout for t in pending if t in started]
                wait_for = (max(0.0, min(deadlines) - time.monotonic()) if deadlines
                            else timeout)
            got: list[Any] = []
            try:
                got.append(results.get(timeout=wait_for))
                while True:  # every other call that finished meanwhile
                    got.append(results.get_nowait())
            except Empty:
                pass
            finished: list[tuple[float, tuple[int, Any, BaseException | None]]] = []
            for ticket, value, exc, at in got:
                job = pending.pop(ticket, None)
                if job is None:  # a call abandoned earlier finished at last: ignored
                    continue
                started.pop(ticket, None)
                finished.append((at, (job.index, value, exc)))
            if timeout is not None:
                now = time.monotonic()
                for ticket, job in list(pending.items()):
                    began = started.get(ticket)
                    if began is not None and now - began >= timeout:
                        del pending[ticket]  # abandoned: a running thread cannot be stopped
                        self._abandoned = True
                        finished.append((began + timeout,
                                         (job.index, None, _timeout_error(job, timeout))))
            finished.sort(key=lambda item: item[0])
            self._done.extend(item for _, item in finished)
        return self._done.pop(0)

    def _shutdown_pool(self) -> None:
        crew = self._crew
        if crew is not None:
            self._crew = None
            crew.close(idle=not self._pending and not self._abandoned)
            self._pending.clear()

    def _close_events(self) -> None:
        events = self._events
        if events is not None:
            self._events = None
            close = getattr(events, "close", None)
            if close is not None:
                close()


_AWAIT = object()


@types.coroutine
def _resume(coro: Any, first: Any) -> Generator[Any, Any, Any]:
    """Await the rest of `coro`, which already ran to its first suspension and
    yielded `first`: what `await coro` would have done from there on (values sent
    in, exceptions such as a cancellation thrown in, the result returned)."""
    value = first
    while True:
        try:
            sent = yield value
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:
            try:
                value = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                value = coro.send(sent)
            except StopIteration as stop:
                return stop.value


class AsyncRun:
    """The async twin of `SyncRun` (same commands, anyio for concurrency)."""

    def __init__(self, engine: Any, flow: Generator[Any, Any, Any],
                 steps: _Steps | None = None) -> None:
        self.engine = engine
        self.flow = flow
        self.result: Any = None
        self.steps = steps
        self._events: AsyncIterator[Event] | None = None
        self._done: list[tuple[int, Any, BaseException | None]] = []

    def start(self) -> AsyncRun:
        """Eager part, synchronous: the adapter's pre-flight raises here."""
        self._events = _open_first(self, _aopen)
        return self

    async def events(self, emit: bool = True) -> AsyncIterator[Event]:
        """The async twin of `SyncRun.events` (``emit=False`` likewise)."""
        flow = self.flow
        steps = self.steps
        send: Any = None
        exc: BaseException | None = None
        failure: BaseException | None = None
        try:
            while True:
                try:
                    cmd = flow.throw(exc) if exc is not None else flow.send(send)
                except StopIteration as stop:
                    self.result = stop.value
                    return
                send, exc = None, None
                if type(cmd) is Emit:
                    if steps is not None:
                        steps.emitted(cmd.event)
                    if emit:
                        yield cmd.event
                    continue
                if type(cmd) is Pump:
                    accept = cmd.accept
                    events = self._events
                    assert events is not None
                    try:
                        if steps is None:
                            if emit:
                                async for event in events:
                                    if accept(event):
                                        yield event
                            else:
                                fold = cmd.fold
                                async for event in events:
                                    fold(event)
                        else:  # the step span is active while pulling, never across a yield
                            async for event in _aspanned(events, steps.enter(cmd)):
                                if accept(event) and emit:
                                    yield event
                    except Exception as e:
                        exc = e
                    await self._close_events()
                    continue
                span = steps.enter(cmd) if steps is not None else None
                try:
                    if cmd is NEXT_TOOL:
                        send = self._done.pop(0)
                    elif type(cmd) is OpenModel:
                        await self._close_events()
                        try:
                            self._events = _aopen(self.engine, cmd)
                        except Exception as e:
                            exc = e
                    elif type(cmd) is RunTools:
                        await self._run_tools(cmd)
                        send = self._done.pop(0)
                    else:  # pragma: no cover
                        raise RuntimeError(f"unknown loop command {cmd!r}")
                finally:
                    if span is not None:
                        span.deactivate()
        except BaseException as e:
            failure = e
            raise
        finally:
            await self._close_events()
            flow.close()
            if steps is not None:
                steps.close(failure)

    async def _run_tools(self, cmd: RunTools) -> None:
        import anyio

        done: list[tuple[int, Any, BaseException | None]] = []
        executor = cmd.executor
        timeout = cmd.timeout
        traced = telemetry.active()
        engine = self.engine
        jobs = cmd.jobs
        # The bound only matters when there are more jobs than it allows; a turn with
        # one call (the common case) needs no task group either: ~60% of the loop's
        # per-step cost was spawning a task and a semaphore for it (benchmarks/).
        limiter = (anyio.Semaphore(max(1, cmd.max_concurrency))
                   if len(jobs) > cmd.max_concurrency else None)

        async def run(job: Job) -> None:
            if limiter is None:
                await run_one(job)
            else:
                async with limiter:
                    await run_one(job)

        async def run_one(job: Job) -> None:
            if not traced:
                await run_quick(job)
                return
            try:
                with anyio.move_on_after(timeout) as scope:
                    if traced:
                        with telemetry.span("tool", **_tool_attrs(job, engine)) as sp:
                            value = await executor.aexecute(job.tool, job.call.arguments,
                                                            job.context)
                            sp.set_result(value)
                    else:
                        value = await executor.aexecute(job.tool, job.call.arguments,
                                                        job.context)
                    done.append((job.index, value, None))
                    return
                if scope.cancelled_caught:
                    done.append((job.index, None, _timeout_error(job, timeout)))
            except Exception as e:
                done.append((job.index, None, e))

        async def run_quick(job: Job) -> None:
            # The handler's first slice runs before any cancel scope (~9 us per call
            # saved): a call that returns without suspending cannot have been timed
            # out (a timeout only acts at an await), so it needs none. One that
            # suspends resumes inside `move_on_after` for the rest of its timeout,
            # counted from its start as before.
            t0 = time.monotonic()
            try:
                coro = executor.aexecute(job.tool, job.call.arguments, job.context)
                if type(coro) is not CoroutineType:  # a custom executor's awaitable
                    first: Any = _AWAIT
                else:
                    try:
                        first = coro.send(None)
                    except StopIteration as stop:
                        done.append((job.index, stop.value, None))
                        return
                left = None if timeout is None else max(0.0, timeout - (time.monotonic() - t0))
                with anyio.move_on_after(left) as scope:
                    value = await (coro if first is _AWAIT else _resume(coro, first))
                    done.append((job.index, value, None))
                    return
                if scope.cancelled_caught:
                    done.append((job.index, None, _timeout_error(job, timeout)))
            except Exception as e:
                done.append((job.index, None, e))

        if len(jobs) == 1:
            # In the driver's own task: a task group would only add a task switch.
            await run_one(jobs[0])
        else:
            async with anyio.create_task_group() as tg:
                for job in jobs:
                    tg.start_soon(run, job)
        self._done = done

    async def _close_events(self) -> None:
        events = self._events
        if events is not None:
            self._events = None
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()
