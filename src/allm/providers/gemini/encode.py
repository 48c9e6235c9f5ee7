"""Request translation for the Gemini API (`generateContent` body), sans-IO.

Owns: `Request` + neutral params -> the JSON body of ``models/{model}:generateContent``
(and ``:streamGenerateContent``, same body): `systemInstruction`, `contents` (roles
``user`` / ``model``), parts (`text`, `inlineData`, `fileData`, `functionCall`,
`functionResponse`, replayed `thought` parts and `thoughtSignature`s), `tools`,
`toolConfig`, `generationConfig`, `safetySettings`. Shared with `GeminiImages`, which
adds ``responseModalities`` on top of `encode_body`. Must not do I/O or know httpx2.

Wire reference: Gemini API reference, "Generating content" and "Caching / Content"
(https://ai.google.dev/api/generate-content), "Function calling" and
"Thought signatures" guides (https://ai.google.dev/gemini-api/docs/thought-signatures).

Decisions (where the issue was silent):

- Replay: an assistant message decoded by this package carries
  ``metadata["gemini"]["parts"]``, the model's parts in order (text / thought lengths,
  signatures, function-call ids, verbatim server-tool parts). When that still matches
  the message (same text, same reasoning, same tool calls) the parts are rebuilt
  exactly where they were, which is what Gemini 3 requires ("return the signature in
  the exact part it was received"); otherwise (an edited message, another provider's
  message) text then function calls are sent.
- Thought parts are replayed by default (the Gen AI SDK's chat history does the same);
  ``replay_thoughts=False`` drops unsigned ones to save input tokens.
- The first `functionCall` part of a model turn that has no signature (a call from
  another provider, or edited history) gets Google's documented bypass value
  ``skip_thought_signature_validator`` so Gemini 3 accepts the history
  (``thought_signature_fallback=False`` turns that off).
- Tool results: `functionResponse.response` must be an object. A JSON object result is
  sent as is; anything else is wrapped as ``{"output": value}`` and a failed tool as
  ``{"error": value}``, the two keys the reference defines (FunctionResponse.response:
  'Use "output" key to specify function output and "error" key to specify error
  details (if any). If "output" and "error" keys are not specified, then whole
  "response" is treated as function output.'). Tool text that is JSON is sent parsed.
- Function-call ids are always sent (the model's own, or the stable one the decoder
  synthesized); the recorded traffic shows the API accepts client-chosen ids.
- URL images: ``gs://`` and Files API URIs become `fileData`; other http(s) URLs raise
  `AdapterError(reason="unsupported_feature")` unless ``url_images="file_data"`` (send
  as `fileData`, for deployments whose Gemini accepts external URLs) or the adapter
  fetched them first (``fetch_image_urls=True``).
- Inline images: PNG, JPEG, WEBP, HEIC, HEIF (the reference's supported image MIME
  types); the whole request must stay under 20 MiB (the documented inline limit;
  larger files go through the Files API).
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ...errors import AdapterError, ValidationError
from ...messages import ImagePart, Message, TextPart, ToolCall
from .._common import check_image
from .schema import SCHEMA_MODES, clean_json_schema, to_openapi_schema

if TYPE_CHECKING:
    from ...request import Request
    from ...tool import Tool

__all__ = [
    "EncodeOptions",
    "GEMINI_IMAGE_MIME",
    "MAX_REQUEST_BYTES",
    "DUMMY_THOUGHT_SIGNATURE",
    "encode_body",
    "encode_messages",
    "encode_tools",
    "encode_tool_config",
    "generation_config",
    "thinking_config",
    "signature_of",
]

PROVIDER = "gemini"
GEMINI_IMAGE_MIME: frozenset[str] = frozenset(
    {"image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"}
)
MAX_REQUEST_BYTES = 20 * 1024 * 1024
"""Gemini's limit for a request with inline data (text, system instruction, files)."""

DUMMY_THOUGHT_SIGNATURE = base64.b64encode(b"skip_thought_signature_validator").decode("ascii")
"""Google's documented bypass signature for function calls Gemini did not sign."""

FILES_API_PREFIX = "https://generativelanguage.googleapis.com/"
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:\-]{0,63}$")
URL_IMAGE_MODES = frozenset({"error", "file_data"})

# Thinking budgets for Gemini 2.x models, which take `thinkingBudget` (tokens) and not
# `thinkingLevel`. 512 is the smallest budget every 2.5 model accepts (flash-lite's
# minimum); "none" disables thinking where the model allows it.
_EFFORT_BUDGETS = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576}


