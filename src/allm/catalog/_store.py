"""The model catalog store: loading, merging, id resolution, lookup and selection.

Owns the in-memory catalog (the bundled ``models.json`` merged with the user's own
files), model-id resolution (exact id, alias, dated snapshot suffix -> family entry)
and the query functions `get`, `select`, `price`. The data file is read lazily, on
the first query, never at ``import allm`` time. Must not know about requests,
adapters or I/O beyond reading the catalog files.

Data layout (one entry per model, per provider)::

    {"schema_version": 1, "catalog_version": "...",
     "providers": {"openai": {"models": {"gpt-4.1-mini": {
         "name": ..., "kind": "chat" | "image", "aliases": [...],
         "limits": {"context_window": int, "max_output_tokens": int},
         "capabilities": {"modalities": {"input": [...], "output": [...]},
                          "tools": bool, "json_native": bool, "vision": bool,
                          "reasoning": bool, "streaming": bool,
                          "image_generation": bool, "images_enabled": bool,
                          "supported_image_operations": [...]},
         "pricing": {"input": $/M, "output": $/M, "cached_input": $/M,
                     "cache_write": $/M, "long_context": {"threshold": n, ...}},
         "lifecycle": {"status": ..., "deprecation_date": ..., "retirement_date": ...}}}}}}
"""

from __future__ import annotations

import copy
import json
import os
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import ValidationError
from ..request import ModelRef

__all__ = [
    "get",
    "select",
    "load",
    "reset",
    "price",
    "entry",
    "resolve",
    "models",
    "catalog_version",
    "split_ref",
    "may_know",
]

DATA_FILE = "models.json"
ENV_VAR = "ALLM_CATALOG"
"""A path to a user catalog file merged over the bundled one on first use."""

PROVIDER_ALIASES: dict[str, str] = {"google": "gemini", "claude": "anthropic"}

# Snapshot suffixes that name a dated version of a family entry:
# OpenAI "-2025-04-14", Anthropic "-20250929", Gemini "-001" / "-preview-05-06",
# and the moving "-latest" tag.
_SUFFIXES = (
    re.compile(r"-\d{4}-\d{2}-\d{2}$"),
    re.compile(r"-\d{8}$"),
    re.compile(r"-\d{3}$"),
    re.compile(r"-\d{2}-\d{2}$"),
    re.compile(r"-\d{2}-\d{4}$"),
    re.compile(r"-latest$"),
    re.compile(r"-preview$"),
)

_lock = threading.RLock()
_data: dict[str, dict[str, dict[str, Any]]] | None = None  # provider -> id -> entry
_aliases: dict[tuple[str, str], str] = {}
_meta: dict[str, Any] = {}
_resolved: dict[tuple[str, str], str | None] = {}
_user_sources: list[dict[str, Any]] = []


