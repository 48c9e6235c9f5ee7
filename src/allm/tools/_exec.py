"""Running one tool call and turning what happened into a tool message.

Owns `ToolExecutor` (how a handler is called: validation, sync/async, context),
`ToolResultEncoder` (handler value -> tool message text), and the pure per-call
decisions the loop shares between its sync and async drivers: `plan_call` (look the
tool up, refuse what must not run) and `settle` (classify the handler's return or
exception, apply the `on_tool_error` policy, encode). Drivers only do the I/O part:
calling `execute` / `aexecute` under the per-call timeout.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as _dt
import decimal
import enum
import inspect
import json
import math
import pathlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .._jsoncompact import compact_dumps
from ..errors import ToolError
from ..messages import ToolCall
from ..serializer import to_jsonable
from ..tool import Tool
from ._build import InvalidArguments, bind
from ._results import RESERVED_HALT_REASONS, AskUser, Halt, ToolContext, ToolFailure

__all__ = [
    "ToolExecutor",
    "ToolResultEncoder",
    "ToolOutcome",
    "OnToolError",
    "settle",
    "json_safe",
    "check_on_tool_error",
    "DEFAULT_TOOL_TIMEOUT",
]

DEFAULT_TOOL_TIMEOUT = 30.0

OnToolError = Literal["continue", "halt"] | Callable[[ToolCall, ToolError], Any]


class ToolExecutor:
    """Calls a tool's handler. Pluggable: pass `tool_executor=` to the engine or call.

    `execute` / `aexecute` return the handler's value (possibly a `tool_error` /
    `ask_user` / `halt` marker) or raise; a raised `ToolError` is taken as is, any
    other exception becomes ``ToolError("handler_raised")``. `timeout` (seconds,
    None = no limit) is enforced by the loop's drivers around each call, since
    Python threads cannot be killed: a sync handler that times out is abandoned.
    """

    def __init__(self, timeout: float | None = DEFAULT_TOOL_TIMEOUT) -> None:
        self.timeout = timeout

    def execute(self, tool: Tool, arguments: Mapping[str, Any], context: ToolContext) -> Any:
        bound = self._bind(tool)
        result = bound.invoke(self._prepare(tool, bound, arguments), context)
        if inspect.isawaitable(result):
            # A sync driver runs each call in a worker thread, which has no event
            # loop of its own, so an async handler gets a private one here.
            return asyncio.run(_await(result))
        return result

    async def aexecute(
        self, tool: Tool, arguments: Mapping[str, Any], context: ToolContext,
    ) -> Any:
        bound = self._bind(tool)
        prepared = self._prepare(tool, bound, arguments)
        if bound.is_async:
            result = bound.invoke(prepared, context)
        else:
            import anyio.to_thread

            # Sync handlers may block: keep them off the event loop.
            result = await anyio.to_thread.run_sync(bound.invoke, prepared, context,
                                                    abandon_on_cancel=True)
        if inspect.isawaitable(result):
            result = await result
        return result

    @staticmethod
    def _bind(tool: Tool) -> Any:
        bound = bind(tool)
        if bound is None:
            raise ToolError("not_found", f"tool {tool.name!r} has no handler",
                            tool_name=tool.name)
        return bound

    @staticmethod
    def _prepare(tool: Tool, bound: Any, arguments: Mapping[str, Any]) -> Any:
        try:
            return bound.prepare(arguments)
        except InvalidArguments as exc:
            raise ToolError("invalid_arguments", str(exc), tool_name=tool.name,
                            metadata={"errors": [list(e) for e in exc.errors]}) from None


async def _await(awaitable: Any) -> Any:
    return await awaitable


class ToolResultEncoder:
    """Turns a handler's value into the tool message text the model reads.

    Pluggable (`tool_result_encoder=`). Rules of the default, first match wins:
    `str` passes through unchanged; a pydantic model -> `model_dump_json()`; a
    dataclass -> its fields as JSON; anything else -> compact JSON, with dates,
    UUIDs, decimals, enums, paths and sets converted; other objects fail with
    `TypeError` (-> ``ToolError("encoding_failed")``), never a silent ``repr``.
    """

    def encode(self, value: Any) -> str:
        if isinstance(value, str):
            return value
        dump = getattr(value, "model_dump_json", None)
        if callable(dump) and not isinstance(value, type):
            return str(dump())
        return _dumps(value)

    def encode_error(self, error: ToolError | ToolFailure) -> str:
        body: dict[str, Any] = {"error": error.message}
        if isinstance(error, ToolFailure) and error.data is not None:
            body["data"] = error.data
        return _dumps(body)


def _json_default(value: Any) -> Any:
    """The encoder's rules for values plain JSON lacks (see `ToolResultEncoder`)."""
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        return dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, _dt.datetime | _dt.date | _dt.time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, uuid.UUID | decimal.Decimal | pathlib.PurePath):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


