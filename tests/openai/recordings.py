"""Recorded OpenAI traffic for the tests: loading, and expectations derived from the
recorded JSON independently of the codecs under test (plain dict walking, a naive
line-based SSE split)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from allm.image import Image
from allm.messages import ImagePart, Message, TextPart, ToolCall
from allm.tool import Tool

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "openai"
FILES = sorted(FIXTURES.glob("*.json"))


@dataclass
class Interaction:
    file: str
    index: int
    api: str  # "chat" | "responses" | "other"
    method: str
    path: str
    request: dict[str, Any]
    status: int
    headers: dict[str, str]
    body: str

    @property
    def is_model_call(self) -> bool:
        return self.api in ("chat", "responses")

    @property
    def is_stream(self) -> bool:
        return self.body.lstrip().startswith(("data:", "event:"))


def _api(method: str, path: str) -> str:
    if method == "POST" and path.endswith("/chat/completions"):
        return "chat"
    if method == "POST" and path.endswith("/responses"):
        return "responses"
    # Background-mode polling: GET /responses/{id} returns a response object.
    if method == "GET" and "/responses/resp_" in path:
        return "responses"
    return "other"


def load(path: Path) -> list[Interaction]:
    data = json.loads(path.read_text())
    out = []
    for i, it in enumerate(data["interactions"]):
        req, resp = it["request"], it["response"]
        url = req["url"].split("?", 1)[0]
        p = "/" + url.split("/v1/", 1)[-1] if "/v1/" in url else url
        try:
            body = json.loads(req["body"]) if req.get("body") else {}
        except ValueError:
            body = {}
        out.append(Interaction(
            file=path.name, index=i, api=_api(req["method"], p), method=req["method"], path=p,
            request=body if isinstance(body, dict) else {}, status=resp["status"],
            headers=dict(resp["headers"]), body=resp["body"],
        ))
    return out


# ----------------------------------------------------------------------------- expected
@dataclass
class Expected:
    text: str
    tool_calls: list[tuple[str, str, Any]]  # (id, name, parsed arguments)
    finish_reason: str | None
    input_tokens: int | None
    output_tokens: int | None
    cached_tokens: int | None
    reasoning_tokens: int | None
    error: dict[str, Any] | None = None  # {"message", "code"} for in-body errors


def json_bodies(api: str) -> list[dict[str, Any]]:
    """Every recorded 200 non-streaming JSON object body of `api` ("chat" | "responses")."""
    out = []
    for path in FILES:
        for it in load(path):
            if it.api != api or it.status != 200 or it.is_stream:
                continue
            body = json.loads(it.body)
            if isinstance(body, dict):
                out.append(body)
    return out


def naive_sse(body: str) -> list[tuple[str | None, str]]:
    """(event, data) pairs: blank-line separated blocks, `event:`/`data:` lines."""
    out = []
    for block in body.replace("\r\n", "\n").split("\n\n"):
        event, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if data:
            out.append((event, "\n".join(data)))
    return out


_CHAT_FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls",
                "content_filter": "content_filter", "function_call": "tool_calls"}


def _chat_expected(message: dict[str, Any], finish: str | None, usage: dict[str, Any] | None,
                   calls: list[tuple[str, str, Any]]) -> Expected:
    usage = usage or {}
    finish_reason = _CHAT_FINISH.get(finish, "other") if finish else None
    if message.get("refusal") and finish_reason == "stop":
        finish_reason = "refusal"
    if calls and finish_reason == "stop":
        finish_reason = "tool_calls"
    return Expected(
        text=message.get("content") or "",
        tool_calls=calls,
        finish_reason=finish_reason,
        input_tokens=usage.get("prompt_tokens"),
        output_tokens=usage.get("completion_tokens"),
        cached_tokens=(usage.get("prompt_tokens_details") or {}).get("cached_tokens"),
        reasoning_tokens=(usage.get("completion_tokens_details") or {}).get("reasoning_tokens"),
    )


def expected_chat(it: Interaction) -> Expected:
    if not it.is_stream:
        body = json.loads(it.body)
        choice = body["choices"][0]
        msg = choice["message"]
        calls = [(tc["id"], tc["function"]["name"], json.loads(tc["function"]["arguments"] or "{}"))
                 for tc in msg.get("tool_calls") or []]
        return _chat_expected(msg, choice.get("finish_reason"), body.get("usage"), calls)
    text: list[str] = []
    refusal: list[str] = []
    finish: str | None = None
    usage: dict[str, Any] | None = None
    pending: dict[int, list[Any]] = {}
    for _event, data in naive_sse(it.body):
        if data.strip() == "[DONE]":
            break
        chunk = json.loads(data)
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                text.append(delta["content"])
            if delta.get("refusal"):
                refusal.append(delta["refusal"])
            for tc in delta.get("tool_calls") or []:
                entry = pending.setdefault(tc["index"], [None, "", ""])
                entry[0] = entry[0] or tc.get("id")
                fn = tc.get("function") or {}
                entry[1] = entry[1] or fn.get("name") or ""
                entry[2] += fn.get("arguments") or ""
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
    ordered = [(c[0], c[1], json.loads(c[2] or "{}")) for _, c in sorted(pending.items())]
    return _chat_expected({"content": "".join(text), "refusal": "".join(refusal)}, finish,
                          usage, ordered)


def _response_expected(resp: dict[str, Any]) -> Expected:
    text: list[str] = []
    calls: list[tuple[str, str, Any]] = []
    for item in resp.get("output") or []:
        if item.get("type") == "message":
            text.extend(p.get("text", "") for p in item.get("content") or []
                        if p.get("type") == "output_text")
        elif item.get("type") == "function_call":
            calls.append((item["call_id"], item["name"], json.loads(item["arguments"] or "{}")))
    status = resp.get("status")
    reason = (resp.get("incomplete_details") or {}).get("reason")
    finish: str | None
    if status == "completed":
        finish = "tool_calls" if calls else "stop"
    elif status == "incomplete":
        finish = {"max_output_tokens": "length", "content_filter": "content_filter"}.get(
            str(reason), "other")
    elif status in ("queued", "in_progress"):
        finish = None
    elif status == "failed":
        finish = "error"
    else:
        finish = "other"
    usage = resp.get("usage") or {}
    error = resp.get("error") if status == "failed" else None
    return Expected(
        text="".join(text), tool_calls=calls, finish_reason=finish,
        input_tokens=usage.get("input_tokens"), output_tokens=usage.get("output_tokens"),
        cached_tokens=(usage.get("input_tokens_details") or {}).get("cached_tokens"),
        reasoning_tokens=(usage.get("output_tokens_details") or {}).get("reasoning_tokens"),
        error=error,
    )


def expected_responses(it: Interaction) -> Expected:
    if not it.is_stream:
        return _response_expected(json.loads(it.body))
    final = None
    deltas = []
    for _event, data in naive_sse(it.body):
        obj = json.loads(data)
        if obj.get("type") == "response.output_text.delta":
            deltas.append(obj["delta"])
        if obj.get("type") in ("response.completed", "response.incomplete", "response.failed"):
            final = obj["response"]
    assert final is not None, "stream without a terminal event"
    exp = _response_expected(final)
    assert exp.text == "".join(deltas)  # the recording is self-consistent
    return exp


def expected(it: Interaction) -> Expected:
    return expected_chat(it) if it.api == "chat" else expected_responses(it)


# ------------------------------------------------------------- recorded request -> allm
class Unsupported(Exception):
    """The recorded request uses content allm does not model (files, audio, ...)."""


def _image(url: str, detail: str | None) -> ImagePart:
    image = Image.from_data_uri(url) if url.startswith("data:") else Image.from_url(url)
    return ImagePart(image=image, detail=detail or "auto")  # type: ignore[arg-type]


def _chat_parts(content: Any) -> str | tuple[TextPart | ImagePart, ...]:
    if content is None or isinstance(content, str):
        return content or ""
    parts: list[TextPart | ImagePart] = []
    for block in content:
        kind = block.get("type")
        if kind == "text":
            parts.append(TextPart(text=block["text"]))
        elif kind == "image_url":
            parts.append(_image(block["image_url"]["url"], block["image_url"].get("detail")))
        else:
            raise Unsupported(kind)
    return tuple(parts)


def chat_messages(body: dict[str, Any]) -> list[Message]:
    out = []
    for m in body.get("messages") or []:
        role = m["role"]
        if role in ("system", "developer"):
            out.append(Message(role="system", content=_text_of(m.get("content"))))
        elif role == "user":
            out.append(Message(role="user", content=_chat_parts(m.get("content"))))
        elif role == "assistant":
            calls = tuple(
                ToolCall(id=tc["id"], name=tc["function"]["name"],
                         arguments=json.loads(tc["function"]["arguments"] or "{}"),
                         raw_arguments=tc["function"]["arguments"])
                for tc in m.get("tool_calls") or []
            )
            out.append(Message(role="assistant", content=_text_of(m.get("content")),
                               tool_calls=calls))
        elif role == "tool":
            out.append(Message(role="tool", content=_text_of(m.get("content")),
                               tool_call_id=m["tool_call_id"]))
        else:
            raise Unsupported(role)
    return out


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    out = []
    for p in content:
        if p.get("type") in ("text", "input_text", "output_text"):
            out.append(p["text"])
        else:
            raise Unsupported(p.get("type"))
    return "".join(out)


def _responses_parts(content: Any) -> str | tuple[TextPart | ImagePart, ...]:
    if isinstance(content, str):
        return content
    parts: list[TextPart | ImagePart] = []
    for p in content:
        if p.get("type") == "input_text":
            parts.append(TextPart(text=p["text"]))
        elif p.get("type") == "input_image" and isinstance(p.get("image_url"), str):
            parts.append(_image(p["image_url"], p.get("detail")))
        else:
            raise Unsupported(p.get("type"))
    return tuple(parts)


_ASSISTANT_ITEMS = {"reasoning", "function_call", "web_search_call", "code_interpreter_call",
                    "file_search_call", "image_generation_call", "mcp_call", "mcp_list_tools"}


def responses_messages(body: dict[str, Any]) -> list[Message]:
    """Recorded `instructions` + `input` -> allm messages (consecutive assistant-side
    items grouped into one assistant message)."""
    out: list[Message] = []
    if body.get("instructions"):
        out.append(Message(role="system", content=body["instructions"]))
    items = body.get("input")
    if isinstance(items, str):
        return [*out, Message(role="user", content=items)]
    text: list[str] = []
    calls: list[ToolCall] = []
    replay: list[dict[str, Any]] = []  # the codec's replay format (responses_codec)
    open_assistant = False

    def flush() -> None:
        nonlocal open_assistant, text, calls, replay
        if open_assistant:
            meta = {"openai": {"items": replay}} if replay else {}
            out.append(Message(role="assistant", content="".join(text), tool_calls=tuple(calls),
                               metadata=meta))
        open_assistant, text, calls, replay = False, [], [], []

    for item in items or []:
        kind = item.get("type")
        role = item.get("role")
        if role == "assistant":
            if kind != "message" and any(text):
                flush()  # two plain assistant messages in a row stay two messages
            open_assistant = True
            piece = _text_of(item.get("content"))
            text.append(piece)
            if kind == "message" and item.get("id"):
                ref = {k: v for k, v in item.items() if k not in ("content", "status", "role")}
                replay.append({**ref, "text": piece})
        elif kind in _ASSISTANT_ITEMS:
            open_assistant = True
            if kind == "function_call":
                calls.append(ToolCall(id=item["call_id"], name=item["name"],
                                      arguments=json.loads(item["arguments"] or "{}"),
                                      raw_arguments=item["arguments"]))
                replay.append({"type": "function_call", "id": item.get("id"),
                               "call_id": item["call_id"]})
            else:
                replay.append(dict(item))
        elif kind == "function_call_output":
            flush()
            output = item["output"]
            if not isinstance(output, str):
                raise Unsupported("non-text function_call_output")
            out.append(Message(role="tool", content=output, tool_call_id=item["call_id"]))
        elif role in ("user", "system", "developer"):
            flush()
            content = _responses_parts(item.get("content"))
            out.append(Message(role="user" if role == "user" else "system", content=content))
        else:
            raise Unsupported(kind or role)
    flush()
    return out


def recorded_messages(it: Interaction) -> list[Message]:
    return chat_messages(it.request) if it.api == "chat" else responses_messages(it.request)


def recorded_tools(it: Interaction) -> tuple[Tool, ...]:
    tools = []
    for t in it.request.get("tools") or []:
        if t.get("type") != "function":
            continue  # built-in tools (web_search, ...) are not allm Tools
        fn = t.get("function", t)
        tools.append(Tool(name=fn["name"], description=fn.get("description") or "",
                          parameters=fn.get("parameters") or {}, strict=fn.get("strict")))
    return tuple(tools)


# -------------------------------------------------------------------- normalized views
def normalize_chat(body: dict[str, Any]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for m in body.get("messages") or []:
        role = m["role"]
        if role == "assistant":
            calls = [(tc["id"], tc["function"]["name"],
                      json.loads(tc["function"]["arguments"] or "{}"))
                     for tc in m.get("tool_calls") or []]
            out.append(("assistant", _norm_text(m.get("content")), calls))
        elif role == "tool":
            out.append(("tool", m["tool_call_id"], _norm_text(m.get("content"))))
        else:  # developer is the newer name of system (o-series, gpt-5)
            out.append(("system" if role == "developer" else role, _norm_text(m.get("content"))))
    return out


def _norm_text(content: Any) -> Any:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    out: list[Any] = []
    for p in content:
        kind = p.get("type")
        if kind in ("text", "input_text", "output_text"):
            out.append(p["text"])
        elif kind == "image_url":
            out.append(("image", p["image_url"]["url"]))
        elif kind == "input_image":
            out.append(("image", p.get("image_url")))
        else:
            out.append((kind,))
    if all(isinstance(x, str) for x in out):
        return "".join(out)
    return out


def normalize_responses(body: dict[str, Any]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    if body.get("instructions"):  # instructions == a leading system message
        out.append(("system", body["instructions"]))
    items = body.get("input")
    if isinstance(items, str):
        return [*out, ("user", items)]
    for item in items or []:
        kind = item.get("type")
        role = item.get("role")
        if role == "assistant":
            text = _norm_text(item.get("content"))
            if text:
                out.append(("assistant", text))
        elif role is not None:
            role = "system" if role == "developer" else role
            out.append((role, _norm_text(item.get("content"))))
        elif kind == "function_call":
            out.append(("function_call", item["call_id"], item["name"],
                        json.loads(item["arguments"] or "{}")))
        elif kind == "function_call_output":
            out.append(("function_call_output", item["call_id"], item["output"]))
        elif kind == "reasoning":
            # OpenAI re-encrypts reasoning between output_item.done and
            # response.completed; both are valid, so only presence is compared.
            out.append(("reasoning", item.get("id"), bool(item.get("encrypted_content"))))
        else:
            out.append((kind, item.get("id")))
    return out


def normalize(api: str, body: dict[str, Any]) -> list[tuple[Any, ...]]:
    return normalize_chat(body) if api == "chat" else normalize_responses(body)
