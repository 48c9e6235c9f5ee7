"""What the Anthropic codec needs to know about Claude model ids (sans-IO, pure).

Owns: the default `max_tokens` per model family (the API requires the field), and the
feature gates the encoder consults: native JSON-schema output (`output_config.format`),
adaptive thinking with `output_config.effort`, and extended thinking at all.

Sources: Anthropic "Models overview" (max output per model), "Structured outputs"
(Claude Opus 4.1+, Sonnet 4.5+, Haiku 4.5+), "Extended thinking" (Claude 3.7 and
every Claude 4 model), "Adaptive thinking" / "Effort" (Opus 4.6, Sonnet 4.6 and
later). Ids are matched by family and version so dated snapshots
(``claude-sonnet-4-5-20250929``) and aliases (``claude-sonnet-4-5``) agree; an id we
cannot parse gets the conservative answer (no native feature, 4096 tokens).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["ModelInfo", "model_info", "DEFAULT_MAX_TOKENS", "NON_STREAMING_MAX_TOKENS"]

DEFAULT_MAX_TOKENS = 4096
"""For model ids the table does not know."""

NON_STREAMING_MAX_TOKENS = 16384
"""Our default cap: the official SDKs refuse non-streaming calls whose `max_tokens`
implies more than ten minutes of generation (about 21k tokens), so a default above
this would break plain `generate()` calls. Callers who want more pass `max_tokens`."""

# claude-opus-4-5, claude-sonnet-4-5-20250929, claude-haiku-4-5, claude-opus-5,
# claude-sonnet-4-0, claude-opus-4-1-20250805
_NEW_STYLE = re.compile(r"claude-(opus|sonnet|haiku|[a-z]+)-(\d+)(?:[-.](\d{1,2}))?(?!\d)")
# claude-3-5-sonnet-20241022, claude-3-7-sonnet-latest, claude-3-haiku-20240307
_OLD_STYLE = re.compile(r"claude-(\d+)(?:-(\d))?-(opus|sonnet|haiku)")


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelInfo:
    family: str | None
    version: tuple[int, int] | None
    default_max_tokens: int
    native_json_schema: bool
    thinking: bool
    adaptive_thinking: bool


@lru_cache(maxsize=256)
def model_info(model: str | None) -> ModelInfo:
    """Capabilities for a model id (cached; pure)."""
    family: str | None = None
    version: tuple[int, int] | None = None
    if model:
        m = _NEW_STYLE.search(model)
        if m:
            family = m.group(1)
            version = (int(m.group(2)), int(m.group(3) or 0))
        else:
            o = _OLD_STYLE.search(model)
            if o:
                family = o.group(3)
                version = (int(o.group(1)), int(o.group(2) or 0))
    if version is None:
        return ModelInfo(family=None, version=None, default_max_tokens=DEFAULT_MAX_TOKENS,
                         native_json_schema=False, thinking=False, adaptive_thinking=False)
    if version < (3, 5):
        max_tokens = 4096
    elif version < (3, 7):
        max_tokens = 8192
    else:
        max_tokens = NON_STREAMING_MAX_TOKENS
    # Structured outputs: Opus 4.1+, Sonnet 4.5+, Haiku 4.5+, and every later model.
    native = (
        version >= (5, 0)
        or (family == "opus" and version >= (4, 1))
        or (family in ("sonnet", "haiku") and version >= (4, 5))
    )
    thinking = version >= (3, 7)
    adaptive = version >= (5, 0) or (family in ("opus", "sonnet") and version >= (4, 6))
    return ModelInfo(family=family, version=version, default_max_tokens=max_tokens,
                     native_json_schema=native, thinking=thinking, adaptive_thinking=adaptive)
