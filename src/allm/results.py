"""Results of the loop: `StepResult` (one model call plus its tools) and `ChatResult`.

Plain data, JSON round-trippable. Built by the chat loop (`allm.loop`) and folded by
the `StreamCollector`; must not know about engines or I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._fastinit import fast_init
from .messages import Message, Thread, ToolCall
from .request import Response, Usage

__all__ = ["StepResult", "ChatResult", "HALTED_REASONS"]

HALTED_REASONS: frozenset[str] = frozenset(
    {"completed", "max_turns", "halt_when", "ask_user", "tool_error",
     "manual_tool_calls", "cancelled", "error"}
)
"""Built-in halted reasons; a handler's `allm.halt(reason, ...)` may add its own."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StepResult:
    """One step: the model call's response, the thread after it, and tool results.

    `done` is True when the loop should not call the model again on its own (the model
    stopped, or a tool halted / asked the user). `manual_tool_calls` are calls left
    for the caller to run.
    """

    thread: Thread
    response: Response
    tool_results: tuple[Message, ...] = ()
    done: bool = False
    mode: str = "auto"
    manual_tool_calls: tuple[ToolCall, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatResult:
    """The outcome of a multi-step chat.

    `halted_reason` is one of `HALTED_REASONS` or a handler's own reason.
    `pending_question` / `pending_tool_call_id` are set when a tool asked the user;
    `pending_tool_calls` when tools are left for the caller (manual mode).
    `usage` is summed over all steps. `output` holds the parsed structured output
    (a dict, or a pydantic model instance when an output type was given).
    """

    thread: Thread
    final_response: Response | None = None
    steps: tuple[StepResult, ...] = ()
    halted_reason: str = "completed"
    pending_question: str | None = None
    pending_tool_call_id: str | None = None
    pending_tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = field(default_factory=Usage)
    output: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def halted(self) -> bool:
        return self.halted_reason != "completed"

    @property
    def output_text(self) -> str:
        return self.final_response.output_text if self.final_response else ""

for _cls in (StepResult, ChatResult):  # see `_fastinit`
    fast_init(_cls)
del _cls
