"""Edit an image following a prompt (`allm.edit_image`), optionally with a mask."""

import _common

import allm

source = allm.Image.from_bytes(_common.png(256, 256, (30, 90, 220)))
edited = allm.Image.from_bytes(_common.png(256, 256, (30, 200, 90)))
engine, offline = _common.image_engine(__doc__, [("ok", [edited])])

response = allm.edit_image(engine, source, "Make the whole square green.")
print(f"{len(response.images)} image(s), first: {response.image}")
_common.check(len(response.images) >= 1, "the edit returned an image")
