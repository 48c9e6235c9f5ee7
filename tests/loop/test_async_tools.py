"""The async driver's quick tool path: a handler's first slice runs before any cancel
scope; one that suspends resumes under `move_on_after` for the rest of its timeout.
Results must equal the traced path's (which always enters the scope first)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Generator
from typing import Any

import anyio
import pytest
from scenario_tools import engine, tc

import allm
from allm import telemetry
from allm.tools import ToolExecutor


def _tool_messages(result: allm.ChatResult) -> list[tuple[str | None, str, bool]]:
    return [(m.tool_call_id, m.text, m.is_error) for m in result.thread.messages
            if m.role == "tool"]


@allm.tool
async def instant(x: int) -> int:
    """Returns without awaiting."""
    return x * 2


@allm.tool
async def hops(x: int) -> int:
    """Suspends a few times."""
    for _ in range(3):
        await anyio.sleep(0)
    await asyncio.sleep(0.001)
    return x + 1


@allm.tool
async def fails_early() -> int:
    """Raises before any await."""
    raise ValueError("early")


@allm.tool
async def fails_late() -> int:
    """Raises after an await."""
    await anyio.sleep(0)
    raise ValueError("late")


@allm.tool
async def blocks_then_waits() -> str:
    """Spends its time budget before its first await."""
    time.sleep(0.15)
    await anyio.sleep(0.3)
    return "late"


@allm.tool
async def blocks_only() -> str:
    """Overruns its timeout without ever awaiting (nothing can interrupt it)."""
    time.sleep(0.1)
    return "done"


TOOLS = [instant, hops, fails_early, fails_late, blocks_then_waits, blocks_only]
SCRIPTS = [[tc("a", "instant", x=2), tc("b", "hops", x=2)],
           [tc("c", "fails_early"), tc("d", "fails_late")],
           [tc("e", "blocks_only")],
           [("text", "ok")]]


def _achat(**opts: Any) -> allm.ChatResult:
    async def main() -> allm.ChatResult:
        return await allm.achat(engine(SCRIPTS, tools=TOOLS), "hi", **opts)
    return anyio.run(main)


def test_quick_path_results() -> None:
    result = _achat(tool_timeout=0.05)
    msgs = dict((i, (t, e)) for i, t, e in _tool_messages(result))
    assert msgs["a"] == ("4", False)
    assert msgs["b"] == ("3", False)
    assert msgs["c"][1] and "early" in msgs["c"][0]
    assert msgs["d"][1] and "late" in msgs["d"][0]
    # never suspended: its value stands even though it overran (as before)
    assert msgs["e"] == ("done", False)


def test_quick_path_equals_traced_path() -> None:
    quick = _achat(tool_timeout=0.05)
    handle = telemetry.attach(lambda *a: None)
    try:
        assert telemetry.active()
        traced = _achat(tool_timeout=0.05)
    finally:
        telemetry.detach(handle)
    assert _tool_messages(quick) == _tool_messages(traced)


def test_timeout_counts_from_the_call_start() -> None:
    async def main() -> allm.ChatResult:
        eng = engine([[tc("c1", "blocks_then_waits")], [("text", "ok")]], tools=TOOLS)
        return await allm.achat(eng, "hi", tool_timeout=0.2)

    t0 = time.monotonic()
    result = anyio.run(main)
    # 0.15 s spent before the first await leaves ~0.05 s of its 0.2 s
    assert time.monotonic() - t0 < 0.35
    (_, text, is_error), = _tool_messages(result)
    assert is_error and "timed out after 0.2 s" in text


@pytest.mark.parametrize("kind", ["future", "awaitable"])
def test_custom_executor_returning_a_non_coroutine(kind: str) -> None:
    class Odd(ToolExecutor):
        def aexecute(self, tool: Any, arguments: Any, context: Any) -> Any:  # type: ignore[override]
            if kind == "future":
                fut = asyncio.get_running_loop().create_future()
                fut.set_result("from a future")
                return fut

            class Awaitable:
                def __await__(self) -> Generator[Any, Any, str]:
                    yield from asyncio.sleep(0).__await__()
                    return "from an awaitable"
            return Awaitable()

    async def main() -> allm.ChatResult:
        eng = engine([[tc("c1", "instant", x=1)], [("text", "ok")]], tools=TOOLS,
                     tool_executor=Odd())
        return await allm.achat(eng, "hi")

    (_, text, is_error), = _tool_messages(anyio.run(main))
    assert not is_error and text.startswith("from a")


def test_outer_cancellation_reaches_a_resumed_tool() -> None:
    state: dict[str, Any] = {}

    @allm.tool
    async def waits() -> str:
        await anyio.sleep(0)
        try:
            await anyio.sleep(5)
        except BaseException as exc:
            state["exc"] = type(exc).__name__
            raise
        return "never"

    async def main() -> None:
        eng = engine([[tc("c1", "waits")], [("text", "ok")]], tools=[waits])
        with anyio.move_on_after(0.1):
            await allm.achat(eng, "hi")

    t0 = time.monotonic()
    anyio.run(main)
    assert time.monotonic() - t0 < 2
    assert state["exc"] == "CancelledError"
