"""Hypothesis strategies for every Layer A value, event and error."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

import allm
from allm import events as ev
from allm.errors import ERROR_TYPES, AllmError

text = st.text(max_size=12)
opt_text = st.none() | text
ids = st.text(alphabet="abcdefghij0123456789_-", min_size=1, max_size=8)
opt_int = st.none() | st.integers(min_value=0, max_value=10**9)
finite = st.floats(allow_nan=False, allow_infinity=False)
opt_float = st.none() | finite

json_scalar = st.none() | st.booleans() | st.integers() | finite | text
# Keys include the tag key itself, so the escaping of plain dicts is exercised.
keys = st.sampled_from(["__type__", "data", "a", "b", "allm"]) | text
json_value = st.recursive(
    json_scalar,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3),
    max_leaves=5,
)
# Untyped positions also keep tuples and bytes (tagged on the wire).
any_value = st.recursive(
    json_scalar | st.binary(max_size=8),
    lambda children: (st.lists(children, max_size=3)
                      | st.lists(children, max_size=3).map(tuple)
                      | st.dictionaries(keys, children, max_size=3)),
    max_leaves=5,
)
metadata = st.dictionaries(keys, any_value, max_size=2)
json_dict = st.dictionaries(keys, json_value, max_size=2)

PNG = b"\x89PNG\r\n\x1a\n"


@st.composite
def images(draw: st.DrawFn) -> allm.Image:
    common: dict[str, Any] = {
        "width": draw(st.none() | st.integers(1, 4096)),
        "height": draw(st.none() | st.integers(1, 4096)),
        "revised_prompt": draw(opt_text),
        "metadata": draw(metadata),
    }
    if draw(st.booleans()):
        data = draw(st.binary(max_size=24))
        return allm.Image(data=PNG + data, mime_type=draw(st.none() | st.just("image/png")),
                          **common)
    return allm.Image(url="https://example.com/" + draw(ids) + ".png",
                      mime_type=draw(st.none() | st.just("image/png")), **common)


text_parts = st.builds(allm.TextPart, text=text, metadata=metadata)
image_parts = st.builds(allm.ImagePart, image=images(),
                        detail=st.sampled_from(["auto", "low", "high"]), metadata=metadata)
content = text | st.lists(text_parts | image_parts, max_size=3).map(tuple)

tool_calls = st.builds(allm.ToolCall, id=ids, name=ids, arguments=json_dict,
                       raw_arguments=opt_text, metadata=metadata)

messages = st.builds(
    allm.Message,
    role=st.sampled_from(["system", "user", "assistant", "tool"]),
    content=content,
    name=opt_text,
    tool_call_id=st.none() | ids,
    tool_calls=st.lists(tool_calls, max_size=2).map(tuple),
    is_error=st.booleans(),
    metadata=metadata,
)
threads = st.builds(allm.Thread, messages=st.lists(messages, max_size=3).map(tuple),
                    metadata=metadata)
# Inside composite results a shorter thread keeps generation fast.
small_threads = st.builds(allm.Thread, messages=st.lists(messages, max_size=2).map(tuple))


def _handler(args: dict[str, Any]) -> Any:  # pragma: no cover - never called
    return args


tools = st.builds(allm.Tool, name=ids, description=text, parameters=json_dict,
                  handler=st.none() | st.just(_handler), manual=st.booleans(),
                  strict=st.none() | st.booleans(), metadata=metadata)

usages = st.builds(
    allm.Usage, input_tokens=opt_int, output_tokens=opt_int, total_tokens=opt_int,
    cached_input_tokens=opt_int, cache_write_tokens=opt_int, reasoning_tokens=opt_int,
    input_cost=opt_float, output_cost=opt_float, total_cost=opt_float, extra=metadata,
)
model_refs = st.builds(allm.ModelRef, provider=ids, id=ids, capabilities=json_dict,
                       limits=json_dict, pricing=st.none() | json_dict, metadata=metadata)

requests = st.builds(
    allm.Request,
    messages=st.lists(messages, max_size=3).map(tuple),
    model=opt_text,
    tools=st.lists(tools, max_size=2).map(tuple),
    tool_choice=st.none() | st.sampled_from(["auto", "none", "required"]) | json_dict,
    response_format=st.none() | st.just("text") | json_dict,
    params=json_dict,
    stream=st.booleans(),
    structured_finalize=st.booleans(),
    options=json_dict,
    metadata=metadata,
)


def _responses(meta: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[allm.Response]:
    return st.builds(
        allm.Response, id=opt_text, request_id=opt_text, model=opt_text,
        message=st.none() | messages, output_text=text,
        tool_calls=st.lists(tool_calls, max_size=2).map(tuple),
        finish_reason=st.none() | st.sampled_from(sorted(allm.request.FINISH_REASONS)),
        raw_finish_reason=opt_text, usage=usages, metadata=meta,
    )


responses = _responses(metadata)

step_results = st.builds(
    allm.StepResult, thread=small_threads, response=responses,
    tool_results=st.lists(messages, max_size=2).map(tuple), done=st.booleans(),
    mode=st.sampled_from(["auto", "manual"]),
    manual_tool_calls=st.lists(tool_calls, max_size=2).map(tuple), metadata=metadata,
)
chat_results = st.builds(
    allm.ChatResult, thread=small_threads, final_response=st.none() | responses,
    steps=st.lists(step_results, max_size=1).map(tuple),
    halted_reason=st.sampled_from(["completed", "max_turns", "ask_user", "custom"]),
    pending_question=opt_text, pending_tool_call_id=opt_text,
    pending_tool_calls=st.lists(tool_calls, max_size=2).map(tuple), usage=usages,
    output=any_value, metadata=metadata,
)

image_requests = st.builds(
    allm.ImageRequest,
    operation=st.sampled_from(["generate", "edit", "variation"]),
    prompt=opt_text, model=opt_text, n=st.integers(1, 4),
    size=st.none() | st.sampled_from(["auto", "1024x1024"]),
    quality=opt_text, style=opt_text, background=opt_text, output_format=opt_text,
    output_compression=st.none() | st.integers(0, 100),
    response_format=st.sampled_from(["binary", "url"]),
    input_images=st.lists(images(), max_size=2).map(tuple),
    mask=st.none() | images(), options=json_dict, metadata=metadata,
)
image_usages = st.builds(
    allm.ImageUsage, images=st.integers(0, 8), size=opt_text, quality=opt_text,
    input_tokens=opt_int, output_tokens=opt_int, input_cost=opt_float,
    output_cost=opt_float, total_cost=opt_float,
)
image_responses = st.builds(
    allm.ImageResponse, images=st.lists(images(), max_size=2).map(tuple), id=opt_text,
    request_id=opt_text, model=opt_text, usage=image_usages, text=opt_text,
    metadata=metadata,
)
retry_policies = st.builds(
    allm.RetryPolicy, max_attempts=st.integers(1, 10), base_delay=finite,
    max_delay=finite, jitter=finite,
    retry_on=st.frozensets(st.integers(100, 599) | st.sampled_from(["timeout", "x"])),
    respect_retry_after=st.booleans(), max_retry_after=finite,
)


# -- errors -------------------------------------------------------------------------

def _error_strategy(cls: type[AllmError], cause: st.SearchStrategy[Any]) -> st.SearchStrategy[AllmError]:
    reasons = sorted(cls.reasons) or ["anything"]
    extras: dict[str, st.SearchStrategy[Any]] = {
        "status": st.none() | st.integers(100, 599),
        "retry_after": opt_float,
        "request_id": opt_text,
        "body": json_value,
        "partial": st.none() | _responses(st.just({})),
        "event_index": opt_int,
        "tool_name": opt_text,
        "tool_call_id": opt_text,
    }

    @st.composite
    def build(draw: st.DrawFn) -> AllmError:
        reason = draw(st.sampled_from(reasons))
        kw: dict[str, Any] = {
            "provider": draw(opt_text),
            "cause": draw(cause),
            "metadata": draw(metadata),
        }
        if cls is allm.ValidationError:
            kw["errors"] = draw(st.lists(st.tuples(text, text), max_size=3))
        else:
            for name in cls.extra_fields:
                kw[name] = draw(extras[name])
        return cls(reason, draw(st.none() | text), **kw)

    return build()


_ERROR_CLASSES: list[type[AllmError]] = [AllmError, *ERROR_TYPES.values()]
_leaf_errors = st.one_of([_error_strategy(c, st.none() | json_value) for c in _ERROR_CLASSES])
errors = st.one_of([_error_strategy(c, st.none() | json_value | _leaf_errors)
                    for c in _ERROR_CLASSES])
ERROR_STRATEGIES = {c.__name__: _error_strategy(c, st.none() | json_value | _leaf_errors)
                    for c in _ERROR_CLASSES}

# -- events ---------------------------------------------------------------------------

EVENT_STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "message_started": st.builds(ev.MessageStarted, id=opt_text, model=opt_text,
                                 metadata=metadata),
    "text_delta": st.builds(ev.TextDelta, delta=text, id=opt_text),
    "text_completed": st.builds(ev.TextCompleted, text=text, id=opt_text),
    "tool_call_started": st.builds(ev.ToolCallStarted, id=ids, name=ids),
    "tool_call_delta": st.builds(ev.ToolCallDelta, id=ids, arguments_delta=text),
    "tool_call_completed": st.builds(ev.ToolCallCompleted, id=ids, name=ids,
                                     arguments=json_dict, raw_arguments=opt_text,
                                     metadata=metadata),
    "tool_execution_started": st.builds(ev.ToolExecutionStarted, id=ids, name=ids,
                                        arguments=json_dict),
    "tool_execution_completed": st.builds(ev.ToolExecutionCompleted, id=ids, name=ids,
                                          result=any_value | errors, is_error=st.booleans()),
    "tool_result_encoded": st.builds(ev.ToolResultEncoded, id=ids, content=text,
                                     is_error=st.booleans()),
    "ask_user_requested": st.builds(ev.AskUserRequested, tool_call_id=ids, tool_name=ids,
                                    question=text, options=metadata),
    "tool_halt": st.builds(ev.ToolHalt, tool_call_id=ids, reason=ids, result=any_value,
                           content=opt_text),
    "message_completed": st.builds(
        ev.MessageCompleted, message=st.none() | messages,
        finish_reason=st.none() | st.sampled_from(sorted(allm.request.FINISH_REASONS)),
        raw_finish_reason=opt_text, usage=st.none() | usages, id=opt_text, model=opt_text,
        metadata=metadata),
    "step_completed": st.builds(ev.StepCompleted, response=responses, thread=small_threads,
                                mode=st.sampled_from(["auto", "manual"]),
                                manual_tool_calls=st.lists(tool_calls, max_size=2).map(tuple)),
    "chat_completed": st.builds(ev.ChatCompleted, result=chat_results),
    "raw_chunk": st.builds(ev.RawChunk, data=json_value, usage=st.none() | usages),
    "error": st.builds(ev.ErrorEvent, error=errors),
}

LAYER_A_STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "Message": messages,
    "TextPart": text_parts,
    "ImagePart": image_parts,
    "Image": images(),
    "ToolCall": tool_calls,
    "Tool": tools,
    "Thread": threads,
    "Request": requests,
    "Response": responses,
    "Usage": usages,
    "ModelRef": model_refs,
    "StepResult": step_results,
    "ChatResult": chat_results,
    "ImageRequest": image_requests,
    "ImageResponse": image_responses,
    "ImageUsage": image_usages,
    "RetryPolicy": retry_policies,
}
