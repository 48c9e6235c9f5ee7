"""Serializer benchmark: `allm.dumps` / `allm.loads` of a 1,000-message thread with
tool calls (issue 10, target: each under 20 ms and at least 2x faster than
pydantic-ai's message-history adapter on the equivalent history).

    python benchmarks/serializer_bench.py [--messages 1000] [--rounds 30]

When `pydantic_ai` is importable in the same interpreter, its
`ModelMessagesTypeAdapter.dump_json` / `validate_json` are measured on the same
conversation for comparison (run e.g. with a peers virtualenv and
``PYTHONPATH=src``). Medians in milliseconds; runs well under a minute.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import allm
from allm import serializer


def build_thread(n: int) -> allm.Thread:
    msgs: list[allm.Message] = [allm.system("You are a helpful weather assistant.")]
    i = 0
    while len(msgs) < n:
        call = allm.ToolCall(
            id=f"call_{i}",
            name="get_weather",
            arguments={"city": f"city {i}", "unit": "celsius"},
            raw_arguments=json.dumps({"city": f"city {i}", "unit": "celsius"}),
        )
        msgs.append(allm.user(f"What is the weather in city {i}? Please answer briefly."))
        msgs.append(allm.assistant(tool_calls=[call]))
        msgs.append(allm.tool_result(f"call_{i}", {"temp": 21, "sky": "clear"},
                                     name="get_weather"))
        msgs.append(allm.assistant(f"It is 21 degrees and clear in city {i}."))
        i += 1
    return allm.Thread(messages=tuple(msgs[:n]))


def median_ms(fn: Callable[[], Any], rounds: int) -> tuple[float, float]:
    fn()  # warm up (compiles the per-class codecs)
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), min(times)


def pydantic_ai_history(n: int) -> Any:
    from pydantic_ai import messages as pm

    out: list[Any] = [pm.ModelRequest(parts=[pm.SystemPromptPart(
        content="You are a helpful weather assistant.")])]
    i = 0
    while len(out) < n:
        out.append(pm.ModelRequest(parts=[pm.UserPromptPart(
            content=f"What is the weather in city {i}? Please answer briefly.")]))
        out.append(pm.ModelResponse(parts=[pm.ToolCallPart(
            tool_name="get_weather", args={"city": f"city {i}", "unit": "celsius"},
            tool_call_id=f"call_{i}")]))
        out.append(pm.ModelRequest(parts=[pm.ToolReturnPart(
            tool_name="get_weather", content='{"temp": 21, "sky": "clear"}',
            tool_call_id=f"call_{i}")]))
        out.append(pm.ModelResponse(parts=[pm.TextPart(
            content=f"It is 21 degrees and clear in city {i}.")]))
        i += 1
    return out[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args()

    thread: Any = build_thread(args.messages)
    try:  # what issue 10 names: a stored session holding the thread
        from allm.session import Session

        thread = Session(status="idle", thread=thread)
        kind = "Session"
    except ImportError:
        kind = "Thread"
    blob = allm.dumps(thread)
    assert allm.loads(blob) == thread
    rows: list[tuple[str, float, float]] = []
    rows.append(("allm.dumps", *median_ms(lambda: allm.dumps(thread), args.rounds)))
    rows.append(("allm.loads", *median_ms(lambda: allm.loads(blob), args.rounds)))
    rows.append(("allm.to_jsonable", *median_ms(
        lambda: serializer.to_jsonable(thread), args.rounds)))
    obj = json.loads(blob)
    rows.append(("allm.from_jsonable", *median_ms(
        lambda: serializer.from_jsonable(obj), args.rounds)))
    print(f"{kind} of {args.messages} messages, allm JSON {len(blob):,} bytes")
    try:
        from pydantic_ai.messages import ModelMessagesTypeAdapter as ta
    except ImportError:
        print("(pydantic_ai not importable here: peer comparison skipped)")
    else:
        hist = pydantic_ai_history(args.messages)
        pblob = ta.dump_json(hist)
        print(f"pydantic-ai JSON {len(pblob):,} bytes")
        rows.append(("pydantic-ai dump_json", *median_ms(lambda: ta.dump_json(hist), args.rounds)))
        rows.append(("pydantic-ai validate_json", *median_ms(
            lambda: ta.validate_json(pblob), args.rounds)))
    print(f"{'operation':28} {'median ms':>10} {'min ms':>8}")
    for name, med, low in rows:
        print(f"{name:28} {med:10.2f} {low:8.2f}")


if __name__ == "__main__":
    main()