_dumps = compact_dumps(_json_default)  # json.dumps with these options, encoder built once


def json_safe(value: Any) -> Any:
    """A handler's value as loop events and results carry it, so that `allm.dumps`
    always accepts them (a UI relays events as SSE) while the serializer itself stays
    strict: the value unchanged when `allm.dumps` accepts it (JSON values, tuples,
    bytes, allm values, pydantic models, ...), else its JSON form (`_json_form`)."""
    t = type(value)
    if t is str or t is int or t is bool or value is None:
        return value
    try:
        to_jsonable(value)
    except Exception:  # ValidationError, or a value whose own methods fail
        return _json_form(value, 0)
    return value


_MAX_DEPTH = 64


def _json_form(value: Any, depth: int) -> Any:
    """Plain JSON data for any value: mappings and sequences item by item (keys as
    strings), then the default encoder's rules (a pydantic model via
    ``model_dump(mode="json")``, a dataclass via its fields, dates, UUIDs, decimals,
    enums, paths, sets, bytes), anything else (or nested too deeply) its ``repr``."""
    t = type(value)
    if t is str or t is int or t is bool or value is None:
        return value
    if t is float:
        return value if math.isfinite(value) else repr(value)
    if depth >= _MAX_DEPTH:
        return _repr(value)
    if isinstance(value, Mapping):
        return {k if type(k) is str else str(k): _json_form(x, depth + 1)
                for k, x in value.items()}
    if isinstance(value, list | tuple):
        return [_json_form(x, depth + 1) for x in value]
    if isinstance(value, str):  # subclasses (StrEnum, IntEnum, ...) as their plain value
        return str.__str__(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return _json_form(float.__float__(value), depth)
    try:
        plain = _json_default(value)
    except Exception:
        return _repr(value)
    return _json_form(plain, depth + 1)


def _repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:  # a broken __repr__ (or one too deep) must not break the loop
        return f"<{type(value).__qualname__} object>"


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolOutcome:
    """What one call came to, after the `on_tool_error` policy.

    - ``ok``: success, `content` goes back to the model.
    - ``error``: a failure fed back to the model (`content` is the error text).
    - ``ask_user``: suspended on `question`; no tool message yet.
    - ``halt``: stop the loop with `halt_reason`; `content` is still the tool message.
    """

    call: ToolCall
    kind: Literal["ok", "error", "ask_user", "halt"]
    content: str | None = None
    raw: Any = None
    error: ToolError | None = None
    is_error: bool = False
    question: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    halt_reason: str | None = None
    halt_result: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)


def check_on_tool_error(policy: Any) -> None:
    """Raise ValueError for a policy that is not "continue", "halt" or a callable."""
    if policy in (None, "continue", "halt") or callable(policy):
        return
    raise ValueError(
        f"on_tool_error must be 'continue', 'halt' or a callable (tool_call, error), "
        f"got {policy!r}"
    )