@dataclass(frozen=True, slots=True, kw_only=True)
class EncodeOptions:
    """Knobs of the translation (adapter defaults, overridable per call through
    `adapter_opts` with the same names)."""

    schema_mode: str = "json_schema"
    url_images: str = "error"
    replay_thoughts: bool = True
    thought_signature_fallback: bool = True

    def merged(self, opts: Mapping[str, Any]) -> EncodeOptions:
        changes = {k: opts[k] for k in ("schema_mode", "url_images", "replay_thoughts",
                                        "thought_signature_fallback") if k in opts}
        result = replace(self, **changes) if changes else self
        if result.schema_mode not in SCHEMA_MODES:
            raise ValidationError("invalid_params", f"schema_mode must be one of "
                                  f"{sorted(SCHEMA_MODES)}", errors=[("schema_mode", "invalid")],
                                  provider=PROVIDER)
        if result.url_images not in URL_IMAGE_MODES:
            raise ValidationError("invalid_params", f"url_images must be one of "
                                  f"{sorted(URL_IMAGE_MODES)}", errors=[("url_images", "invalid")],
                                  provider=PROVIDER)
        return result


# -- body ---------------------------------------------------------------------------


def encode_body(request: Request, params: Mapping[str, Any], opts: EncodeOptions, *,
                model: str | None = None) -> dict[str, Any]:
    """The full JSON body for `generateContent` / `streamGenerateContent`."""
    system, contents = encode_messages(request.messages, opts)
    body: dict[str, Any] = {"contents": contents}
    if system is not None:
        body["systemInstruction"] = system
    declarations = encode_tools(request.tools, opts)
    if declarations:
        body["tools"] = [{"functionDeclarations": declarations}]
        tool_config = encode_tool_config(request.tool_choice, request.tools)
        if tool_config is not None:
            body["toolConfig"] = tool_config
    config = generation_config(request, params, opts, model=model)
    if config:
        body["generationConfig"] = config
    safety = _safety_settings(params.get("safety_settings"))
    if safety is not None:
        body["safetySettings"] = safety
    extra = params.get("extra_body")
    if isinstance(extra, Mapping):
        _merge(body, extra)
    if request.options:
        _merge(body, request.options)
    return body


def _merge(target: dict[str, Any], extra: Mapping[str, Any]) -> None:
    """Deep-merge `extra` into `target`: dicts merge, `tools` lists extend (so built-in
    tools such as ``{"googleSearch": {}}`` sit beside the function declarations),
    anything else replaces."""
    for key, value in extra.items():
        current = target.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            _merge(current, value)
        elif key == "tools" and isinstance(current, list) and isinstance(value, list):
            current.extend(copy.deepcopy(value))
        elif isinstance(value, Mapping):
            target[key] = {}
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)  # never alias (or later mutate) the caller's


def _safety_settings(value: Any) -> list[Any] | None:
    if value is None:
        return None
    if isinstance(value, Mapping):  # {category: threshold} shorthand
        return [{"category": k, "threshold": v} for k, v in value.items()]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise ValidationError("invalid_params", "safety_settings must be a list of "
                          "{category, threshold} objects or a {category: threshold} mapping",
                          errors=[("params.safety_settings", "invalid")], provider=PROVIDER)


# -- messages -----------------------------------------------------------------------


def encode_messages(messages: Sequence[Message], opts: EncodeOptions) -> tuple[
        dict[str, Any] | None, list[dict[str, Any]]]:
    """``(systemInstruction or None, contents)``. System messages (anywhere) become
    system-instruction parts; consecutive tool results share one ``user`` content."""
    system_parts: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    calls: dict[str, ToolCall] = {}
    tool_content: dict[str, Any] | None = None
    for i, message in enumerate(messages):
        path = f"messages.{i}"
        role = message.role
        if role == "system":
            if message.images:
                raise ValidationError("invalid_message", f"{path}: Gemini's system "
                                      "instruction takes text only; move images to a user "
                                      "message", errors=[(f"{path}.content", "image_in_system")],
                                      provider=PROVIDER)
            system_parts.append({"text": message.text})
            continue
        if role == "tool":
            parts = _tool_result_parts(message, calls, path, opts)
            if tool_content is not None:
                tool_content["parts"].extend(parts)
            else:
                tool_content = {"role": "user", "parts": parts}
                contents.append(tool_content)
            continue
        tool_content = None
        if role == "user":
            contents.append({"role": "user", "parts": _user_parts(message, path, opts)})
        elif role == "assistant":
            for call in message.tool_calls:
                calls[call.id] = call
            contents.append({"role": "model", "parts": _model_parts(message, path, opts)})
        else:
            raise ValidationError("invalid_message", f"{path}: unknown role {role!r}",
                                  errors=[(f"{path}.role", "invalid")], provider=PROVIDER)
    system = {"role": "user", "parts": system_parts} if system_parts else None
    return system, contents


