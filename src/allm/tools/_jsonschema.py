"""A compact JSON Schema validator for tool arguments.

Owns checking model-made arguments against a hand-written tool schema before the
handler runs. It covers the keywords tool schemas use in practice (type, enum,
const, properties, required, additionalProperties, items, prefixItems,
min/max(Length|Items|imum), exclusive bounds, multipleOf, pattern, nullable,
anyOf / oneOf / allOf / not, local ``$ref`` into ``$defs`` / ``definitions``);
unknown keywords are ignored, as JSON Schema prescribes. Tools built from Python
signatures or pydantic models are validated by pydantic instead.

Errors are (path, reason) pairs, the shape `ValidationError.errors` uses.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["validate_json"]

_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list | tuple),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
    or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
}


def validate_json(schema: Mapping[str, Any], value: Any) -> list[tuple[str, str]]:
    """Every violation of `schema` by `value`, as (dotted path, reason); [] if valid."""
    errors: list[tuple[str, str]] = []
    _check(schema, value, "", schema, errors, 0)
    return errors


def _resolve(ref: str, root: Mapping[str, Any]) -> Mapping[str, Any] | None:
    if not ref.startswith("#"):
        return None
    node: Any = root
    for part in ref.lstrip("#").split("/"):
        if not part:
            continue
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, Mapping) else None


def _check(
    schema: Any, value: Any, path: str, root: Mapping[str, Any],
    errors: list[tuple[str, str]], depth: int,
) -> None:
    if schema is False:
        errors.append((path or "$", "not allowed"))
        return
    if not isinstance(schema, Mapping) or depth > 64:
        return
    where = path or "$"
    if "$ref" in schema:
        target = _resolve(str(schema["$ref"]), root)
        if target is not None:
            _check(target, value, path, root, errors, depth + 1)
    if value is None and schema.get("nullable") is True:
        return
    expected = schema.get("type")
    if expected is not None:
        names = [expected] if isinstance(expected, str) else list(expected)
        if not any(_TYPES.get(n, lambda v: True)(value) for n in names):
            errors.append((where, f"expected {' or '.join(map(str, names))}, got "
                                  f"{_json_type(value)}"))
            return
    if "enum" in schema and value not in list(schema["enum"]):
        errors.append((where, f"must be one of {list(schema['enum'])!r}"))
    if "const" in schema and value != schema["const"]:
        errors.append((where, f"must be {schema['const']!r}"))
    if isinstance(value, dict):
        _check_object(schema, value, path, root, errors, depth)
    elif isinstance(value, list | tuple):
        _check_array(schema, value, path, root, errors, depth)
    elif isinstance(value, str):
        _check_string(schema, value, where, errors)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _check_number(schema, value, where, errors)
    _check_combinators(schema, value, path, root, errors, depth)


def _check_object(
    schema: Mapping[str, Any], value: dict[str, Any], path: str,
    root: Mapping[str, Any], errors: list[tuple[str, str]], depth: int,
) -> None:
    props = schema.get("properties") or {}
    for name in schema.get("required") or ():
        if name not in value:
            errors.append((_join(path, name), "required"))
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        sub = _join(path, key)
        if key in props:
            _check(props[key], item, sub, root, errors, depth + 1)
        elif extra is False:
            errors.append((sub, "unexpected property"))
        elif isinstance(extra, Mapping):
            _check(extra, item, sub, root, errors, depth + 1)
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        errors.append((path or "$", f"needs at least {schema['minProperties']} properties"))
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        errors.append((path or "$", f"allows at most {schema['maxProperties']} properties"))


def _check_array(
    schema: Mapping[str, Any], value: list[Any] | tuple[Any, ...], path: str,
    root: Mapping[str, Any], errors: list[tuple[str, str]], depth: int,
) -> None:
    where = path or "$"
    prefix = schema.get("prefixItems") or ()
    for i, sub_schema in enumerate(prefix[: len(value)]):
        _check(sub_schema, value[i], _join(path, str(i)), root, errors, depth + 1)
    items = schema.get("items")
    if isinstance(items, Mapping):
        for i in range(len(prefix), len(value)):
            _check(items, value[i], _join(path, str(i)), root, errors, depth + 1)
    if "minItems" in schema and len(value) < schema["minItems"]:
        errors.append((where, f"needs at least {schema['minItems']} items"))
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        errors.append((where, f"allows at most {schema['maxItems']} items"))
    if schema.get("uniqueItems") is True:
        seen: list[Any] = []
        for item in value:
            if item in seen:
                errors.append((where, "items must be unique"))
                break
            seen.append(item)


def _check_string(
    schema: Mapping[str, Any], value: str, where: str, errors: list[tuple[str, str]],
) -> None:
    if "minLength" in schema and len(value) < schema["minLength"]:
        errors.append((where, f"needs at least {schema['minLength']} characters"))
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.append((where, f"allows at most {schema['maxLength']} characters"))
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        try:
            if re.search(pattern, value) is None:
                errors.append((where, f"must match {pattern!r}"))
        except re.error:
            pass  # a pattern Python cannot compile is not the model's fault


def _check_number(
    schema: Mapping[str, Any], value: float, where: str, errors: list[tuple[str, str]],
) -> None:
    if "minimum" in schema and value < schema["minimum"]:
        errors.append((where, f"must be >= {schema['minimum']}"))
    if "maximum" in schema and value > schema["maximum"]:
        errors.append((where, f"must be <= {schema['maximum']}"))
    low = schema.get("exclusiveMinimum")
    if isinstance(low, int | float) and not isinstance(low, bool) and value <= low:
        errors.append((where, f"must be > {low}"))
    high = schema.get("exclusiveMaximum")
    if isinstance(high, int | float) and not isinstance(high, bool) and value >= high:
        errors.append((where, f"must be < {high}"))
    step = schema.get("multipleOf")
    if isinstance(step, int | float) and step and (value / step) % 1 not in (0, 0.0):
        errors.append((where, f"must be a multiple of {step}"))


def _check_combinators(
    schema: Mapping[str, Any], value: Any, path: str, root: Mapping[str, Any],
    errors: list[tuple[str, str]], depth: int,
) -> None:
    where = path or "$"

    def ok(sub: Any) -> bool:
        found: list[tuple[str, str]] = []
        _check(sub, value, path, root, found, depth + 1)
        return not found

    for sub in schema.get("allOf") or ():
        _check(sub, value, path, root, errors, depth + 1)
    any_of = schema.get("anyOf")
    if any_of and not any(ok(s) for s in any_of):
        errors.append((where, "matches none of the allowed schemas (anyOf)"))
    one_of = schema.get("oneOf")
    if one_of and sum(1 for s in one_of if ok(s)) != 1:
        errors.append((where, "must match exactly one schema (oneOf)"))
    if "not" in schema and ok(schema["not"]):
        errors.append((where, "matches a forbidden schema (not)"))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else str(key)


def _json_type(value: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _TYPES[name](value):
            return name
    return type(value).__name__
