"""The sync driver's tool threads (`allm._toolthreads`): timeouts, abandoned calls,
concurrency bound, contextvars, and no thread left behind."""

from __future__ import annotations

import contextvars
import threading
import time
from typing import Any

from scenario_tools import boom, engine, tc

import allm
from allm import _toolthreads

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


def _tool_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("allm-tool")]


def _settle(cond: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_timed_out_call_does_not_hold_up_the_next_step() -> None:
    # Step 1's call is abandoned after 0.1 s but sleeps on for 1 s; step 2's call
    # must run in a fresh thread at once, not queue behind the abandoned one.
    eng = engine([[tc("c1", "slow", seconds=1.0)], [tc("c2", "slow", seconds=0.0)],
                  [("text", "ok")]])
    t0 = time.monotonic()
    result = allm.chat(eng, "hi", tool_timeout=0.1)
    elapsed = time.monotonic() - t0
    assert result.halted_reason == "completed"
    tools = [m for m in result.thread.messages if m.role == "tool"]
    assert tools[0].is_error and "timed out after 0.1 s" in tools[0].text
    assert not tools[1].is_error and tools[1].text == "slept"
    assert elapsed < 0.8, elapsed


def test_timeouts_fire_in_completion_order_with_concurrent_calls() -> None:
    eng = engine([[tc("a", "slow", seconds=0.6), tc("b", "slow", seconds=0.0),
                   tc("c", "slow", seconds=0.6)], [("text", "ok")]])
    events = list(allm.stream(eng, "hi", tool_timeout=0.2))
    done = [e for e in events if isinstance(e, allm.ToolExecutionCompleted)]
    assert [e.id for e in done][0] == "b"
    assert {e.id for e in done if e.is_error} == {"a", "c"}
    # the thread keeps the model's order
    result = events[-1].result
    assert [m.tool_call_id for m in result.thread.messages if m.role == "tool"] == \
        ["a", "b", "c"]


def test_max_concurrency_bounds_threads_and_queued_calls_start_their_clock_late() -> None:
    seen: list[int] = []
    lock = threading.Lock()
    running = 0

    @allm.tool
    def busy(i: int) -> int:
        nonlocal running
        with lock:
            running += 1
            seen.append(running)
        time.sleep(0.15)
        with lock:
            running -= 1
        return i

    eng = engine([[tc(f"c{i}", "busy", i=i) for i in range(4)], [("text", "ok")]],
                 tools=[busy])
    # 4 calls, 2 threads: the last two wait ~0.15 s in the queue, then run 0.15 s;
    # a timeout of 0.25 s counts from when a thread takes the call, so none expires.
    result = allm.chat(eng, "hi", max_concurrency=2, tool_timeout=0.25)
    assert max(seen) == 2
    assert not any(m.is_error for m in result.thread.messages if m.role == "tool")


def test_tool_runs_in_a_copy_of_the_callers_context() -> None:
    @allm.tool
    def read_var() -> str:
        value = VAR.get()
        VAR.set("changed by the tool")
        return value

    eng = engine([[tc("c1", "read_var")], [tc("c2", "read_var")], [("text", "ok")]],
                 tools=[read_var])
    token = VAR.set("caller")
    try:
        result = allm.chat(eng, "hi")
    finally:
        VAR.reset(token)
    tools = [m.text for m in result.thread.messages if m.role == "tool"]
    assert tools == ["caller", "caller"]  # each call gets its own copy


def test_threads_are_reused_across_runs_and_end_when_idle(monkeypatch: Any) -> None:
    monkeypatch.setattr(_toolthreads, "IDLE_SECONDS", 0.2)
    _settle(lambda: not _tool_threads())  # earlier tests' threads wait up to 2 s
    assert not _tool_threads()
    for _ in range(20):
        allm.chat(engine([[tc("c1", "get_time", city="x")], [tc("c2", "get_time", city="y")],
                          [("text", "ok")]]), "hi")
    # One thread served every run: a run ending with no call in flight puts its
    # threads back in the idle list itself, before they even wake.
    assert len(_tool_threads()) == 1
    # an abandoned call's thread is not reused while its call runs
    allm.chat(engine([[tc("c1", "slow", seconds=0.3)], [tc("c2", "get_time", city="x")],
                      [("text", "ok")]]), "hi", tool_timeout=0.05)
    assert len(_tool_threads()) == 2
    _settle(lambda: not _tool_threads())
    assert not _tool_threads()


def test_stream_closed_early_drops_calls_not_started() -> None:
    ran: list[int] = []

    @allm.tool
    def record(i: int) -> int:
        time.sleep(0.05)
        ran.append(i)
        return i

    eng = engine([[tc(f"c{i}", "record", i=i) for i in range(6)], [("text", "ok")]],
                 tools=[record])
    it = allm.stream(eng, "hi", max_concurrency=1)
    for event in it:
        if isinstance(event, allm.ToolExecutionCompleted):
            break
    it.close()  # type: ignore[attr-defined]
    time.sleep(0.3)
    assert len(ran) <= 2  # the running call finishes; the queued ones never start


def test_handler_exception_and_base_exception_become_tool_errors() -> None:
    @allm.tool
    def exits() -> str:
        raise SystemExit(3)

    eng = engine([[tc("c1", "boom"), tc("c2", "exits")], [("text", "ok")]],
                 tools=[exits, boom])
    result = allm.chat(eng, "hi")
    tools = {m.tool_call_id: m for m in result.thread.messages if m.role == "tool"}
    assert tools["c1"].is_error and "kaboom" in tools["c1"].text
    assert tools["c2"].is_error


def _run_script(code: str) -> tuple[float, str]:
    import subprocess
    import sys
    from pathlib import Path

    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=30, cwd=Path(__file__).parent)
    assert out.returncode == 0, out.stderr
    return time.monotonic() - t0, out.stdout


