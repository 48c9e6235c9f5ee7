"""Opt-in validators for allm values (ported from the original's `ALLM.Validate`).

Owns the field rules a request, message, tool, thread, session, image request or
params mapping must follow before it goes anywhere. Each public function returns
None when the value is valid and otherwise raises `ValidationError` listing *every*
failing ``(path, reason)`` pair, in the order the checks run, with dotted paths
(``messages.2.content``). Must not know about providers or I/O.

Differences from the original, adapted to our types: content is a str or a tuple
(a list is accepted too) of `TextPart` / `ImagePart`; sampling params live in
`Request.params`, so their paths are ``params.temperature``; an assistant's tool
calls are a real field, checked here; `Tool.parameters` is the schema; an edit
may take up to 16 input images (OpenAI's gpt-image-1 limit, "image" parameter of
the Images API edit endpoint) instead of the original's 2.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from .errors import FieldError, ValidationError
from .image import Image
from .messages import ROLES, ImagePart, TextPart, ToolCall

__all__ = [
    "request",
    "message",
    "tool",
    "thread",
    "session",
    "image_request",
    "params",
    "SESSION_STATUSES",
]

SESSION_STATUSES: frozenset[str] = frozenset(
    {"idle", "awaiting_user", "awaiting_tools", "completed", "error"}
)
_RESERVED_TOOL_NAMES = frozenset({"auto", "none", "required"})
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_DETAILS = frozenset({"auto", "low", "high"})
_IMAGE_OPERATIONS = frozenset({"generate", "edit", "variation"})
_IMAGE_RESPONSE_FORMATS = frozenset({"binary", "url"})
MAX_EDIT_IMAGES = 16


def _raise(reason: str, errors: list[FieldError], **kw: Any) -> None:
    if errors:
        raise ValidationError(reason, errors=errors, **kw)


def _join(prefix: str, path: str) -> str:
    return f"{prefix}.{path}" if prefix else path


def _in(value: Any, allowed: frozenset[str]) -> bool:
    return isinstance(value, str) and value in allowed


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# ----------------------------------------------------------------------------------
# messages, threads, tools
# ----------------------------------------------------------------------------------


def _message_errors(msg: Any, prefix: str = "") -> list[FieldError]:
    errors: list[FieldError] = []
    role = getattr(msg, "role", None)
    if not _in(role, ROLES):
        errors.append((_join(prefix, "role"), "unknown"))
    content = getattr(msg, "content", None)
    if isinstance(content, str):
        pass
    elif isinstance(content, (tuple, list)):
        for i, part in enumerate(content):
            errors.extend(_part_errors(part, _join(prefix, f"content.{i}")))
    else:
        errors.append((_join(prefix, "content"), "invalid_type"))
    if role == "tool" and not getattr(msg, "tool_call_id", None):
        errors.append((_join(prefix, "tool_call_id"), "required"))
    tool_calls = getattr(msg, "tool_calls", ())
    if not isinstance(tool_calls, (tuple, list)):
        errors.append((_join(prefix, "tool_calls"), "invalid_type"))
    elif tool_calls:
        if role != "assistant":
            errors.append((_join(prefix, "tool_calls"), "not_allowed_for_role"))
        for i, call in enumerate(tool_calls):
            errors.extend(_tool_call_errors(call, _join(prefix, f"tool_calls.{i}")))
    if not isinstance(getattr(msg, "metadata", {}), Mapping):
        errors.append((_join(prefix, "metadata"), "not_a_map"))
    return errors


def _part_errors(part: Any, path: str) -> list[FieldError]:
    if isinstance(part, TextPart):
        return [] if isinstance(part.text, str) else [(f"{path}.text", "not_a_string")]
    if isinstance(part, ImagePart):
        errors: list[FieldError] = []
        if not isinstance(part.image, Image):
            errors.append((f"{path}.image", "invalid_image"))
        if not _in(part.detail, _DETAILS):
            errors.append((f"{path}.detail", "unknown"))
        return errors
    return [(path, "invalid_part_type")]


def _tool_call_errors(call: Any, path: str) -> list[FieldError]:
    if not isinstance(call, ToolCall):
        return [(path, "invalid_type")]
    errors: list[FieldError] = []
    if not isinstance(call.id, str) or not call.id:
        errors.append((f"{path}.id", "empty"))
    if not isinstance(call.name, str) or not call.name:
        errors.append((f"{path}.name", "empty"))
    if not isinstance(call.arguments, Mapping):
        errors.append((f"{path}.arguments", "not_a_map"))
    return errors


def message(msg: Any) -> None:
    """Check one message: role, content shape, tool call id / tool calls."""
    errors = _message_errors(msg)
    bad_parts = [p for p, r in errors if r == "invalid_part_type"]
    metadata: dict[str, Any] = {}
    text = None
    if bad_parts:
        index = int(bad_parts[0].rsplit(".", 1)[1])
        got = type(msg.content[index]).__name__
        metadata["invalid_part_type"] = {"expected": ["TextPart", "ImagePart"], "got": got}
        text = (f"validation failed: content element {index} is not a TextPart or an "
                f"ImagePart (got: {got}); errors: "
                + "; ".join(f"{p}: {r}" for p, r in errors))
    _raise("invalid_message", errors, message=text, metadata=metadata)


def _thread_errors(t: Any, prefix: str = "") -> list[FieldError]:
    messages = getattr(t, "messages", None)
    if not isinstance(messages, (tuple, list)):
        return [(_join(prefix, "messages"), "invalid_type")]
    errors: list[FieldError] = []
    for i, m in enumerate(messages):
        errors.extend(_message_errors(m, _join(prefix, f"messages.{i}")))
    return errors


def thread(t: Any) -> None:
    """Check every message of a thread (paths ``messages.<i>.<field>``)."""
    _raise("invalid_thread", _thread_errors(t))


def _tool_errors(t: Any, prefix: str = "") -> list[FieldError]:
    errors: list[FieldError] = []
    name = getattr(t, "name", None)
    if name == "":
        errors.append((_join(prefix, "name"), "empty"))
    elif isinstance(name, str) and name in _RESERVED_TOOL_NAMES:
        # These would be read as tool_choice modes, not as a tool's name.
        errors.append((_join(prefix, "name"), "reserved_tool_name"))
    elif not isinstance(name, str) or not _TOOL_NAME.match(name):
        errors.append((_join(prefix, "name"), "invalid_format"))
    if not isinstance(getattr(t, "description", None), str):
        errors.append((_join(prefix, "description"), "not_a_string"))
    if not isinstance(getattr(t, "parameters", None), Mapping):
        errors.append((_join(prefix, "parameters"), "not_a_map"))
    return errors


def tool(t: Any) -> None:
    """Check a tool: name ``^[A-Za-z0-9_-]{1,64}$`` and not reserved, description,
    JSON-schema parameters (a mapping; its contents are not checked)."""
    _raise("invalid_tool", _tool_errors(t))


# ----------------------------------------------------------------------------------
# params and requests
# ----------------------------------------------------------------------------------


def _known_params() -> frozenset[str]:
    from .providers.base import NEUTRAL_PARAMS, TRANSPORT_PARAMS

    return NEUTRAL_PARAMS | TRANSPORT_PARAMS


def _params_errors(mapping: Any, prefix: str = "") -> tuple[list[FieldError], list[str]]:
    """(errors, hints): hints are "did you mean" notes for unknown names."""
    if not isinstance(mapping, Mapping):
        return [(prefix or "params", "invalid_type")], []
    known = _known_params()
    errors: list[FieldError] = []
    hints: list[str] = []
    for name, value in mapping.items():
        path = _join(prefix, str(name))
        if not isinstance(name, str) or name not in known:
            errors.append((path, "unknown_param"))
            close = difflib.get_close_matches(str(name), sorted(known), n=1, cutoff=0.6)
            hints.append(f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name))
            continue
        if value is None:
            continue
        if name == "temperature" and not (_is_number(value) and 0.0 <= value <= 2.0):
            errors.append((path, "out_of_range"))
        elif name == "max_tokens" and not (_is_int(value) and value > 0):
            errors.append((path, "must_be_positive"))
    return errors, hints


def params(mapping: Mapping[str, Any]) -> None:
    """Check a params mapping: every name must be a neutral or transport param
    (`allm.providers.base.NEUTRAL_PARAMS | TRANSPORT_PARAMS`); temperature must be
    0..2 and max_tokens a positive int. The message suggests the closest known name
    for each unknown one."""
    errors, hints = _params_errors(mapping)
    message = None
    if hints:
        message = "unknown params: " + ", ".join(hints)
    _raise("invalid_params", errors, message=message)


def _response_format_errors(rf: Any, structured_finalize: Any) -> list[FieldError]:
    errors: list[FieldError] = []
    if rf is None or rf == "text":
        pass
    elif isinstance(rf, Mapping):
        if rf.get("type") == "json_schema" and not isinstance(rf.get("schema"), Mapping):
            errors.append(("response_format.schema", "not_a_map"))
    else:
        errors.append(("response_format", "invalid_shape"))
    if structured_finalize is True and not (
            isinstance(rf, Mapping) and rf.get("type") == "json_schema"):
        errors.append(("structured_finalize", "requires_json_schema"))
    return errors


def _request_errors(req: Any) -> tuple[list[FieldError], list[str]]:
    errors: list[FieldError] = []
    messages = getattr(req, "messages", None)
    if not isinstance(messages, (tuple, list)):
        errors.append(("messages", "invalid_type"))
    elif not messages:
        errors.append(("messages", "empty"))
    else:
        for i, m in enumerate(messages):
            errors.extend(_message_errors(m, f"messages.{i}"))
    tools = getattr(req, "tools", ())
    if not isinstance(tools, (tuple, list)):
        errors.append(("tools", "invalid_type"))
    else:
        seen: set[str] = set()
        duplicate = False
        for i, t in enumerate(tools):
            errors.extend(_tool_errors(t, f"tools.{i}"))
            name = getattr(t, "name", None)
            if isinstance(name, str):
                duplicate = duplicate or name in seen
                seen.add(name)
        if duplicate:
            errors.append(("tools", "duplicate_name"))
    if not isinstance(getattr(req, "tool_choice", None), (str, Mapping, type(None))):
        errors.append(("tool_choice", "invalid_type"))
    param_errors, hints = _params_errors(getattr(req, "params", {}), "params")
    errors.extend(param_errors)
    errors.extend(_response_format_errors(getattr(req, "response_format", None),
                                          getattr(req, "structured_finalize", False)))
    return errors, hints


def request(req: Any) -> None:
    """Check a request: messages (non-empty, each valid), tools (each valid, unique
    names), params, response_format and structured_finalize."""
    errors, hints = _request_errors(req)
    message = None
    if errors and hints:
        message = (f"validation failed: invalid_request ({len(errors)} error(s)); "
                   "unknown params: " + ", ".join(hints))
    _raise("invalid_request", errors, message=message)


# ----------------------------------------------------------------------------------
# sessions and image requests
# ----------------------------------------------------------------------------------


def session(s: Any) -> None:
    """Check a session (duck-typed: status, thread, pending_question,
    pending_tool_calls, metadata): the status is known and what it needs is there."""
    errors: list[FieldError] = []
    status = getattr(s, "status", None)
    if not _in(status, SESSION_STATUSES):
        errors.append(("status", "unknown"))
    if status == "awaiting_user" and getattr(s, "pending_question", None) is None:
        errors.append(("pending_question", "required_for_status"))
    if status == "awaiting_tools" and not getattr(s, "pending_tool_calls", ()):
        errors.append(("pending_tool_calls", "required_for_status"))
    metadata = getattr(s, "metadata", None)
    if status == "error":
        error = metadata.get("error") if isinstance(metadata, Mapping) else None
        if error is None and getattr(s, "error", None) is None:
            errors.append(("metadata", "error_required_for_status"))
    t = getattr(s, "thread", None)
    if t is not None:
        errors.extend(_thread_errors(t, "thread"))
    _raise("invalid_session", errors)


def _valid_size(size: Any) -> bool:
    if size is None or (isinstance(size, str) and size):
        return True  # "auto", "1024x1024", or a provider's own form such as "16:9"
    return (isinstance(size, (tuple, list)) and len(size) == 2
            and all(_is_int(x) and x > 0 for x in size))


def image_request(r: Any) -> None:
    """Check an image request: operation, n, response_format, size, images, and the
    per-operation rules (generate: a prompt and no input images; edit: a prompt
    and 1..16 images; variation: no prompt and exactly one image)."""
    errors: list[FieldError] = []
    operation = getattr(r, "operation", None)
    if not _in(operation, _IMAGE_OPERATIONS):
        errors.append(("operation", "unknown"))
    n = getattr(r, "n", 1)
    if not (_is_int(n) and n > 0):
        errors.append(("n", "must_be_positive"))
    if not _in(getattr(r, "response_format", "binary"), _IMAGE_RESPONSE_FORMATS):
        errors.append(("response_format", "unknown"))
    if not _valid_size(getattr(r, "size", None)):
        errors.append(("size", "invalid_shape"))
    images = getattr(r, "input_images", ())
    count: int | None = None  # unknown when not a list: the count rules then stay quiet
    if not isinstance(images, (tuple, list)):
        errors.append(("input_images", "not_a_list"))
    else:
        count = len(images)
        errors.extend((f"input_images.{i}", "invalid_image")
                      for i, img in enumerate(images) if not isinstance(img, Image))
    mask = getattr(r, "mask", None)
    if mask is not None and not isinstance(mask, Image):
        errors.append(("mask", "invalid_image"))
    prompt = getattr(r, "prompt", None)
    has_prompt = isinstance(prompt, str) and prompt.strip() != ""
    if operation == "generate":
        if not has_prompt:
            errors.append(("prompt", "required_for_operation"))
        if count:  # None (not a list) is already reported
            errors.append(("input_images", "must_be_empty"))
    elif operation == "edit":
        if not has_prompt:
            errors.append(("prompt", "required_for_operation"))
        if count is not None and not 1 <= count <= MAX_EDIT_IMAGES:
            errors.append(("input_images", "invalid_count"))
    elif operation == "variation":
        if prompt not in (None, ""):
            errors.append(("prompt", "not_allowed_for_operation"))
        if count is not None and count != 1:
            errors.append(("input_images", "invalid_count"))
    _raise("invalid_image_request", errors)
