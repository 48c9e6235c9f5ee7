"""Ask the user: a tool suspends the loop with a question; the answer resumes it."""

import _common

import allm


@allm.tool
def book_table(city: str = "") -> object:
    """Book a restaurant table. Leave city empty if the user did not say which city."""
    if not city:
        return allm.ask_user("Which city should I book in?")
    return {"booked": True, "city": city}


engine, offline = _common.chat_engine(
    __doc__,
    tools=[book_table],
    scripts=[
        [("tool_call", {"id": "c1", "name": "book_table", "arguments": {}})],
        [("tool_call", {"id": "c2", "name": "book_table", "arguments": {"city": "Boston"}})],
        [("text", "Done: your table in Boston is booked.")],
    ],
)

session, result = allm.Session.start(
    engine, "Book me a table for tonight. Call book_table with no city.", tool_choice="required")
print("halted:", result.halted_reason, "| question:", result.pending_question)
_common.check(session.status == "awaiting_user", "the tool asked the user")

# ... show the question, wait for the user's answer (even in another request) ...
session, result = session.reply(engine, "Boston", tool_choice="auto")
print(result.output_text)
_common.check(session.status == "completed", "the loop finished after the answer")
