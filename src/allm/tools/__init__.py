"""Tools: building them (`@allm.tool`), running them, encoding their results.

Public names: `tool`, `tool_error`, `ask_user`, `halt`, `ToolExecutor`,
`ToolResultEncoder`, `ToolContext`. The `Tool` value itself lives in `allm.tool`.
See `allm.tools._build` for the handler calling convention.
"""

from __future__ import annotations

from ._build import BoundHandler, parse_docstring, tool
from ._exec import (
    DEFAULT_TOOL_TIMEOUT,
    ToolExecutor,
    ToolOutcome,
    ToolResultEncoder,
    json_safe,
    settle,
)
from ._jsonschema import validate_json
from ._results import (
    AWAITING_USER,
    RESERVED_HALT_REASONS,
    AskUser,
    Halt,
    ToolContext,
    ToolFailure,
    ask_user,
    halt,
    tool_error,
)

__all__ = [
    "tool",
    "tool_error",
    "ask_user",
    "halt",
    "ToolExecutor",
    "ToolResultEncoder",
    "ToolContext",
    "ToolFailure",
    "AskUser",
    "Halt",
    "ToolOutcome",
    "BoundHandler",
    "settle",
    "json_safe",
    "validate_json",
    "parse_docstring",
    "DEFAULT_TOOL_TIMEOUT",
    "RESERVED_HALT_REASONS",
    "AWAITING_USER",
]
