"""allm `Request` -> Anthropic Messages request body (sans-IO).

Owns every request-side decision for Anthropic
(https://docs.anthropic.com/en/api/messages):

- System messages (wherever they are) -> top-level ``system``: one string joined with
  blank lines, or text blocks when a block carries ``cache_control``.
- The API wants strictly alternating user/assistant turns: consecutive same-role
  messages are merged, and tool messages become ``tool_result`` blocks of a user turn
  (all results of one turn in one user message, ``is_error`` from `Message.is_error`).
  Inside a user turn the ``tool_result`` blocks go first: the API rejects text before
  them ("tool_result blocks must come first").
- Empty text is dropped (the API rejects empty text blocks); a message left with no
  blocks is dropped with it.
- Images: base64 or URL sources, checked before any request (JPEG, PNG, GIF, WEBP; at
  most 5 MB each, per the vision guide) -> `ValidationError` naming
  ``messages.N.content.M``. Assistant messages cannot carry images.
- A content part whose ``metadata["anthropic"]`` is a block (a dict with ``type``),
  e.g. a ``document``, is sent verbatim: the escape hatch for block kinds allm has no
  neutral type for.
- Assistant turns: when the decoder kept the raw content (thinking, redacted
  thinking, server-tool blocks; ``metadata["anthropic"]["content"]``) and it still
  matches the message's text and tool calls, it is sent back verbatim, signatures
  included, as the API requires for thinking with tool use. If the caller edited the
  message, the thinking blocks are kept and text / ``tool_use`` are rebuilt.
- Tools: ``{name, description, input_schema}`` (+ ``strict`` on models with structured
  outputs). A tool whose ``metadata["anthropic"]`` has a ``type`` is a server tool
  (``web_search_20250305``, ``code_execution_...``) sent as ``{name, **metadata}``;
  other ``metadata["anthropic"]`` keys (``defer_loading``, ``cache_control``) are
  merged into the definition.
- ``tool_choice``: ``auto`` / ``required`` (-> ``any``) / ``none`` / a tool name (->
  ``{"type": "tool"}``) / a dict passed through; ``parallel_tool_calls=False`` adds
  ``disable_parallel_tool_use``.
- ``max_tokens`` is required: params, else the model table (`models`), raised above the
  thinking budget when we chose it; an explicit value at or below the budget is a
  `ValidationError` rather than an API 400.
- Thinking: ``thinking`` = int budget -> ``{"type": "enabled", "budget_tokens": n}``;
  ``True`` / ``"adaptive"`` -> adaptive thinking on models that have it (Opus/Sonnet
  4.6+), else a 4096-token budget; a dict is sent verbatim.
  ``reasoning_effort`` (our decision): on adaptive-thinking models it becomes
  ``output_config.effort`` (``minimal`` -> ``low``) with adaptive thinking unless
  ``thinking`` says otherwise; on older thinking models (3.7, 4.0-4.5) a budget:
  minimal 1024, low 2048, medium 8192, high 16384; ignored on models without thinking.
- Prompt caching: ``cache=True`` marks the system prompt, the last tool and the last
  user turn with ``cache_control: {"type": "ephemeral"}``; ``cache={"ttl": "1h"}``
  does the same with that TTL; ``cache="auto"`` sends the top-level ``cache_control``
  (automatic caching) instead. A message with ``metadata["cache"]`` (True, or a dict
  such as ``{"ttl": "1h"}``) gets a
  breakpoint on its last block.
- Structured output: ``response_format`` json_schema -> ``output_config.format`` on
  models with structured outputs (Opus 4.1+, Sonnet/Haiku 4.5+), else the original's
  forced tool ``respond_with_json_<name>`` (its input becomes the reply text in
  `decode`). ``json_object`` has no Anthropic equivalent and is ignored.
- ``stop`` -> ``stop_sequences``; ``user`` -> ``metadata.user_id``; ``service_tier``;
  ``extra_body`` and `Request.options` are merged last (dicts one level deep).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ...errors import ValidationError
from ...messages import ImagePart, Message, TextPart
from ...request import Request
from .._common import check_image
from .models import DEFAULT_MAX_TOKENS, ModelInfo, model_info

__all__ = [
    "encode_body",
    "IMAGE_MIME",
    "IMAGE_MAX_BYTES",
    "STRUCTURED_TOOL_PREFIX",
    "EFFORT_BUDGETS",
]

PROVIDER = "anthropic"
IMAGE_MIME = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
IMAGE_MAX_BYTES = 5 * 1024 * 1024
STRUCTURED_TOOL_PREFIX = "respond_with_json_"
_STRUCTURED_DESCRIPTION = "Return the final result as a JSON object matching the schema."
DEFAULT_THINKING_BUDGET = 4096
EFFORT_BUDGETS: dict[str, int] = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384}
_EPHEMERAL: dict[str, Any] = {"type": "ephemeral"}
_NAME_OK = re.compile(r"[^a-zA-Z0-9_-]")


def _invalid(reason: str, path: str, why: str, message: str) -> ValidationError:
    return ValidationError(reason, message, errors=[(path, why)], provider=PROVIDER)


def _text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _raw_block(part: TextPart | ImagePart) -> dict[str, Any] | None:
    meta = part.metadata.get("anthropic") if part.metadata else None
    if isinstance(meta, Mapping) and isinstance(meta.get("type"), str):
        return dict(meta)
    return None


def _image_block(part: ImagePart, path: str) -> dict[str, Any]:
    check_image(part, path=path, allowed_mime=IMAGE_MIME, max_bytes=IMAGE_MAX_BYTES,
                provider=PROVIDER)
    image = part.image
    if image.url is not None:
        return {"type": "image", "source": {"type": "url", "url": image.url}}
    return {"type": "image", "source": {"type": "base64", "media_type": image.mime_type,
                                        "data": image.to_base64()}}


def _user_blocks(msg: Message, n: int) -> list[dict[str, Any]]:
    content = msg.content
    if isinstance(content, str):
        return [_text_block(content)] if content else []
    blocks: list[dict[str, Any]] = []
    for m, part in enumerate(content):
        raw = _raw_block(part)
        if raw is not None:
            blocks.append(raw)
        elif isinstance(part, ImagePart):
            blocks.append(_image_block(part, f"messages.{n}.content.{m}"))
        elif part.text:
            blocks.append(_text_block(part.text))
    return blocks


def _tool_result_block(msg: Message, n: int) -> dict[str, Any]:
    if not msg.tool_call_id:
        raise _invalid("invalid_message", f"messages.{n}.tool_call_id", "missing",
                       f"tool message at messages.{n} has no tool_call_id")
    # Images and verbatim blocks (e.g. ``tool_reference``) need the block form.
    plain = isinstance(msg.content, str) or not any(
        isinstance(p, ImagePart) or _raw_block(p) is not None for p in msg.content
    )
    content: Any = msg.text if plain else _user_blocks(msg, n)
    return {"type": "tool_result", "tool_use_id": msg.tool_call_id, "content": content,
            "is_error": bool(msg.is_error)}


def _raw_content(msg: Message) -> list[dict[str, Any]] | None:
    meta = msg.metadata.get("anthropic") if msg.metadata else None
    if not isinstance(meta, Mapping):
        return None
    content = meta.get("content")
    if isinstance(content, list) and all(isinstance(b, Mapping) for b in content):
        return [dict(b) for b in content]
    return None


def _matches(raw: list[dict[str, Any]], msg: Message) -> bool:
    """True when the kept raw content still says what the message says."""
    text = "".join(b.get("text") or "" for b in raw if b.get("type") == "text")
    if text != msg.text:
        return False
    uses = [b for b in raw if b.get("type") == "tool_use"]
    if len(uses) != len(msg.tool_calls):
        return False
    return all(
        b.get("id") == tc.id and b.get("name") == tc.name and (b.get("input") or {}) == tc.arguments
        for b, tc in zip(uses, msg.tool_calls, strict=True)
    )


def _assistant_blocks(msg: Message, n: int) -> list[dict[str, Any]]:
    raw = _raw_content(msg)
    if msg.metadata.get("structured_output_tool"):
        # The reply was a synthetic tool's input shown as text; replaying a tool_use
        # without a tool_result would be rejected, so it goes back as text.
        return [_text_block(msg.text)] if msg.text else []
    if raw is not None and _matches(raw, msg):
        return raw
    blocks = [b for b in raw or () if b.get("type") in ("thinking", "redacted_thinking")]
    content = msg.content
    if isinstance(content, str):
        if content:
            blocks.append(_text_block(content))
    else:
        for m, part in enumerate(content):
            block = _raw_block(part)
            if block is not None:
                blocks.append(block)
            elif isinstance(part, ImagePart):
                raise _invalid("invalid_message", f"messages.{n}.content.{m}",
                               "unsupported_feature",
                               f"Anthropic accepts images only in user messages "
                               f"(messages.{n}.content.{m} is in an assistant message)")
            elif part.text:
                blocks.append(_text_block(part.text))
    for tc in msg.tool_calls:
        blocks.append({"type": "tool_use", "id": tc.id, "name": tc.name,
                       "input": tc.arguments})
    return blocks


def _system_text(msg: Message) -> str:
    return msg.text


Mark = tuple[dict[str, Any], dict[str, Any]]  # (block, its cache_control)


def _encode_messages(
    messages: Sequence[Message],
) -> tuple[list[Message], list[dict[str, Any]], list[Mark]]:
    """(system messages, wire messages, blocks to mark for caching)."""
    systems: list[Message] = []
    wire: list[dict[str, Any]] = []
    marks: list[Mark] = []
    for n, msg in enumerate(messages):
        role = msg.role
        if role == "system":
            # Anthropic's `system` takes text blocks only; dropping an image silently
            # would lose input, so it is refused before any request.
            for m, part in enumerate(() if isinstance(msg.content, str) else msg.content):
                if isinstance(part, ImagePart):
                    raise _invalid("invalid_message", f"messages.{n}.content.{m}",
                                   "image_in_system_message",
                                   f"Anthropic's system prompt takes text only; move the "
                                   f"image at messages.{n}.content.{m} to a user message")
            systems.append(msg)
            continue
        if role == "assistant":
            wire_role, blocks = "assistant", _assistant_blocks(msg, n)
        elif role == "tool":
            wire_role, blocks = "user", [_tool_result_block(msg, n)]
        elif role == "user":
            wire_role, blocks = "user", _user_blocks(msg, n)
        else:
            raise _invalid("invalid_message", f"messages.{n}.role", "invalid",
                           f"unknown role {role!r} at messages.{n}")
        if not blocks:
            continue
        own = _cache_control(msg.metadata.get("cache"))
        if own is not None:
            marks.append((blocks[-1], own))
        if wire and wire[-1]["role"] == wire_role:
            wire[-1]["content"].extend(blocks)
        else:
            wire.append({"role": wire_role, "content": blocks})
    for turn in wire:
        content = turn["content"]
        if turn["role"] == "user" and len(content) > 1:
            results = [b for b in content if b.get("type") == "tool_result"]
            if results and len(results) < len(content):
                turn["content"] = results + [b for b in content if b.get("type") != "tool_result"]
    return systems, wire, marks


def _cache_control(cache: Any) -> dict[str, Any] | None:
    if cache is True:
        return dict(_EPHEMERAL)
    if isinstance(cache, Mapping):
        return {**_EPHEMERAL, **cache}
    return None


def _tool_def(tool: Any, info: ModelInfo) -> dict[str, Any]:
    meta = tool.metadata.get("anthropic") if tool.metadata else None
    if isinstance(meta, Mapping) and isinstance(meta.get("type"), str):
        return {"name": tool.name, **meta}
    out: dict[str, Any] = {"name": tool.name, "description": tool.description,
                           "input_schema": tool.parameters}
    if tool.strict is not None and info.native_json_schema:
        out["strict"] = tool.strict
    if isinstance(meta, Mapping):
        out.update(meta)
    return out


def _tool_choice(choice: Any, names: set[str]) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, Mapping):
        ctype = choice.get("type")
        if ctype in ("auto", "any", "none", "tool"):
            return dict(choice)
        fn = choice.get("function")
        if ctype == "function" and isinstance(fn, Mapping) and fn.get("name"):
            return {"type": "tool", "name": fn["name"]}  # the OpenAI shape, translated
        if isinstance(choice.get("name"), str):
            return {"type": "tool", "name": choice["name"]}
        raise _invalid("invalid_request", "tool_choice", "invalid",
                       f"tool_choice {dict(choice)!r} is not an Anthropic tool choice")
    if choice == "auto":
        return {"type": "auto"}
    if choice in ("required", "any"):
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, str):
        if choice not in names:
            raise _invalid("invalid_request", "tool_choice", "unknown_tool",
                           f"tool_choice names {choice!r}, which is not among the tools")
        return {"type": "tool", "name": choice}
    raise _invalid("invalid_request", "tool_choice", "invalid",
                   f"tool_choice must be a string or a dict, not {type(choice).__name__}")


def _thinking(params: Mapping[str, Any], info: ModelInfo) -> tuple[dict[str, Any] | None,
                                                                 str | None]:
    """(the ``thinking`` field, the ``output_config.effort`` value)."""
    thinking = params.get("thinking")
    effort = params.get("reasoning_effort")
    out: dict[str, Any] | None = None
    if isinstance(thinking, Mapping):
        out = dict(thinking)
    elif thinking is True or thinking == "adaptive":
        out = ({"type": "adaptive"} if info.adaptive_thinking
               else {"type": "enabled", "budget_tokens": DEFAULT_THINKING_BUDGET})
    elif isinstance(thinking, int) and not isinstance(thinking, bool) and thinking > 0:
        out = {"type": "enabled", "budget_tokens": thinking}
    elif thinking not in (None, False, 0, "none", "disabled"):
        raise _invalid("invalid_params", "params.thinking", "invalid",
                       "thinking must be a token budget (int), True, 'adaptive' or a dict")
    if effort is None or effort == "none" or thinking is False:
        return out, None
    if not isinstance(effort, str):
        raise _invalid("invalid_params", "params.reasoning_effort", "invalid",
                       "reasoning_effort must be a string such as 'low' or 'high'")
    if info.adaptive_thinking:
        if out is None and thinking is None:
            out = {"type": "adaptive"}
        return out, "low" if effort == "minimal" else effort
    if info.thinking and out is None and thinking is None:
        budget = EFFORT_BUDGETS.get(effort)
        if budget is None:
            raise _invalid("invalid_params", "params.reasoning_effort", "invalid",
                           f"reasoning_effort {effort!r}: expected one of "
                           f"{', '.join(EFFORT_BUDGETS)}")
        out = {"type": "enabled", "budget_tokens": budget}
    return out, None


def _max_tokens(params: Mapping[str, Any], info: ModelInfo,
                thinking: Mapping[str, Any] | None) -> int:
    budget = thinking.get("budget_tokens") if thinking else None
    budget = budget if isinstance(budget, int) else None
    value = params.get("max_tokens")
    if value is None:
        default = info.default_max_tokens
        if budget is not None and default <= budget:
            # Room for the answer after the thinking, kept small: large non-streaming
            # max_tokens values are refused by the official SDKs (10-minute rule).
            return budget + DEFAULT_MAX_TOKENS
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _invalid("invalid_params", "params.max_tokens", "invalid",
                       f"max_tokens must be a positive integer, not {value!r}")
    if budget is not None and value <= budget:
        raise _invalid("invalid_params", "params.max_tokens", "too_small",
                       f"max_tokens ({value}) must be greater than the thinking budget "
                       f"({budget}): Anthropic counts thinking against max_tokens")
    return value


def _merge(body: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        current = body.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            body[key] = {**current, **value}
        else:
            body[key] = value


def structured_tool_name(response_format: Any) -> str:
    name = response_format.get("name") if isinstance(response_format, Mapping) else None
    nested = response_format.get("json_schema") if isinstance(response_format, Mapping) else None
    if name is None and isinstance(nested, Mapping):  # the OpenAI nesting
        name = nested.get("name")
    clean = _NAME_OK.sub("_", name) if isinstance(name, str) and name else "output"
    return (STRUCTURED_TOOL_PREFIX + clean)[:64]


def _schema(response_format: Mapping[str, Any]) -> Any:
    schema = response_format.get("schema")
    if schema is None:  # the OpenAI nesting: {"json_schema": {"schema": ...}}
        nested = response_format.get("json_schema")
        if isinstance(nested, Mapping):
            schema = nested.get("schema")
    if not isinstance(schema, Mapping):
        raise _invalid("invalid_request", "response_format.schema", "missing",
                       "response_format json_schema needs a 'schema' object")
    return dict(schema)


def encode_body(
    request: Request,
    *,
    model: str,
    params: Mapping[str, Any],
    stream: bool,
    structured_output: str = "auto",
) -> tuple[dict[str, Any], str | None]:
    """The JSON body, and the synthetic structured-output tool's name (or None)."""
    info = model_info(model)
    systems, messages, marks = _encode_messages(request.messages)
    body: dict[str, Any] = {"model": model}
    thinking, effort = _thinking(params, info)
    body["max_tokens"] = _max_tokens(params, info, thinking)
    cache = params.get("cache")
    control = _cache_control(cache)
    # system
    if systems:
        if control is not None or any(m.metadata.get("cache") for m in systems):
            blocks = []
            for m in systems:
                text = _system_text(m)
                if not text:
                    continue
                block = _text_block(text)
                own = _cache_control(m.metadata.get("cache"))
                if own is not None:
                    block["cache_control"] = own
                blocks.append(block)
            if blocks and control is not None:
                blocks[-1]["cache_control"] = dict(control)
            if blocks:
                body["system"] = blocks
        else:
            text = "\n\n".join(t for t in (_system_text(m) for m in systems) if t)
            if text:
                body["system"] = text
    body["messages"] = messages
    # tools
    tools = [_tool_def(t, info) for t in request.tools]
    names = {t.name for t in request.tools}
    choice = _tool_choice(request.tool_choice, names)
    output_config: dict[str, Any] = {}
    structured: str | None = None
    rf = request.response_format
    if isinstance(rf, Mapping) and rf.get("type") == "json_schema":
        schema = _schema(rf)
        native = structured_output == "native" or (
            structured_output == "auto" and info.native_json_schema
        )
        if native:
            output_config["format"] = {"type": "json_schema", "schema": schema}
        else:
            structured = structured_tool_name(rf)
            tools.append({"name": structured, "description": _STRUCTURED_DESCRIPTION,
                          "input_schema": schema})
            # With the caller's tools present the model may still call them first,
            # unless the caller said "none" (the loop's structured-finalize pass 2):
            # then only the structured answer is allowed.
            may_call_tools = bool(request.tools) and request.tool_choice != "none"
            choice = ({"type": "any"} if may_call_tools
                      else {"type": "tool", "name": structured})
    if choice is not None and choice.get("type") in ("any", "tool") and not tools:
        raise _invalid("invalid_request", "tool_choice", "no_tools",
                       f"tool_choice {choice['type']!r} forces a tool call, but no tools "
                       "were given")
    if params.get("parallel_tool_calls") is False and tools:
        choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
    if tools:
        if control is not None:
            tools[-1] = {**tools[-1], "cache_control": dict(control)}
        body["tools"] = tools
    if choice is not None:
        body["tool_choice"] = choice
    if control is not None and messages:
        for turn in reversed(messages):
            if turn["role"] == "user":
                marks.append((turn["content"][-1], control))
                break
    for block, block_control in marks:
        block["cache_control"] = dict(block_control)
    if cache == "auto":
        body["cache_control"] = dict(_EPHEMERAL)
    if thinking is not None:
        body["thinking"] = thinking
    if effort is not None:
        output_config["effort"] = effort
    if output_config:
        body["output_config"] = output_config
    # sampling and the rest
    for key in ("temperature", "top_p", "top_k"):
        if params.get(key) is not None:
            body[key] = params[key]
    stop = params.get("stop")
    if stop is not None:
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if params.get("user") is not None:
        body["metadata"] = {"user_id": str(params["user"])}
    if isinstance(params.get("service_tier"), str):
        body["service_tier"] = params["service_tier"]
    if stream:
        body["stream"] = True
    extra = params.get("extra_body")
    if isinstance(extra, Mapping):
        _merge(body, extra)
    if request.options:
        _merge(body, request.options)
    return body, structured
