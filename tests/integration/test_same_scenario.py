"""Same caller code, different engine: one tool-using scenario on real recorded traffic.

The caller functions below (`run_chat`, `run_stream`, `run_session` and their async
twins) never look at which engine they drive. Each is run against a Fake engine and
against OpenAI, Anthropic and Gemini engines replaying a recorded conversation in
which the model makes two or more parallel tool calls and then answers:

- openai/pydantic-ai__test_temporal_agent_with_hitl_tool (Chat Completions, JSON):
  delete_file + create_file in parallel, then the text answer.
- anthropic/pydantic-ai__test_mixed_tools_no_output (JSON): get_weather +
  get_elevation in parallel, then the text answer; and
  anthropic/pydantic-ai__test_multiple_parallel_tool_calls: four parallel
  retrieve_entity_info calls, then the text answer.
- gemini/pydantic-ai__test_google_instructions_only_with_tool_calls (JSON): three
  parallel generate_topic calls, three single ones, then the answer. No recorded Gemini
  conversation has parallel calls followed by a *text* answer: here (as in every
  public Gemini recording with parallel calls) the answer is pydantic-ai's output tool
  `final_result`, which a caller declares manual, so the loop halts with
  ``"manual_tool_calls"`` and the call's arguments are the answer.
- openai/pydantic-ai__test_complex_agent_run (Chat Completions, SSE stream): the same
  shape as the Gemini one over a streamed wire (get_country + get_product_name in
  parallel, get_weather, then `final_result`).
- Fake: the OpenAI and the streamed OpenAI conversations, scripted turn for turn.

Asserted for every engine and caller: the halted reason; the handlers ran with the
recorded arguments, concurrently (each turn's calls wait for each other on a barrier,
and in the event stream every call of a step starts before any completes); every
request allm sent after the first carries the assistant tool calls and the tool
results in the provider's wire shape, equal (parsed JSON) to the recorded request's
conversation; the answer equals the recorded one; usage is summed over all steps.
The Session caller stops after the first model call, stores the session with
`allm.dumps`, loads it and continues on a NEW engine instance.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest

import allm
from allm.collector import StreamCollector
from allm.engine import Engine
from allm.events import (
    ChatCompleted,
    Event,
    StepCompleted,
    TextDelta,
    ToolExecutionCompleted,
    ToolExecutionStarted,
)
from allm.messages import Message, Thread
from allm.results import ChatResult
from allm.tool import Tool

from ._recordings import (
    KEYS,
    Anthropic,
    Conversation,
    Gemini,
    OpenAIChat,
    Replay,
    as_fake,
    conversation,
)

OPENAI = conversation("openai", OpenAIChat("gpt-4o"),
                      "pydantic-ai__test_temporal_agent_with_hitl_tool.json")
OPENAI_STREAM = conversation("openai-stream", OpenAIChat("gpt-4o"),
                             "pydantic-ai__test_complex_agent_run.json")
CONVERSATIONS = [
    as_fake(OPENAI, "fake"),
    OPENAI,
    conversation("anthropic", Anthropic("claude-sonnet-4-5"),
                 "pydantic-ai__test_mixed_tools_no_output.json"),
    conversation("anthropic-4", Anthropic("claude-haiku-4-5"),
                 "pydantic-ai__test_multiple_parallel_tool_calls.json"),
    conversation("gemini", Gemini("gemini-3-flash-preview"),
                 "pydantic-ai__test_google_instructions_only_with_tool_calls.json"),
    as_fake(OPENAI_STREAM, "fake-stream"),
    OPENAI_STREAM,
]


@pytest.fixture(autouse=True)
def _keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)


@pytest.fixture(params=CONVERSATIONS, ids=[c.label for c in CONVERSATIONS])
def conv(request: pytest.FixtureRequest) -> Conversation:
    value: Conversation = request.param
    return value


# ------------------------------------------------------------------ the caller's code
# Everything a caller decides is in these functions; `options` is what the caller
# would write for its use case (the recorded tool_choice and wire mode).

def run_chat(engine: Engine, prompt: Sequence[Message], tools: list[Tool],
             **options: Any) -> ChatResult:
    return allm.chat(engine, list(prompt), tools=tools, **options)


async def arun_chat(engine: Engine, prompt: Sequence[Message], tools: list[Tool],
                    **options: Any) -> ChatResult:
    return await allm.achat(engine, list(prompt), tools=tools, **options)


def run_stream(engine: Engine, prompt: Sequence[Message], tools: list[Tool],
               **options: Any) -> tuple[ChatResult, list[Event]]:
    events = list(allm.stream(engine, list(prompt), tools=tools, **options))
    final = events[-1]
    assert isinstance(final, ChatCompleted)
    return final.result, events


async def arun_stream(engine: Engine, prompt: Sequence[Message], tools: list[Tool],
                      **options: Any) -> tuple[ChatResult, list[Event]]:
    events = [e async for e in allm.astream(engine, list(prompt), tools=tools, **options)]
    final = events[-1]
    assert isinstance(final, ChatCompleted)
    return final.result, events


def run_session(engines: Iterator[Engine], prompt: Sequence[Message], tools: list[Tool],
                **options: Any) -> tuple[allm.Session, ChatResult, str]:
    """First model call (and its tools) in one engine, stored, resumed on another."""
    session, first = allm.Session.start(next(engines), list(prompt), tools=tools,
                                        max_turns=1, **options)
    assert first.halted_reason == "max_turns" and session.messages[-1].role == "tool"
    blob = allm.dumps(session)
    session, result = allm.loads(blob).continue_(next(engines), tools=tools, **options)
    return session, result, blob


async def arun_session(engines: Iterator[Engine], prompt: Sequence[Message],
                       tools: list[Tool], **options: Any
                       ) -> tuple[allm.Session, ChatResult, str]:
    session, first = await allm.Session.astart(next(engines), list(prompt), tools=tools,
                                               max_turns=1, **options)
    assert first.halted_reason == "max_turns" and session.messages[-1].role == "tool"
    blob = allm.dumps(session)
    session, result = await allm.loads(blob).acontinue(next(engines), tools=tools,
                                                       **options)
    return session, result, blob


# --------------------------------------------------------------------------- checks
def options(conv: Conversation) -> dict[str, Any]:
    return {"tool_choice": conv.tool_choice, "stream": conv.stream}


def engines(replay: Replay) -> Iterator[Engine]:
    while True:
        yield replay.engine()


def check_answer(conv: Conversation, result: ChatResult) -> None:
    assert result.halted_reason == conv.halted_reason, result.metadata
    kind, answer = conv.answer
    if kind == "text":
        assert result.output_text == answer
    else:
        [pending] = result.pending_tool_calls
        assert (pending.name, pending.arguments) == answer


def check_replay(conv: Conversation, replay: Replay) -> None:
    """Every recorded response was served; the tools ran with the recorded
    arguments; each request carried the recorded conversation."""
    assert replay.served == len(conv.exchanges)
    ran = sorted(replay.ran)
    expected = sorted((k, i, name, args) for k, turn in enumerate(conv.turns)
                      for i, (name, args) in enumerate(turn.calls)
                      if k < len(conv.turns) - 1)
    assert ran == expected
    sent, recorded = replay.histories(), replay.expected_histories()
    assert len(sent) == len(recorded)
    for k, (ours, theirs) in enumerate(zip(sent, recorded, strict=True)):
        assert ours == theirs, f"turn {k + 1} request differs"
    for body in replay.sent:
        conv.wire.check_ids(body)


def check_usage(conv: Conversation, result: ChatResult) -> None:
    assert (result.usage.input_tokens, result.usage.output_tokens) == conv.usage
    assert [(s.response.usage.input_tokens, s.response.usage.output_tokens)
            for s in result.steps] == [(t.input_tokens, t.output_tokens) for t in conv.turns]


def check_events(conv: Conversation, events: list[Event]) -> None:
    """Per step: every tool execution started before any completed (concurrent)."""
    steps: list[list[Event]] = [[]]
    for event in events:
        steps[-1].append(event)
        if isinstance(event, StepCompleted):
            steps.append([])
    assert len(steps) == len(conv.turns) + 1  # the last chunk holds ChatCompleted
    for step, turn in zip(steps, conv.turns[:-1], strict=False):
        started = [i for i, e in enumerate(step) if isinstance(e, ToolExecutionStarted)]
        completed = [i for i, e in enumerate(step) if isinstance(e, ToolExecutionCompleted)]
        assert len(started) == len(completed) == len(turn.calls)
        assert not any(e.is_error for e in step if isinstance(e, ToolExecutionCompleted))
        assert max(started) < min(completed)
    # The step events alone fold (StreamCollector) into what ChatCompleted carries.
    final = events[-1]
    assert isinstance(final, ChatCompleted)
    folded = StreamCollector(Thread(messages=tuple(conv.prompt))).collect(events[:-1])
    partial = folded.to_chat_result()
    assert partial.usage == final.result.usage
    assert partial.thread == final.result.thread
    assert [s.response.output_text for s in partial.steps] == [
        s.response.output_text for s in final.result.steps]
    if conv.stream:  # streamed text arrives as deltas that add up to the answer
        deltas = "".join(e.delta for e in events if isinstance(e, TextDelta))
        assert deltas == "".join(t.text for t in conv.turns)


# ---------------------------------------------------------------------------- tests
def test_chat(conv: Conversation) -> None:
    replay = Replay(conv)
    result = run_chat(replay.engine(), conv.prompt, replay.tools(), **options(conv))
    check_answer(conv, result)
    check_usage(conv, result)
    check_replay(conv, replay)


@pytest.mark.anyio
async def test_achat(conv: Conversation) -> None:
    replay = Replay(conv)
    result = await arun_chat(replay.engine(), conv.prompt, replay.tools(), **options(conv))
    check_answer(conv, result)
    check_usage(conv, result)
    check_replay(conv, replay)


def test_stream(conv: Conversation) -> None:
    replay = Replay(conv)
    result, events = run_stream(replay.engine(), conv.prompt, replay.tools(),
                                **options(conv))
    check_answer(conv, result)
    check_usage(conv, result)
    check_events(conv, events)
    check_replay(conv, replay)


@pytest.mark.anyio
async def test_astream(conv: Conversation) -> None:
    replay = Replay(conv)
    result, events = await arun_stream(replay.engine(), conv.prompt, replay.tools(),
                                       **options(conv))
    check_answer(conv, result)
    check_usage(conv, result)
    check_events(conv, events)
    check_replay(conv, replay)


def check_session(conv: Conversation, replay: Replay, session: allm.Session,
                  result: ChatResult, blob: str) -> None:
    check_answer(conv, result)
    assert (session.usage.input_tokens, session.usage.output_tokens) == conv.usage
    assert session.status == ("completed" if conv.answer[0] == "text" else "awaiting_tools")
    assert not any(key in blob for key in KEYS.values())
    check_replay(conv, replay)
    # the first engine made the first model call only; the new one made the rest
    assert replay.per_engine == [1, len(conv.exchanges) - 1]


def test_session_resumed_on_a_new_engine(conv: Conversation) -> None:
    replay = Replay(conv)
    session, result, blob = run_session(engines(replay), conv.prompt, replay.tools(),
                                        **options(conv))
    check_session(conv, replay, session, result, blob)


@pytest.mark.anyio
async def test_asession_resumed_on_a_new_engine(conv: Conversation) -> None:
    replay = Replay(conv)
    session, result, blob = await arun_session(engines(replay), conv.prompt,
                                               replay.tools(), **options(conv))
    check_session(conv, replay, session, result, blob)
