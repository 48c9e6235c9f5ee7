"""Streaming text: print the answer as it arrives (`allm.stream_generate`), then the
same events folded into a `Response` by a `StreamCollector`."""

import _common

import allm

engine, offline = _common.chat_engine(
    __doc__,
    script=[("text", "One, "), ("delay", 0.01), ("text", "two, "), ("delay", 0.01),
            ("text", "three."), ("usage", {"input_tokens": 9, "output_tokens": 6})],
)

collector = allm.StreamCollector()
for event in allm.stream_generate(engine, "Count from one to three, in words."):
    if isinstance(event, allm.TextDelta):
        print(event.delta, end="", flush=True)
    collector.apply(event)
print()

response = collector.to_response()
print(f"finish: {response.finish_reason}, output tokens: {response.usage.output_tokens}")
_common.check("three" in response.output_text.lower(), "the count reaches three")
