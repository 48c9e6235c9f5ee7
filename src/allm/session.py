"""`Session`: a conversation as a serializable value, and `StreamReducer`.

Owns the session state machine: which operation is legal in which status, how an
operation's input becomes the thread the loop runs on, and how a loop result is
projected back onto a new session. A session holds no engine, tool handler, client or
key: every operation takes the engine first, and tool handlers are found on that
engine by name, so a session loaded in another process continues on a fresh engine.

Every operation returns ``(new_session, result)`` and never changes the session it
was called on. Non-streaming operations are the `StreamReducer` fold of their
streaming twins. An illegal operation raises `SessionError` before anything runs.

| status \\ op   | start | reply | continue_ | step | submit_tool_result(s) |
|----------------|-------|-------|-----------|------|-----------------------|
| idle/completed | run   | run   | run       | run  | SessionError          |
| awaiting_user  | SessionError | answer = the pending call's tool result, run | SessionError | SessionError | the pending call's id only (= reply) |
| awaiting_tools | SessionError | SessionError | SessionError | SessionError | record; run once none is pending (with an engine) |
| error          | SessionError (session_in_error_state) for everything |

Differences from the original: the answer to an ask-user question becomes that tool
call's result (the model sees it where it asked), not a user message after a
placeholder; `submit_tool_result` takes the engine and continues the loop once the
last pending call has its result (pass ``engine=None`` to only record it, e.g. to
stream the continuation with `stream_continue`); a cancelled stream leaves the
session exactly as it was.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from .collector import StreamCollector
from .errors import SessionError, ToolError, ValidationError
from .events import Event, ToolHalt
from .messages import Message, Thread, ToolCall, coerce_messages, tool_result, user
from .request import Usage
from .results import ChatResult, StepResult
from .tools import ToolFailure, ToolResultEncoder

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["Session", "StreamReducer", "SessionStream", "AsyncSessionStream", "STATUSES"]

Status = Literal["idle", "awaiting_user", "awaiting_tools", "completed", "error"]
STATUSES: frozenset[str] = frozenset(
    {"idle", "awaiting_user", "awaiting_tools", "completed", "error"})
Mode = Literal["chat", "step"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """A conversation that can be stored between requests (``allm.dumps(session)``).

    `status`: ``idle | awaiting_user | awaiting_tools | completed | error``.
    `pending_tool_calls`: calls the caller must run (manual tools). `pending_question`
    / `pending_tool_call_id`: the question a tool asked and the call it belongs to.
    `usage` is summed over every model call the session made. `metadata` holds the
    last ``halted_reason`` and, in status ``error``, the ``error``.
    """

    id: str | None = None
    status: str = "idle"
    thread: Thread = field(default_factory=Thread)
    pending_tool_calls: tuple[ToolCall, ...] = ()
    pending_question: str | None = None
    pending_tool_call_id: str | None = None
    usage: Usage = field(default_factory=Usage)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def messages(self) -> tuple[Message, ...]:
        return self.thread.messages

    @property
    def error(self) -> Any:
        return self.metadata.get("error")

    # -- preparing an operation (shared by every twin) -------------------------------

    def _require(self, op: str, allowed: Iterable[str], hint: str = "") -> None:
        if self.status == "error":
            raise SessionError(
                "session_in_error_state",
                f"{op}: the session is in status 'error' ({self.error!r}); start a new "
                "session (its thread can be copied)",
                metadata={"operation": op})
        if self.status not in allowed:
            reason = "missing_tool_results" if self.status == "awaiting_tools" and \
                op in ("continue_", "reply", "step") else "invalid_status_for_operation"
            raise SessionError(
                reason, f"{op} is not allowed in status {self.status!r}{hint}",
                metadata={"operation": op, "status": self.status})

    def _hint(self) -> str:
        if self.status == "awaiting_tools":
            ids = ", ".join(tc.id for tc in self.pending_tool_calls)
            return f"; submit results for {ids} with submit_tool_result(s)"
        if self.status == "awaiting_user":
            return "; answer the pending question with reply()"
        return ""

    @staticmethod
    def _start_base(messages: Any, id: str | None, metadata: Mapping[str, Any] | None
                    ) -> tuple[Session, Thread]:
        if isinstance(messages, Session):
            messages._require("start", ("idle", "completed"), messages._hint())
            return messages, messages.thread
        if isinstance(messages, Thread | Message | str) or (
            isinstance(messages, Sequence) and all(isinstance(m, Message) for m in messages)
        ):
            return Session(id=id, metadata=dict(metadata or {})), coerce_messages(messages)
        raise ValidationError("invalid_session_input",
                              "start needs a Thread, Message(s), a str or a Session",
                              errors=[("messages", "invalid_type")])

    def _reply_thread(self, answer: str | Message, engine: Any) -> Thread:
        self._require("reply", ("idle", "completed", "awaiting_user"), self._hint())
        if self.status == "awaiting_user":
            call_id = self.pending_tool_call_id or ""
            if isinstance(answer, Message):
                if answer.role == "tool" and answer.tool_call_id == call_id:
                    return self.thread.add_message(answer)
                answer = answer.text
            if not isinstance(answer, str):
                raise ValidationError("invalid_message", "reply needs a str or a Message",
                                      errors=[("answer", "invalid_type")])
            return self.thread.add_message(
                tool_result(call_id, answer, name=self._call_name(call_id)))
        if isinstance(answer, Message):
            return self.thread.add_message(answer)
        if not isinstance(answer, str):
            raise ValidationError("invalid_message", "reply needs a str or a Message",
                                  errors=[("answer", "invalid_type")])
        return self.thread.add_message(user(answer))

    def _call_name(self, call_id: str) -> str | None:
        for message in reversed(self.thread.messages):
            for tc in message.tool_calls:
                if tc.id == call_id:
                    return tc.name
        return None

    def _record_results(self, engine: Any, results: Sequence[tuple[str, Any]]) -> Session:
        """Record submitted results (all ids checked first: all or nothing)."""
        if self.status == "awaiting_user":
            ids = [cid for cid, _ in results]
            if ids != [self.pending_tool_call_id]:
                raise SessionError(
                    "unknown_tool_call_id",
                    f"the pending call is {self.pending_tool_call_id!r}; got {ids}",
                    metadata={"tool_call_id": ids[0] if ids else None})
            thread = self._reply_thread(_as_text(results[0][1], engine), engine)
            return replace(self, status="idle", thread=thread, pending_question=None,
                           pending_tool_call_id=None)
        self._require("submit_tool_result", ("awaiting_tools",), self._hint())
        pending = {tc.id: tc for tc in self.pending_tool_calls}
        seen: set[str] = set()
        for cid, _ in results:
            if cid not in pending or cid in seen:
                raise SessionError(
                    "unknown_tool_call_id",
                    f"{cid!r} is not a pending tool call (pending: "
                    f"{', '.join(pending) or 'none'})", metadata={"tool_call_id": cid})
            seen.add(cid)
        encoder = getattr(engine, "tool_result_encoder", None) or ToolResultEncoder()
        thread = self.thread
        for cid, value in results:
            content, is_error = _encode_submitted(value, encoder)
            thread = thread.add_message(tool_result(cid, content, name=pending[cid].name,
                                                    is_error=is_error))
        left = tuple(tc for tc in self.pending_tool_calls if tc.id not in seen)
        return replace(self, thread=thread, pending_tool_calls=left,
                       status="awaiting_tools" if left else "idle")

    def _opts(self, opts: dict[str, Any]) -> dict[str, Any]:
        if self.id is not None:
            opts.setdefault("session_id", self.id)
        return opts

    # -- streaming operations (sync) -------------------------------------------------

    @classmethod
    def stream_start(cls, engine: Engine, messages: Any, *, id: str | None = None,
                     metadata: Mapping[str, Any] | None = None, **opts: Any) -> SessionStream:
        """Run the first turn as events (fold them with `StreamReducer`)."""
        from .loop import stream

        base, thread = cls._start_base(messages, id, metadata)
        return SessionStream(base, "chat", stream(engine, thread, **base._opts(opts)))

    def stream_reply(self, engine: Engine, answer: str | Message, **opts: Any
                     ) -> SessionStream:
        from .loop import stream

        thread = self._reply_thread(answer, engine)
        return SessionStream(self, "chat", stream(engine, thread, **self._opts(opts)))

    def stream_continue(self, engine: Engine, **opts: Any) -> SessionStream:
        from .loop import stream

        self._require("continue_", ("idle", "completed"), self._hint())
        return SessionStream(self, "chat", stream(engine, self.thread, **self._opts(opts)))

    def stream_step(self, engine: Engine, **opts: Any) -> SessionStream:
        from .loop import stream_step

        self._require("step", ("idle", "completed"), self._hint())
        return SessionStream(self, "step",
                             stream_step(engine, self.thread, **self._opts(opts)))

    # -- non-streaming operations (sync) ---------------------------------------------

    @classmethod
    def start(cls, engine: Engine, messages: Any, *, id: str | None = None,
              metadata: Mapping[str, Any] | None = None, **opts: Any
              ) -> tuple[Session, ChatResult]:
        """Start a session with `messages` and run the loop: ``(session, result)``."""
        opts.setdefault("stream", False)
        return _chat(cls.stream_start(engine, messages, id=id, metadata=metadata, **opts))

    def reply(self, engine: Engine, answer: str | Message, **opts: Any
              ) -> tuple[Session, ChatResult]:
        """Add the user's message (or answer the pending question) and run the loop."""
        opts.setdefault("stream", False)
        return _chat(self.stream_reply(engine, answer, **opts))

    def continue_(self, engine: Engine, **opts: Any) -> tuple[Session, ChatResult]:
        """Run the loop on the thread as it is."""
        opts.setdefault("stream", False)
        return _chat(self.stream_continue(engine, **opts))

    def step(self, engine: Engine, **opts: Any) -> tuple[Session, StepResult | ChatResult]:
        """One model call plus its tools: ``(session, StepResult)``."""
        opts.setdefault("stream", False)
        return self.stream_step(engine, **opts).fold()

    def submit_tool_result(self, engine: Engine | None, tool_call_id: str, result: Any,
                           **opts: Any) -> tuple[Session, ChatResult | None]:
        """Record a pending call's result; when none is left and `engine` is given,
        continue the loop. Returns ``(session, ChatResult or None)``."""
        return self.submit_tool_results(engine, [(tool_call_id, result)], **opts)

    def submit_tool_results(
        self, engine: Engine | None,
        results: Mapping[str, Any] | Sequence[tuple[str, Any]], **opts: Any,
    ) -> tuple[Session, ChatResult | None]:
        """`submit_tool_result` for several calls at once (all ids checked first)."""
        items = list(results.items()) if isinstance(results, Mapping) else list(results)
        if not items:
            return self, None
        recorded = self._record_results(engine, items)
        if recorded.status != "idle" or engine is None:
            return recorded, None
        return recorded.continue_(engine, **opts)

    # -- async -----------------------------------------------------------------------

    @classmethod
    def astream_start(cls, engine: Engine, messages: Any, *, id: str | None = None,
                      metadata: Mapping[str, Any] | None = None, **opts: Any
                      ) -> AsyncSessionStream:
        from .loop import astream

        base, thread = cls._start_base(messages, id, metadata)
        return AsyncSessionStream(base, "chat", astream(engine, thread, **base._opts(opts)))

    def astream_reply(self, engine: Engine, answer: str | Message, **opts: Any
                      ) -> AsyncSessionStream:
        from .loop import astream

        thread = self._reply_thread(answer, engine)
        return AsyncSessionStream(self, "chat", astream(engine, thread, **self._opts(opts)))

    def astream_continue(self, engine: Engine, **opts: Any) -> AsyncSessionStream:
        from .loop import astream

        self._require("continue_", ("idle", "completed"), self._hint())
        return AsyncSessionStream(self, "chat",
                                  astream(engine, self.thread, **self._opts(opts)))

    def astream_step(self, engine: Engine, **opts: Any) -> AsyncSessionStream:
        from .loop import astream_step

        self._require("step", ("idle", "completed"), self._hint())
        return AsyncSessionStream(self, "step",
                                  astream_step(engine, self.thread, **self._opts(opts)))

    @classmethod
    async def astart(cls, engine: Engine, messages: Any, *, id: str | None = None,
                     metadata: Mapping[str, Any] | None = None, **opts: Any
                     ) -> tuple[Session, ChatResult]:
        opts.setdefault("stream", False)
        return _as_chat(await cls.astream_start(engine, messages, id=id, metadata=metadata,
                                                **opts).fold())

    async def areply(self, engine: Engine, answer: str | Message, **opts: Any
                     ) -> tuple[Session, ChatResult]:
        opts.setdefault("stream", False)
        return _as_chat(await self.astream_reply(engine, answer, **opts).fold())

    async def acontinue(self, engine: Engine, **opts: Any) -> tuple[Session, ChatResult]:
        opts.setdefault("stream", False)
        return _as_chat(await self.astream_continue(engine, **opts).fold())

    async def astep(self, engine: Engine, **opts: Any
                    ) -> tuple[Session, StepResult | ChatResult]:
        opts.setdefault("stream", False)
        return await self.astream_step(engine, **opts).fold()

    async def asubmit_tool_result(self, engine: Engine | None, tool_call_id: str,
                                  result: Any, **opts: Any
                                  ) -> tuple[Session, ChatResult | None]:
        return await self.asubmit_tool_results(engine, [(tool_call_id, result)], **opts)

    async def asubmit_tool_results(
        self, engine: Engine | None,
        results: Mapping[str, Any] | Sequence[tuple[str, Any]], **opts: Any,
    ) -> tuple[Session, ChatResult | None]:
        items = list(results.items()) if isinstance(results, Mapping) else list(results)
        if not items:
            return self, None
        recorded = self._record_results(engine, items)
        if recorded.status != "idle" or engine is None:
            return recorded, None
        return await recorded.acontinue(engine, **opts)


