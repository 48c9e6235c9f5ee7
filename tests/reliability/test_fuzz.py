"""Fuzzing with hypothesis: arbitrary bytes and arbitrary JSON shapes into every
decoder allm has. The only exceptions allowed to escape are allm's own (`AllmError`
subclasses); everything a decoder returns must be allm events.

Targets: the SSE decoder; each provider's stream decoder and response decoder and
error mapper (OpenAI Chat Completions, OpenAI Responses, Anthropic, Gemini) fed raw
bytes, SSE-framed arbitrary JSON and JSON built from the provider's own vocabulary
(so the fuzzer reaches the deep branches); `allm.loads` (raw text, JSON, tagged
values built from the registered classes' field names); tool-argument parsing and
validation. Examples per test: ``ALLM_FUZZ_EXAMPLES`` (default 120, derandomized so
CI is deterministic; run with e.g. ``ALLM_FUZZ_EXAMPLES=3000 ALLM_FUZZ_RANDOM=1`` to
hunt).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import allm
from allm._http.sse import SSEDecoder, SSEEvent
from allm.errors import AllmError
from allm.events import EVENT_TYPES
from allm.messages import user
from allm.providers._common import parse_arguments
from allm.providers._errors import parse_retry_after
from allm.providers.anthropic.codec import AnthropicCodec
from allm.providers.base import Call
from allm.providers.gemini.codec import GeminiCodec
from allm.providers.openai.chat_codec import ChatCodec
from allm.providers.openai.responses_codec import ResponsesCodec
from allm.request import Request
from allm.tools._build import InvalidArguments, bind
from allm.tools._jsonschema import validate_json

EXAMPLES = int(os.environ.get("ALLM_FUZZ_EXAMPLES", "120"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not os.environ.get("ALLM_FUZZ_RANDOM"),
    database=None,
    suppress_health_check=list(HealthCheck),
)
EVENT_CLASSES = tuple(EVENT_TYPES.values())


# -- vocabularies: keys and values the providers use -----------------------------------

OPENAI_CHAT_KEYS = ["id", "object", "created", "model", "choices", "index", "delta", "content",
                    "role", "tool_calls", "function", "name", "arguments", "type",
                    "finish_reason", "usage", "prompt_tokens", "completion_tokens",
                    "total_tokens", "message", "refusal", "logprobs", "error", "code",
                    "prompt_tokens_details", "cached_tokens", "completion_tokens_details",
                    "reasoning_tokens", "reasoning_content", "annotations", "audio"]
OPENAI_CHAT_VALUES = ["chat.completion.chunk", "chat.completion", "assistant", "function",
                      "stop", "length", "tool_calls", "content_filter", "function_call", "x"]
RESPONSES_KEYS = ["type", "response", "output", "item", "delta", "item_id", "output_index",
                  "content_index", "status", "usage", "input_tokens", "output_tokens",
                  "total_tokens", "arguments", "call_id", "name", "id", "summary_index",
                  "part", "text", "annotations", "error", "incomplete_details", "reason",
                  "content", "summary", "role", "model", "sequence_number", "code",
                  "message", "input_tokens_details", "output_tokens_details",
                  "cached_tokens", "reasoning_tokens", "encrypted_content", "refusal",
                  "action", "result", "queries", "logprobs"]
RESPONSES_VALUES = ["response.created", "response.in_progress", "response.completed",
                    "response.failed", "response.incomplete", "response.output_item.added",
                    "response.output_item.done", "response.content_part.added",
                    "response.output_text.delta", "response.output_text.done",
                    "response.function_call_arguments.delta",
                    "response.function_call_arguments.done", "response.refusal.delta",
                    "response.reasoning_summary_text.delta",
                    "response.reasoning_summary_part.added", "error", "message",
                    "function_call", "reasoning", "output_text", "refusal", "summary_text",
                    "web_search_call", "completed", "incomplete", "failed", "in_progress",
                    "max_output_tokens", "content_filter"]
ANTHROPIC_KEYS = ["type", "message", "content_block", "index", "delta", "text",
                  "partial_json", "stop_reason", "stop_sequence", "usage", "id", "name",
                  "input", "thinking", "signature", "error", "content", "role", "model",
                  "input_tokens", "output_tokens", "cache_read_input_tokens",
                  "cache_creation_input_tokens", "citations", "data", "tool_use_id",
                  "server_tool_use", "citation", "container"]
ANTHROPIC_VALUES = ["message_start", "content_block_start", "content_block_delta",
                    "content_block_stop", "message_delta", "message_stop", "ping", "error",
                    "text", "text_delta", "input_json_delta", "thinking_delta",
                    "signature_delta", "citations_delta", "tool_use", "thinking",
                    "redacted_thinking", "server_tool_use", "web_search_tool_result",
                    "end_turn", "max_tokens", "tool_use", "stop_sequence", "pause_turn",
                    "refusal", "overloaded_error", "rate_limit_error", "message",
                    "assistant"]
GEMINI_KEYS = ["candidates", "content", "parts", "text", "functionCall", "name", "args",
               "id", "finishReason", "usageMetadata", "promptTokenCount",
               "candidatesTokenCount", "totalTokenCount", "thoughtsTokenCount",
               "cachedContentTokenCount", "thought", "thoughtSignature", "inlineData",
               "mimeType", "data", "promptFeedback", "blockReason", "safetyRatings", "index",
               "groundingMetadata", "error", "code", "message", "status", "details",
               "modelVersion", "responseId", "role", "executableCode", "codeExecutionResult",
               "fileData", "fileUri", "@type", "retryDelay", "logprobsResult",
               "finishMessage", "urlContextMetadata"]
GEMINI_VALUES = ["STOP", "MAX_TOKENS", "SAFETY", "RECITATION", "OTHER", "MALFORMED_FUNCTION_CALL",
                 "model", "image/png", "RESOURCE_EXHAUSTED", "UNAVAILABLE",
                 "type.googleapis.com/google.rpc.RetryInfo", "1s", "0.5s", "x", "iVBORw0KGgo="]


def json_values(keys: list[str], values: list[str]) -> st.SearchStrategy[Any]:
    scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
               | st.floats(allow_nan=False, allow_infinity=False)
               | st.sampled_from(values) | st.sampled_from(keys) | st.text(max_size=8))
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(keys) | st.text(max_size=4), inner, max_size=6),
        max_leaves=30,
    )


def json_objects(keys: list[str], values: list[str]) -> st.SearchStrategy[Any]:
    return st.dictionaries(st.sampled_from(keys), json_values(keys, values), max_size=7)


def sse_frame(obj: Any, event: str | None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + json.dumps(obj).encode() + b"\n\n"


@st.composite
def split(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """`data` cut at arbitrary points."""
    if not data:
        return [data]
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=6)))
    pieces, last = [], 0
    for c in cuts:
        pieces.append(data[last:c])
        last = c
    pieces.append(data[last:])
    return pieces


# -- the codecs under test --------------------------------------------------------------

CODECS: dict[str, Callable[[], Any]] = {
    "openai-chat": lambda: ChatCodec(base_url="http://x/v1"),
    "openai-responses": lambda: ResponsesCodec(base_url="http://x/v1"),
    "anthropic": lambda: AnthropicCodec(base_url="http://x"),
    "gemini": lambda: GeminiCodec(base_url="http://x"),
}
VOCAB = {
    "openai-chat": (OPENAI_CHAT_KEYS, OPENAI_CHAT_VALUES),
    "openai-responses": (RESPONSES_KEYS, RESPONSES_VALUES),
    "anthropic": (ANTHROPIC_KEYS, ANTHROPIC_VALUES),
    "gemini": (GEMINI_KEYS, GEMINI_VALUES),
}
MODELS = {"openai-chat": "gpt-4.1-mini", "openai-responses": "gpt-5-mini",
          "anthropic": "claude-sonnet-4-5", "gemini": "gemini-2.5-flash"}
SSE_HEADERS = {"content-type": "text/event-stream"}


def fresh_codec(name: str) -> Any:
    codec = CODECS[name]()
    # A built request sets per-call state some codecs keep (structured-output tool).
    codec.build(Request(messages=(user("hi"),)), Call(model=MODELS[name]),
                api_key="sk-fuzz", stream=True)
    return codec


def check_events(events: Any) -> None:
    assert isinstance(events, list)
    for ev in events:
        assert isinstance(ev, EVENT_CLASSES), ev
        # Every event must serialize (they are relayed to UIs and stored).
        allm.dumps(ev)


def run_stream(name: str, pieces: list[bytes], headers: dict[str, str] | None = None) -> None:
    codec = fresh_codec(name)
    try:
        decoder = codec.stream_decoder(headers or SSE_HEADERS)
        for piece in pieces:
            check_events(decoder.feed(piece))
        check_events(decoder.close())
    except AllmError:
        pass


def run_decode(name: str, body: bytes) -> None:
    codec = fresh_codec(name)
    try:
        check_events(codec.decode(200, {"content-type": "application/json"}, body))
    except AllmError:
        pass
    for status in (400, 429, 500, 529):
        try:
            err = codec.error(status, {"retry-after": "1"}, body)
        except AllmError:
            continue
        assert isinstance(err, AllmError)
        allm.dumps(err)


def stream_body(name: str) -> st.SearchStrategy[bytes]:
    keys, values = VOCAB[name]
    frame = st.tuples(json_objects(keys, values) | json_values(keys, values),
                      st.none() | st.sampled_from(values)).map(lambda p: sse_frame(*p))
    extras = st.sampled_from([b"data: [DONE]\n\n", b": ping\n\n", b"\r\n", b"data: \n\n",
                              b"event: error\n", b"data: {\n\n"])
    return st.lists(frame | extras, max_size=8).map(b"".join)


NAMES = list(CODECS)


def _stream_test(name: str) -> Callable[..., None]:
    @FUZZ
    @given(data=st.data())
    def test(data: st.DataObject) -> None:
        body = data.draw(stream_body(name))
        run_stream(name, data.draw(split(body)))

    test.__name__ = f"test_stream_decoder_vocab_{name.replace('-', '_')}"
    return test


def _decode_test(name: str) -> Callable[..., None]:
    keys, values = VOCAB[name]

    @FUZZ
    @given(obj=json_objects(keys, values) | json_values(keys, values))
    def test(obj: Any) -> None:
        run_decode(name, json.dumps(obj).encode())

    test.__name__ = f"test_response_decoder_vocab_{name.replace('-', '_')}"
    return test


test_stream_decoder_vocab_openai_chat = _stream_test("openai-chat")
test_stream_decoder_vocab_openai_responses = _stream_test("openai-responses")
test_stream_decoder_vocab_anthropic = _stream_test("anthropic")
test_stream_decoder_vocab_gemini = _stream_test("gemini")
test_response_decoder_vocab_openai_chat = _decode_test("openai-chat")
test_response_decoder_vocab_openai_responses = _decode_test("openai-responses")
test_response_decoder_vocab_anthropic = _decode_test("anthropic")
test_response_decoder_vocab_gemini = _decode_test("gemini")


@FUZZ
@given(name=st.sampled_from(NAMES), data=st.binary(max_size=300), ctype=st.sampled_from(
    ["text/event-stream", "application/json", "text/html", ""]))
def test_stream_decoders_raw_bytes(name: str, data: bytes, ctype: str) -> None:
    run_stream(name, [data[: len(data) // 2], data[len(data) // 2:]], {"content-type": ctype})


@FUZZ
@given(name=st.sampled_from(NAMES), body=st.binary(max_size=300))
def test_response_decoders_raw_bytes(name: str, body: bytes) -> None:
    run_decode(name, body)


@FUZZ
@given(name=st.sampled_from(NAMES), obj=json_values(["error", "message", "code", "type",
                                                     "status", "details", "retryDelay",
                                                     "@type", "param"],
                                                    ["RESOURCE_EXHAUSTED", "1.5s", "x",
                                                     "type.googleapis.com/google.rpc.RetryInfo",
                                                     "rate_limit_exceeded", "overloaded_error"]))
def test_error_mappers_json(name: str, obj: Any) -> None:
    run_decode(name, json.dumps(obj).encode())


@FUZZ
@given(headers=st.dictionaries(st.sampled_from(["retry-after", "retry-after-ms", "Retry-After",
                                                "x-request-id", "request-id"]),
                               st.text(max_size=40), max_size=3))
def test_retry_after_parsing(headers: dict[str, str]) -> None:
    value = parse_retry_after(headers)
    assert value is None or value >= 0


# -- SSE decoder ---------------------------------------------------------------------------


@FUZZ
@given(data=st.data(), body=st.binary(max_size=400))
def test_sse_decoder_arbitrary_bytes(data: st.DataObject, body: bytes) -> None:
    dec = SSEDecoder(max_line=256)
    try:
        out = [ev for piece in data.draw(split(body)) for ev in dec.feed(piece)]
        out += dec.close()
    except AllmError:
        return
    assert all(isinstance(ev, SSEEvent) and isinstance(ev.data, str) for ev in out)


@FUZZ
@given(data=st.data(), body=st.lists(st.sampled_from(
    [b"data: x", b"data:y", b"event: e", b"id: 1", b"retry: 5", b": c", b"\r", b"\n", b"\r\n",
     b"\xef\xbb\xbf", b"\xff", b"data", b"id: \x00"]), max_size=30).map(b"".join))
def test_sse_decoder_any_chunking_same_events(data: st.DataObject, body: bytes) -> None:
    whole = SSEDecoder()
    expected = whole.feed(body) + whole.close()
    dec = SSEDecoder()
    got = [ev for piece in data.draw(split(body)) for ev in dec.feed(piece)] + dec.close()
    assert got == expected


# -- allm.loads ----------------------------------------------------------------------------


def _tags() -> dict[str, list[str]]:
    import allm.session  # noqa: F401  (registers Session and friends)
    from allm import serializer

    out: dict[str, list[str]] = {}
    for tag, codec in serializer._BY_TAG.items():
        cls = codec.cls
        names = [f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) \
            else ["reason", "message", "provider", "cause", "metadata", "status", "errors"]
        out[tag] = names
    for tag in ("tuple", "bytes", "dict", "exception", "Session", "os.system",
                "builtins.eval", "__import__", "subprocess.Popen"):
        out.setdefault(tag, ["type", "message", "data"])
    return out


TAGS = _tags()
FIELD_NAMES = sorted({n for names in TAGS.values() for n in names})
SCALAR = (st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=6)
          | st.sampled_from(["user", "assistant", "tool", "system", "text", "image",
                             "idle", "error", "completed", "stop", "aGk=", "openai"]))


@st.composite
def tagged(draw: st.DrawFn, depth: int = 0) -> Any:
    tag = draw(st.sampled_from(sorted(TAGS)))
    names = TAGS[tag]
    child = SCALAR if depth >= 2 else (SCALAR | tagged(depth + 1)
                                       | st.lists(SCALAR | tagged(depth + 1), max_size=3))
    data = draw(st.dictionaries(st.sampled_from(names) | st.sampled_from(FIELD_NAMES),
                                child, max_size=6) | child)
    return {"__type__": tag, "data": data}


@FUZZ
@given(text=st.text(max_size=200) | st.binary(max_size=200))
def test_loads_arbitrary_text(text: str | bytes) -> None:
    try:
        allm.loads(text)
    except AllmError:
        pass


@FUZZ
@given(value=tagged() | json_values(FIELD_NAMES, ["user", "Session", "Message"]),
       version=st.sampled_from([1, 1, 1, 2, "1", None]))
def test_loads_tagged_shapes(value: Any, version: Any) -> None:
    blob = json.dumps({"allm": version, "value": value})
    try:
        loaded = allm.loads(blob)
    except AllmError:
        return
    # Whatever loads must dump again (no half-built objects).
    try:
        allm.dumps(loaded)
    except AllmError:
        pass


# -- tool arguments ------------------------------------------------------------------------


@FUZZ
@given(raw=st.text(max_size=200) | json_values(["a", "b"], ["x"]).map(json.dumps))
def test_parse_arguments_never_raises(raw: str) -> None:
    args, ok = parse_arguments(raw)
    assert isinstance(args, dict) and isinstance(ok, bool)


SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 1, "maxLength": 20, "pattern": "^[A-Za-z ]+$"},
        "days": {"type": "integer", "minimum": 1, "maximum": 10},
        "unit": {"enum": ["c", "f"]},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        "where": {"anyOf": [{"type": "string"}, {"$ref": "#/$defs/point"}]},
    },
    "required": ["city"],
    "additionalProperties": False,
    "$defs": {"point": {"type": "object", "properties": {"lat": {"type": "number"}},
                        "required": ["lat"]}},
}


@FUZZ
@given(value=json_values(["city", "days", "unit", "tags", "where", "lat"], ["c", "f", "Oslo"]))
def test_validate_json_never_raises(value: Any) -> None:
    errors = validate_json(SCHEMA, value)
    assert all(isinstance(p, str) and isinstance(r, str) for p, r in errors)


@allm.tool
def forecast(city: str, days: int = 1, unit: str = "c") -> str:
    """Weather forecast."""
    return f"{city}:{days}:{unit}"


RAW_TOOL = allm.Tool(name="raw", description="raw", parameters=SCHEMA,
                     handler=lambda args: args)


@FUZZ
@given(args=st.dictionaries(st.sampled_from(["city", "days", "unit", "tags", "where", "x"]),
                            json_values(["lat"], ["Oslo"]), max_size=5))
def test_bound_handlers_only_raise_invalid_arguments(args: dict[str, Any]) -> None:
    for tool in (forecast, RAW_TOOL):
        bound = bind(tool)
        assert bound is not None
        try:
            bound.prepare(args)
        except InvalidArguments:
            pass


# -- the collector: adapter events in any order ---------------------------------------------


def _adapter_events() -> st.SearchStrategy[Any]:
    from allm import events as ev
    from allm.errors import AdapterError, StreamError
    from allm.messages import Message
    from allm.request import FINISH_REASONS, Usage

    ids = st.sampled_from(["a", "b", "c", ""])
    text = st.text(max_size=6)
    usage = st.none() | st.builds(Usage, input_tokens=st.none() | st.integers(0, 9),
                                  output_tokens=st.none() | st.integers(0, 9))
    finish = st.none() | st.sampled_from(sorted(FINISH_REASONS))
    args = st.dictionaries(st.text(max_size=3), st.integers() | st.text(max_size=3), max_size=2)
    error = st.sampled_from([AdapterError("network_error"), AdapterError("rate_limited"),
                             StreamError("cancelled")])
    return st.one_of(
        st.builds(ev.MessageStarted, id=st.none() | ids, model=st.none() | text),
        st.builds(ev.TextDelta, delta=text, id=st.none() | ids),
        st.builds(ev.TextCompleted, text=text, id=st.none() | ids),
        st.builds(ev.ToolCallStarted, id=ids, name=text),
        st.builds(ev.ToolCallDelta, id=ids, arguments_delta=st.sampled_from(
            ['{"a"', ": 1}", "[", "", "}", '{"x": "y"}', "\x00"]) | text),
        st.builds(ev.ToolCallCompleted, id=ids, name=text, arguments=args,
                  raw_arguments=st.none() | text,
                  metadata=st.sampled_from([{}, {"invalid_arguments": True}])),
        st.builds(ev.MessageCompleted, message=st.none() | st.builds(
            lambda t: Message(role="assistant", content=t), text),
            finish_reason=finish, raw_finish_reason=st.none() | text, usage=usage,
            id=st.none() | ids),
        st.builds(ev.RawChunk, data=st.none() | text, usage=usage),
        st.builds(ev.ErrorEvent, error=error),
    )


@FUZZ
@given(events=st.lists(_adapter_events(), max_size=25))
def test_collector_folds_any_adapter_event_order(events: list[Any]) -> None:
    from allm.collector import StreamCollector

    collector = StreamCollector()
    for ev in events:
        collector.apply(ev)
    try:
        response = collector.to_response()
        allm.dumps(response)
        collector.to_chat_result()
    except AllmError:
        pass


def test_loads_pathological_json() -> None:
    for text in ["[" * 100_000 + "]" * 100_000, '{"allm": 1, "value": ' + "1" * 5000 + "}",
                 '{"allm": 1, "value": 1e999}', '{"allm": 1, "value": NaN}',
                 '{"allm": 1, "value": "\\ud800"}', "\ufeff{}", "",
                 '{"allm": 1, "value": {"__type__": "dict", "data": ' * 2000 + "{}" + "}}" * 2000]:
        try:
            allm.loads(text)
        except AllmError:
            pass


def test_parse_arguments_pathological() -> None:
    for raw in ["[" * 100_000, '{"a": ' * 50_000, "1" * 10_000, "\x00", '{"a": NaN}',
                '{"a": 1e999}', '"' + "\\u0000" * 1000 + '"']:
        args, ok = parse_arguments(raw)
        assert isinstance(args, dict)
