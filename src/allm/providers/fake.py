"""`Fake`: a scripted chat adapter, so tests and demos run the real pipeline offline.

Owns the script vocabulary (reference §16, entries as Python tuples), its validation
(at construction, naming the offending entry), the per-instance cursor and the event
sequence one scripted call produces. It ignores the request's content (it records it
when asked) and does no I/O.

Script shapes: `script=[...]` is exactly one call, `scripts=[[...], [...]]` one list
per call, `stream_script=` a flat list (one call) or a list of lists. Precedence:
`stream_script` > `scripts` > `script`, the same for streaming and non-streaming wire
mode (`call.stream` never changes the events). Each `Fake` owns its cursor; a
script past its end raises `AdapterError(reason="no_scripted_response")` at the call
site. (The original kept the cursor in a hidden process-wide table keyed by the
script's content, so two equal scripts shared one cursor: that footgun is gone.)

Entries:

- ``("text", s)`` / ``("text_delta", s)``: a `TextDelta`.
- ``("tool_call", {"id", "name", "arguments", "raw_arguments"?, "metadata"?})``:
  `ToolCallStarted` + `ToolCallCompleted` (`raw_arguments` defaults to the JSON).
- ``("tool_call_delta", {"id", "arguments_delta", "name"?})``: `ToolCallStarted` the
  first time an id is seen, then `ToolCallDelta`. Calls assembled only from deltas get
  their `ToolCallCompleted` when the message closes, like a real provider stream.
- ``("usage", {Usage fields})``: the usage reported on `MessageCompleted` (last wins;
  `Fake(usage=...)` overrides it for every call).
- ``("raw_chunk", data)``: a `RawChunk` (a `Usage` value becomes a usage chunk).
- ``("finish", reason)``: closes the message; later entries are ignored. Without it
  the message closes at the end of the script with ``"tool_calls"`` if the script
  made tool calls, else ``"stop"`` (the original left it None, which no real provider
  does), or None after an error event.
- ``("error", reason_or_error)`` / ``("error", reason, {opts})`` /
  ``("error_event", reason, {opts})``: an `ErrorEvent(AdapterError)` mid-stream (an
  unknown reason becomes ``"unknown"`` with the term as `cause`); the script goes on.
- ``("stream_error", reason, {opts})``: an `ErrorEvent(StreamError)`.
- ``("preflight_error", reason, {opts})``: as the first entry, `stream()` raises the
  `AdapterError` at the call site.
- ``("delay", seconds)``: sleep before the next entry (`time.sleep` in `stream`,
  `anyio.sleep` in `astream`; the script interpretation is shared).
- ``("ok", {Response fields})``: a whole response at once (``output_text`` or
  ``text``, ``tool_calls``, ``finish_reason`` (default stop), ``usage``, ``id``,
  ``model``, ``metadata``).
- ``("retry_until_call", n)`` (first entry): the first n-1 attempts of this call fail
  with a transient `AdapterError(reason="timeout")` before any event; retried under
  `call.retry` like a real adapter (the retry wait is a scripted delay), else the
  stream is ``message_started`` + that error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from .._jsoncompact import compact_dumps
from ..errors import AdapterError, AllmError, StreamError, ValidationError
from ..events import (
    ErrorEvent,
    Event,
    MessageCompleted,
    MessageStarted,
    RawChunk,
    TextCompleted,
    TextDelta,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
)
from ..messages import Message, ToolCall
from ..request import FINISH_REASONS, Request, Usage
from .base import Call

__all__ = ["Fake", "Entry", "Script"]

Entry = tuple[Any, ...]
Script = Sequence[Entry]

_USAGE_FIELDS = frozenset(f.name for f in fields(Usage))
_RESPONSE_FIELDS = frozenset(
    {"id", "request_id", "model", "message", "output_text", "text", "tool_calls",
     "finish_reason", "raw_finish_reason", "usage", "metadata"}
)
_ADAPTER_ERROR_OPTS = frozenset(
    {"message", "provider", "status", "retry_after", "request_id", "body", "cause", "metadata"}
)
_STREAM_ERROR_OPTS = frozenset({"message", "provider", "cause", "metadata", "event_index"})
_TAGS = (
    "text", "text_delta", "tool_call", "tool_call_delta", "usage", "raw_chunk", "finish",
    "error", "error_event", "stream_error", "preflight_error", "delay", "ok",
    "retry_until_call",
)


@dataclass(frozen=True, slots=True)
class _Sleep:
    """An action of the shared interpreter: wait `seconds` before going on."""

    seconds: float


# -- validation -----------------------------------------------------------------------


def _entry_problem(entry: Any, index: int) -> str | None:
    """Why `entry` (at position `index` of its call) is not a legal entry, or None."""
    if not isinstance(entry, (tuple, list)) or not entry:
        return "not_a_tuple"
    tag, args = entry[0], entry[1:]
    if tag not in _TAGS:
        return "unknown_entry"
    n = len(args)
    if tag in ("text", "text_delta"):
        return None if n == 1 and isinstance(args[0], str) else "expected_text"
    if tag == "tool_call":
        if n != 1 or not isinstance(args[0], Mapping):
            return "expected_mapping"
        spec = args[0]
        if not isinstance(spec.get("id"), str) or not isinstance(spec.get("name"), str):
            return "missing_id_or_name"
        if not isinstance(spec.get("arguments", {}), Mapping):
            return "arguments_not_a_mapping"
        return None
    if tag == "tool_call_delta":
        if n != 1 or not isinstance(args[0], Mapping):
            return "expected_mapping"
        spec = args[0]
        if not isinstance(spec.get("id"), str) or not isinstance(
            spec.get("arguments_delta", ""), str
        ):
            return "missing_id_or_delta"
        return None
    if tag == "usage":
        if n != 1:
            return "expected_usage"
        if isinstance(args[0], Usage):
            return None
        if not isinstance(args[0], Mapping):
            return "expected_usage"
        return None if set(args[0]) <= _USAGE_FIELDS else "unknown_usage_field"
    if tag == "raw_chunk":
        return None if n == 1 else "expected_one_value"
    if tag == "finish":
        if n != 1 or not (args[0] is None or args[0] in FINISH_REASONS):
            return "unknown_finish_reason"
        return None
    if tag == "delay":
        ok = n == 1 and isinstance(args[0], (int, float)) and not isinstance(args[0], bool)
        return None if ok and args[0] >= 0 else "expected_seconds"
    if tag == "ok":
        if n != 1 or not isinstance(args[0], Mapping):
            return "expected_mapping"
        return None if set(args[0]) <= _RESPONSE_FIELDS else "unknown_response_field"
    if tag == "retry_until_call":
        if index != 0:
            return "must_be_first"
        ok = n == 1 and isinstance(args[0], int) and not isinstance(args[0], bool)
        return None if ok and args[0] >= 1 else "expected_positive_int"
    # error shapes: ("error", term) | ("error", reason, opts) | (tag, reason, opts?)
    if tag == "error" and n == 1:
        return None
    if n not in (1, 2):
        return "wrong_arity"
    reason = args[0]
    opts = args[1] if n == 2 else {}
    allowed = _STREAM_ERROR_OPTS if tag == "stream_error" else _ADAPTER_ERROR_OPTS
    if not isinstance(opts, Mapping) or not set(opts) <= allowed:
        return "unknown_error_option"
    reasons = StreamError.reasons if tag == "stream_error" else AdapterError.reasons
    if reason not in reasons:
        return "unknown_error_reason"
    if tag == "preflight_error" and index != 0:
        return "must_be_first"
    return None


def _validate_call(entries: Any, path: str, errors: list[tuple[str, str]]) -> tuple[Entry, ...]:
    if not isinstance(entries, (list, tuple)):
        errors.append((path, "not_a_list"))
        return ()
    for i, entry in enumerate(entries):
        problem = _entry_problem(entry, i)
        if problem is not None:
            errors.append((f"{path}.{i}", problem))
    return tuple(tuple(e) if isinstance(e, list) else e for e in entries)


def _is_flat(value: Sequence[Any]) -> bool:
    """A flat stream_script is a list of entries (tuples), not a list of lists."""
    return not value or any(not isinstance(e, list) for e in value)


def _compile_scripts(
    script: Script | None, scripts: Sequence[Script] | None, stream_script: Any
) -> tuple[tuple[Entry, ...], ...]:
    errors: list[tuple[str, str]] = []
    calls: list[tuple[Entry, ...]] = []
    if script is not None and scripts is not None:
        errors.append(("script", "conflicts_with_scripts"))
    if stream_script is not None:
        if not isinstance(stream_script, (list, tuple)):
            errors.append(("stream_script", "not_a_list"))
        elif _is_flat(stream_script):
            calls.append(_validate_call(stream_script, "stream_script", errors))
        else:
            for i, call in enumerate(stream_script):
                calls.append(_validate_call(call, f"stream_script.{i}", errors))
    elif scripts is not None:
        if not isinstance(scripts, (list, tuple)):
            errors.append(("scripts", "not_a_list"))
        else:
            for i, call in enumerate(scripts):
                calls.append(_validate_call(call, f"scripts.{i}", errors))
    elif script is not None:
        calls.append(_validate_call(script, "script", errors))
    if errors:
        raise ValidationError("invalid_script", errors=errors)
    return tuple(calls)


def _usage(value: Usage | Mapping[str, Any]) -> Usage:
    return value if isinstance(value, Usage) else Usage(**dict(value))


def _adapter_error(
    term: Any, opts: Mapping[str, Any] | None = None, provider: str = "fake"
) -> AllmError:
    if isinstance(term, AllmError):
        return term
    kw = {k: v for k, v in (opts or {}).items() if k in _ADAPTER_ERROR_OPTS}
    kw.setdefault("provider", provider)
    if isinstance(term, str) and term in AdapterError.reasons:
        return AdapterError(term, **kw)
    kw.setdefault("message", "scripted error")
    kw.setdefault("cause", term)
    return AdapterError("unknown", **kw)


def _stream_error(reason: str, opts: Mapping[str, Any], provider: str = "fake") -> AllmError:
    kw = {k: v for k, v in opts.items() if k in _STREAM_ERROR_OPTS}
    kw.setdefault("provider", provider)
    return StreamError(reason, **kw)


_dumps = compact_dumps()  # json.dumps(.., separators=(",", ":"), ensure_ascii=False)


def _tool_call_from(spec: Mapping[str, Any] | ToolCall) -> ToolCall:
    if isinstance(spec, ToolCall):
        return spec
    arguments = dict(spec.get("arguments") or {})
    raw = spec.get("raw_arguments")
    if raw is None:
        raw = _dumps(arguments)
    return ToolCall(id=spec["id"], name=spec["name"], arguments=arguments, raw_arguments=raw,
                    metadata=dict(spec.get("metadata") or {}))


# -- the adapter ----------------------------------------------------------------------


class Fake:
    """A deterministic, scripted chat adapter (see the module docstring for entries).

    - `usage`: overrides the usage of every call.
    - `record`: keep every `(Request, Call)` received in `calls` (the call's
      `api_key` redacted).
    - `cursor`: how many calls were served; `reset()` rewinds it.
    - `cleanups`: how many streams ran their cleanup (closed early or finished).
    """

    supports_streaming = True

    def __init__(
        self,
        script: Script | None = None,
        scripts: Sequence[Script] | None = None,
        stream_script: Any = None,
        usage: Usage | Mapping[str, Any] | None = None,
        record: bool = False,
        provider: str = "fake",
    ) -> None:
        self._scripts = _compile_scripts(script, scripts, stream_script)
        if usage is not None and not isinstance(usage, Usage) and (
            not isinstance(usage, Mapping) or not set(usage) <= _USAGE_FIELDS
        ):
            raise ValidationError("invalid_script", errors=[("usage", "expected_usage")])
        self._usage = None if usage is None else _usage(usage)
        self.record = record
        self.provider = provider
        self.calls: list[tuple[Request, Call]] = []
        self.cursor = 0
        self.cleanups = 0
        self._transient: dict[int, int] = {}  # call index -> failed attempts so far
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Fake(calls={len(self._scripts)}, cursor={self.cursor}, provider={self.provider!r})"

    @property
    def scripts(self) -> tuple[tuple[Entry, ...], ...]:
        return self._scripts

    @property
    def requests(self) -> list[Request]:
        """The requests received (with ``record=True``), oldest first."""
        return [request for request, _ in self.calls]

    @property
    def remaining(self) -> int:
        """How many scripted calls are left."""
        return max(len(self._scripts) - self.cursor, 0)

    def reset(self) -> None:
        """Rewind the cursor and forget recorded calls."""
        with self._lock:
            self.cursor = 0
            self.calls.clear()
            self._transient.clear()
            self.cleanups = 0

    def close(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    # -- pre-flight (shared by stream / astream) --------------------------------------

    def _take(self, request: Request, call: Call) -> tuple[int, tuple[Entry, ...]]:
        with self._lock:
            if self.record:
                redacted = replace(call, api_key="[redacted]") if call.api_key else call
                self.calls.append((request, redacted))
            index = self.cursor
            if index >= len(self._scripts):
                raise AdapterError("no_scripted_response", "no scripted response",
                                   provider=self.provider)
            entries = self._scripts[index]
            if entries and entries[0][0] == "preflight_error":
                self.cursor += 1
                _tag, reason, *rest = entries[0]
                raise _adapter_error(reason, rest[0] if rest else None, self.provider)
            self.cursor += 1
            return index, entries

    # -- the shared interpreter -------------------------------------------------------

    def _transient_failure(self, index: int, n: int) -> bool:
        with self._lock:
            failed = self._transient.get(index, 0)
            if failed < n - 1:
                self._transient[index] = failed + 1
                return True
            self._transient.pop(index, None)
            return False

    def _plan(self, index: int, entries: tuple[Entry, ...], call: Call) -> Iterator[Any]:
        """Yield the call's events and `_Sleep` actions, in order."""
        if entries and entries[0][0] == "retry_until_call":
            attempt = 1
            while self._transient_failure(index, entries[0][1]):
                error = AdapterError("timeout", "scripted transient failure",
                                     provider=self.provider)
                policy = call.retry
                if policy is None or not policy.should_retry(error, attempt):
                    yield MessageStarted(id=f"fake-{index + 1}", model=call.model)
                    yield ErrorEvent(error=error)
                    return
                delay = policy.delay(error, attempt)
                if call.on_retry is not None:
                    call.on_retry(attempt, delay, error)
                # Same hook event the HTTP runtime emits, so tests of retry
                # telemetry can run on Fake.
                from .. import telemetry

                telemetry.emit("adapter.retry", {
                    "provider": self.provider, "model": call.model, "attempt": attempt,
                    "delay": delay, "reason": error.reason, "status": None, "error": error,
                    **({"request_id": call.request_id} if call.request_id else {}),
                })
                yield _Sleep(delay)
                attempt += 1
            entries = entries[1:]

        yield MessageStarted(id=f"fake-{index + 1}", model=call.model)
        text: list[str] = []
        calls: dict[str, ToolCall | None] = {}  # id -> completed call (None: deltas only)
        names: dict[str, str] = {}
        raw: dict[str, list[str]] = {}
        usage: Usage | None = None
        finish: str | None = None
        finished = False
        errored = False
        metadata: dict[str, Any] = {}
        msg_id: str | None = None
        model: str | None = None
        raw_finish: str | None = None
        msg_metadata: dict[str, Any] = {}

        for entry in entries:
            tag = entry[0]
            if tag == "text" or tag == "text_delta":
                text.append(entry[1])
                yield TextDelta(delta=entry[1])
            elif tag == "tool_call":
                tc = _tool_call_from(entry[1])
                yield ToolCallStarted(id=tc.id, name=tc.name)
                calls[tc.id] = tc
                yield ToolCallCompleted(id=tc.id, name=tc.name, arguments=tc.arguments,
                                        raw_arguments=tc.raw_arguments, metadata=tc.metadata)
            elif tag == "tool_call_delta":
                spec = entry[1]
                cid = spec["id"]
                if cid not in calls:
                    calls[cid] = None
                    names[cid] = spec.get("name") or ""
                    raw[cid] = []
                    yield ToolCallStarted(id=cid, name=names[cid])
                elif spec.get("name") and not names.get(cid):
                    names[cid] = spec["name"]
                delta = spec.get("arguments_delta", "")
                raw.setdefault(cid, []).append(delta)
                yield ToolCallDelta(id=cid, arguments_delta=delta)
            elif tag == "usage":
                usage = _usage(entry[1])
            elif tag == "raw_chunk":
                data = entry[1]
                yield RawChunk(usage=data) if isinstance(data, Usage) else RawChunk(data=data)
            elif tag == "finish":
                finish = entry[1]
                finished = True
                break
            elif tag == "delay":
                yield _Sleep(float(entry[1]))
            elif tag in ("error", "error_event"):
                errored = True
                opts = entry[2] if len(entry) > 2 else None
                yield ErrorEvent(error=_adapter_error(entry[1], opts, self.provider))
            elif tag == "stream_error":
                errored = True
                opts = entry[2] if len(entry) > 2 else {}
                yield ErrorEvent(error=_stream_error(entry[1], opts, self.provider))
            elif tag == "ok":
                spec = entry[1]
                msg_id, model = spec.get("id"), spec.get("model")
                out = spec.get("output_text", spec.get("text"))
                if out:
                    text.append(out)
                    yield TextDelta(delta=out)
                for item in spec.get("tool_calls") or ():
                    tc = _tool_call_from(item)
                    yield ToolCallStarted(id=tc.id, name=tc.name)
                    calls[tc.id] = tc
                    yield ToolCallCompleted(id=tc.id, name=tc.name, arguments=tc.arguments,
                                            raw_arguments=tc.raw_arguments,
                                            metadata=tc.metadata)
                if spec.get("usage") is not None:
                    usage = _usage(spec["usage"])
                metadata = dict(spec.get("metadata") or {})
                message = spec.get("message")
                if isinstance(message, Message):
                    msg_metadata = dict(message.metadata)
                raw_finish = spec.get("raw_finish_reason")
                finish = spec.get("finish_reason") or "stop"
                finished = True
                break

        # Calls assembled only from deltas complete when the message closes.
        completed: list[ToolCall] = []
        for cid, done in calls.items():
            if done is None:
                from ._common import parse_arguments

                raw_text = "".join(raw.get(cid, ()))
                arguments, ok = parse_arguments(raw_text)
                done = ToolCall(id=cid, name=names.get(cid, ""), arguments=arguments,
                                raw_arguments=raw_text,
                                metadata={} if ok else {"invalid_arguments": True})
                yield ToolCallCompleted(id=cid, name=done.name, arguments=done.arguments,
                                        raw_arguments=done.raw_arguments,
                                        metadata=done.metadata)
            completed.append(done)
        full_text = "".join(text)
        if text:
            yield TextCompleted(text=full_text)
        if not finished and not errored:
            finish = "tool_calls" if completed else "stop"
        if self._usage is not None:
            usage = self._usage
        yield MessageCompleted(
            message=Message(role="assistant", content=full_text, tool_calls=tuple(completed),
                            metadata=msg_metadata),
            finish_reason=finish,
            raw_finish_reason=raw_finish,
            usage=usage,
            id=msg_id,
            model=model,
            metadata=metadata,
        )

    # -- the two thin shells ----------------------------------------------------------

    def stream(self, request: Request, call: Call) -> Iterator[Event]:
        """Take the next script now (raising at the call site when exhausted or on a
        ``preflight_error``), and return a lazy iterator of its events."""
        index, entries = self._take(request, call)
        return self._run(self._plan(index, entries, call))

    def astream(self, request: Request, call: Call) -> AsyncIterator[Event]:
        """The async twin of `stream` (delays use `anyio.sleep`)."""
        index, entries = self._take(request, call)
        return self._arun(self._plan(index, entries, call))

    def _cleanup(self) -> None:
        with self._lock:
            self.cleanups += 1

    def _run(self, plan: Iterator[Any]) -> Iterator[Event]:
        try:
            for item in plan:
                if type(item) is _Sleep:
                    time.sleep(item.seconds)
                else:
                    yield item
        finally:
            self._cleanup()

    async def _arun(self, plan: Iterator[Any]) -> AsyncIterator[Event]:
        try:
            for item in plan:
                if type(item) is _Sleep:
                    import anyio

                    await anyio.sleep(item.seconds)
                else:
                    yield item
        finally:
            self._cleanup()