def _chat(stream: SessionStream) -> tuple[Session, ChatResult]:
    return _as_chat(stream.fold())


def _as_chat(pair: tuple[Session, Any]) -> tuple[Session, ChatResult]:
    session, result = pair
    assert isinstance(result, ChatResult)
    return session, result


def _as_text(value: Any, engine: Any) -> str:
    if isinstance(value, str):
        return value
    encoder = getattr(engine, "tool_result_encoder", None) or ToolResultEncoder()
    return str(encoder.encode(value))


def _encode_submitted(value: Any, encoder: Any) -> tuple[str, bool]:
    if isinstance(value, ToolFailure | ToolError):
        return str(encoder.encode_error(value)), True
    return str(encoder.encode(value)), False


# -- projection of results onto a session ----------------------------------------------


def apply_chat_result(session: Session, result: ChatResult) -> Session:
    """The session after a loop run that ended with `result`."""
    reason = result.halted_reason
    metadata = {**session.metadata, "halted_reason": reason}
    metadata.pop("error", None)
    base = replace(session, thread=result.thread, usage=session.usage + result.usage,
                   pending_tool_calls=(), pending_question=None, pending_tool_call_id=None,
                   metadata=metadata)
    if reason == "ask_user":
        return replace(base, status="awaiting_user",
                       pending_question=result.pending_question,
                       pending_tool_call_id=result.pending_tool_call_id)
    if reason == "manual_tool_calls":
        return replace(base, status="awaiting_tools",
                       pending_tool_calls=result.pending_tool_calls)
    if reason in ("error", "tool_error"):
        metadata["error"] = result.metadata.get("error")
        return replace(base, status="error", metadata=metadata)
    # Unlike the original (always "completed"): a loop stopped by its turn budget or
    # `halt_when` right after running tools still owes the model a call, so the
    # session is "idle" (continue_ picks it up), not "completed".
    last = result.thread.last_message
    if reason in ("max_turns", "halt_when") and last is not None and last.role == "tool":
        return replace(base, status="idle")
    return replace(base, status="completed")


