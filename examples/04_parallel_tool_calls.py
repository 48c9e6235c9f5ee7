"""Parallel tool calls: two tools requested in one turn run concurrently."""

import time

import _common

import allm

running: dict[str, tuple[float, float]] = {}  # tool -> (start, end)


def timed(name: str, seconds: float) -> None:
    start = time.perf_counter()
    time.sleep(seconds)  # a slow API call
    running[name] = (start, time.perf_counter())


@allm.tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    timed("get_weather", 0.2)
    return f"sunny in {city}"


@allm.tool
def get_time(city: str) -> str:
    """Local time in a city (24h clock)."""
    timed("get_time", 0.2)
    return f"14:05 in {city}"


engine, offline = _common.chat_engine(
    __doc__,
    tools=[get_weather, get_time],
    scripts=[
        [("tool_call", {"id": "c1", "name": "get_weather", "arguments": {"city": "Tokyo"}}),
         ("tool_call", {"id": "c2", "name": "get_time", "arguments": {"city": "Tokyo"}})],
        [("text", "In Tokyo it is 14:05 and sunny.")],
    ],
)

started = time.perf_counter()
result = allm.chat(engine, "What are the weather and the local time in Tokyo? "
                           "Use both tools.")
elapsed = time.perf_counter() - started
print(result.output_text)
tools_run = [m.name for m in result.thread.messages if m.role == "tool"]
print(f"tools run: {tools_run}, halted: {result.halted_reason}, {elapsed:.2f}s")
_common.check(sorted(tools_run) == ["get_time", "get_weather"], "both tools ran once")
if offline:  # asked for in one turn, the two handlers ran at the same time
    (a_start, a_end), (b_start, b_end) = running.values()
    _common.check(a_start < b_end and b_start < a_end, "the tool calls overlapped")
