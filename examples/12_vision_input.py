"""Vision input: a user message with text and an image (`allm.ImagePart`)."""

import _common

import allm

engine, offline = _common.chat_engine(__doc__, script=[("text", "The square is red.")])

red_square = allm.ImagePart.from_bytes(_common.png(64, 64, (220, 30, 30)), detail="low")
message = allm.user(["What colour is this square? Answer in one sentence.", red_square])
response = allm.generate(engine, [message])
print(response.output_text)
_common.check("red" in response.output_text.lower(), "the model saw a red square")
