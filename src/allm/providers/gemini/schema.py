"""JSON Schema preparation for Gemini tool declarations and structured output (sans-IO).

Owns the two ways a JSON Schema reaches Gemini:

- ``"json_schema"`` (default): `FunctionDeclaration.parametersJsonSchema` and
  `GenerationConfig.responseJsonSchema`. Both take JSON Schema as is (Google's
  reference shows ``additionalProperties: false`` in the example, and the recorded
  pydantic-ai traffic in ../shared/fixtures/gemini sends ``$defs`` / ``$ref``,
  ``anyOf`` with null, ``prefixItems`` and ``title`` / ``default`` to gemini-2.0-flash
  and later with success). We only drop ``$schema`` / ``$id`` / ``$comment``, which
  carry no constraint.
- ``"openapi"``: the older `parameters` / `responseSchema` fields, which take
  Google's OpenAPI 3.0 `Schema` subset (reference: "Schema" in the Gemini API
  reference). That subset rejects ``additionalProperties``, ``$ref`` / ``$defs``,
  ``const``, ``oneOf``, type arrays and most ``format`` values, so `to_openapi_schema`
  inlines ``$ref``s, turns ``const`` into ``enum``, ``oneOf`` into ``anyOf``,
  ``["x", "null"]`` / ``anyOf [.., {"type": "null"}]`` into ``nullable``, upper-cases
  ``type`` and drops what the subset does not know. Recursive schemas cannot be
  inlined and raise `ValidationError` (use the ``json_schema`` mode for them).

Must not know about requests, messages or HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...errors import ValidationError

__all__ = ["clean_json_schema", "to_openapi_schema", "SCHEMA_MODES"]

SCHEMA_MODES: frozenset[str] = frozenset({"json_schema", "openapi"})

_DROP_ALWAYS = frozenset({"$schema", "$id", "$comment"})

# Google's OpenAPI `Schema` fields (Gemini API reference, "Schema").
_OPENAPI_KEYS = frozenset(
    {
        "type", "format", "title", "description", "nullable", "enum", "maxItems",
        "minItems", "properties", "required", "minProperties", "maxProperties",
        "minLength", "maxLength", "pattern", "example", "anyOf", "propertyOrdering",
        "default", "items", "minimum", "maximum",
    }
)
# `format` values the OpenAPI subset accepts per type; others move into the description.
_FORMATS = {
    "STRING": frozenset({"enum", "date-time"}),
    "INTEGER": frozenset({"int32", "int64"}),
    "NUMBER": frozenset({"float", "double"}),
}


def clean_json_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `schema` without the annotation-only keywords Gemini has no use for."""
    out = _strip(schema)
    return out if isinstance(out, dict) else {}