def settle(
    call: ToolCall,
    *,
    raw: Any = None,
    exc: BaseException | None = None,
    encoder: ToolResultEncoder,
    on_tool_error: OnToolError | None = "continue",
) -> ToolOutcome:
    """Classify a handler's return (or exception) into a `ToolOutcome`. Pure."""
    if exc is not None:
        return _route(call, _as_tool_error(call, exc), exc, encoder, on_tool_error)
    if isinstance(raw, ToolError):
        return _route(call, _with_ids(raw, call), raw, encoder, on_tool_error)
    if isinstance(raw, ToolFailure):
        err = ToolError("tool_error", raw.message, tool_name=call.name,
                        tool_call_id=call.id, metadata={"data": json_safe(raw.data)}
                        if raw.data is not None else None)
        return _route(call, err, raw, encoder, on_tool_error, failure=raw)
    if isinstance(raw, AskUser):
        if not isinstance(raw.question, str) or not isinstance(raw.options, dict):
            return _route(call, _invalid(call, raw, "ask_user needs a str question"),
                          raw, encoder, on_tool_error)
        return ToolOutcome(call=call, kind="ask_user", raw=raw, question=raw.question,
                           options=dict(raw.options))
    if isinstance(raw, Halt):
        if not isinstance(raw.reason, str) or not raw.reason:
            return _route(call, _invalid(call, raw, "halt needs a non-empty str reason"),
                          raw, encoder, on_tool_error)
        if raw.reason in RESERVED_HALT_REASONS:
            err = _invalid(call, raw, f"halt reason {raw.reason!r} is reserved by the loop")
            err.metadata["reserved_halt_reason"] = raw.reason
            return _route(call, err, raw, encoder, on_tool_error)
        try:
            content = encoder.encode(raw.result)
        except Exception as e:
            return _route(call, _encoding_failed(call, e), raw, encoder, on_tool_error)
        return ToolOutcome(call=call, kind="halt", content=content, raw=raw,
                           halt_reason=raw.reason, halt_result=raw.result)
    try:
        content = encoder.encode(raw)
        if not isinstance(content, str):
            raise TypeError(f"encoder returned {type(content).__name__}, not str")
    except Exception as e:
        return _route(call, _encoding_failed(call, e), raw, encoder, on_tool_error)
    return ToolOutcome(call=call, kind="ok", content=content, raw=raw)


def _route(
    call: ToolCall, err: ToolError, raw: Any, encoder: ToolResultEncoder,
    policy: OnToolError | None, *, failure: ToolFailure | None = None,
) -> ToolOutcome:
    content = _error_content(err, failure, encoder)
    if policy is None or policy == "continue":
        return ToolOutcome(call=call, kind="error", content=content, raw=raw, error=err,
                           is_error=True)
    if policy == "halt":
        return ToolOutcome(call=call, kind="halt", content=content, raw=raw, error=err,
                           is_error=True, halt_reason="tool_error")
    try:
        decision = policy(call, err)  # type: ignore[operator]
    except Exception as e:
        return ToolOutcome(call=call, kind="halt", content=content, raw=raw, error=err,
                           is_error=True, halt_reason="tool_error",
                           metadata={"on_tool_error_exception": _describe(e)})
    if decision == "halt":
        return ToolOutcome(call=call, kind="halt", content=content, raw=raw, error=err,
                           is_error=True, halt_reason="tool_error")
    if decision is None or decision == "continue":
        return ToolOutcome(call=call, kind="error", content=content, raw=raw, error=err,
                           is_error=True)
    try:  # anything else is a replacement result for the model
        replacement = encoder.encode(decision)
    except Exception as e:
        return ToolOutcome(call=call, kind="halt", content=content, raw=raw,
                           error=_encoding_failed(call, e), is_error=True,
                           halt_reason="tool_error")
    return ToolOutcome(call=call, kind="error", content=replacement, raw=raw, error=err,
                       is_error=True, metadata={"replaced_by_on_tool_error": True})


def _error_content(err: ToolError, failure: ToolFailure | None,
                   encoder: ToolResultEncoder) -> str:
    try:
        return encoder.encode_error(failure if failure is not None else err)
    except Exception:
        return json.dumps({"error": err.message}, ensure_ascii=False)


def _as_tool_error(call: ToolCall, exc: BaseException) -> ToolError:
    if isinstance(exc, ToolError):
        return _with_ids(exc, call)
    reason = "handler_exit" if isinstance(exc, SystemExit | KeyboardInterrupt) \
        else "handler_raised"
    return ToolError(reason, _describe(exc), tool_name=call.name, tool_call_id=call.id,
                     cause=type(exc).__name__)


def _with_ids(err: ToolError, call: ToolCall) -> ToolError:
    if err.tool_call_id is None or err.tool_name is None:
        err.tool_call_id = err.tool_call_id or call.id
        err.tool_name = err.tool_name or call.name
    return err


def _invalid(call: ToolCall, raw: Any, why: str) -> ToolError:
    return ToolError("invalid_return", f"invalid tool return: {why}", tool_name=call.name,
                     tool_call_id=call.id, cause=repr(raw)[:200])


def _encoding_failed(call: ToolCall, exc: BaseException) -> ToolError:
    return ToolError("encoding_failed", f"could not encode the tool result: {exc}",
                     tool_name=call.name, tool_call_id=call.id, cause=type(exc).__name__)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
