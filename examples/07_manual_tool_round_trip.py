"""Manual tool round trip: the loop stops at the tool calls (``mode="manual"``), the
caller runs them and appends the results, then calls the model again."""

import json

import _common

import allm

get_weather = allm.Tool(
    name="get_weather",
    description="Current weather for a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}},
                "required": ["city"]},
)  # no handler: the caller runs it

engine, offline = _common.chat_engine(
    __doc__,
    tools=[get_weather],
    scripts=[
        [("tool_call", {"id": "call_1", "name": "get_weather", "arguments": {"city": "Lima"}})],
        [("text", "It is cloudy in Lima.")],
    ],
)

first = allm.chat(engine, "What's the weather in Lima?", mode="manual",
                  tool_choice="required")
print("halted:", first.halted_reason)
_common.check(first.halted_reason == "manual_tool_calls", "the loop left the call to us")

thread = first.thread
for call in first.pending_tool_calls:
    print(f"running {call.name}({call.arguments}) ourselves")
    result = {"city": call.arguments.get("city"), "forecast": "cloudy"}
    thread = thread.add_message(allm.tool_result(call.id, json.dumps(result), name=call.name))

second = allm.chat(engine, thread, mode="manual")
print(second.output_text)
_common.check(second.halted_reason == "completed", "the model answered")
_common.check("cloudy" in second.output_text.lower(), "the answer uses our result")
