"""The sync loop driver's tool threads: one crew per run, handing each tool call to a
worker thread and its result back through two C-level queues.

Why not `concurrent.futures.ThreadPoolExecutor`: the sync driver hands every tool
call to another thread so that a call past ``tool_timeout`` can be abandoned (Python
threads cannot be killed), and that handoff was the largest single cost of a
tool-using step (issue 10). A pool round trip builds a `Future`, a work item, a
condition and its waiter lock per call; here a call is one `SimpleQueue.put` to the
crew and one `SimpleQueue.put` back, everything else (deadlines, completion order)
is the driver's bookkeeping. Same guarantees as the pool it replaces:

- at most as many threads as the largest step asked for (``min(calls,
  max_concurrency)``); extra calls wait in the queue and their timeout starts when
  a thread takes them;
- each call runs in the `contextvars.Context` the driver gives it;
- `close` drops the calls no thread has taken yet and lets every thread end after
  its current call (an abandoned call runs on to its end, and the interpreter
  waits for it at exit, like a pool's threads); crews still open at exit are
  closed by a `threading` exit hook, so an idle thread never holds the
  interpreter up.
"""

from __future__ import annotations

import contextvars
import threading
import time
import weakref
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any

__all__ = ["Crew"]

Result = tuple[int, Any, BaseException | None, float]
"""(ticket, value, exception, monotonic time it finished)."""

_live: weakref.WeakSet[Crew] = weakref.WeakSet()


class Crew:
    """Worker threads serving one queue of calls; results go to `results`."""

    __slots__ = ("__weakref__", "closed", "jobs", "results", "started", "threads")

    def __init__(self, results: SimpleQueue[Result]) -> None:
        self.jobs: SimpleQueue[Any] = SimpleQueue()
        self.results = results
        self.started: dict[int, float] = {}  # ticket -> when a thread took it
        self.threads = 0
        self.closed = False
        _live.add(self)

    def ensure(self, count: int) -> None:
        """Have at least `count` threads (started lazily: a chat with no tool call
        starts none)."""
        while self.threads < count:
            thread = threading.Thread(target=_serve, args=(self,), daemon=False,
                                      name=f"allm-tool_{self.threads}")
            thread.start()
            self.threads += 1

    def submit(self, ticket: int, ctx: contextvars.Context,
               fn: Callable[[Any], Any], arg: Any) -> None:
        self.jobs.put((ticket, ctx, fn, arg))

    def close(self) -> None:
        """Drop the calls not started yet; each thread ends after its current call."""
        if self.closed:
            return
        self.closed = True
        for _ in range(self.threads):
            self.jobs.put(None)
        _live.discard(self)


def _serve(crew: Crew) -> None:
    jobs, results, started = crew.jobs, crew.results, crew.started
    monotonic = time.monotonic
    while True:
        item = jobs.get()
        if item is None or crew.closed:
            if item is None:
                return
            continue  # taken after `close`: dropped, like a pool's cancelled futures
        ticket, ctx, fn, arg = item
        item = None  # do not keep the call's objects alive while idle
        started[ticket] = monotonic()
        try:
            results.put((ticket, ctx.run(fn, arg), None, monotonic()))
        except BaseException as exc:  # the driver classifies it (`settle`)
            results.put((ticket, None, exc, monotonic()))
        ctx = fn = arg = None


def _close_all() -> None:
    for crew in list(_live):
        crew.close()


# Run before the interpreter joins its non-daemon threads (what
# `concurrent.futures` does for its pools).
threading._register_atexit(_close_all)  # type: ignore[attr-defined]
