"""The event stream: the 16 typed events every call is made of.

Owns the closed event union. Adapters emit the first group (message/text/tool-call
events, `raw_chunk`, `error`); the chat loop emits the rest (tool execution, halts,
`step_completed`, `chat_completed`). Every event is a frozen dataclass with a `type`
tag (a class-level constant, so construction on the hot path stays cheap) and
serializes through `allm.dumps`, so a UI can relay events as SSE.

Typical order of one model call::

    message_started, (text_delta | tool_call_started, tool_call_delta*,
    tool_call_completed)*, text_completed?, raw_chunk*, message_completed

A failure mid-stream is an `error` event; consumers should scan every event rather
than assume the stream ends there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Union

from ._fastinit import fast_init
from .errors import AllmError
from .messages import Message, Thread, ToolCall
from .request import Response, Usage

if TYPE_CHECKING:
    from .results import ChatResult

__all__ = [
    "Event",
    "EVENT_TYPES",
    "MessageStarted",
    "TextDelta",
    "TextCompleted",
    "ToolCallStarted",
    "ToolCallDelta",
    "ToolCallCompleted",
    "ToolExecutionStarted",
    "ToolExecutionCompleted",
    "ToolResultEncoded",
    "AskUserRequested",
    "ToolHalt",
    "MessageCompleted",
    "StepCompleted",
    "ChatCompleted",
    "RawChunk",
    "ErrorEvent",
]

_EV = dict(frozen=True, slots=True, kw_only=True)


@dataclass(**_EV)  # type: ignore[call-overload]
class MessageStarted:
    """The model began answering. `id` / `model` are the provider's response id and
    model name when known at this point."""

    type: ClassVar[str] = "message_started"
    id: str | None = None
    model: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(**_EV)  # type: ignore[call-overload]
class TextDelta:
    """A chunk of assistant text."""

    type: ClassVar[str] = "text_delta"
    delta: str
    id: str | None = None


@dataclass(**_EV)  # type: ignore[call-overload]
class TextCompleted:
    """All text of the message; replaces what the deltas accumulated."""

    type: ClassVar[str] = "text_completed"
    text: str
    id: str | None = None


@dataclass(**_EV)  # type: ignore[call-overload]
class ToolCallStarted:
    type: ClassVar[str] = "tool_call_started"
    id: str
    name: str


@dataclass(**_EV)  # type: ignore[call-overload]
class ToolCallDelta:
    """A fragment of a tool call's JSON arguments."""

    type: ClassVar[str] = "tool_call_delta"
    id: str
    arguments_delta: str


@dataclass(**_EV)  # type: ignore[call-overload]
class ToolCallCompleted:
    """A fully assembled tool call. `arguments` is the parsed object ({} when the
    model's JSON was invalid; `raw_arguments` then keeps the text and
    `metadata["invalid_arguments"]` is True)."""

    type: ClassVar[str] = "tool_call_completed"
    id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    raw_arguments: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def tool_call(self) -> ToolCall:
        return ToolCall(id=self.id, name=self.name, arguments=self.arguments,
                        raw_arguments=self.raw_arguments, metadata=self.metadata)


@dataclass(**_EV)  # type: ignore[call-overload]
class ToolExecutionStarted:
    type: ClassVar[str] = "tool_execution_started"
    id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(**_EV)  # type: ignore[call-overload]
class ToolExecutionCompleted:
    """A handler returned. `result` is its value (before encoding) or the `ToolError`
    when it failed; always JSON-safe, so `allm.dumps` accepts every loop event: kept
    as it is when `allm.dumps` accepts it, else its JSON form (pydantic models via
    ``model_dump(mode="json")``, dataclasses via their fields, dates, sets, enums,
    ... as the default `ToolResultEncoder` writes them, any other object its
    ``repr``). See `allm.tools.json_safe`."""

    type: ClassVar[str] = "tool_execution_completed"
    id: str
    name: str
    result: Any = None
    is_error: bool = False


@dataclass(**_EV)  # type: ignore[call-overload]
class ToolResultEncoded:
    """The tool message body that goes back to the model."""

    type: ClassVar[str] = "tool_result_encoded"
    id: str
    content: str
    is_error: bool = False


@dataclass(**_EV)  # type: ignore[call-overload]
class AskUserRequested:
    """A handler asked the user; `options` are JSON-safe (see `ToolExecutionCompleted`)."""

    type: ClassVar[str] = "ask_user_requested"
    tool_call_id: str
    tool_name: str
    question: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(**_EV)  # type: ignore[call-overload]
class ToolHalt:
    """A handler halted the loop. `result` is the `halt(...)` result, JSON-safe like
    `ToolExecutionCompleted.result` (the `ToolError` for ``reason="tool_error"``)."""

    type: ClassVar[str] = "tool_halt"
    tool_call_id: str
    reason: str
    result: Any = None
    content: str | None = None


@dataclass(**_EV)  # type: ignore[call-overload]
class MessageCompleted:
    """The model finished this message.

    `message` (optional) carries the adapter's view of the assistant message; the
    collector uses its `metadata` (provider replay state, `reasoning`) and builds the
    content and tool calls from the events. `usage`, when set, replaces the usage
    folded so far. `metadata` is merged into `Response.metadata`.
    """

    type: ClassVar[str] = "message_completed"
    message: Message | None = None
    finish_reason: str | None = None
    raw_finish_reason: str | None = None
    usage: Usage | None = None
    id: str | None = None
    model: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(**_EV)  # type: ignore[call-overload]
class StepCompleted:
    type: ClassVar[str] = "step_completed"
    response: Response
    thread: Thread
    mode: str = "auto"
    manual_tool_calls: tuple[ToolCall, ...] = ()


@dataclass(**_EV)  # type: ignore[call-overload]
class ChatCompleted:
    type: ClassVar[str] = "chat_completed"
    result: ChatResult


@dataclass(**_EV)  # type: ignore[call-overload]
class RawChunk:
    """A provider chunk passed through (only with `include_raw_chunks=True`), or a
    usage report (`usage` set), which always passes the filters."""

    type: ClassVar[str] = "raw_chunk"
    data: Any = None
    usage: Usage | None = None


@dataclass(**_EV)  # type: ignore[call-overload]
class ErrorEvent:
    """A failure mid-stream (`AdapterError`, `StreamError`) or in the loop
    (`ToolError(reason="not_found")` for a tool the engine does not have)."""

    type: ClassVar[str] = "error"
    error: AllmError


Event = Union[
    MessageStarted,
    TextDelta,
    TextCompleted,
    ToolCallStarted,
    ToolCallDelta,
    ToolCallCompleted,
    ToolExecutionStarted,
    ToolExecutionCompleted,
    ToolResultEncoded,
    AskUserRequested,
    ToolHalt,
    MessageCompleted,
    StepCompleted,
    ChatCompleted,
    RawChunk,
    ErrorEvent,
]

EVENT_TYPES: dict[str, type[Any]] = {
    cls.type: cls
    for cls in (
        MessageStarted, TextDelta, TextCompleted, ToolCallStarted, ToolCallDelta,
        ToolCallCompleted, ToolExecutionStarted, ToolExecutionCompleted,
        ToolResultEncoded, AskUserRequested, ToolHalt, MessageCompleted, StepCompleted,
        ChatCompleted, RawChunk, ErrorEvent,
    )
}
"""Event classes by `type` tag, in the original's order."""

for _cls in EVENT_TYPES.values():  # built per streamed chunk: see `_fastinit`
    fast_init(_cls)
del _cls
