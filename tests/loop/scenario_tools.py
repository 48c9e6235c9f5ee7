"""Tools and scripts shared by the loop tests and the subprocess resume check.

Importable by a fresh interpreter (the session persistence test runs one), so every
handler is deterministic and defined at module level.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel

import allm
from allm.providers import Fake


@allm.tool
def get_weather(city: str, unit: str = "c") -> dict[str, Any]:
    """Get the weather for a city.

    Args:
        city: The city name.
        unit: "c" or "f".
    """
    return {"forecast": "sunny", "city": city, "unit": unit}


@allm.tool
def get_time(city: str) -> str:
    """The local time in a city."""
    return f"12:00 in {city}"


@allm.tool
def boom(x: int = 0) -> str:
    """Always fails."""
    raise RuntimeError("kaboom")


@allm.tool
def slow(seconds: float) -> str:
    """Sleeps."""
    time.sleep(seconds)
    return "slept"


@allm.tool
def pick_city(hint: str = "") -> Any:
    """Ask the user which city."""
    return allm.ask_user("Which city?", choices=["Oslo", "Bergen"])


@allm.tool
def finish(summary: str) -> Any:
    """Stop the loop with a result."""
    return allm.halt("done", {"summary": summary})


confirm = allm.Tool(
    name="confirm",
    description="Ask a human to confirm.",
    parameters={"type": "object", "properties": {"action": {"type": "string"}},
                "required": ["action"]},
    manual=True,
)


class Forecast(BaseModel):
    city: str
    temperature: int


ALL_TOOLS = [get_weather, get_time, boom, slow, pick_city, finish, confirm]


def tc(id: str, name: str, **arguments: Any) -> tuple[str, dict[str, Any]]:
    return ("tool_call", {"id": id, "name": name, "arguments": arguments})


def engine(scripts: list[list[Any]], tools: list[allm.Tool] | None = None,
           **kw: Any) -> allm.Engine:
    return allm.Engine(adapter=Fake(scripts=scripts, record=True), model="fake-model",
                       tools=ALL_TOOLS if tools is None else tools, **kw)


# The resume scenario: ask-user -> manual confirm -> auto tool -> final text.
RESUME_SCRIPTS: list[list[Any]] = [
    [tc("c1", "pick_city")],
    [("text", "Confirming."), tc("c2", "confirm", action="book")],
    [tc("c3", "get_weather", city="Oslo")],
    [("text", "Booked; sunny in Oslo.")],
]


def transcript(session_or_thread: Any) -> list[tuple[Any, ...]]:
    thread = getattr(session_or_thread, "thread", session_or_thread)
    return [(m.role, m.text, m.tool_call_id, tuple((c.id, c.name) for c in m.tool_calls),
             m.is_error) for m in thread.messages]
