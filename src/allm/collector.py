"""`StreamCollector`: the pure fold from events to `Response` / `StepResult` / `ChatResult`.

Every non-streaming call (`generate`, `step`, `chat`) is this fold over the same event
stream the streaming twins hand out, so the two can never disagree. The collector is
pure state: no I/O, no adapter, no engine. `apply` is total: an event it does not know
is ignored, so adapters may emit new kinds without breaking old consumers.

Fold rules (reference §5, adapted):

- `text_delta` appends (kept as a list of chunks and joined once: this is the hot
  path); `text_completed` replaces the text so far.
- Tool calls are assembled by id in first-seen order: `tool_call_started` creates,
  `tool_call_delta` appends to the raw JSON text, `tool_call_completed` replaces.
  A call that never completed is parsed from its raw text when the response is built.
- `message_started` / `message_completed` give `Response.id` / `model` when set.
- `message_completed`: `finish_reason` (None keeps the previous one), `usage` replaces
  when set, `metadata` is merged (the adapter's keys win), and the adapter's message
  metadata (provider replay state) goes onto the final assistant `Message`.
- `raw_chunk` with `usage` replaces the usage (a replace, not a merge).
- `error` sets `finish_reason="error"` and `metadata["error"]`. Unlike the original,
  the error is sticky: a later `message_completed` does not overwrite it, so a failed
  stream can never fold into a response that looks successful.
- Loop events (`tool_result_encoded`, `tool_halt`, `ask_user_requested`,
  `step_completed`, `chat_completed`) build step and chat results; the first halt or
  ask-user of a step wins.

Cancellation recipe: fold the events you did get into `StreamCollector(thread)` and
call `to_chat_result()`; without a `chat_completed` it reports
``halted_reason="cancelled"`` (or ``"error"`` when an error event was seen).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Iterable
from typing import Any

from .errors import AllmError, ValidationError
from .events import (
    AskUserRequested,
    ChatCompleted,
    ErrorEvent,
    MessageCompleted,
    MessageStarted,
    RawChunk,
    StepCompleted,
    TextCompleted,
    TextDelta,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
    ToolHalt,
    ToolResultEncoded,
)
from .messages import Message, Thread, ToolCall
from .providers._common import parse_arguments
from .request import Response, Usage
from .results import ChatResult, StepResult

__all__ = ["StreamCollector", "STEP_DONE_FINISH_REASONS"]

STEP_DONE_FINISH_REASONS: frozenset[str] = frozenset(
    {"stop", "length", "content_filter", "refusal", "error"}
)
"""Finish reasons after which a step is done (the loop does not call the model again)."""

AWAITING_USER_CONTENT = "<awaiting user response>"


class _PendingCall:
    """A tool call being assembled from started/delta events (mutable, internal)."""

    __slots__ = ("done", "id", "name", "raw")

    def __init__(self, id: str, name: str) -> None:
        self.id = id
        self.name = name
        self.raw: list[str] = []
        self.done: ToolCall | None = None

    def to_tool_call(self) -> ToolCall:
        if self.done is not None:
            return self.done
        raw = "".join(self.raw)
        arguments, ok = parse_arguments(raw)
        metadata: dict[str, Any] = {} if ok else {"invalid_arguments": True}
        return ToolCall(id=self.id, name=self.name, arguments=arguments,
                        raw_arguments=raw, metadata=metadata)


class StreamCollector:
    """Fold events into a `Response` (and, for loop streams, step and chat results).

    >>> c = StreamCollector()
    >>> for event in events:      # doctest: +SKIP
    ...     c.apply(event)
    >>> c.to_response()           # doctest: +SKIP

    `thread` is the conversation the loop started from; it is needed only by
    `to_step_result` / `to_chat_result`.
    """

    __slots__ = (
        "_calls",
        "_text",
        "_usage",
        "chat_result",
        "done",
        "error",
        "finish_reason",
        "halt",
        "id",
        "last_message",
        "metadata",
        "model",
        "raw_finish_reason",
        "steps",
        "thread",
        "tool_results",
    )

    def __init__(self, thread: Thread | None = None) -> None:
        self.thread = thread
        self._text: list[str] = []
        self._calls: dict[str, _PendingCall] = {}
        self.id: str | None = None
        self.model: str | None = None
        self.last_message: Message | None = None
        self.finish_reason: str | None = None
        self.raw_finish_reason: str | None = None
        self._usage: Usage | None = None  # an empty `Usage` is built only if asked for
        self.error: AllmError | None = None
        self.metadata: dict[str, Any] = {}
        self.steps: list[StepResult] = []
        self.tool_results: list[Message] = []
        # ("halt", reason, tool_call_id, result) | ("ask_user", tool_call_id, question, options)
        self.halt: tuple[Any, ...] | None = None
        self.chat_result: ChatResult | None = None
        self.done = False

    @property
    def usage(self) -> Usage:
        """The usage reported so far (an empty `Usage` when none was)."""
        usage = self._usage
        if usage is None:
            usage = self._usage = Usage()
        return usage

    @usage.setter
    def usage(self, value: Usage) -> None:
        self._usage = value

    # -- folding ---------------------------------------------------------------------

    def apply(self, event: Any) -> None:
        """Fold one event. Total: unknown events are ignored."""
        cls = type(event)
        if cls is TextDelta:  # the hot path, before the table lookup
            self._text.append(event.delta)
            return
        handler = _HANDLERS.get(cls)
        if handler is not None:
            handler(self, event)

    def collect(self, events: Iterable[Any]) -> StreamCollector:
        """Fold every event of `events`; returns self (so ``c.collect(it).to_response()``)."""
        apply = self.apply
        for event in events:
            apply(event)
        return self

    async def acollect(self, events: AsyncIterable[Any]) -> StreamCollector:
        """The async twin of `collect`."""
        apply = self.apply
        async for event in events:
            apply(event)
        return self

    @property
    def text(self) -> str:
        """The text folded so far."""
        return "".join(self._text)

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        """The tool calls folded so far, in first-seen order."""
        return tuple(p.to_tool_call() for p in self._calls.values())

    def _message_started(self, event: MessageStarted) -> None:
        if event.id is not None:
            self.id = event.id
        if event.model is not None:
            self.model = event.model

    def _text_completed(self, event: TextCompleted) -> None:
        self._text = [event.text]

    def _pending(self, id: str, name: str) -> _PendingCall:
        pending = self._calls.get(id)
        if pending is None:
            pending = self._calls[id] = _PendingCall(id, name)
        return pending

    def _tool_call_started(self, event: ToolCallStarted) -> None:
        pending = self._pending(event.id, event.name)
        if not pending.name:
            pending.name = event.name

    def _tool_call_delta(self, event: ToolCallDelta) -> None:
        self._pending(event.id, "").raw.append(event.arguments_delta)

    def _tool_call_completed(self, event: ToolCallCompleted) -> None:
        pending = self._pending(event.id, event.name)
        pending.name = event.name
        pending.done = event.tool_call

    def _message_completed(self, event: MessageCompleted) -> None:
        if event.message is not None:
            self.last_message = event.message
        if event.finish_reason is not None and self.error is None:
            self.finish_reason = event.finish_reason
        if event.raw_finish_reason is not None:
            self.raw_finish_reason = event.raw_finish_reason
        if event.usage is not None:
            self._usage = event.usage
        if event.id is not None:
            self.id = event.id
        if event.model is not None:
            self.model = event.model
        if event.metadata:
            self.metadata.update(event.metadata)

    def _raw_chunk(self, event: RawChunk) -> None:
        if event.usage is not None:
            self._usage = event.usage

    def _error(self, event: ErrorEvent) -> None:
        self.error = event.error
        self.finish_reason = "error"

    def _tool_result_encoded(self, event: ToolResultEncoded) -> None:
        self.tool_results.append(
            Message(role="tool", content=event.content, tool_call_id=event.id,
                    is_error=event.is_error)
        )

    def _tool_halt(self, event: ToolHalt) -> None:
        if self.halt is not None:
            return
        self.halt = ("halt", event.reason, event.tool_call_id, event.result)
        content = event.content if event.content is not None else repr(event.result)
        self.tool_results.append(
            Message(role="tool", content=content, tool_call_id=event.tool_call_id)
        )

    def _ask_user(self, event: AskUserRequested) -> None:
        if self.halt is not None:
            return
        self.halt = ("ask_user", event.tool_call_id, event.question, event.options)
        self.tool_results.append(
            Message(role="tool", content=AWAITING_USER_CONTENT, tool_call_id=event.tool_call_id)
        )

    def _step_completed(self, event: StepCompleted) -> None:
        self.steps.append(
            StepResult(
                thread=event.thread,
                response=event.response,
                tool_results=tuple(self.tool_results),
                done=self.step_done,
                mode=event.mode,
                manual_tool_calls=event.manual_tool_calls,
                metadata=self._halt_metadata(),
            )
        )
        self.thread = event.thread
        self._text = []
        self._calls = {}
        self.tool_results = []
        self.halt = None
        self.finish_reason = None
        self.raw_finish_reason = None
        self.last_message = None

    def _chat_completed(self, event: ChatCompleted) -> None:
        self.chat_result = event.result
        self.done = True

    # -- extractors ------------------------------------------------------------------

    @property
    def step_done(self) -> bool:
        """True when the step should not call the model again on its own."""
        return self.halt is not None or self.finish_reason in STEP_DONE_FINISH_REASONS

    def _halt_metadata(self) -> dict[str, Any]:
        meta = dict(self.metadata)
        halt = self.halt
        if halt is None:
            return meta
        if halt[0] == "ask_user":
            meta.update(halted_reason="ask_user", pending_tool_call_id=halt[1],
                        pending_question=halt[2], ask_user_options=halt[3])
        elif halt[1] == "tool_error":
            meta.update(halted_reason="tool_error", halt_tool_call_id=halt[2])
        else:
            meta.update(halted_reason=halt[1], halt_tool_call_id=halt[2], halt_result=halt[3])
        return meta

    def to_response(self, *, request_id: str | None = None, model: str | None = None) -> Response:
        """The `Response` folded so far (never raises). `message` is the assistant
        message (text, tool calls, the adapter's message metadata). `request_id` and
        `model` fill the response's when the events did not set them."""
        text = "".join(self._text)
        if len(self._text) > 1:
            self._text = [text]  # later calls need not join again
        calls = tuple(p.to_tool_call() for p in self._calls.values())
        last = self.last_message
        message = Message(
            role="assistant",
            content=text,
            tool_calls=calls,
            metadata=dict(last.metadata) if last is not None else {},
        )
        metadata = self.metadata
        metadata = {**metadata, "error": self.error} if self.error is not None else dict(metadata)
        return Response(
            id=self.id,
            request_id=request_id,
            model=self.model if self.model is not None else model,
            message=message,
            output_text=text,
            tool_calls=calls,
            finish_reason=self.finish_reason,
            raw_finish_reason=self.raw_finish_reason,
            usage=self.usage,
            metadata=metadata,
        )

    def to_step_result(self) -> StepResult:
        """The current step as a `StepResult` (needs a thread)."""
        if self.thread is None:
            raise ValidationError(
                "invalid_thread",
                "StreamCollector.to_step_result needs a thread: build the collector "
                "with StreamCollector(thread)",
                errors=[("thread", "missing")],
            )
        return StepResult(
            thread=self.thread,
            response=self.to_response(),
            tool_results=tuple(self.tool_results),
            done=self.step_done,
            metadata=self._halt_metadata(),
        )

    def to_chat_result(self) -> ChatResult:
        """The chat's result: the one `chat_completed` carried, or (for a stream that
        was cut short) a result with ``halted_reason`` ``"error"`` or ``"cancelled"``."""
        if self.chat_result is not None:
            return self.chat_result
        if self.thread is None:
            raise ValidationError(
                "invalid_thread",
                "StreamCollector.to_chat_result needs a thread or a chat_completed event",
                errors=[("thread", "missing")],
            )
        steps = tuple(self.steps)
        final = steps[-1].response if steps else self.to_response()
        usage = Usage()
        for step in steps:
            usage = usage + step.response.usage
        if not steps:
            usage = final.usage
        return ChatResult(
            thread=self.thread,
            final_response=final,
            steps=steps,
            halted_reason="error" if self.error is not None else "cancelled",
            usage=usage,
            metadata=dict(self.metadata),
        )


_HANDLERS: dict[type[Any], Callable[[StreamCollector, Any], None]] = {
    MessageStarted: StreamCollector._message_started,
    TextCompleted: StreamCollector._text_completed,
    ToolCallStarted: StreamCollector._tool_call_started,
    ToolCallDelta: StreamCollector._tool_call_delta,
    ToolCallCompleted: StreamCollector._tool_call_completed,
    MessageCompleted: StreamCollector._message_completed,
    RawChunk: StreamCollector._raw_chunk,
    ErrorEvent: StreamCollector._error,
    ToolResultEncoded: StreamCollector._tool_result_encoded,
    ToolHalt: StreamCollector._tool_halt,
    AskUserRequested: StreamCollector._ask_user,
    StepCompleted: StreamCollector._step_completed,
    ChatCompleted: StreamCollector._chat_completed,
}
