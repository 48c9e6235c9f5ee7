"""Variations of an image (`allm.image_variations`; OpenAI dall-e-2 among the real
providers: run it with ``--model openai:dall-e-2``)."""

import _common

import allm

source = allm.Image.from_bytes(_common.png(256, 256, (120, 40, 160)))
variants = [allm.Image.from_bytes(_common.png(256, 256, (120 + 20 * i, 40, 160)))
            for i in range(2)]
engine, offline = _common.image_engine(__doc__, [("ok", variants)])

response = allm.image_variations(engine, source, n=2, size="256x256")
for i, image in enumerate(response.images):
    print(f"variation {i}: {image}")
_common.check(len(response.images) == 2, "two variations")
