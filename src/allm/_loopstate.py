"""What one run of the loop works out once instead of at every step (`LoopState`).

Issue 10 (the chat loop's per-step cost): `build_request` checks the options, the
engine, the thread and the tools and resolves params, model, tools, retry and ids
for every model call. Within one run of `allm.loopgen` only the thread changes
between steps (the engine is frozen; the loop's own messages are `Message`s), so
later steps copy the first step's `Request` / `Call` with the new messages. The
catalog's pre-flight still runs on every request (it reads the messages); a step
with another ``response_format`` / ``tool_choice`` (pass 2 of the structured
finalize) builds afresh. `tests/loop/test_loopstate.py` checks every request equals
a fresh `build_request`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from .facade import build_request, catalog_preflight
from .messages import Thread
from .providers.base import Call
from .request import Request
from .tool import Tool

if TYPE_CHECKING:
    from .loopgen import LoopConfig

__all__ = ["LoopState"]


class LoopState:
    """Per run: the model call's `Request` / `Call` (see the module docstring) and
    the tools by name."""

    __slots__ = ("by_name", "call", "key", "preflight", "request")

    def __init__(self, cfg: LoopConfig) -> None:
        self.by_name: dict[str, Tool] = cfg.tools_by_name
        self.request: Request | None = None
        self.call: Any = None
        self.key: tuple[Any, Any] = (None, None)
        engine = cfg.engine
        self.preflight = bool(cfg.model_opts.get("preflight", True)) and getattr(
            engine, "provider", None) not in (None, "fake")

    def build(self, cfg: LoopConfig, thread: Thread, response_format: Any,
              tool_choice: Any) -> tuple[Request, Any]:
        base = self.request
        if base is None or self.key[0] is not response_format \
                or self.key[1] is not tool_choice:
            opts = dict(cfg.model_opts)
            opts["response_format"] = response_format  # None: pass 1 of a finalize
            if tool_choice is not None:
                opts["tool_choice"] = tool_choice
            request, call, _ = build_request(cfg.engine, thread, **opts)
            self.request, self.call = request, call
            self.key = (response_format, tool_choice)
            return request, call
        # Fresh mutable parts per request, as `build_request` gives: an adapter (or a
        # recording test) holding one request must not see another's changes.
        params = dict(base.params)
        request = _next_request(base, thread.messages, params, dict(base.options),
                                dict(base.metadata))
        call = _next_call(self.call, params, dict(self.call.adapter_opts))
        if self.preflight:
            catalog_preflight(cfg.engine, request)
        return request, call


def _copier(cls: type, changed: tuple[str, ...]) -> Callable[..., Any]:
    """``copy(obj, *changed_values)``: `dataclasses.replace(obj, **changes)` for a
    frozen slotted dataclass without ``__post_init__``, written out field by field
    through the slots (~2.5x cheaper than `replace`, which goes through ``__init__``
    and its ``object.__setattr__`` per field)."""
    assert not hasattr(cls, "__post_init__") and "__slots__" in cls.__dict__
    names = [f.name for f in fields(cls)]
    lines = [f"def copy(obj, {', '.join(changed)}):", "    new = new_(cls)"]
    lines += [f"    set_{n}(new, {n if n in changed else 'obj.' + n})" for n in names]
    lines.append("    return new")
    namespace: dict[str, Any] = {"new_": object.__new__, "cls": cls}
    namespace.update({f"set_{n}": cls.__dict__[n].__set__ for n in names})
    exec("\n".join(lines), namespace)
    return namespace["copy"]  # type: ignore[no-any-return]


# A later step's request and call: the first step's, with the new thread and fresh
# mutable parts (build_request gives each call its own dicts).
_next_request = _copier(Request, ("messages", "params", "options", "metadata"))
_next_call = _copier(Call, ("params", "adapter_opts"))