def _user_parts(message: Message, path: str, opts: EncodeOptions) -> list[dict[str, Any]]:
    content = message.content
    if isinstance(content, str):
        return [{"text": content}]
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        if isinstance(part, TextPart):
            parts.append({"text": part.text})
        elif isinstance(part, ImagePart):
            parts.append(image_part(part, f"{path}.content.{j}", opts))
    # Gemini rejects a content without parts; an empty prompt is an empty text part.
    return parts or [{"text": ""}]


def image_part(part: ImagePart, path: str, opts: EncodeOptions) -> dict[str, Any]:
    """`inlineData` for bytes, `fileData` for gs:// / Files API / opted-in URLs.
    ``ImagePart.metadata["gemini"]`` (e.g. ``{"mediaResolution": ...}``) is merged
    into the part."""
    image = part.image
    out: dict[str, Any]
    if image.url is not None:
        url = image.url
        if not (url.startswith(("gs://", FILES_API_PREFIX)) or opts.url_images == "file_data"):
            raise AdapterError(
                "unsupported_feature",
                f"{path}: Gemini cannot fetch the image URL {url[:80]!r} itself. Pass the "
                "bytes (Image.from_path / from_bytes), upload it with the Files API and "
                "pass that URI or a gs:// URI, or construct the adapter with "
                "fetch_image_urls=True to download it first",
                provider=PROVIDER, metadata={"path": path},
            )
        file_data: dict[str, Any] = {"fileUri": url}
        if image.mime_type:
            file_data["mimeType"] = image.mime_type
        out = {"fileData": file_data}
    else:
        check_image(part, path=path, allowed_mime=GEMINI_IMAGE_MIME,
                    max_bytes=MAX_REQUEST_BYTES, provider=PROVIDER)
        out = {"inlineData": {"mimeType": image.mime_type, "data": image.to_base64()}}
    extra = part.metadata.get(PROVIDER)
    if isinstance(extra, Mapping):
        out.update(extra)
    return out


def signature_of(call: ToolCall) -> str | None:
    """The `thoughtSignature` Gemini attached to this call, if any."""
    meta = call.metadata.get(PROVIDER)
    if isinstance(meta, Mapping):
        sig = meta.get("thoughtSignature")
        if isinstance(sig, str) and sig:
            return sig
    sig = call.metadata.get("thoughtSignature")  # the original library's spelling
    return sig if isinstance(sig, str) and sig else None


def function_call_part(call: ToolCall) -> dict[str, Any]:
    part: dict[str, Any] = {"functionCall": {"id": call.id, "name": call.name,
                                             "args": dict(call.arguments)}}
    sig = signature_of(call)
    if sig:
        part["thoughtSignature"] = sig
    return part


def _model_parts(message: Message, path: str, opts: EncodeOptions) -> list[dict[str, Any]]:
    meta = message.metadata.get(PROVIDER)
    entries = meta.get("parts") if isinstance(meta, Mapping) else None
    parts = _replay(message, entries, opts) if isinstance(entries, list) else None
    if parts is None:
        parts = []
        for j, part in enumerate(message.parts):
            if isinstance(part, TextPart):
                parts.append({"text": part.text})
            elif isinstance(part, ImagePart):
                parts.append(image_part(part, f"{path}.content.{j}", opts))
        parts.extend(function_call_part(call) for call in message.tool_calls)
    if opts.thought_signature_fallback:
        first_call = next((p for p in parts if "functionCall" in p), None)
        if first_call is not None and "thoughtSignature" not in first_call:
            first_call["thoughtSignature"] = DUMMY_THOUGHT_SIGNATURE
    return parts or [{"text": ""}]


