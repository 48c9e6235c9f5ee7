"""The agent loop's public surface: `step`, `stream_step`, `chat`, `stream` and the
async twins `astep`, `astream_step`, `achat`, `astream`.

Owns option resolution and validation; the loop itself is `allm.loopgen` (one
generator) and the I/O shells are `allm.drivers`. The streaming functions do their
pre-flight eagerly (bad options, missing adapter, the adapter's own pre-flight raise
at the call, before iteration); `chat` / `step` drive the same event stream to its
end and return the result its last event carries (`ChatCompleted`) or that the loop
returned (`step`), so streaming and non-streaming cannot disagree.

Options (besides every `generate` option, forwarded to the model call):

- ``mode``: ``"auto"`` (run handlers) or ``"manual"`` (stop at the first tool calls,
  run nothing: ``halted_reason="manual_tool_calls"``, calls in
  ``result.pending_tool_calls``). Per-tool manual (``Tool.manual``) under auto: the
  other calls run, the manual ones are left pending.
- ``max_turns`` (default ``engine.params["max_turns"]`` or 8): positive int, else
  `ValidationError`. ``halt_when(step_result) -> bool``: checked after a step that
  would otherwise continue; exceptions propagate.
- ``on_tool_error``: ``"continue"`` (default: the error goes back to the model),
  ``"halt"`` (stop with ``halted_reason="tool_error"``) or
  ``fn(tool_call, error)`` returning ``"halt"``, ``"continue"`` / None, or a
  replacement result to send instead.
- ``tool_timeout`` (seconds, default the executor's, 30), ``max_concurrency``
  (default 32), ``max_tool_calls_per_step`` (default 64; extra calls get a
  ``too_many_tool_calls`` tool error), ``tool_executor``, ``tool_result_encoder``,
  ``context`` (default ``engine.context``), ``session_id``.
- ``output_type``: a pydantic model class; sets ``response_format`` to its JSON
  schema and fills ``result.output`` with the validated instance (a dict
  ``response_format`` alone gives the parsed dict). A final answer that does not
  parse/validate leaves ``output=None`` and ``metadata["output_error"]``.
- ``structured_finalize=True`` (with a response format): run the tool loop without
  the format, then one more call with it (``structured_finalize_nudge`` is appended
  as a user message first; "" appends nothing).
- Stream filters ``emit_text_deltas``, ``emit_tool_deltas``, ``include_raw_chunks``
  and ``on_event`` (sees every adapter event, never the loop's own).

Deviations from the original, on purpose:

- Unknown tool names, invalid arguments (schema or malformed JSON) and calls beyond
  ``max_tool_calls_per_step`` become tool errors fed back to the model (routed by
  ``on_tool_error``) instead of aborting the step (`EngineError("unknown_tool")`).
- Ask-user: the pending call gets no placeholder tool message and no assistant
  question message is appended; the answer becomes that call's tool result
  (`Session.reply`, or append ``allm.tool_result(result.pending_tool_call_id,
  answer)``). Calls that ask while another question is pending get a "not asked"
  tool error; manual calls in a step that halted get a "not run" tool error, so
  the thread stays well formed.
- A failed model call (mid-stream error, or a later step's pre-flight) leaves the
  thread as before that step: ``halted_reason="error"``, error in
  ``metadata["error"]``. A step without tool calls completes whatever its finish
  reason (except ``pause``: Anthropic's paused server-tool turn is continued).
- A thread handed to the loop must not end with tool calls lacking results
  (`ValidationError`): that request would be rejected by every provider.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import telemetry
from .drivers import AsyncRun, SyncRun, _Steps
from .engine import Engine as EngineType
from .errors import ValidationError
from .events import ChatCompleted, Event
from .facade import new_request_id
from .loopgen import LoopConfig, chat_flow, step_flow
from .messages import Message, Thread, coerce_messages
from .results import ChatResult, StepResult
from .tools import ToolExecutor, ToolResultEncoder
from .tools._exec import check_on_tool_error

if TYPE_CHECKING:
    from .engine import Engine

__all__ = [
    "step", "astep", "stream_step", "astream_step", "chat", "achat", "stream", "astream",
    "LOOP_OPTS", "check_thread",
]

LOOP_OPTS: frozenset[str] = frozenset(
    {
        "mode", "max_turns", "halt_when", "on_tool_error", "tool_timeout",
        "max_concurrency", "max_tool_calls_per_step", "tool_executor",
        "tool_result_encoder", "context", "session_id", "output_type",
        "structured_finalize", "structured_finalize_nudge",
        "emit_text_deltas", "emit_tool_deltas", "include_raw_chunks", "on_event",
    }
)
"""Options the loop consumes; every other keyword goes to the model call."""

DEFAULT_MAX_TURNS = 8
_SINGLE = (Thread, Message, str)  # a tuple: `Thread | Message | str` is rebuilt per call

MessagesArg = Thread | Message | Sequence[Message] | str


def check_thread(thread: Thread) -> None:
    """Refuse a thread that ends with tool calls lacking results.

    Every provider rejects such a request; this names the calls and says how to
    answer them instead of letting the provider fail with a generic 400.
    """
    messages = thread.messages
    for i, message in enumerate(messages):
        if message.role != "assistant" or not message.tool_calls:
            continue
        answered = set()
        j = i + 1
        while j < len(messages) and messages[j].role == "tool":
            answered.add(messages[j].tool_call_id)
            j += 1
        missing = [tc.id for tc in message.tool_calls if tc.id not in answered]
        if missing:
            raise ValidationError(
                "invalid_thread",
                f"tool call(s) {', '.join(missing)} have no result: append "
                "allm.tool_result(id, result) for each (or use a Session's "
                "submit_tool_result / reply) before calling the model again",
                errors=[(f"messages.{i}.tool_calls", f"no_result:{cid}") for cid in missing],
            )


def _config(engine: Engine, messages: MessagesArg, opts: dict[str, Any],
            quiet: bool = False) -> tuple[Any, Thread]:
    if isinstance(messages, _SINGLE) or (
        isinstance(messages, Sequence) and all(isinstance(m, Message) for m in messages)
    ):
        thread = coerce_messages(messages)
    else:
        raise ValidationError("invalid_thread",
                              "expected a Thread, a Message, a list of Messages or a str",
                              errors=[("messages", "invalid_type")])
    if not thread.messages:
        raise ValidationError("invalid_thread", "no messages to send",
                              errors=[("messages", "empty")])
    check_thread(thread)
    loop = {k: opts.pop(k) for k in LOOP_OPTS.intersection(opts)}
    params = engine.params if isinstance(engine, EngineType) else {}

    max_turns = loop.get("max_turns")
    if max_turns is None:
        max_turns = params.get("max_turns", DEFAULT_MAX_TURNS)
    if isinstance(max_turns, bool) or not isinstance(max_turns, int) or max_turns < 1:
        raise ValidationError("invalid_params", f"max_turns must be a positive int, got "
                              f"{max_turns!r}", errors=[("max_turns", "not_positive_int")])
    if "max_turns" in params:  # a loop option, not a model parameter
        opts["params"] = {**dict(opts.get("params") or {}), "max_turns": None}
    mode = loop.get("mode", "auto")
    if mode not in ("auto", "manual"):
        raise ValidationError("invalid_params", f"mode must be 'auto' or 'manual', got "
                              f"{mode!r}", errors=[("mode", "invalid")])
    policy = loop.get("on_tool_error", "continue")
    try:
        check_on_tool_error(policy)
    except ValueError as exc:
        raise ValidationError("invalid_params", str(exc),
                              errors=[("on_tool_error", "invalid")]) from None
    output_type = loop.get("output_type")
    response_format = opts.get("response_format")
    if output_type is not None and response_format is None:
        from .facade import json_schema

        response_format = json_schema(getattr(output_type, "__name__", "output"),
                                      _output_schema(output_type))
    if response_format is not None:
        opts["response_format"] = response_format
    executor = loop.get("tool_executor") or getattr(engine, "tool_executor", None) \
        or ToolExecutor()
    encoder = loop.get("tool_result_encoder") or getattr(engine, "tool_result_encoder",
                                                         None) or ToolResultEncoder()
    timeout = loop.get("tool_timeout", getattr(executor, "timeout", 30.0))
    opts.setdefault("request_id", new_request_id())
    context = loop["context"] if "context" in loop else getattr(engine, "context", None)
    cfg = LoopConfig(
        engine=engine,
        model_opts=opts,
        tools=engine.resolve_tools(opts.get("tools")) if isinstance(engine, EngineType)
        else (),
        mode=mode,
        max_turns=max_turns,
        on_tool_error=policy,
        halt_when=loop.get("halt_when"),
        executor=executor,
        encoder=encoder,
        tool_timeout=timeout,
        max_concurrency=_positive(loop, "max_concurrency", 32),
        max_tool_calls_per_step=_positive(loop, "max_tool_calls_per_step", 64),
        context=context,
        session_id=loop.get("session_id"),
        request_id=opts["request_id"],
        response_format=response_format,
        output_type=output_type,
        structured_finalize=bool(loop.get("structured_finalize", False)),
        structured_finalize_nudge=loop.get("structured_finalize_nudge",
                                           "Now provide your final structured response."),
        emit_text_deltas=bool(loop.get("emit_text_deltas", True)),
        emit_tool_deltas=bool(loop.get("emit_tool_deltas", True)),
        include_raw_chunks=bool(loop.get("include_raw_chunks", False)),
        on_event=loop.get("on_event"),
        quiet=quiet,
    )
    return cfg, thread


def _positive(loop: Mapping[str, Any], name: str, default: int) -> int:
    value = loop.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError("invalid_params", f"{name} must be a positive int",
                              errors=[(name, "not_positive_int")])
    return value


def _output_schema(output_type: Any) -> Any:
    if hasattr(output_type, "model_json_schema"):
        from .tools._build import model_schema

        return model_schema(output_type)
    raise ValidationError("invalid_params", "output_type must be a pydantic model class",
                          errors=[("output_type", "invalid_type")])


def _flows(engine: Engine, messages: MessagesArg, opts: dict[str, Any], *,
           single: bool, streaming: bool, quiet: bool = False) -> tuple[Any, Any]:
    opts.setdefault("stream", streaming)
    # quiet: only for a driver run with ``emit=False`` and no step spans
    cfg, thread = _config(engine, messages, opts, quiet)
    if single:
        def flow() -> Any:
            out = yield from step_flow(cfg, thread, first=True,
                                       response_format=cfg.response_format)
            return out.result
        return cfg, flow()
    return cfg, chat_flow(cfg, thread)


# -- telemetry: a ``chat`` span (with a ``step`` span per step) or a ``step`` span,
# only when a hook or a tracer would record it (`telemetry.active()`).


def _span_attrs(cfg: Any) -> dict[str, Any]:
    engine = cfg.engine
    return {"provider": getattr(engine, "provider", None),
            "model": cfg.model_opts.get("model") or getattr(engine, "model", None),
            "request_id": cfg.request_id, "engine": engine, "session_id": cfg.session_id}


def _steps(cfg: Any, traced: bool, single: bool) -> _Steps | None:
    return _Steps(_span_attrs(cfg)) if traced and not single else None


def _trace(name: str, cfg: Any, events: Iterator[Event], traced: bool) -> Iterator[Event]:
    return telemetry.span_for_stream(name, events, **_span_attrs(cfg)) if traced else events


def _atrace(name: str, cfg: Any, events: AsyncIterator[Event],
            traced: bool) -> AsyncIterator[Event]:
    return telemetry.aspan_for_stream(name, events, **_span_attrs(cfg)) if traced else events


# -- sync -------------------------------------------------------------------------------


def stream_step(engine: Engine, messages: MessagesArg, **opts: Any) -> Iterator[Event]:
    """One step as events: the model's events, the tool events (completion order),
    then one `StepCompleted`. Pre-flight errors raise here."""
    cfg, flow = _flows(engine, messages, opts, single=True, streaming=True)
    traced = telemetry.active()
    return _trace("step", cfg, SyncRun(engine, flow).start().events(), traced)


def step(engine: Engine, messages: MessagesArg, **opts: Any) -> StepResult:
    """One model call plus (auto mode) its tool calls, as a `StepResult`."""
    cfg, flow = _flows(engine, messages, opts, single=True, streaming=False)
    run = SyncRun(engine, flow).start()
    for _ in _trace("step", cfg, run.events(), telemetry.active()):
        pass
    result: StepResult = run.result
    return result


def stream(engine: Engine, messages: MessagesArg, **opts: Any) -> Iterator[Event]:
    """The whole loop as events; the last one is `ChatCompleted` (absent if the
    consumer stops early). Pre-flight errors raise here."""
    cfg, flow = _flows(engine, messages, opts, single=False, streaming=True)
    traced = telemetry.active()
    run = SyncRun(engine, flow, _steps(cfg, traced, single=False)).start()
    return _trace("chat", cfg, run.events(), traced)


def chat(engine: Engine, messages: MessagesArg, **opts: Any) -> ChatResult:
    """Run the loop to a halt and return the `ChatResult` (the fold of `stream`)."""
    traced = telemetry.active()
    cfg, flow = _flows(engine, messages, opts, single=False, streaming=False,
                       quiet=not traced)
    run = SyncRun(engine, flow, _steps(cfg, traced, single=False)).start()
    if traced:
        return _final(_trace("chat", cfg, run.events(), traced))
    for _ in run.events(emit=False):  # pragma: no cover - yields nothing
        pass
    result: ChatResult = run.result
    return result


def _final(events: Iterator[Event]) -> ChatResult:
    result: ChatResult | None = None
    for event in events:
        if type(event) is ChatCompleted:
            result = event.result
    assert result is not None
    return result


# -- async ------------------------------------------------------------------------------


def astream_step(engine: Engine, messages: MessagesArg, **opts: Any) -> AsyncIterator[Event]:
    """The async twin of `stream_step` (pre-flight errors raise at the call)."""
    cfg, flow = _flows(engine, messages, opts, single=True, streaming=True)
    traced = telemetry.active()
    return _atrace("step", cfg, AsyncRun(engine, flow).start().events(), traced)


async def astep(engine: Engine, messages: MessagesArg, **opts: Any) -> StepResult:
    """The async twin of `step`."""
    cfg, flow = _flows(engine, messages, opts, single=True, streaming=False)
    run = AsyncRun(engine, flow).start()
    async for _ in _atrace("step", cfg, run.events(), telemetry.active()):
        pass
    result: StepResult = run.result
    return result


def astream(engine: Engine, messages: MessagesArg, **opts: Any) -> AsyncIterator[Event]:
    """The async twin of `stream` (pre-flight errors raise at the call)."""
    cfg, flow = _flows(engine, messages, opts, single=False, streaming=True)
    traced = telemetry.active()
    run = AsyncRun(engine, flow, _steps(cfg, traced, single=False)).start()
    return _atrace("chat", cfg, run.events(), traced)


async def achat(engine: Engine, messages: MessagesArg, **opts: Any) -> ChatResult:
    """The async twin of `chat`."""
    traced = telemetry.active()
    cfg, flow = _flows(engine, messages, opts, single=False, streaming=False,
                       quiet=not traced)
    run = AsyncRun(engine, flow, _steps(cfg, traced, single=False)).start()
    if not traced:
        async for _ in run.events(emit=False):  # pragma: no cover - yields nothing
            pass
        done: ChatResult = run.result
        return done
    result: ChatResult | None = None
    async for event in _atrace("chat", cfg, run.events(), traced):
        if type(event) is ChatCompleted:
            result = event.result
    assert result is not None
    return result