def _strip(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {k: _strip(v) for k, v in node.items() if k not in _DROP_ALWAYS}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def to_openapi_schema(schema: Mapping[str, Any], *, path: str = "schema") -> dict[str, Any]:
    """Convert JSON Schema to Google's OpenAPI `Schema` subset (see module docstring)."""
    defs: dict[str, Any] = {}
    for key in ("$defs", "definitions"):
        found = schema.get(key)
        if isinstance(found, Mapping):
            defs.update(found)
    return _convert(schema, defs, (), path)


def _resolve(ref: str, defs: Mapping[str, Any], stack: tuple[str, ...], path: str) -> tuple[
        str, Mapping[str, Any]]:
    name = ref.rsplit("/", 1)[-1]
    target = defs.get(name)
    if not ref.startswith("#/") or not isinstance(target, Mapping):
        raise ValidationError(
            "invalid_tool", f"cannot resolve $ref {ref!r} at {path}",
            errors=[(path, "unresolvable_ref")], provider="gemini",
        )
    if name in stack:
        raise ValidationError(
            "invalid_tool",
            f"schema at {path} is recursive ({name!r}); Gemini's OpenAPI schema subset "
            "cannot express it: use schema_mode='json_schema'",
            errors=[(path, "recursive_schema")], provider="gemini",
        )
    return name, target


def _convert(node: Any, defs: Mapping[str, Any], stack: tuple[str, ...], path: str) -> dict[
        str, Any]:
    if not isinstance(node, Mapping):
        return {}
    ref = node.get("$ref")
    if isinstance(ref, str):
        name, target = _resolve(ref, defs, stack, path)
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _convert(merged, defs, (*stack, name), path)

    node = dict(node)
    for combinator in ("allOf",):
        subs = node.pop(combinator, None)
        if isinstance(subs, list):
            for sub in subs:
                resolved = _convert(sub, defs, stack, path)
                for k, v in resolved.items():
                    if k == "properties" and isinstance(node.get("properties"), Mapping):
                        node["properties"] = {**node["properties"], **v}
                    elif k == "required" and isinstance(node.get("required"), list):
                        node["required"] = [*node["required"], *v]
                    else:
                        node.setdefault(k, v)
    if "oneOf" in node and "anyOf" not in node:
        node["anyOf"] = node.pop("oneOf")
    if "const" in node and "enum" not in node:
        node["enum"] = [node["const"]]

    out: dict[str, Any] = {}
    nullable = False
    type_ = node.get("type")
    if isinstance(type_, list):
        kinds = [t for t in type_ if t != "null"]
        nullable = len(kinds) != len(type_)
        if len(kinds) == 1:
            type_ = kinds[0]
        else:
            out["anyOf"] = [{"type": str(t).upper()} for t in kinds]
            type_ = None
    if type_ == "null":
        nullable, type_ = True, None
    if isinstance(type_, str):
        out["type"] = type_.upper()

    any_of = node.get("anyOf")
    if isinstance(any_of, list):
        branches = []
        for i, sub in enumerate(any_of):
            if isinstance(sub, Mapping) and sub.get("type") == "null" and len(sub) == 1:
                nullable = True
                continue
            branches.append(_convert(sub, defs, stack, f"{path}.anyOf.{i}"))
        if len(branches) == 1 and "type" not in out:
            out.update({k: v for k, v in branches[0].items() if k not in out})
        elif branches:
            out["anyOf"] = branches

    props = node.get("properties")
    if isinstance(props, Mapping):
        out["properties"] = {
            str(k): _convert(v, defs, stack, f"{path}.properties.{k}") for k, v in props.items()
        }
        required = node.get("required")
        if isinstance(required, list):
            out["required"] = [r for r in required if r in props]
    items = node.get("items")
    if isinstance(items, Mapping):
        out["items"] = _convert(items, defs, stack, f"{path}.items")
    elif isinstance(node.get("prefixItems"), list) and node["prefixItems"]:
        tuple_items = [_convert(s, defs, stack, f"{path}.prefixItems") for s in node["prefixItems"]]
        out["items"] = tuple_items[0] if all(t == tuple_items[0] for t in tuple_items) else {
            "anyOf": tuple_items}

    description = node.get("description")
    notes: list[str] = []
    fmt = node.get("format")
    if isinstance(fmt, str):
        if fmt in _FORMATS.get(out.get("type", ""), frozenset()):
            out["format"] = fmt
        else:
            notes.append(f"(format: {fmt})")
    enum = node.get("enum")
    if isinstance(enum, list):
        if all(isinstance(v, str) for v in enum):
            out["enum"] = list(enum)
            out.setdefault("type", "STRING")
        else:
            # The subset's `enum` is for STRING only: keep the type, say the values.
            notes.append("Allowed values: " + ", ".join(repr(v) for v in enum))
    if notes:
        description = " ".join([description, *notes] if isinstance(description, str) else notes)
    if isinstance(description, str):
        out["description"] = description

    for key in ("title", "minItems", "maxItems", "minLength", "maxLength", "pattern",
                "minimum", "maximum", "minProperties", "maxProperties", "default",
                "example", "propertyOrdering"):
        if key in node and key in _OPENAPI_KEYS:
            out[key] = node[key]
    if nullable or node.get("nullable") is True:
        out["nullable"] = True
    return out