def apply_step_result(session: Session, step: StepResult) -> Session:
    """The session after one step."""
    meta = step.metadata
    halted = meta.get("halted_reason")
    metadata = {**session.metadata}
    metadata.pop("error", None)
    if halted is not None:
        metadata["halted_reason"] = halted
    base = replace(session, thread=step.thread, usage=session.usage + step.response.usage,
                   pending_tool_calls=(), pending_question=None, pending_tool_call_id=None,
                   metadata=metadata)
    if halted == "ask_user":
        return replace(base, status="awaiting_user",
                       pending_question=meta.get("pending_question"),
                       pending_tool_call_id=meta.get("pending_tool_call_id"))
    if halted == "tool_error":
        metadata["error"] = meta.get("error")
        return replace(base, status="error", metadata=metadata)
    if halted is None and step.manual_tool_calls:
        return replace(base, status="awaiting_tools", pending_tool_calls=step.manual_tool_calls)
    if step.response.finish_reason == "error":
        metadata["error"] = step.response.metadata.get("error") or meta.get("error")
        return replace(base, status="error", metadata=metadata)
    return replace(base, status="completed" if step.done else "idle")


# -- folding a session's event stream ----------------------------------------------------


class StreamReducer:
    """Folds a session operation's events into ``(new_session, result)``.

    Build it from the session the operation was called on (`SessionStream.session`),
    `apply` every event (do your UI pushes in the same loop), then `finalize`. A
    stream cut short (no `ChatCompleted` / `StepCompleted`) finalizes to the
    untouched session and a ``ChatResult(halted_reason="cancelled")`` whose `steps`
    are the steps that did complete.
    """

    __slots__ = ("_result", "_tool_error", "collector", "mode", "session")

    def __init__(self, session: Session, mode: Mode = "chat") -> None:
        if mode not in ("chat", "step"):
            raise ValueError(f"StreamReducer mode must be 'chat' or 'step', got {mode!r}")
        self.session = session
        self.mode = mode
        self.collector = StreamCollector(session.thread)
        self._result: tuple[Session, Any] | None = None
        self._tool_error: Any = None

    def apply(self, event: Event) -> None:
        """Fold one event (total: unknown events are ignored)."""
        self.collector.apply(event)
        if type(event) is ToolHalt and event.reason == "tool_error" \
                and self._tool_error is None:
            self._tool_error = event.result  # the collector keeps no error for this halt

    apply_event = apply

    def finalize(self) -> tuple[Session, ChatResult | StepResult]:
        """``(new_session, result)``; idempotent."""
        if self._result is not None:
            return self._result
        c = self.collector
        if self.mode == "chat" and c.chat_result is not None:
            out: tuple[Session, Any] = (apply_chat_result(self.session, c.chat_result),
                                        c.chat_result)
        elif self.mode == "step" and c.steps:
            step = c.steps[0]
            if step.metadata.get("halted_reason") == "tool_error" \
                    and "error" not in step.metadata:
                step = replace(step, metadata={**step.metadata, "error": self._tool_error})
            # The thread is the truth: the step's tool results in the model's order
            # (the collector keeps completion order and an ask-user placeholder).
            added = step.thread.messages[len(self.session.thread.messages):]
            step = replace(step, tool_results=tuple(m for m in added if m.role == "tool"))
            out = (apply_step_result(self.session, step), step)
        else:
            usage = Usage()
            for s in c.steps:
                usage = usage + s.response.usage
            out = (self.session, ChatResult(
                thread=self.session.thread, steps=tuple(c.steps),
                final_response=c.steps[-1].response if c.steps else None,
                halted_reason="cancelled", usage=usage))
        self._result = out
        return out

    def fold(self, events: Iterable[Event]) -> tuple[Session, ChatResult | StepResult]:
        """Apply every event of `events` (closing it afterwards), then finalize."""
        try:
            for event in events:
                self.apply(event)
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()
        return self.finalize()

    async def afold(self, events: AsyncIterable[Event]
                    ) -> tuple[Session, ChatResult | StepResult]:
        try:
            async for event in events:
                self.apply(event)
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()
        return self.finalize()


