"""Multi-turn chat without a session: keep the thread and append to it."""

import _common

import allm

engine, offline = _common.chat_engine(
    __doc__,
    scripts=[[("text", "Nice to meet you, Ada!")], [("text", "Your name is Ada.")]],
)

first = allm.chat(engine, [allm.system("Be brief."), allm.user("Hi, my name is Ada.")])
print("assistant:", first.output_text)

thread = first.thread.add_user("What is my name?")
second = allm.chat(engine, thread)
print("assistant:", second.output_text)

print(f"messages in the thread: {len(second.thread)}")
_common.check(len(second.thread) == 5, "system, user, assistant, user, assistant")
_common.check("ada" in second.output_text.lower(), "the model remembers the name")
