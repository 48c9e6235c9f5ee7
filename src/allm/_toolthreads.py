"""The sync loop driver's tool threads: a crew per run, borrowing threads from a small
process-wide idle list, handing each tool call to them and the result back through
C-level queues.

Why not `concurrent.futures.ThreadPoolExecutor`: the sync driver hands every tool
call to another thread so that a call past ``tool_timeout`` can be abandoned (Python
threads cannot be killed), and that handoff was the largest single cost of a
tool-using step (issue 10). A pool round trip builds a `Future`, a work item, a
condition and its waiter lock per call; here a call is one `SimpleQueue.put` to the
crew and one back. A pool per run also started a thread per run (~0.1-0.5 ms on a
small VM, more than the rest of a 10-step chat's tool handling): threads here
outlive the run that started them and serve the next one, then end after
`IDLE_SECONDS` without work (like anyio's worker threads).

Same guarantees as the pool it replaces:

- a run uses at most as many threads as its largest step asked for (``min(calls,
  max_concurrency)``); extra calls wait in its queue and their timeout starts when
  a thread takes them;
- each call runs in the `contextvars.Context` the driver gives it;
- `Crew.close` drops the calls no thread has taken yet; each thread goes back to the
  idle list after its current call (an abandoned call runs on to its end; the
  interpreter waits for it at exit, like a pool's threads). At exit, idle threads
  end at once (a `threading` exit hook), so they never hold the interpreter up.
"""

from __future__ import annotations

import contextvars
import os
import threading
import time
import weakref
from collections.abc import Callable
from queue import Empty, SimpleQueue
from typing import Any

__all__ = ["Crew", "IDLE_SECONDS"]

IDLE_SECONDS = 2.0
"""How long a thread with no run to serve waits before it ends."""

Result = tuple[int, Any, BaseException | None, float]
"""(ticket, value, exception, monotonic time it finished)."""

_lock = threading.Lock()
_idle: list[_Worker] = []  # LIFO: the most recently used (warmest) thread first
_live: weakref.WeakSet[Crew] = weakref.WeakSet()
_exiting = False
_count = 0  # for thread names


class Crew:
    """One run's queue of calls and the threads serving it; results go to `results`."""

    __slots__ = ("__weakref__", "closed", "jobs", "relisted", "results", "started",
                 "workers")

    def __init__(self, results: SimpleQueue[Result]) -> None:
        self.jobs: SimpleQueue[Any] = SimpleQueue()
        self.results = results
        self.started: dict[int, float] = {}  # ticket -> when a thread took it
        self.workers: list[_Worker] = []
        self.closed = False
        self.relisted = False  # `close` put the threads back in the idle list
        _live.add(self)

    def ensure(self, count: int) -> None:
        """Have at least `count` threads serving this crew (lazily: a run with no
        tool call takes none)."""
        while len(self.workers) < count:
            with _lock:
                worker = _idle.pop() if _idle else None
            if worker is None:
                worker = _Worker()
            worker.inbox.put(self)
            self.workers.append(worker)

    def submit(self, ticket: int, ctx: contextvars.Context,
               fn: Callable[[Any], Any], arg: Any) -> None:
        self.jobs.put((ticket, ctx, fn, arg))

    def close(self, idle: bool = False) -> None:
        """Drop the calls not started yet; each thread leaves after its current call.
        `idle`: the caller knows no call is running; the threads go back to the idle
        list now rather than when they wake, so the next run finds them even if it
        starts before they do (a thread given a new crew meanwhile finishes this
        one first: its queue holds this crew's end before the new crew)."""
        if self.closed:
            return
        self.closed = True
        with _lock:
            if idle and not _exiting:
                self.relisted = True
                _idle.extend(self.workers)
        for _ in self.workers:
            self.jobs.put(None)
        _live.discard(self)


class _Worker:
    __slots__ = ("inbox",)

    def __init__(self) -> None:
        global _count
        self.inbox: SimpleQueue[Crew | None] = SimpleQueue()
        _count += 1
        threading.Thread(target=self._main, name=f"allm-tool_{_count}", daemon=False).start()

    def _main(self) -> None:
        inbox = self.inbox
        while True:
            try:
                crew = inbox.get(timeout=IDLE_SECONDS)
            except Empty:
                with _lock:
                    if self not in _idle:
                        continue  # just handed a crew: it is in the inbox
                    _idle.remove(self)
                return
            if crew is None:
                return
            _serve(crew)
            relisted, crew = crew.relisted, None
            with _lock:
                if _exiting:
                    return
                if not relisted:
                    _idle.append(self)


def _serve(crew: Crew) -> None:
    jobs, results, started = crew.jobs, crew.results, crew.started
    monotonic = time.monotonic
    while True:
        item = jobs.get()
        if item is None:
            return
        if crew.closed:
            continue  # taken after `close`: dropped, like a pool's cancelled futures
        ticket, ctx, fn, arg = item
        item = None  # do not keep the call's objects alive while waiting
        started[ticket] = monotonic()
        try:
            results.put((ticket, ctx.run(fn, arg), None, monotonic()))
        except BaseException as exc:  # the driver classifies it (`settle`)
            results.put((ticket, None, exc, monotonic()))
        ctx = fn = arg = None


def _close_all() -> None:
    global _exiting
    with _lock:
        _exiting = True
        idle = list(_idle)
        _idle.clear()
    for worker in idle:
        worker.inbox.put(None)
    for crew in list(_live):
        crew.close()


def _after_fork() -> None:
    # The child has none of the parent's threads.
    global _lock
    _lock = threading.Lock()
    _idle.clear()
    _live.clear()


# Run before the interpreter joins its non-daemon threads (what
# `concurrent.futures` does for its pools).
try:
    threading._register_atexit(_close_all)  # type: ignore[attr-defined]
except RuntimeError:  # pragma: no cover - first imported while the interpreter exits
    _exiting = True  # no thread goes idle: each ends after its run
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
