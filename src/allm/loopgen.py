"""The chat loop, written once, as a generator of commands (sans-IO).

Owns every decision of `step` / `chat` and their streaming and async twins: building
each step's request, folding the model's events, planning and settling tool calls,
the ordered halting rules, structured output and the two-pass structured finalize.
It does no I/O: it yields commands and receives their results, like httpx's
``auth_flow``. `allm.drivers` runs it (sync: a thread pool for tools; async: an anyio
task group); `allm.loop` is the public surface.

Commands and what the driver sends back:

- `Emit(event)`: hand the event to the consumer; sends None.
- `OpenModel(request, call, filters, direct)`: start the adapter's stream (pre-flight
  errors are thrown back in); sends None.
- `Pump(accept)`: run the open stream to its end, handing each event to `accept`
  (the loop's fold) and yielding the ones it keeps; sends None (an exception the
  adapter raised mid-stream is thrown back in).
- `RunTools(jobs)`: start every job concurrently; sends the first finished job as
  ``(index, value, exception)`` (one round trip less than a `NEXT_TOOL` after it).
- `NEXT_TOOL`: the next finished job, likewise, in completion order.

Rules (reference §5, with the deviations noted in `allm.loop`):

- One adapter call per step. A failed model call leaves the thread as it was before
  the step (no partial assistant message is kept).
- Tool messages go into the thread in the calls' order; tool events come in
  completion order. The first halt (ask-user, halt, on_tool_error="halt") in
  completion order wins, like the original's streaming path and the collector.
- Every call the model made gets a tool message before the model is called again,
  except the ones a caller must answer (the pending ask-user call, manual calls).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ._loopstate import LoopState
from .collector import StreamCollector
from .errors import AllmError, ToolError, ValidationError
from .events import (
    AskUserRequested,
    ChatCompleted,
    ErrorEvent,
    Event,
    RawChunk,
    StepCompleted,
    TextDelta,
    ToolCallDelta,
    ToolExecutionCompleted,
    ToolExecutionStarted,
    ToolHalt,
    ToolResultEncoded,
)
from .facade import StreamFilters, finish_response
from .messages import Message, Thread, ToolCall, assistant, tool_result, user
from .request import Request, Response, Usage
from .results import ChatResult, StepResult
from .tool import Tool
from .tools import ToolContext, ToolExecutor, ToolOutcome, ToolResultEncoder, json_safe, settle

__all__ = [
    "LoopConfig",
    "Emit",
    "OpenModel",
    "RunTools",
    "Job",
    "Pump",
    "NEXT_TOOL",
    "chat_flow",
    "step_flow",
    "LoopState",
]

_FILTERS = StreamFilters()
_RAW_FILTERS = StreamFilters(include_raw_chunks=True)

NOT_RUN = "not run: the loop halted before this call ran"
NOT_ASKED = "not asked: another question is pending; call this tool again if still needed"


# -- commands ---------------------------------------------------------------------------
# Not frozen: a frozen dataclass pays an `object.__setattr__` per field, and the loop
# builds several commands per step; nobody but the driver ever sees them.


@dataclass(slots=True)
class Emit:
    event: Event


@dataclass(slots=True)
class OpenModel:
    request: Request
    call: Any
    filters: Any
    # Only the fold reads the events (a quiet run, default filters, no ``on_event``):
    # the driver may fold the adapter's own iterator, without the filter layer of
    # `model_events` (which then only drops usage-less `RawChunk`s, ignored by the
    # collector anyway; `facade.generate` does the same).
    direct: bool = False


@dataclass(slots=True)
class Job:
    index: int
    tool: Tool
    call: ToolCall
    context: ToolContext


@dataclass(slots=True)
class RunTools:
    jobs: tuple[Job, ...]
    executor: Any
    timeout: float | None
    max_concurrency: int


@dataclass(slots=True)
class Pump:
    """Run the open model stream to its end, yielding each event `accept` keeps.
    A driver that emits nothing (``emit=False``) may call `fold` instead: the same
    bookkeeping without the keep decision (one call less per event)."""

    accept: Callable[[Event], bool]
    fold: Callable[[Event], Any]


class _Next:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NEXT_TOOL = _Next("NEXT_TOOL")

Flow = Generator[Any, Any, Any]


# -- configuration ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class LoopConfig:
    """Everything the loop needs, resolved and validated by `allm.loop`."""

    engine: Any
    model_opts: Mapping[str, Any]
    tools: tuple[Tool, ...]
    mode: str = "auto"
    max_turns: int = 8
    on_tool_error: Any = "continue"
    halt_when: Callable[[StepResult], bool] | None = None
    executor: Any = field(default_factory=ToolExecutor)
    encoder: Any = field(default_factory=ToolResultEncoder)
    tool_timeout: float | None = 30.0
    max_concurrency: int = 32
    max_tool_calls_per_step: int = 64
    context: Any = None
    session_id: str | None = None
    request_id: str | None = None
    response_format: Any = None
    output_type: Any = None
    structured_finalize: bool = False
    structured_finalize_nudge: str = "Now provide your final structured response."
    emit_text_deltas: bool = True
    emit_tool_deltas: bool = True
    include_raw_chunks: bool = False
    on_event: Callable[[Event], Any] | None = None
    # Nobody sees the loop's own events (untraced `chat` / `achat`, whose driver drops
    # every `Emit`): the per-tool events are then not built (issue 10, chat target).
    quiet: bool = False

    @property
    def tools_by_name(self) -> dict[str, Tool]:
        return {t.name: t for t in self.tools}


def _keep(cfg: LoopConfig, event: Any) -> bool:
    cls = type(event)
    if cls is TextDelta:
        return cfg.emit_text_deltas
    if cls is ToolCallDelta:
        return cfg.emit_tool_deltas
    if cls is RawChunk:
        return cfg.include_raw_chunks or event.usage is not None
    return True


# -- one step ---------------------------------------------------------------------------


@dataclass(slots=True)
class _StepOut:
    result: StepResult | None
    error: AllmError | None = None  # a pre-flight failure: no step happened


def step_flow(
    cfg: LoopConfig, thread: Thread, *, first: bool, response_format: Any = None,
    tool_choice: Any = None, state: LoopState | None = None,
) -> Flow:
    """One step: one model call, then (auto mode) its tool calls. Returns `_StepOut`."""
    if state is None:
        state = LoopState(cfg)
    try:
        request, call = state.build(cfg, thread, response_format, tool_choice)
        yield OpenModel(request, call,
                        _RAW_FILTERS if cfg.include_raw_chunks else _FILTERS,
                        cfg.quiet and not cfg.include_raw_chunks and cfg.on_event is None)
    except AllmError as exc:
        if first:
            raise
        yield Emit(ErrorEvent(error=exc))
        return _StepOut(None, exc)

    collector = StreamCollector()
    apply = collector.apply
    on_event = cfg.on_event
    keep_all = cfg.emit_text_deltas and cfg.emit_tool_deltas and on_event is None

    def accept(event: Any) -> bool:
        # Called by the driver for every adapter event, with no generator round trip
        # per event: this is the streaming hot path.
        apply(event)
        if keep_all and type(event) is not RawChunk:
            return True
        if on_event is not None:
            on_event(event)
        return _keep(cfg, event)

    def fold(event: Any) -> None:
        apply(event)
        if on_event is not None:
            on_event(event)

    try:
        yield Pump(accept, apply if on_event is None else fold)
    except AllmError as exc:  # an adapter that raised mid-stream instead of emitting
        error_event = ErrorEvent(error=exc)
        apply(error_event)
        yield Emit(error_event)
    response = finish_response(collector, request, call, raise_error=False,
                               provider=getattr(cfg.engine, "provider", None))

    if response.finish_reason == "error" or collector.error is not None:
        error = collector.error or response.metadata.get("error")
        result = StepResult(thread=thread, response=response, done=True,
                            mode=cfg.mode, metadata={"error": error})
        yield Emit(StepCompleted(response=response, thread=thread, mode=cfg.mode))
        return _StepOut(result)

    message = _assistant_message(response)
    calls = message.tool_calls
    if not calls:
        thread = _extended(thread, (message,))
        result = StepResult(thread=thread, response=response,
                            done=response.finish_reason != "pause", mode=cfg.mode)
        if not cfg.quiet:
            yield Emit(StepCompleted(response=response, thread=thread, mode=cfg.mode))
        return _StepOut(result)
    if cfg.mode == "manual":
        thread = _extended(thread, (message,))
        result = StepResult(thread=thread, response=response, mode="manual",
                            manual_tool_calls=calls)
        yield Emit(StepCompleted(response=response, thread=thread, mode="manual",
                                 manual_tool_calls=calls))
        return _StepOut(result)
    # The thread is grown once, with the assistant message and the tool results.
    result = yield from _tools_flow(cfg, thread, message, response, calls, call.request_id,
                                   state.by_name)
    return _StepOut(result)


def _extended(thread: Thread, messages: tuple[Message, ...]) -> Thread:
    """`thread.add_messages(messages)`; for a plain `Thread` without
    `dataclasses.replace` (~3x the cost of the constructor; same fields)."""
    if type(thread) is Thread:
        return Thread(messages=thread.messages + messages, metadata=thread.metadata)
    return thread.add_messages(messages)


def _assistant_message(response: Response) -> Message:
    message = response.message
    if message is None:
        return assistant(response.output_text, tool_calls=response.tool_calls)
    if message.tool_calls != response.tool_calls:
        message = replace(message, tool_calls=response.tool_calls)
    return message


def _tools_flow(
    cfg: LoopConfig, thread: Thread, message: Message, response: Response,
    calls: tuple[ToolCall, ...], request_id: str | None, by_name: dict[str, Tool],
) -> Flow:
    """Auto mode: run the step's tool calls; `thread` is the thread before the
    assistant `message` that made them."""
    manual: list[ToolCall] = []
    jobs: list[Job] = []
    immediate: list[tuple[int, ToolError]] = []
    for index, tc in enumerate(calls):
        tool = by_name.get(tc.name)
        if index >= cfg.max_tool_calls_per_step:
            immediate.append((index, ToolError(
                "too_many_tool_calls",
                f"not run: at most {cfg.max_tool_calls_per_step} tool calls per step",
                tool_name=tc.name, tool_call_id=tc.id)))
        elif tool is None:
            known = ", ".join(sorted(by_name)) or "none"
            immediate.append((index, ToolError(
                "not_found", f"unknown tool {tc.name!r}; available tools: {known}",
                tool_name=tc.name, tool_call_id=tc.id)))
        elif tool.manual:
            manual.append(tc)
        elif tc.metadata.get("invalid_arguments"):
            immediate.append((index, ToolError(
                "invalid_arguments",
                f"invalid arguments: not a JSON object: {(tc.raw_arguments or '')[:500]}",
                tool_name=tc.name, tool_call_id=tc.id)))
        else:
            ctx = ToolContext(context=cfg.context, tool_call=tc, engine=cfg.engine,
                              session_id=cfg.session_id, request_id=request_id)
            jobs.append(Job(index, tool, tc, ctx))

    quiet = cfg.quiet
    if not quiet:
        for index in sorted([j.index for j in jobs] + [i for i, _ in immediate]):
            tc = calls[index]
            yield Emit(ToolExecutionStarted(id=tc.id, name=tc.name, arguments=tc.arguments))

    outcomes: dict[int, ToolOutcome] = {}
    winner: ToolOutcome | None = None

    def record(index: int, outcome: ToolOutcome) -> Event | None:
        """Keep `outcome`; the ask-user / halt event when it is the winner, else None
        (its `ToolResultEncoded` is `encoded(outcomes[index])`: built only when
        someone sees it)."""
        nonlocal winner
        tc = outcome.call
        if outcome.kind == "ask_user" and winner is None:
            # The winner's handler values go into events and results: JSON-safe, once.
            options = json_safe(outcome.options)
            if options is not outcome.options:
                outcome = replace(outcome, options=options)
            winner = outcome
            outcomes[index] = outcome
            return AskUserRequested(tool_call_id=tc.id, tool_name=tc.name,
                                    question=outcome.question or "",
                                    options=dict(outcome.options))
        if outcome.kind == "ask_user":
            content = cfg.encoder.encode_error(ToolError("tool_error", NOT_ASKED))
            outcome = replace(outcome, kind="error", content=content, is_error=True)
        elif outcome.kind == "halt" and winner is None:
            halt_result = json_safe(outcome.halt_result)
            if halt_result is not outcome.halt_result:
                outcome = replace(outcome, halt_result=halt_result)
            winner = outcome
            outcomes[index] = outcome
            return ToolHalt(tool_call_id=tc.id, reason=outcome.halt_reason or "tool_error",
                            result=outcome.error if outcome.halt_reason == "tool_error"
                            else outcome.halt_result,
                            content=outcome.content)
        outcomes[index] = outcome
        return None

    def encoded(outcome: ToolOutcome) -> Event:
        return ToolResultEncoded(id=outcome.call.id, content=outcome.content or "",
                                 is_error=outcome.is_error)

    def completed(outcome: ToolOutcome) -> Event:
        tc = outcome.call
        value = outcome.error if outcome.is_error and outcome.error is not None \
            else json_safe(outcome.raw)
        return ToolExecutionCompleted(id=tc.id, name=tc.name, result=value,
                                      is_error=outcome.is_error)

    for index, error in immediate:
        outcome = settle(calls[index], exc=error, encoder=cfg.encoder,
                         on_tool_error=cfg.on_tool_error)
        if quiet:
            record(index, outcome)
            continue
        yield Emit(completed(outcome))
        event = record(index, outcome)
        yield Emit(event if event is not None else encoded(outcomes[index]))

    if jobs:
        timeout = cfg.tool_timeout
        first = yield RunTools(tuple(jobs), cfg.executor, timeout, cfg.max_concurrency)
        for n in range(len(jobs)):
            index, value, exc = first if n == 0 else (yield NEXT_TOOL)
            outcome = settle(calls[index], raw=value, exc=exc, encoder=cfg.encoder,
                             on_tool_error=cfg.on_tool_error)
            if quiet:
                record(index, outcome)
                continue
            yield Emit(completed(outcome))
            event = record(index, outcome)
            yield Emit(event if event is not None else encoded(outcomes[index]))

    # Thread: one tool message per call in the model's order, except the pending ones.
    messages: list[Message] = []
    manual_ids = {tc.id for tc in manual}
    for index, tc in enumerate(calls):
        if tc.id in manual_ids:
            if winner is None:
                continue  # the caller submits it
            content = cfg.encoder.encode_error(ToolError("tool_error", NOT_RUN))
            if not quiet:
                yield Emit(ToolResultEncoded(id=tc.id, content=content, is_error=True))
            messages.append(tool_result(tc.id, content, name=tc.name, is_error=True))
            continue
        outcome = outcomes[index]
        if outcome is winner and outcome.kind == "ask_user":
            continue  # answered by the user (Session.reply / a tool_result message)
        messages.append(tool_result(tc.id, outcome.content or "", name=tc.name,
                                    is_error=outcome.is_error))
    thread = _extended(thread, (message, *messages))

    metadata: dict[str, Any] = {}
    pending_manual: tuple[ToolCall, ...] = ()
    if winner is not None:
        metadata.update(_halt_metadata(winner))
    else:
        pending_manual = tuple(manual)
    result = StepResult(thread=thread, response=response, tool_results=tuple(messages),
                        done=winner is not None, mode=cfg.mode,
                        manual_tool_calls=pending_manual, metadata=metadata)
    if not quiet:
        yield Emit(StepCompleted(response=response, thread=thread, mode=cfg.mode,
                                 manual_tool_calls=pending_manual))
    return result


def _halt_metadata(winner: ToolOutcome) -> dict[str, Any]:
    tc = winner.call
    if winner.kind == "ask_user":
        return {"halted_reason": "ask_user", "pending_question": winner.question,
                "pending_tool_call_id": tc.id, "ask_user_options": dict(winner.options)}
    if winner.halt_reason == "tool_error":
        meta: dict[str, Any] = {"halted_reason": "tool_error", "halt_tool_call_id": tc.id,
                                "error": winner.error}
        if "on_tool_error_exception" in winner.metadata:
            meta["on_tool_error_exception"] = winner.metadata["on_tool_error_exception"]
        return meta
    return {"halted_reason": winner.halt_reason, "halt_tool_call_id": tc.id,
            "halt_result": winner.halt_result}


# -- the loop ---------------------------------------------------------------------------


def chat_flow(cfg: LoopConfig, thread: Thread) -> Flow:
    """The whole loop; emits `ChatCompleted` last and returns the `ChatResult`."""
    if cfg.structured_finalize and cfg.response_format is not None:
        result = yield from _two_pass(cfg, thread)
    else:
        result = yield from _loop(cfg, thread, response_format=cfg.response_format)
    result = _with_output(cfg, result)
    yield Emit(ChatCompleted(result=result))
    return result


def _loop(
    cfg: LoopConfig, thread: Thread, *, response_format: Any, first: bool = True,
    max_turns: int | None = None, tool_choice: Any = None,
) -> Flow:
    turns = cfg.max_turns if max_turns is None else max_turns
    steps: list[StepResult] = []
    state = LoopState(cfg)
    for index in range(turns):
        out = yield from step_flow(cfg, thread, first=first and index == 0,
                                   response_format=response_format, tool_choice=tool_choice,
                                   state=state)
        if out.result is None:  # a later step's pre-flight failed: keep what we have
            return _result(thread, steps, "error", {"error": out.error})
        step = out.result
        steps.append(step)
        thread = step.thread
        reason, meta = _verdict(cfg, step, index, turns)
        if reason is not None:
            return _result(thread, steps, reason, meta)
    return _result(thread, steps, "max_turns", {"max_turns": turns})  # pragma: no cover


def _verdict(
    cfg: LoopConfig, step: StepResult, index: int, turns: int,
) -> tuple[str | None, dict[str, Any]]:
    """The ordered halting rules (reference §5.3): first match wins."""
    meta = step.metadata
    halted = meta.get("halted_reason")
    if halted == "ask_user":
        return "ask_user", {k: meta[k] for k in ("pending_question", "pending_tool_call_id",
                                                  "ask_user_options")}
    if halted is not None:
        return str(halted), {k: v for k, v in meta.items() if k != "halted_reason"}
    if step.manual_tool_calls:
        return "manual_tool_calls", {"manual_turn_index": index}
    if "error" in meta:
        return "error", {"error": meta["error"]}
    if step.done:
        return "completed", {}
    if cfg.halt_when is not None and cfg.halt_when(step):
        return "halt_when", {"halt_when_step_index": index}
    if index + 1 >= turns:
        return "max_turns", {"max_turns": turns}
    return None, {}


def _result(thread: Thread, steps: list[StepResult], reason: str,
            meta: dict[str, Any]) -> ChatResult:
    usage = Usage()
    for s in steps:
        usage = usage + s.response.usage
    pending_calls: tuple[ToolCall, ...] = ()
    if reason == "manual_tool_calls" and steps:
        pending_calls = steps[-1].manual_tool_calls
    return ChatResult(
        thread=thread,
        final_response=steps[-1].response if steps else None,
        steps=tuple(steps),
        halted_reason=reason,
        pending_question=meta.get("pending_question") if reason == "ask_user" else None,
        pending_tool_call_id=meta.get("pending_tool_call_id") if reason == "ask_user"
        else None,
        pending_tool_calls=pending_calls,
        usage=usage,
        metadata=meta,
    )


def _two_pass(cfg: LoopConfig, thread: Thread) -> Flow:
    """Structured finalize: the tool loop without `response_format`, then one call
    with it. Unlike the original, pass 2 keeps the tools declared (some providers
    reject a thread with tool calls but no tools) and sets ``tool_choice="none"``."""
    first = yield from _loop(cfg, thread, response_format=None)
    if first.halted_reason not in ("completed", "max_turns", "halt_when"):
        return replace(first, metadata={**first.metadata,
                                        "structured_finalize": {"pass_1_halted":
                                                                first.halted_reason}})
    thread = first.thread
    if cfg.structured_finalize_nudge:
        thread = thread.add_message(user(cfg.structured_finalize_nudge))
    second = yield from _loop(cfg, thread, response_format=cfg.response_format,
                              first=False, max_turns=1, tool_choice="none")
    info: dict[str, Any] = {"pass_1_halted": first.halted_reason}
    if second.halted_reason == "error" and not second.steps:
        info["pass_2_error"] = second.metadata.get("error")
    return replace(second, steps=first.steps + second.steps,
                   usage=first.usage + second.usage,
                   final_response=second.final_response or first.final_response,
                   metadata={**second.metadata, "structured_finalize": info})


def _with_output(cfg: LoopConfig, result: ChatResult) -> ChatResult:
    """Parse (and with `output_type`, validate) the final JSON answer."""
    fmt = cfg.response_format
    if result.halted_reason != "completed" or result.final_response is None or not (
        isinstance(fmt, Mapping) and fmt.get("type") in ("json_schema", "json_object")
    ):
        return result
    text = result.final_response.output_text
    try:
        data = json.loads(text)
        output = cfg.output_type.model_validate(data) if cfg.output_type is not None \
            else data
    except Exception as exc:
        error = ValidationError(
            "invalid_output", f"the final answer is not valid structured output: {exc}",
            errors=[("final_response.output_text", type(exc).__name__)],
            metadata={"text": text[:2000]})
        return replace(result, metadata={**result.metadata, "output_error": error})
    return replace(result, output=output)
