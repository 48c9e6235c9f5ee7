"""Shared by the examples: the ``--model provider:model`` switch and a tiny PNG.

Every example runs offline on the scripted `Fake` provider when started without
arguments (the script each example hands to `chat_engine` plays the model), and
against a real provider with ``--model openai:gpt-4.1-mini`` (or
``anthropic:claude-sonnet-4-5``, ``gemini:gemini-2.5-flash``, ...) when that
provider's API key is in the environment. Image examples take ``--model
openai:gpt-image-1`` (or ``gemini:gemini-2.5-flash-image``) the same way.
"""

from __future__ import annotations

import argparse
import struct
import sys
import zlib
from collections.abc import Sequence
from typing import Any

import allm


def parse_args(description: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", metavar="PROVIDER:MODEL",
                        help="a real provider (needs its API key); default: offline Fake")
    return parser.parse_args(argv)


def _require_key(spec: str) -> str:
    provider = spec.partition(":")[0].strip().lower()
    if allm.keys.get(provider) is None:
        env = " or ".join(allm.keys.env_vars_for(provider))
        sys.exit(f"no API key for {provider!r}: set {env}")
    return provider


def chat_engine(
    description: str,
    *,
    script: Sequence[tuple[Any, ...]] | None = None,
    scripts: Sequence[Sequence[tuple[Any, ...]]] | None = None,
    **engine_kw: Any,
) -> tuple[allm.Engine, bool]:
    """``(engine, offline)``: a Fake engine playing `script` / `scripts` (one list of
    entries per model call), or the engine for ``--model`` (same tools and options)."""
    args = parse_args(description)
    if args.model:
        _require_key(args.model)
        return allm.engine(args.model, **engine_kw), False
    fake: dict[str, Any] = {"scripts": scripts} if scripts is not None else {"script": script}
    return allm.engine("fake:example", **fake, **engine_kw), True


def image_engine(description: str, image_script: Sequence[tuple[Any, ...]]
                 ) -> tuple[allm.Engine, bool]:
    """``(engine, offline)`` with an image adapter: `FakeImages` playing
    `image_script`, or OpenAI / Gemini images for ``--model``."""
    args = parse_args(description)
    if not args.model:
        return allm.Engine(image_adapter=allm.providers.FakeImages(image_script)), True
    provider = _require_key(args.model)
    model = args.model.partition(":")[2] or None
    if provider == "openai":
        adapter: Any = allm.providers.OpenAIImages(model=model)
    elif provider in ("gemini", "google"):
        adapter = allm.providers.GeminiImages(model=model)
    else:
        sys.exit(f"no image adapter for {provider!r} (use openai:... or gemini:...)")
    return allm.Engine(image_adapter=adapter), False


def png(width: int = 64, height: int = 64, rgb: tuple[int, int, int] = (220, 30, 30)) -> bytes:
    """A solid-colour PNG (RGB, 8 bits), made with the standard library."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    row = b"\x00" + bytes(rgb) * width
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(row * height))
            + chunk(b"IEND", b""))


def check(condition: bool, message: str) -> None:
    """Exit non-zero with `message` when an example's expectation fails."""
    if not condition:
        sys.exit(f"check failed: {message}")
