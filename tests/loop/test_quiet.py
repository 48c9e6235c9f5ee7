"""Untraced `chat` / `achat` run the loop "quiet" (the tool-step events nobody sees are
not built): their results must equal the streamed loop's `ChatCompleted` result."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from scenario_tools import engine, tc
from test_parity import SCENARIOS, run_async, run_sync, summary

import allm
from allm import events as ev


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_quiet_chat_equals_stream(name: str) -> None:
    scripts, opts, _ = SCENARIOS[name]
    final = run_sync(scripts, opts)[-1]
    afinal = run_async(scripts, opts)[-1]
    assert isinstance(final, ev.ChatCompleted) and isinstance(afinal, ev.ChatCompleted)
    result = allm.chat(engine(scripts), [allm.user("hi")], **opts)
    assert summary(ev.ChatCompleted(result=result)) == summary(final)

    async def main() -> allm.ChatResult:
        return await allm.achat(engine(scripts), [allm.user("hi")], **opts)

    aresult = anyio.run(main)
    assert summary(ev.ChatCompleted(result=aresult)) == summary(afinal)
    assert [len(s.tool_results) for s in result.steps] == [
        len(s.tool_results) for s in final.result.steps]


RAW_SCRIPTS: list[list[Any]] = [
    [("raw_chunk", {"x": 1}), ("text", "Checking."), tc("c1", "get_time", city="Oslo"),
     ("raw_chunk", allm.Usage(input_tokens=7, output_tokens=2))],
    [("raw_chunk", {"y": 2}), ("text", "Done."), ("usage", {"input_tokens": 3})],
]


def _full(result: allm.ChatResult) -> tuple[Any, ...]:
    return (summary(ev.ChatCompleted(result=result)),
            [(s.response.output_text, s.response.usage, s.response.finish_reason,
              s.response.request_id) for s in result.steps], result.usage)


@pytest.mark.parametrize("opts", [{}, {"include_raw_chunks": True}, {"on_event": "list"}])
def test_direct_fold_equals_the_filtered_stream(opts: dict[str, Any], monkeypatch: Any) -> None:
    # A quiet chat with default filters and no on_event folds the adapter's events
    # without `model_events`' filter layer; the result must not change.
    from allm import drivers

    filtered: list[int] = []
    real = drivers.model_events

    def counting(*a: Any, **k: Any) -> Any:
        filtered.append(1)
        return real(*a, **k)

    monkeypatch.setattr(drivers, "model_events", counting)
    seen: list[Any] = []
    if opts.get("on_event") == "list":
        opts = {"on_event": seen.append}
    result = allm.chat(engine(RAW_SCRIPTS), "hi", request_id="rid", **opts)
    streamed = [e for e in allm.stream(engine(RAW_SCRIPTS), "hi", request_id="rid", **opts)
                if isinstance(e, ev.ChatCompleted)][-1].result
    assert _full(result) == _full(streamed)
    assert result.usage.input_tokens == 10
    direct = not opts
    # the streamed run always goes through `model_events` (2 calls)
    assert len(filtered) == (2 if direct else 4)
    if "on_event" in opts:  # on_event sees the same events either way
        half = len(seen) // 2
        assert [type(e) for e in seen[:half]] == [type(e) for e in seen[half:]]
        assert not any(isinstance(e, ev.RawChunk) and e.usage is None for e in seen)

    async def main() -> allm.ChatResult:
        return await allm.achat(engine(RAW_SCRIPTS), "hi", request_id="rid", **opts)

    assert _full(anyio.run(main)) == _full(streamed)
