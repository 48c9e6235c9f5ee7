"""Generate an image from a prompt (`allm.generate_image`) and save it."""

import tempfile
from pathlib import Path

import _common

import allm

fake_image = allm.Image.from_bytes(_common.png(rgb=(250, 200, 0)),
                                   revised_prompt="a yellow square")
engine, offline = _common.image_engine(__doc__, [("ok", [fake_image])])

response = allm.generate_image(engine, "A flat yellow square on a white background.",
                               size="1024x1024")
image = response.image
_common.check(image is not None, "one image came back")
assert image is not None
out = Path(tempfile.gettempdir()) / "allm-generated.png"
image.save(out)
print(f"saved {image.mime_type} ({image.size} bytes) to {out}")
print(f"images: {response.usage.images}, cost: {response.usage.total_cost}")
