"""Replay every recorded Gemini exchange in ../shared/fixtures/gemini through the codec and
the real adapter (httpx2.MockTransport), and check what allm reports, and the requests
it builds for the next turn, against what the recording says."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest

from allm.collector import StreamCollector
from allm.errors import AdapterError
from allm.events import (
    ErrorEvent,
    Event,
    MessageCompleted,
    MessageStarted,
    TextDelta,
    ToolCallCompleted,
)
from allm.image import Image
from allm.messages import ImagePart, Message, TextPart, system, tool_result
from allm.providers.base import Call
from allm.providers.gemini import Gemini
from allm.providers.gemini.codec import GeminiCodec
from allm.providers.gemini.decode import GeminiStreamDecoder, decode_body
from allm.request import Request, Response
from allm.tool import Tool

from .recordings import (
    FILES,
    NOT_GEMINI_NATIVE,
    Expected,
    Interaction,
    b64bytes,
    camel,
    expected,
    model_calls,
    same_contents,
)

CODEC = GeminiCodec()


def _ids(path: Any) -> str:
    return str(path.name).removeprefix("pydantic-ai__").removesuffix(".json")


def calls_or_skip(path: Any) -> list[Interaction]:
    if path.name in NOT_GEMINI_NATIVE:
        pytest.skip(NOT_GEMINI_NATIVE[path.name])
    calls = model_calls(path)
    if not calls:
        pytest.skip("no generateContent call in this recording (countTokens only)")
    return calls


def fold(events: list[Event]) -> Response:
    return StreamCollector().collect(events).to_response()


def codec_events(it: Interaction, chunk_size: int | None = None) -> list[Event]:
    body = it.body.encode()
    if not it.is_stream:
        return CODEC.decode(it.status, it.headers, body)
    decoder = GeminiStreamDecoder()
    events: list[Event] = []
    step = chunk_size or len(body) or 1
    for i in range(0, len(body), step):
        events += decoder.feed(body[i:i + step])
    return events + decoder.close()


def check_response(resp: Response, exp: Expected) -> None:
    assert resp.error is None
    assert resp.id == exp.id
    assert resp.model == exp.model
    assert resp.output_text == exp.text
    assert (resp.reasoning or "") == exp.reasoning
    assert resp.finish_reason == exp.finish
    assert resp.raw_finish_reason == exp.raw_finish
    assert [(c.name, c.arguments) for c in resp.tool_calls] == [
        (c["name"], c["args"]) for c in exp.calls]
    for call, rec in zip(resp.tool_calls, exp.calls, strict=True):
        if rec["id"]:
            assert call.id == rec["id"]
        assert call.id  # synthesized when the model gave none
        sig = (call.metadata.get("gemini") or {}).get("thoughtSignature")
        assert sig == rec["sig"]
    assert len({c.id for c in resp.tool_calls}) == len(resp.tool_calls)
    assert resp.message is not None and resp.message.tool_calls == resp.tool_calls
    u = exp.usage or {}
    assert resp.usage.input_tokens == u.get("promptTokenCount")
    assert resp.usage.total_tokens == u.get("totalTokenCount")
    assert resp.usage.reasoning_tokens == u.get("thoughtsTokenCount")
    out = None
    if "candidatesTokenCount" in u or "thoughtsTokenCount" in u:
        out = u.get("candidatesTokenCount", 0) + u.get("thoughtsTokenCount", 0)
    assert resp.usage.output_tokens == out
    assert resp.usage.cached_input_tokens == u.get("cachedContentTokenCount")


def check_order(events: list[Event]) -> None:
    assert isinstance(events[0], MessageStarted)
    assert isinstance(events[-1], MessageCompleted)
    assert sum(isinstance(e, MessageStarted) for e in events) == 1
    assert sum(isinstance(e, MessageCompleted) for e in events) == 1


def check_error(err: AdapterError, it: Interaction) -> None:
    body = json.loads(it.body)["error"]
    assert err.status == it.status == body["code"]
    assert body["message"] in err.message
    assert err.provider == "gemini"
    assert err.metadata.get("google_status") == body["status"]
    expected_reason = {"NOT_FOUND": "not_found", "INVALID_ARGUMENT": "invalid_request",
                       "PERMISSION_DENIED": "permission_denied",
                       "RESOURCE_EXHAUSTED": "rate_limited"}[body["status"]]
    assert err.reason == expected_reason
    assert err.body == json.loads(it.body)


# ------------------------------------------------------------------ responses (codec)
@pytest.mark.parametrize("path", FILES, ids=_ids)
def test_codec_replay(path: Any) -> None:
    for it in calls_or_skip(path):
        if it.status >= 400:
            check_error(CODEC.error(it.status, it.headers, it.body.encode()), it)
            continue
        events = codec_events(it)
        check_order(events)
        check_response(fold(events), expected(it))


@pytest.mark.parametrize("path", [p for p in FILES if any(
    it.is_stream for it in model_calls(p))], ids=_ids)
def test_stream_any_chunking_same_events(path: Any) -> None:
    """Byte-by-byte, 7-byte and whole-body feeding give identical events (CRLF SSE)."""
    for it in calls_or_skip(path):
        if not it.is_stream:
            continue
        assert "\r\n" in it.body
        whole = codec_events(it)
        assert codec_events(it, 7) == whole
        assert codec_events(it, 1) == whole
        assert sum(isinstance(e, TextDelta) for e in whole) >= 1


def test_non_stream_decode_equals_stream_fold() -> None:
    """The streamed thinking recording, re-assembled into one response object, decodes
    to the same Response (and the same replay metadata) as the stream folds to."""
    path = next(p for p in FILES if "thinking_part_iter" in p.name)
    it = model_calls(path)[0]
    parts: list[dict[str, Any]] = []
    last: dict[str, Any] = {}
    for line in it.body.split("\r\n"):
        if line.startswith("data: "):
            obj = json.loads(line[6:])
            last = obj
            for part in obj["candidates"][0]["content"]["parts"]:
                if parts and part.get("thought") == parts[-1].get("thought") and (
                        "thoughtSignature" not in part):
                    parts[-1]["text"] += part["text"]
                else:
                    parts.append(dict(part))
    whole = dict(last)
    whole["candidates"] = [{**last["candidates"][0], "content": {"role": "model",
                                                                  "parts": parts}}]
    streamed = fold(codec_events(it))
    decoded = fold(decode_body(json.dumps(whole).encode()))
    assert decoded == streamed
    assert decoded.message is not None
    assert decoded.message.metadata["gemini"]["parts"] == [
        {"type": "thought", "chars": len(parts[0]["text"])},
        {"type": "text", "chars": len(parts[1]["text"]),
         "thoughtSignature": parts[1]["thoughtSignature"]},
    ]


# --------------------------------------------------------------------------- requests
def lower_types(schema: Any) -> Any:
    """Google's OpenAPI schema (``"type": "OBJECT"``) back to JSON Schema spelling."""
    if isinstance(schema, dict):
        return {k: (v.lower() if k == "type" and isinstance(v, str) else lower_types(v))
                for k, v in schema.items()}
    if isinstance(schema, list):
        return [lower_types(v) for v in schema]
    return schema


