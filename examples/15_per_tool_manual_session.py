"""Per-tool manual with a session: the session waits in ``awaiting_tools`` for the
manual call's result; `submit_tool_result` records it and continues the loop."""

import _common

import allm


@allm.tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"sunny in {city}"


@allm.tool(manual=True)
def confirm_action(action: str) -> str:
    """Ask the operator to confirm an action before it is taken."""
    raise RuntimeError("manual tools are never run by the loop")


engine, offline = _common.chat_engine(
    __doc__,
    tools=[get_weather, confirm_action],
    scripts=[
        [("tool_call", {"id": "w1", "name": "get_weather", "arguments": {"city": "Rome"}}),
         ("tool_call", {"id": "k1", "name": "confirm_action",
                        "arguments": {"action": "book a picnic in Rome"}})],
        [("text", "Sunny, and the picnic is booked.")],
    ],
)

session, result = allm.Session.start(
    engine, "Check the weather in Rome, and call confirm_action to book a picnic there. "
            "Call both tools now.")
print("status:", session.status, "| pending:", [c.name for c in session.pending_tool_calls])
_common.check(session.status == "awaiting_tools", "the session waits for the manual tool")

# The session can be stored here (allm.dumps) while a human confirms.
session = allm.loads(allm.dumps(session))
(call,) = session.pending_tool_calls
session, result = session.submit_tool_result(engine, call.id, {"confirmed": True})
assert result is not None
print(result.output_text)
print("status:", session.status)
_common.check(session.status == "completed", "the session completed")