def _replay(message: Message, entries: list[Any], opts: EncodeOptions) -> list[
        dict[str, Any]] | None:
    """Rebuild the model's parts from the decoder's record, or None when the record no
    longer matches the message (then the caller sends text + calls)."""
    if message.images:
        return None
    text = message.text
    reasoning = message.metadata.get("reasoning")
    reasoning = reasoning if isinstance(reasoning, str) else ""
    calls = {call.id: call for call in message.tool_calls}
    text_at = thought_at = 0
    used: list[str] = []
    out: list[dict[str, Any]] = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            return None
        kind = entry.get("type")
        sig = entry.get("thoughtSignature")
        if kind in ("text", "thought"):
            n = entry.get("chars")
            if not isinstance(n, int) or n < 0:
                return None
            if kind == "text":
                part: dict[str, Any] = {"text": text[text_at:text_at + n]}
                text_at += n
            else:
                segment = reasoning[thought_at:thought_at + n]
                thought_at += n
                if not opts.replay_thoughts and not sig:
                    continue
                part = {"text": segment, "thought": True}
        elif kind == "function_call":
            call = calls.get(entry.get("id"))  # type: ignore[arg-type]
            if call is None:
                return None
            used.append(call.id)
            out.append(function_call_part(call))
            continue
        elif kind == "raw" and isinstance(entry.get("part"), Mapping):
            out.append(dict(entry["part"]))
            continue
        else:
            return None
        if isinstance(sig, str) and sig:
            part["thoughtSignature"] = sig
        out.append(part)
    if text_at != len(text) or thought_at != len(reasoning):
        return None
    if used != [call.id for call in message.tool_calls]:
        return None
    return out


def _tool_result_parts(message: Message, calls: Mapping[str, ToolCall], path: str,
                       opts: EncodeOptions) -> list[dict[str, Any]]:
    call = calls.get(message.tool_call_id or "")
    name = message.name or (call.name if call is not None else None)
    if not name:
        raise ValidationError(
            "invalid_message",
            f"{path}: tool result for call {message.tool_call_id!r} has no name and no "
            "earlier assistant message made that call; Gemini needs the function name "
            "(set Message.name)",
            errors=[(f"{path}.tool_call_id", "unknown_tool_call")], provider=PROVIDER,
        )
    response: dict[str, Any] = {"name": name,
                                "response": tool_response_object(message.text, message.is_error)}
    if message.tool_call_id:
        response["id"] = message.tool_call_id
    parts: list[dict[str, Any]] = [{"functionResponse": response}]
    # Images a tool returned travel as inline parts right after its response.
    for j, part in enumerate(message.parts):
        if isinstance(part, ImagePart):
            parts.append(image_part(part, f"{path}.content.{j}", opts))
    return parts


def tool_response_object(text: str, is_error: bool = False) -> dict[str, Any]:
    """`functionResponse.response` (an object) for a tool message's text."""
    value: Any = text
    stripped = text.strip()
    if stripped[:1] in ("{", "[", '"') or stripped in ("true", "false", "null"):
        try:
            value = json.loads(stripped)
        except ValueError:
            value = text
    if is_error:
        return {"error": value}
    if isinstance(value, dict):
        return value
    return {"output": value}


# -- tools --------------------------------------------------------------------------


def encode_tools(tools: Sequence[Tool], opts: EncodeOptions) -> list[dict[str, Any]]:
    """`functionDeclarations` for allm tools."""
    out: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        path = f"tools.{i}"
        if not _NAME_RE.match(tool.name or ""):
            raise ValidationError(
                "invalid_tool", f"{path}: Gemini function names start with a letter or "
                "underscore, use a-z, A-Z, 0-9, '_', '.', ':' or '-', at most 64 characters; "
                f"got {tool.name!r}", errors=[(f"{path}.name", "invalid_name")],
                provider=PROVIDER,
            )
        declaration: dict[str, Any] = {"name": tool.name, "description": tool.description or ""}
        schema = tool.parameters or {"type": "object", "properties": {}}
        if opts.schema_mode == "openapi":
            declaration["parameters"] = to_openapi_schema(schema, path=f"{path}.parameters")
        else:
            declaration["parametersJsonSchema"] = clean_json_schema(schema)
        out.append(declaration)
    return out


def encode_tool_config(choice: str | Mapping[str, Any] | None, tools: Sequence[Tool]) -> dict[
        str, Any] | None:
    """`toolConfig.functionCallingConfig` for a neutral `tool_choice`."""
    if choice is None:
        return None
    names = {tool.name for tool in tools}
    named: str | None = None
    if isinstance(choice, str):
        mode = {"auto": "AUTO", "none": "NONE", "required": "ANY", "any": "ANY"}.get(choice)
        if mode is not None:
            return {"functionCallingConfig": {"mode": mode}}
        named = choice
    elif isinstance(choice, Mapping):
        if "functionCallingConfig" in choice:
            return dict(choice)
        if "mode" in choice:
            return {"functionCallingConfig": dict(choice)}
        function = choice.get("function")
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            named = function["name"]  # OpenAI shape
        elif isinstance(choice.get("name"), str):
            named = choice["name"]  # Anthropic / allm shape
    if named is None or named not in names:
        raise ValidationError(
            "invalid_request", f"tool_choice {choice!r} names no tool of this request "
            f"(tools: {sorted(names)})", errors=[("tool_choice", "unknown_tool")],
            provider=PROVIDER,
        )
    return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [named]}}


