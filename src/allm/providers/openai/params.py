"""Neutral-parameter lookups shared by the OpenAI codecs (sans-IO).

Owns how a codec reads the neutral params of one call (`Call.params`, already merged
engine < call < request by the facade, with `Request.params` winning again when a
codec is driven directly) and how a `tool_choice` names one tool. Must not know
either endpoint's wire layout.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ...request import Request
    from ..base import Call

__all__ = ["merged_params", "tool_choice_name", "TOOL_CHOICE_MODES"]

TOOL_CHOICE_MODES = frozenset({"auto", "none", "required"})


def merged_params(request: Request, call: Call) -> dict[str, Any]:
    params: dict[str, Any] = dict(call.params)
    params.update(request.params)
    return params


def tool_choice_name(choice: str | Mapping[str, Any]) -> str | None:
    """The tool a `tool_choice` forces, or None for a mode / provider-shaped dict.

    Accepts a bare tool name, ``{"type": "tool", "name": ...}`` and
    ``{"name": ...}``; a dict with ``"function"`` or ``"type": "function"`` is
    OpenAI-shaped already and passes through untouched.
    """
    if isinstance(choice, str):
        return None if choice in TOOL_CHOICE_MODES else choice
    if choice.get("type") in ("tool", None) and isinstance(choice.get("name"), str):
        return str(choice["name"])
    return None