def to_request(body: dict[str, Any]) -> tuple[Request, dict[str, Any]] | str:
    """The allm request a user would write for a recorded first-turn body, or the
    reason it has no neutral equivalent."""
    body = camel(body)
    messages: list[Message] = [system(p["text"]) for p in
                                (body.get("systemInstruction") or {}).get("parts", [])]
    for content in body["contents"]:
        if content.get("role") != "user":
            return "history with model turns in the first request"
        parts: list[TextPart | ImagePart] = []
        for part in content["parts"]:
            if set(part) == {"text"}:
                parts.append(TextPart(text=part["text"]))
            elif set(part) == {"inlineData"} and part["inlineData"]["mimeType"].startswith(
                    "image/"):
                parts.append(ImagePart(image=Image.from_bytes(
                    b64bytes(part["inlineData"]["data"]))))
            else:
                return f"a part allm has no neutral type for ({sorted(part)}: video, " \
                       "PDF, text documents, YouTube URLs)"
        if len(parts) == 1 and isinstance(parts[0], TextPart):
            messages.append(Message(role="user", content=parts[0].text))
        else:
            messages.append(Message(role="user", content=tuple(parts)))
    tools: list[Tool] = []
    options: dict[str, Any] = {}
    opts: dict[str, Any] = {}
    for tool in body.get("tools") or []:
        if "functionDeclarations" not in tool:
            options.setdefault("tools", []).append(tool)
            continue
        for decl in tool["functionDeclarations"]:
            if "parametersJsonSchema" in decl:
                schema = decl["parametersJsonSchema"]
            else:
                schema = lower_types(decl["parameters"])
                opts["schema_mode"] = "openapi"
            tools.append(Tool(name=decl["name"], description=decl.get("description", ""),
                              parameters=schema))
    tool_choice = None
    if "toolConfig" in body:
        if tools:
            tool_choice = body["toolConfig"]
        else:
            options["toolConfig"] = body["toolConfig"]
    gc = body.get("generationConfig") or {}
    params: dict[str, Any] = {}
    for wire, name in (("temperature", "temperature"), ("topP", "top_p"), ("topK", "top_k"),
                       ("maxOutputTokens", "max_tokens")):
        if wire in gc:
            params[name] = gc[wire]
    thinking = gc.get("thinkingConfig")
    if thinking == {"includeThoughts": True}:
        params["thinking"] = True
    elif thinking == {"thinkingBudget": 0}:
        params["thinking"] = 0
    elif thinking is not None:
        return f"thinkingConfig {thinking!r}"
    response_format: Any = None
    if "responseSchema" in gc:
        return "an SDK-generated OpenAPI responseSchema (snake_case any_of/property_ordering)"
    if "responseJsonSchema" in gc:
        response_format = {"type": "json_schema", "name": "out",
                           "schema": gc["responseJsonSchema"]}
    elif gc.get("responseMimeType") == "application/json":
        response_format = {"type": "json_object"}
    request = Request(messages=tuple(messages), tools=tuple(tools), tool_choice=tool_choice,
                      response_format=response_format, params=params, options=options)
    return request, opts


