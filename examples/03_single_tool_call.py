"""A single tool call: the model calls `get_weather`, allm runs it and sends the
result back, the model answers (`allm.chat`, two model calls)."""

import _common

import allm


@allm.tool
def get_weather(city: str) -> dict:
    """Current weather for a city.

    Args:
        city: the city name, e.g. "Oslo"
    """
    return {"city": city, "forecast": "sunny", "temperature_c": 21}


engine, offline = _common.chat_engine(
    __doc__,
    tools=[get_weather],
    scripts=[
        [("tool_call", {"id": "call_1", "name": "get_weather", "arguments": {"city": "Oslo"}})],
        [("text", "It is sunny in Oslo, 21 °C.")],
    ],
)

result = allm.chat(engine, "What's the weather in Oslo?", tool_choice="auto")
print(result.output_text)
tool_messages = [m for m in result.thread.messages if m.role == "tool"]
print(f"halted: {result.halted_reason}, steps: {len(result.steps)}, "
      f"tool results: {len(tool_messages)}")
_common.check(result.halted_reason == "completed", "the chat completed")
_common.check(len(tool_messages) >= 1, "the tool ran")
_common.check("sunny" in result.output_text.lower(), "the answer uses the tool result")