def test_idle_threads_do_not_hold_up_interpreter_exit() -> None:
    # A thread idles up to 2 s before it ends; at exit it must end at once.
    code = ("import time, allm\n"
            "from scenario_tools import engine, tc\n"
            "allm.chat(engine([[tc('c1', 'get_time', city='x')], [('text', 'ok')]]), 'hi')\n"
            "print(time.monotonic())\n")
    t0 = time.monotonic()
    _, out = _run_script(code)
    exited = time.monotonic()
    assert exited - float(out) < 1.5, exited - float(out)
    assert exited - t0 < 20


def test_interpreter_waits_for_an_abandoned_call_at_exit() -> None:
    # As with the thread pool before: the abandoned call runs to its end.
    code = ("import time, allm\n"
            "from scenario_tools import engine, tc\n"
            "@allm.tool\n"
            "def late() -> str:\n"
            "    time.sleep(0.5)\n"
            "    print('call finished', flush=True)\n"
            "    return 'late'\n"
            "r = allm.chat(engine([[tc('c1', 'late')], [('text', 'ok')]], tools=[late]), 'hi',"
            " tool_timeout=0.05)\n"
            "print('timed out' if r.thread.messages[2].is_error else 'ran', flush=True)\n")
    _, out = _run_script(code)
    assert out.split("\n")[:2] == ["timed out", "call finished"], out


def test_a_late_result_of_an_abandoned_call_is_ignored() -> None:
    # Step 1's call is abandoned at 0.3 s and finishes at 0.45 s, while step 2's
    # call (waiting for it) is running: its late result reaches the driver first
    # and must not be taken for step 2's.
    finished = threading.Event()

    @allm.tool
    def first() -> str:
        time.sleep(0.45)
        finished.set()
        return "first"

    @allm.tool
    def second() -> str:
        finished.wait(5)
        return "second"

    eng = engine([[tc("c1", "first")], [tc("c2", "second")], [("text", "ok")]],
                 tools=[first, second])
    result = allm.chat(eng, "hi", tool_timeout=0.3)
    tools = [m for m in result.thread.messages if m.role == "tool"]
    assert tools[0].is_error and "timed out" in tools[0].text
    assert not tools[1].is_error and tools[1].text == "second"