def compare_bodies(ours: dict[str, Any], recorded: dict[str, Any]) -> None:
    recorded = camel(recorded)
    problems = same_contents(ours["contents"], recorded["contents"])
    assert not problems, "\n".join(problems)
    assert ours.get("systemInstruction") == recorded.get("systemInstruction")
    assert ours.get("tools") == recorded.get("tools")
    assert ours.get("toolConfig") == recorded.get("toolConfig")
    gc_ours = ours.get("generationConfig", {})
    gc_rec = recorded.get("generationConfig", {})
    assert gc_ours == {k: gc_rec[k] for k in gc_ours if k in gc_rec}
    assert set(gc_rec) - set(gc_ours) <= {"responseModalities"}
    assert set(ours) - {"generationConfig"} <= set(recorded)


def continues(prev: dict[str, Any], nxt: dict[str, Any]) -> bool:
    n = len(prev["contents"])
    return (len(nxt["contents"]) > n + 1 and nxt["contents"][n].get("role") == "model"
            and same_contents(nxt["contents"][:n], prev["contents"]) == [])


def next_messages(prev_messages: list[Message], result: Response, prev: dict[str, Any],
                  nxt: dict[str, Any]) -> list[Message]:
    """Turn N+1's thread: turn N's thread, allm's own turn-N message, then the tool
    results / user text the recording sent (tool results matched to allm's calls by
    position, as the recorder sent them in call order)."""
    assert result.message is not None
    messages = [*prev_messages, result.message]
    calls = list(result.tool_calls)
    for content in camel(nxt["contents"][len(prev["contents"]) + 1:]):
        assert content["role"] == "user"
        answered = 0
        for part in content["parts"]:
            if "functionResponse" in part:
                fr = part["functionResponse"]
                call = calls[answered]
                answered += 1
                assert call.name == fr["name"]
                response = fr["response"]
                if set(response) == {"error"}:
                    messages.append(tool_result(call.id, response["error"], is_error=True))
                else:
                    value = response.get("return_value", response)
                    messages.append(tool_result(call.id, value))
            else:
                messages.append(Message(role="user", content=part["text"]))
    return messages


