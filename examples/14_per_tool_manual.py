"""Per-tool manual: `get_weather` runs automatically, `confirm_action` (manual=True)
is left for the caller; the caller answers it and calls the model again."""

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
        [("text", "The weather is sunny and the picnic is confirmed.")],
    ],
)

first = allm.chat(engine, "Check the weather in Rome, and call confirm_action to book a "
                          "picnic there. Call both tools now.")
print("halted:", first.halted_reason)
pending = first.pending_tool_calls
print("left for us:", [c.name for c in pending])
_common.check(first.halted_reason == "manual_tool_calls", "the manual call was left to us")
_common.check(all(c.name == "confirm_action" for c in pending), "only the manual tool")

thread = first.thread
for call in pending:
    thread = thread.add_message(allm.tool_result(call.id, "confirmed by the operator",
                                                 name=call.name))
second = allm.chat(engine, thread)
print(second.output_text)
_common.check(second.halted_reason == "completed", "the chat completed")
