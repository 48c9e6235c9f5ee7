"""The model catalog: capabilities, limits, prices and lifecycle of known models.

A bundled, versioned data file (``models.json``, package data) lists current
OpenAI, Anthropic and Gemini chat and image models. It is read lazily on first
use (never at ``import allm``). Users merge their own data over it with `load`
(or the ``ALLM_CATALOG`` environment variable naming a JSON file).

- `get("openai:gpt-4.1-mini")` -> `ModelRef` or None; dated snapshot ids
  (``gpt-4.1-mini-2025-04-14``, ``claude-sonnet-4-5-20250929``) resolve to their
  family entry.
- `select(provider=None, tools=True, vision=True, max_input_price=1.0, ...)`.
- `price(ref)` -> the price table (USD per million tokens) or None.
- `preflight(provider, model, request)` / `preflight_image(...)`: capability
  checks the facade runs before any HTTP (unknown models are never blocked).
- `populate_costs(usage, provider, model)` / `image_costs(...)`: fill costs.

Why a bundled file rather than pydantic's ``genai-prices`` as the source: the
catalog must also carry capabilities (tools, native JSON schema, vision, image
operations), limits and lifecycle, which genai-prices does not have; importing
genai-prices costs ~0.6 s; and its optional auto-update fetches prices over the
network at run time. Its price data (MIT) was used to cross-check ours, and
`configure(price_source="genai-prices" | "auto")` routes cost computation to it
when it is installed (for tiered, batch or fast-mode prices we do not model).
"""

from __future__ import annotations

from ._checks import (
    compute_costs,
    configure,
    image_costs,
    populate_costs,
    preflight,
    preflight_image,
)
from ._store import (
    catalog_version,
    get,
    load,
    models,
    price,
    reset,
    resolve,
    select,
    split_ref,
)

__all__ = [
    "get",
    "select",
    "load",
    "reset",
    "price",
    "models",
    "resolve",
    "split_ref",
    "catalog_version",
    "preflight",
    "preflight_image",
    "populate_costs",
    "image_costs",
    "compute_costs",
    "configure",
]