class SessionStream(Iterator[Event]):
    """The events of one session operation, plus what is needed to fold them.

    Iterate it for the events; `session` is the session the operation started from
    and `mode` the reducer mode (``"step"`` for `stream_step`). `reducer()` builds
    the matching `StreamReducer`; `fold()` consumes the rest and finalizes.
    """

    def __init__(self, session: Session, mode: Mode, events: Iterator[Event]) -> None:
        self.session = session
        self.mode: Mode = mode
        self._events = events

    def __iter__(self) -> SessionStream:
        return self

    def __next__(self) -> Event:
        return next(self._events)

    def close(self) -> None:
        close = getattr(self._events, "close", None)
        if close is not None:
            close()

    def reducer(self) -> StreamReducer:
        return StreamReducer(self.session, self.mode)

    def fold(self) -> tuple[Session, ChatResult | StepResult]:
        return self.reducer().fold(self)


class AsyncSessionStream(AsyncIterator[Event]):
    """The async twin of `SessionStream`."""

    def __init__(self, session: Session, mode: Mode, events: AsyncIterator[Event]) -> None:
        self.session = session
        self.mode: Mode = mode
        self._events = events

    def __aiter__(self) -> AsyncSessionStream:
        return self

    async def __anext__(self) -> Event:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        aclose = getattr(self._events, "aclose", None)
        if aclose is not None:
            await aclose()

    def reducer(self) -> StreamReducer:
        return StreamReducer(self.session, self.mode)

    async def fold(self) -> tuple[Session, ChatResult | StepResult]:
        return await self.reducer().afold(self)

