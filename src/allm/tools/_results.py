"""What a tool handler may return besides a plain value, and what it receives.

Owns the handler-result markers (`tool_error`, `ask_user`, `halt`) and `ToolContext`
(the optional second handler argument). Plain frozen data; no I/O, no pydantic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..messages import ToolCall

__all__ = [
    "ToolFailure",
    "AskUser",
    "Halt",
    "ToolContext",
    "tool_error",
    "ask_user",
    "halt",
    "RESERVED_HALT_REASONS",
    "AWAITING_USER",
]

RESERVED_HALT_REASONS: frozenset[str] = frozenset(
    {"ask_user", "max_turns", "halt_when", "tool_error", "cancelled", "completed",
     "error", "manual_tool_calls"}
)
"""Halted reasons the loop owns; `halt(reason)` with one of them is an invalid return
(the original reserved the same six plus our two extra built-ins)."""

AWAITING_USER = "<awaiting user response>"


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolFailure:
    """A handler reporting a failure it handled itself (`allm.tool_error(...)`).

    Fed back to the model as ``{"error": message}`` (plus `data` under ``"data"``
    when given) and routed through `on_tool_error` like any tool error.
    """

    message: str
    data: Any = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AskUser:
    """Suspend the loop and ask the user `question` (`allm.ask_user(...)`)."""

    question: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Halt:
    """Stop the loop with a reason of the handler's own (`allm.halt(...)`); `result`
    is encoded as the tool's result so the thread stays consistent."""

    reason: str
    result: Any = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolContext:
    """The second argument of a two-argument handler.

    `context` is the call's `context=` or else the engine's context (for a session:
    the session's context); `tool_call` is the call being run; `engine` the engine
    running the loop; `session_id` / `request_id` identify the outer call.
    """

    context: Any = None
    tool_call: ToolCall | None = None
    engine: Any = field(default=None, repr=False)
    session_id: str | None = None
    request_id: str | None = None


def tool_error(message: str, data: Any = None) -> ToolFailure:
    """Return this from a handler to report a failure to the model (not a crash)."""
    return ToolFailure(message=str(message), data=data)


def ask_user(question: str, **options: Any) -> AskUser:
    """Return this from a handler to suspend the loop until the user answers.

    The answer becomes this tool call's result (`Session.reply` does that for you;
    with `chat`, append `allm.tool_result(result.pending_tool_call_id, answer)`).
    """
    return AskUser(question=question, options=dict(options))


def halt(reason: str, result: Any = None) -> Halt:
    """Return this from a handler to stop the loop with `halted_reason=reason`."""
    return Halt(reason=reason, result=result)