def _read_bundled() -> dict[str, Any]:
    from importlib import resources  # lazily: ~8 ms of imports, only on first use

    text = resources.files(__package__).joinpath(DATA_FILE).read_text(encoding="utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        current = out.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            out[key] = _deep_merge(current, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _normalize_doc(doc: Mapping[str, Any], where: str) -> dict[str, dict[str, Any]]:
    """Accept the bundled layout or a flat ``{"provider:model": {...}}`` mapping."""
    out: dict[str, dict[str, Any]] = {}
    providers = doc.get("providers")
    if isinstance(providers, Mapping):
        for prov, block in providers.items():
            models = block.get("models") if isinstance(block, Mapping) else None
            if not isinstance(models, Mapping):
                raise ValidationError(
                    "invalid_params", errors=[(f"{where}.providers.{prov}.models", "expected_object")]
                )
            out.setdefault(_provider(str(prov)), {}).update(
                {str(k): dict(v) for k, v in models.items()}
            )
        return out
    for key, value in doc.items():
        if key in {"schema_version", "catalog_version", "as_of", "currency", "units", "sources"}:
            continue
        prov, sep, model = str(key).partition(":")
        if not sep or not model or not isinstance(value, Mapping):
            raise ValidationError("invalid_params", errors=[(f"{where}.{key}", "expected_provider:model")])
        out.setdefault(_provider(prov), {})[model] = dict(value)
    return out


def _ensure() -> dict[str, dict[str, dict[str, Any]]]:
    global _data
    data = _data
    if data is not None:
        return data
    with _lock:
        if _data is None:
            doc = _read_bundled()
            merged = _normalize_doc(doc, "bundled")
            _meta.clear()
            _meta.update({k: v for k, v in doc.items() if k != "providers"})
            env_path = os.environ.get(ENV_VAR)
            sources = list(_user_sources)
            if env_path:
                sources.insert(0, _read_user(env_path))
            for src in sources:
                _merge_into(merged, _normalize_doc(src, "user"))
            _rebuild_aliases(merged)
            _data = merged
        return _data


def _merge_into(target: dict[str, dict[str, dict[str, Any]]],
                extra: dict[str, dict[str, dict[str, Any]]]) -> None:
    for prov, models in extra.items():
        bucket = target.setdefault(prov, {})
        for model_id, entry in models.items():
            base = bucket.get(model_id)
            bucket[model_id] = _deep_merge(base, entry) if base else copy.deepcopy(entry)


def _rebuild_aliases(data: dict[str, dict[str, dict[str, Any]]]) -> None:
    _aliases.clear()
    _resolved.clear()
    for prov, models in data.items():
        for model_id, entry in models.items():
            for alias in entry.get("aliases") or ():
                _aliases[(prov, str(alias))] = model_id


def _read_user(path: str | os.PathLike[str]) -> dict[str, Any]:
    from pathlib import Path

    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValidationError("invalid_params", f"cannot read catalog file {path}: {exc}",
                              errors=[("catalog", "unreadable")]) from exc
    except ValueError as exc:
        raise ValidationError("invalid_json", f"catalog file {path} is not JSON: {exc}",
                              errors=[("catalog", "invalid_json")]) from exc
    if not isinstance(doc, dict):
        raise ValidationError("invalid_params", errors=[("catalog", "expected_object")])
    return doc


def load(source: str | os.PathLike[str] | Mapping[str, Any], *, replace: bool = False) -> None:
    """Merge a user catalog (file path or mapping) over the bundled one.

    Entries are deep-merged per model, so a file may override only prices. The
    file uses the bundled layout (``{"providers": {"openai": {"models": {...}}}}``)
    or a flat ``{"openai:my-model": {...}}`` mapping. `replace=True` drops the
    user sources loaded before (the bundled data always stays underneath).
    """
    doc = dict(source) if isinstance(source, Mapping) else _read_user(source)
    _normalize_doc(doc, "user")  # validate now, at the call site
    global _data
    with _lock:
        if replace:
            _user_sources.clear()
        _user_sources.append(copy.deepcopy(doc))
        _data = None


def reset() -> None:
    """Forget user catalogs; the bundled file is re-read on next use."""
    global _data
    with _lock:
        _user_sources.clear()
        _data = None
        _resolved.clear()


def catalog_version() -> str | None:
    _ensure()
    value = _meta.get("catalog_version")
    return None if value is None else str(value)


def _provider(name: str) -> str:
    name = name.strip().lower()
    return PROVIDER_ALIASES.get(name, name)


def split_ref(ref: str | ModelRef, model: str | None = None) -> tuple[str | None, str]:
    """``"openai:gpt-4o"`` -> ("openai", "gpt-4o"); a bare id -> (None, id)."""
    if isinstance(ref, ModelRef):
        return _provider(ref.provider), ref.id
    if model is not None:
        return _provider(ref), model
    prov, sep, rest = ref.partition(":")
    if sep and rest:
        return _provider(prov), rest
    return None, ref


def resolve(provider: str, model: str) -> str | None:
    """The catalog id for `model` under `provider` (alias / dated snapshot -> family)."""
    data = _ensure()
    provider = _provider(provider)
    key = (provider, model)
    if key in _resolved:
        return _resolved[key]
    models = data.get(provider)
    found: str | None = None
    if models:
        name = model[len("models/"):] if model.startswith("models/") else model
        candidate = name
        for _ in range(4):
            if candidate in models:
                found = candidate
                break
            if (provider, candidate) in _aliases:
                found = _aliases[(provider, candidate)]
                break
            stripped = candidate
            for pattern in _SUFFIXES:
                stripped = pattern.sub("", stripped)
                if stripped != candidate:
                    break
            if stripped == candidate:
                break
            candidate = stripped
    with _lock:
        _resolved[key] = found
    return found


BUNDLED_PROVIDERS = frozenset({"openai", "anthropic", "gemini"})


def may_know(provider: str | None) -> bool:
    """False when the catalog certainly has no model of `provider` (checked without
    reading the data file, so a Fake-only program never loads the catalog)."""
    if not provider:
        return False
    provider = _provider(provider)
    data = _data
    if data is not None:
        return provider in data
    return provider in BUNDLED_PROVIDERS or bool(_user_sources) or ENV_VAR in os.environ


def entry(provider: str, model: str) -> dict[str, Any] | None:
    """The raw catalog entry (shared, do not mutate) or None if unknown."""
    found = resolve(provider, model)
    if found is None:
        return None
    return _ensure()[_provider(provider)][found]


def _to_ref(provider: str, model_id: str, raw: Mapping[str, Any], requested: str) -> ModelRef:
    metadata: dict[str, Any] = {
        "name": raw.get("name"),
        "kind": raw.get("kind", "chat"),
        **copy.deepcopy(dict(raw.get("lifecycle") or {})),
    }
    for key in ("aliases", "notes", "endpoints"):
        if key in raw:
            metadata[key] = copy.deepcopy(raw[key])
    if requested != model_id:
        metadata["requested_id"] = requested
    pricing = raw.get("pricing")
    return ModelRef(
        provider=provider,
        id=model_id,
        capabilities=copy.deepcopy(dict(raw.get("capabilities") or {})),
        limits=copy.deepcopy(dict(raw.get("limits") or {})),
        pricing=copy.deepcopy(dict(pricing)) if isinstance(pricing, Mapping) else None,
        metadata=metadata,
    )


def get(ref: str | ModelRef, model: str | None = None) -> ModelRef | None:
    """Look a model up: ``get("openai:gpt-4.1-mini")`` or ``get("openai", "gpt-4.1")``.

    Dated snapshot ids resolve to their family entry (the returned `id` is the
    family id, `metadata["requested_id"]` the id asked for). A bare model id is
    searched across providers. Unknown models return None.
    """
    provider, model_id = split_ref(ref, model)
    providers = [provider] if provider else sorted(_ensure())
    for prov in providers:
        found = resolve(prov, model_id)
        if found is not None:
            return _to_ref(prov, found, _ensure()[prov][found], model_id)
    return None


def models(provider: str | None = None) -> list[ModelRef]:
    """Every catalog model (optionally of one provider), in catalog order."""
    data = _ensure()
    provs = [_provider(provider)] if provider else list(data)
    return [_to_ref(p, mid, raw, mid) for p in provs for mid, raw in data.get(p, {}).items()]


def cap(raw: Mapping[str, Any], name: str) -> Any:
    """A capability value; ``{"enabled": x}`` maps (the original's shape) unwrap to x."""
    caps = raw.get("capabilities") or {}
    value = caps.get(name)
    if isinstance(value, Mapping) and "enabled" in value:
        return value["enabled"]
    return value


def _modalities(raw: Mapping[str, Any], direction: str) -> set[str]:
    mods = (raw.get("capabilities") or {}).get("modalities") or {}
    return {str(m) for m in mods.get(direction) or ()}


def select(
    provider: str | None = None,
    *,
    kind: str | None = None,
    tools: bool | None = None,
    json_native: bool | None = None,
    vision: bool | None = None,
    reasoning: bool | None = None,
    image_generation: bool | None = None,
    image_operation: str | None = None,
    input_modalities: Iterable[str] = (),
    output_modalities: Iterable[str] = (),
    min_context_window: int | None = None,
    min_output_tokens: int | None = None,
    max_input_price: float | None = None,
    max_output_price: float | None = None,
    include_retired: bool = False,
    status: str | Iterable[str] | None = None,
) -> list[ModelRef]:
    """Models matching every given filter, cheapest input price first.

    A boolean filter matches models whose capability equals it; price filters skip
    models without a price; retired models are left out unless `include_retired`.
    """
    data = _ensure()
    provs = [_provider(provider)] if provider else list(data)
    want_in, want_out = set(input_modalities), set(output_modalities)
    statuses = {status} if isinstance(status, str) else (set(status) if status else None)
    flags = {"tools": tools, "json_native": json_native, "vision": vision,
             "reasoning": reasoning, "image_generation": image_generation}
    out: list[tuple[float, str, ModelRef]] = []
    for prov in provs:
        for mid, raw in data.get(prov, {}).items():
            life = raw.get("lifecycle") or {}
            st = life.get("status", "active")
            if statuses is not None and st not in statuses:
                continue
            if st == "retired" and not include_retired and statuses is None:
                continue
            if kind is not None and raw.get("kind", "chat") != kind:
                continue
            if any(v is not None and bool(cap(raw, k)) != v for k, v in flags.items()):
                continue
            if image_operation is not None and image_operation not in (
                cap(raw, "supported_image_operations") or ()
            ):
                continue
            if want_in - _modalities(raw, "input") or want_out - _modalities(raw, "output"):
                continue
            limits = raw.get("limits") or {}
            if min_context_window is not None and (limits.get("context_window") or 0) < min_context_window:
                continue
            if min_output_tokens is not None and (limits.get("max_output_tokens") or 0) < min_output_tokens:
                continue
            prices = raw.get("pricing") or {}
            pin, pout = prices.get("input"), prices.get("output")
            if max_input_price is not None and (pin is None or pin > max_input_price):
                continue
            if max_output_price is not None and (pout is None or pout > max_output_price):
                continue
            sort_key = float(pin) if isinstance(pin, int | float) else float("inf")
            out.append((sort_key, f"{prov}:{mid}", _to_ref(prov, mid, raw, mid)))
    out.sort(key=lambda item: (item[0], item[1]))
    return [ref for _, _, ref in out]


def price(ref: str | ModelRef, model: str | None = None) -> dict[str, Any] | None:
    """The model's price table (USD per million tokens; see the module docstring)."""
    if isinstance(ref, ModelRef) and ref.pricing is not None:
        return copy.deepcopy(dict(ref.pricing))
    provider, model_id = split_ref(ref, model)
    found = get(provider, model_id) if provider else get(model_id)
    return None if found is None or found.pricing is None else found.pricing