# -- generation config --------------------------------------------------------------

_SIMPLE = (("temperature", "temperature"), ("top_p", "topP"), ("top_k", "topK"),
           ("max_tokens", "maxOutputTokens"), ("seed", "seed"),
           ("presence_penalty", "presencePenalty"), ("frequency_penalty", "frequencyPenalty"))


def generation_config(request: Request, params: Mapping[str, Any], opts: EncodeOptions, *,
                      model: str | None = None) -> dict[str, Any]:
    """`generationConfig` from neutral params and `response_format`."""
    config: dict[str, Any] = {}
    for name, wire in _SIMPLE:
        value = params.get(name)
        if value is not None:
            config[wire] = value
    stop = params.get("stop")
    if stop is not None:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    logprobs = params.get("logprobs")
    if logprobs is True or (isinstance(logprobs, int) and not isinstance(logprobs, bool)):
        config["responseLogprobs"] = True
        if logprobs is not True:
            config["logprobs"] = logprobs
    _response_format(request.response_format, config, opts)
    thinking = thinking_config(params, model)
    if thinking:
        config["thinkingConfig"] = thinking
    return config


def _response_format(fmt: Any, config: dict[str, Any], opts: EncodeOptions) -> None:
    if fmt is None or fmt == "text":
        return
    kind = fmt.get("type") if isinstance(fmt, Mapping) else fmt
    if kind in ("json_object", "json"):
        config["responseMimeType"] = "application/json"
        return
    if kind == "text":
        return
    if kind == "json_schema" and isinstance(fmt, Mapping):
        schema = fmt.get("schema")
        inner = fmt.get("json_schema")
        if schema is None and isinstance(inner, Mapping):  # OpenAI's nesting
            schema = inner.get("schema")
        if not isinstance(schema, Mapping):
            raise ValidationError("invalid_request", "response_format json_schema needs a "
                                  "'schema' object", errors=[("response_format.schema",
                                                              "missing")], provider=PROVIDER)
        config["responseMimeType"] = "application/json"
        if opts.schema_mode == "openapi":
            config["responseSchema"] = to_openapi_schema(schema, path="response_format.schema")
        else:
            config["responseJsonSchema"] = clean_json_schema(schema)
        return
    raise ValidationError("invalid_request", f"unsupported response_format {fmt!r}",
                          errors=[("response_format", "unsupported")], provider=PROVIDER)


def _is_gemini_2(model: str | None) -> bool:
    return bool(model) and re.search(r"gemini-(1|2)\.", model or "") is not None


def thinking_config(params: Mapping[str, Any], model: str | None = None) -> dict[str, Any]:
    """`thinkingConfig` from ``thinking`` (int budget, True, False, or a Gemini dict
    passed through), ``reasoning_effort`` (`thinkingLevel` on Gemini 3+, a token budget
    on 1.x/2.x) and ``reasoning_summary`` (any value but "none" asks for thoughts)."""
    config: dict[str, Any] = {}
    thinking = params.get("thinking")
    if isinstance(thinking, Mapping):
        config.update(thinking)
    elif thinking is True:
        config["includeThoughts"] = True
    elif thinking is False:
        config["thinkingBudget"] = 0
    elif isinstance(thinking, int):
        config["thinkingBudget"] = thinking
        if thinking != 0:
            config["includeThoughts"] = True
    effort = params.get("reasoning_effort")
    if isinstance(effort, str) and not ({"thinkingBudget", "thinkingLevel",
                                         "thinking_budget", "thinking_level"} & config.keys()):
        effort = effort.lower()
        if _is_gemini_2(model):
            if effort in _EFFORT_BUDGETS:
                config["thinkingBudget"] = _EFFORT_BUDGETS[effort]
        else:
            config["thinkingLevel"] = "MINIMAL" if effort == "none" else effort.upper()
    summary = params.get("reasoning_summary")
    if summary not in (None, False, "none"):
        config.setdefault("includeThoughts", True)
    return config
