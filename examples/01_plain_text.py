"""Plain text: one prompt, one answer (`allm.generate`)."""

import _common

import allm

engine, offline = _common.chat_engine(
    __doc__,
    script=[("text", "Paris."), ("usage", {"input_tokens": 12, "output_tokens": 2})],
)

response = allm.generate(engine, [
    allm.system("Answer in one word, then a full stop."),
    allm.user("What is the capital of France?"),
])
print(response.output_text)
print(f"finish: {response.finish_reason}, usage: {response.usage.total} tokens")
_common.check("paris" in response.output_text.lower(), "the answer names Paris")