@pytest.mark.parametrize("path", FILES, ids=_ids)
def test_requests_match_recording(path: Any) -> None:
    """Turn 1 as a user would write it encodes to the recorded body; turn N+1 built from
    allm's own turn-N result carries the recorded contents (text, thought parts,
    function calls with their signatures where they were, tool results)."""
    interactions = calls_or_skip(path)
    checked = 0
    skipped: list[str] = []
    prev_it: Interaction | None = None
    messages: list[Message] = []
    base: tuple[Request, dict[str, Any]] | str = "no previous turn"
    result: Response | None = None
    for it in interactions:
        if prev_it is not None and result is not None and not isinstance(base, str) and \
                continues(prev_it.request, it.request):
            messages = next_messages(messages, result, prev_it.request, it.request)
            request = Request(messages=tuple(messages), tools=base[0].tools,
                              tool_choice=base[0].tool_choice,
                              response_format=base[0].response_format,
                              params=base[0].params, options=base[0].options)
            opts = base[1]
        else:
            base = to_request(it.request)
            if isinstance(base, str):
                skipped.append(base)
                prev_it, result = it, None
                continue
            request, opts = base
            messages = list(request.messages)
        body = CODEC.body(request, Call(model=it.model, adapter_opts=opts))
        compare_bodies(body, it.request)
        checked += 1
        prev_it = it
        result = fold(codec_events(it)) if it.status < 400 else None
    if not checked:
        pytest.skip("; ".join(sorted(set(skipped))))


# ---------------------------------------------------------------------------- adapter
def _serve(it: Interaction, seen: list[httpx2.Request]) -> httpx2.MockTransport:
    headers = {k: v for k, v in it.headers.items()
               if k.lower() not in ("transfer-encoding", "content-encoding", "content-length")}

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(it.status, headers=headers, content=it.body.encode())

    return httpx2.MockTransport(handler)


KEY = "AIza-test-key-0123456789"


def check_sent(sent: httpx2.Request, it: Interaction) -> None:
    assert sent.method == "POST"
    assert str(sent.url) == it.url
    assert KEY not in str(sent.url) and "key=" not in str(sent.url)
    assert sent.headers["x-goog-api-key"] == KEY
    assert sent.headers["content-type"] == "application/json"
    assert json.loads(sent.content)["contents"]


@pytest.mark.parametrize("path", FILES, ids=_ids)
def test_adapter_replay(path: Any) -> None:
    for it in calls_or_skip(path):
        seen: list[httpx2.Request] = []
        client = httpx2.Client(transport=_serve(it, seen))
        adapter = Gemini(http_client=client, retry=False)
        call = Call(model=it.model, api_key=KEY, stream=it.is_stream)
        events = list(adapter.stream(Request(messages=(Message(role="user", content="hi"),)),
                                     call))
        adapter.close()
        assert len(seen) == 1
        check_sent(seen[0], it)
        for event in events:
            assert KEY not in repr(event)
        if it.status >= 400:
            last = events[-1]
            assert isinstance(last, ErrorEvent) and isinstance(last.error, AdapterError)
            check_error(last.error, it)
            continue
        check_order(events)
        check_response(fold(events), expected(it))


@pytest.mark.anyio
async def test_adapter_replay_async() -> None:
    """The async shell replays a stream, a JSON body and an error like the sync one."""
    picks = [p for p in FILES if any(k in p.name for k in (
        "thinking_part_iter", "instructions_only_with_tool_calls", "name_suggestion"))]
    assert len(picks) == 3
    for path in picks:
        for it in model_calls(path):
            seen: list[httpx2.Request] = []
            client = httpx2.AsyncClient(transport=_serve(it, seen))
            adapter = Gemini(async_http_client=client, retry=False)
            call = Call(model=it.model, api_key=KEY, stream=it.is_stream)
            request = Request(messages=(Message(role="user", content="hi"),))
            events = [e async for e in adapter.astream(request, call)]
            await adapter.aclose()
            await client.aclose()
            check_sent(seen[0], it)
            if it.status >= 400:
                last = events[-1]
                assert isinstance(last, ErrorEvent) and isinstance(last.error, AdapterError)
                check_error(last.error, it)
                continue
            assert fold(events) == fold(codec_events(it))
            check_response(fold(events), expected(it))


def test_tool_call_events_are_whole_calls() -> None:
    """Gemini sends whole calls: started + completed, never argument deltas."""
    path = next(p for p in FILES if "instructions_only_with_tool_calls" in p.name)
    events = codec_events(model_calls(path)[0])
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["MessageStarted"] + ["ToolCallStarted", "ToolCallCompleted"] * 3 + [
        "RawChunk", "MessageCompleted"]
    done = [e for e in events if isinstance(e, ToolCallCompleted)]
    assert done[0].metadata["gemini"]["thoughtSignature"].startswith("Es8FCswF")
    assert "gemini" not in done[1].metadata and "gemini" not in done[2].metadata
