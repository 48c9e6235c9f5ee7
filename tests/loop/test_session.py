"""Sessions: the state machine, persistence across processes, streaming, cancellation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from scenario_tools import RESUME_SCRIPTS, engine, tc, transcript

import allm
from allm import Session

HERE = Path(__file__).resolve().parent


def drive(session: Session, eng: allm.Engine) -> Session:
    """Answer whatever the session waits for until it completes (same in every process)."""
    for _ in range(6):
        if session.status == "awaiting_user":
            session, _ = session.reply(eng, "Oslo")
        elif session.status == "awaiting_tools":
            session, _ = session.submit_tool_results(
                eng, {c.id: {"ok": True} for c in session.pending_tool_calls})
        elif session.status == "idle":
            session, _ = session.continue_(eng)
        else:
            break
    return session


CHILD = f"""
import sys
sys.path.insert(0, {str(HERE)!r})
import allm
from scenario_tools import RESUME_SCRIPTS, engine
from test_session import drive
session = allm.loads(sys.stdin.read())
eng = engine(RESUME_SCRIPTS[int(sys.argv[1]):])
print(allm.dumps(drive(session, eng)))
"""


def suspended(status: str) -> tuple[Session, int]:
    """A session suspended in `status`, and how many scripted calls it used."""
    s, _ = Session.start(engine(RESUME_SCRIPTS[:1]), "Book a trip", id="sess-1")
    assert s.status == "awaiting_user"
    if status == "awaiting_user":
        return s, 1
    s, _ = s.reply(engine(RESUME_SCRIPTS[1:2]), "Oslo")
    assert s.status == "awaiting_tools"
    if status == "awaiting_tools":
        return s, 2
    s, result = s.submit_tool_result(None, "c2", {"ok": True})
    assert s.status == "idle" and result is None
    return s, 2


def test_resume_in_new_process_matches_uninterrupted_run() -> None:
    eng = engine(RESUME_SCRIPTS)
    uninterrupted = drive(Session.start(eng, "Book a trip", id="sess-1")[0], eng)
    assert uninterrupted.status == "completed"
    expected = transcript(uninterrupted)
    assert expected[-1][:2] == ("assistant", "Booked; sunny in Oslo.")

    children = []
    for status in ("awaiting_user", "awaiting_tools", "idle"):
        session, used = suspended(status)
        blob = allm.dumps(session)
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(used)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        children.append((status, proc, blob))
    for status, proc, blob in children:
        out, err = proc.communicate(blob, timeout=60)
        assert proc.returncode == 0, err
        resumed = allm.loads(out)
        assert isinstance(resumed, Session)
        assert resumed.status == "completed", status
        assert resumed.id == "sess-1"
        assert transcript(resumed) == expected, status


@pytest.mark.parametrize("status", ["awaiting_user", "awaiting_tools", "idle"])
def test_every_status_round_trips(status: str) -> None:
    session, _ = suspended(status)
    loaded = allm.loads(allm.dumps(session))
    assert loaded == session


def test_illegal_transitions_raise_and_leave_session_untouched() -> None:
    session, _ = suspended("awaiting_tools")
    snapshot = allm.dumps(session)
    eng = engine([[("text", "never")]])
    for op in (lambda: session.reply(eng, "hi"), lambda: session.continue_(eng),
               lambda: session.step(eng), lambda: Session.start(eng, session),
               lambda: session.stream_reply(eng, "hi")):
        with pytest.raises(allm.SessionError):
            op()
    with pytest.raises(allm.SessionError) as err:
        session.submit_tool_results(eng, [("c2", 1), ("nope", 2)])
    assert err.value.reason == "unknown_tool_call_id"
    assert err.value.metadata["tool_call_id"] == "nope"
    assert allm.dumps(session) == snapshot
    assert eng.adapter.calls == []  # type: ignore[union-attr]

    asking, _ = suspended("awaiting_user")
    with pytest.raises(allm.SessionError):
        asking.continue_(eng)
    with pytest.raises(allm.SessionError):
        asking.step(eng)
    done, _ = Session.start(engine([[("text", "hi")]]), "hi")
    with pytest.raises(allm.SessionError):
        done.submit_tool_result(eng, "c1", 1)


def test_error_status() -> None:
    s, result = Session.start(engine([[("text", "x"), ("error", "overloaded")]]), "hi")
    assert s.status == "error" and result.halted_reason == "error"
    assert s.error.reason == "overloaded"
    assert transcript(s) == [("user", "hi", None, (), False)]
    loaded = allm.loads(allm.dumps(s))
    assert loaded.status == "error" and loaded.error.reason == "overloaded"
    with pytest.raises(allm.SessionError) as err:
        loaded.reply(engine([[("text", "x")]]), "again")
    assert err.value.reason == "session_in_error_state"


def test_answer_becomes_tool_result_and_completed_sessions_accept_replies() -> None:
    eng = engine([[tc("c1", "pick_city")], [("text", "Oslo!")], [("text", "Bye.")]])
    s, r = Session.start(eng, "weather?")
    assert (s.status, s.pending_question, s.pending_tool_call_id) == \
        ("awaiting_user", "Which city?", "c1")
    s, r = s.reply(eng, "Oslo")
    assert s.status == "completed" and s.pending_question is None
    assert transcript(s)[2][:3] == ("tool", "Oslo", "c1")
    s, r = s.reply(eng, "thanks")
    assert s.status == "completed" and r.output_text == "Bye."
    assert transcript(s)[-2][:2] == ("user", "thanks")


def test_submit_partial_then_all() -> None:
    eng = engine([[tc("c1", "confirm", action="a"), tc("c2", "confirm", action="b")],
                  [("text", "Both confirmed.")]])
    s, r = Session.start(eng, "do both")
    assert s.status == "awaiting_tools" and r.halted_reason == "manual_tool_calls"
    s, r2 = s.submit_tool_result(eng, "c2", allm.tool_error("declined"))
    assert s.status == "awaiting_tools" and r2 is None
    assert [c.id for c in s.pending_tool_calls] == ["c1"]
    s, r3 = s.submit_tool_result(eng, "c1", "yes")
    assert s.status == "completed" and r3 is not None and r3.output_text == "Both confirmed."
    tool_msgs = [m for m in s.messages if m.role == "tool"]
    assert [(m.tool_call_id, m.is_error) for m in tool_msgs] == [("c2", True), ("c1", False)]


def test_step_statuses() -> None:
    s, step = Session(thread=allm.Thread().add_user("hi")).step(
        engine([[tc("c1", "get_time", city="x")]]))
    assert s.status == "idle" and isinstance(step, allm.StepResult) and not step.done
    assert len(s.messages) == 1 + 2
    s2, _ = Session(thread=allm.Thread().add_user("hi")).step(engine([[("text", "yo")]]))
    assert s2.status == "completed"
    s3, _ = Session(thread=allm.Thread().add_user("hi")).step(
        engine([[tc("c1", "pick_city")]]))
    assert s3.status == "awaiting_user" and s3.pending_tool_call_id == "c1"
    s4, _ = Session(thread=allm.Thread().add_user("hi")).step(
        engine([[tc("c1", "confirm", action="x")]]))
    assert s4.status == "awaiting_tools" and [c.id for c in s4.pending_tool_calls] == ["c1"]
    s5, _ = Session(thread=allm.Thread().add_user("hi")).step(
        engine([[tc("c1", "boom")]]), on_tool_error="halt")
    assert s5.status == "error" and s5.error.reason == "handler_raised"


def test_cancelled_stream_leaves_session_intact() -> None:
    s, _ = suspended("awaiting_user")
    eng = engine([[("text", "a"), ("text", "b"), ("text", "c")]])
    stream = s.stream_reply(eng, "Oslo")
    reducer = allm.StreamReducer(stream.session)
    for i, event in enumerate(stream):
        reducer.apply(event)
        if i == 1:
            break
    stream.close()
    new, result = reducer.finalize()
    assert new is s and result.halted_reason == "cancelled"
    assert eng.adapter.cleanups == 1  # type: ignore[union-attr]
    assert reducer.finalize() == (new, result)  # idempotent


def test_stream_fold_equals_non_streaming() -> None:
    a, ra = Session.start(engine([[tc("c1", "get_time", city="x")], [("text", "ok")]]), "hi")
    stream = Session.stream_start(engine([[tc("c1", "get_time", city="x")], [("text", "ok")]]),
                                  "hi")
    b, rb = stream.fold()
    assert (a.status, transcript(a), ra.halted_reason) == (b.status, transcript(b),
                                                           rb.halted_reason)


def test_session_id_reaches_handlers() -> None:
    seen: list[Any] = []

    @allm.tool
    def who(ctx: allm.ToolContext) -> str:
        seen.append(ctx.session_id)
        return "x"

    eng = engine([[tc("c1", "who")], [("text", "ok")]], tools=[who])
    Session.start(eng, "hi", id="abc")
    assert seen == ["abc"]


def test_async_twins() -> None:
    async def main() -> Session:
        eng = engine(RESUME_SCRIPTS)
        s, r = await Session.astart(eng, "Book a trip")
        assert s.status == "awaiting_user"
        s, r = await s.areply(eng, "Oslo")
        assert s.status == "awaiting_tools"
        s, r2 = await s.asubmit_tool_result(eng, "c2", {"ok": True})
        assert r2 is not None
        return s

    s = anyio.run(main)
    eng = engine(RESUME_SCRIPTS)
    sync = drive(Session.start(eng, "Book a trip")[0], eng)
    assert s.status == "completed" and transcript(s) == transcript(sync)

    async def step_main() -> tuple[Session, Any]:
        return await Session(thread=allm.Thread().add_user("hi")).astep(
            engine([[tc("c1", "get_time", city="x")]]))

    st, step = anyio.run(step_main)
    assert st.status == "idle"


def test_max_turns_after_tools_leaves_the_session_idle() -> None:
    """A loop cut off by max_turns right after its tools ran still owes the model a
    call: the session is idle (continue_ finishes it), not completed."""
    import allm
    from allm.providers import Fake

    @allm.tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    fake = Fake(scripts=[
        [("tool_call", {"id": "c1", "name": "add", "arguments": {"a": 1, "b": 2}}),
         ("finish", "tool_calls")],
        [("text", "3"), ("finish", "stop")],
    ])
    engine = allm.Engine(adapter=fake, model="m", tools=(add,))
    session, result = allm.Session.start(engine, [allm.user("1+2?")], max_turns=1)
    assert result.halted_reason == "max_turns"
    assert session.status == "idle"
    session, result = session.continue_(engine)
    assert session.status == "completed" and result.output_text == "3"
