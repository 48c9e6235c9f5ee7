"""`Tool`: a function the model may call, as data plus an optional handler.

Owns the tool value only (name, description, JSON-schema parameters, handler,
manual flag, metadata). Building schemas from Python functions / pydantic models,
running handlers and encoding results live in `allm.tools`. The handler is never
serialized: a loaded tool has `handler=None` and is re-bound from an engine's tools
by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Tool", "Handler"]

Handler = Callable[..., Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Tool:
    """A callable tool. `parameters` is a JSON Schema object describing the arguments.

    `manual=True` means the loop never runs it: the caller executes the call and
    submits the result (per-tool manual mode). `handler` may be sync or async and take
    `(arguments)` or `(arguments, context)`.
    """

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    handler: Handler | None = field(default=None, compare=False, repr=False)
    manual: bool = False
    strict: bool | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    # The original named the schema `schema`; keep that spelling working for readers.
    @property
    def schema(self) -> dict[str, Any]:
        return self.parameters

    def without_handler(self) -> Tool:
        from dataclasses import replace

        return replace(self, handler=None)
