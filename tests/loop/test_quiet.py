"""Untraced `chat` / `achat` run the loop "quiet" (the tool-step events nobody sees are
not built): their results must equal the streamed loop's `ChatCompleted` result."""

from __future__ import annotations

import anyio
import pytest
from scenario_tools import engine
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
