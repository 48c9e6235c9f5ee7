"""Recorded Anthropic traffic for the tests: loading, expectations derived from the
recorded JSON independently of the codec under test (plain dict walking and a naive
line-based SSE split), the recorded wire request turned back into an allm `Request`,
and the normalisation both sides go through before comparing requests."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from allm.image import Image
from allm.messages import ImagePart, Message, TextPart, ToolCall
from allm.request import Request
from allm.tool import Tool

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "anthropic"
FILES = sorted(FIXTURES.glob("*.json"))


@dataclass
class Interaction:
    file: str
    index: int
    path: str
    request: dict[str, Any]
    status: int
    headers: dict[str, str]
    body: str

    @property
    def is_messages_call(self) -> bool:
        return self.path.endswith("/v1/messages")

    @property
    def is_stream(self) -> bool:
        return self.body.lstrip().startswith(("event:", "data:"))


def load(path: Path) -> list[Interaction]:
    data = json.loads(path.read_text())
    out = []
    for i, it in enumerate(data["interactions"]):
        req, resp = it["request"], it["response"]
        out.append(Interaction(
            file=path.name, index=i, path=req["url"].split("?", 1)[0],
            request=json.loads(req["body"]) if req.get("body") else {},
            status=resp["status"], headers=dict(resp.get("headers") or {}),
            body=resp["body"],
        ))
    return out


# -- expectations, from the recorded JSON only -------------------------------------------

def naive_sse(body: str) -> list[dict[str, Any]]:
    """The JSON payload of every ``data:`` line (the recordings put one per event)."""
    out = []
    for line in body.splitlines():
        if line.startswith("data:"):
            out.append(json.loads(line[5:]))
    return out


def recorded_message(it: Interaction) -> dict[str, Any]:
    """The final message the recording describes (streams assembled by hand)."""
    if not it.is_stream:
        return json.loads(it.body)  # type: ignore[no-any-return]
    message: dict[str, Any] = {}
    blocks: dict[int, dict[str, Any]] = {}
    json_parts: dict[int, str] = {}
    for ev in naive_sse(it.body):
        t = ev["type"]
        if t == "message_start":
            message = dict(ev["message"])
        elif t == "content_block_start":
            blocks[ev["index"]] = dict(ev["content_block"])
        elif t == "content_block_delta":
            b, d = blocks[ev["index"]], ev["delta"]
            if d["type"] == "text_delta":
                b["text"] += d["text"]
            elif d["type"] == "thinking_delta":
                b["thinking"] += d["thinking"]
            elif d["type"] == "signature_delta":
                b["signature"] = (b.get("signature") or "") + d["signature"]
            elif d["type"] == "input_json_delta":
                json_parts[ev["index"]] = json_parts.get(ev["index"], "") + d["partial_json"]
            elif d["type"] == "citations_delta":
                b["citations"] = [*(b.get("citations") or []), d["citation"]]
            else:  # compaction_delta and later string deltas: append field-wise
                for k, v in d.items():
                    if k != "type" and isinstance(v, str):
                        b[k] = (b.get(k) or "") + v
        elif t == "message_delta":
            message.update({k: v for k, v in ev["delta"].items() if v is not None})
            message["usage"] = {**message.get("usage", {}), **ev.get("usage", {})}
    for i, text in json_parts.items():
        if text:
            blocks[i]["input"] = json.loads(text)
    message["content"] = [blocks[i] for i in sorted(blocks)]
    return message


FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
          "tool_use": "tool_calls", "pause_turn": "pause", "refusal": "refusal"}


@dataclass
class Expected:
    id: str
    model: str
    text: str
    tool_calls: list[tuple[str, str, dict[str, Any]]]
    thinking: list[dict[str, Any]]
    finish_reason: str | None
    raw_finish_reason: str | None
    input_tokens: int
    output_tokens: int
    cache_read: int | None
    cache_write: int | None
    block_types: list[str] = field(default_factory=list)
    citations: bool = False


def expected(it: Interaction) -> Expected:
    m = recorded_message(it)
    content = m.get("content") or []
    usage = m.get("usage") or {}
    read = usage.get("cache_read_input_tokens")
    write = usage.get("cache_creation_input_tokens")
    stop = m.get("stop_reason")
    return Expected(
        id=m["id"],
        model=m["model"],
        text="".join(b["text"] for b in content if b["type"] == "text"),
        tool_calls=[(b["id"], b["name"], b.get("input") or {})
                    for b in content if b["type"] == "tool_use"],
        thinking=[b for b in content if b["type"] in ("thinking", "redacted_thinking")],
        finish_reason=None if stop is None else FINISH.get(stop, "other"),
        raw_finish_reason=stop,
        input_tokens=usage["input_tokens"] + (read or 0) + (write or 0),
        output_tokens=usage["output_tokens"],
        cache_read=read,
        cache_write=write,
        block_types=[b["type"] for b in content],
        citations=any(b.get("citations") for b in content if b["type"] == "text"),
    )


# -- the recorded wire request as an allm Request ----------------------------------------

class Unrepresentable(Exception):
    """The recorded request uses something allm has no way to ask for."""


def _user_parts(blocks: list[dict[str, Any]]) -> tuple[TextPart | ImagePart, ...]:
    parts: list[TextPart | ImagePart] = []
    for b in blocks:
        image = b["type"] == "image" and set(b) == {"type", "source"}
        if b["type"] == "text" and set(b) <= {"type", "text"}:
            parts.append(TextPart(text=b["text"]))
        elif image and b["source"]["type"] == "url":
            parts.append(ImagePart(image=Image.from_url(b["source"]["url"])))
        elif image and b["source"]["type"] == "base64":
            parts.append(ImagePart(image=Image.from_base64(b["source"]["data"],
                                                           b["source"]["media_type"])))
        else:  # documents and other block kinds: the verbatim escape hatch
            parts.append(TextPart(text="", metadata={"anthropic": b}))
    return tuple(parts)


def _tool_result_content(content: Any) -> Any:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if all(b.get("type") == "text" for b in content):
        return "\n".join(b["text"] for b in content)
    return _user_parts(content)


_PLAIN_KEYS = {"text": {"type", "text"}, "tool_use": {"type", "id", "name", "input"}}


def _pop_cache(content: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A breakpoint on a message's last block is `metadata["cache"]` in allm."""
    if not content or "cache_control" not in content[-1]:
        return content, {}
    last = dict(content[-1])
    control = last.pop("cache_control")
    rest = {k: v for k, v in control.items() if k != "type"}
    return [*content[:-1], last], {"cache": rest or True}


def wire_messages(messages: list[dict[str, Any]]) -> list[Message]:
    out: list[Message] = []
    for m in messages:
        role, content = m["role"], m["content"]
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        if role == "system":
            raise Unrepresentable("a system-role message inside messages (tool_addition)")
        content, cache = _pop_cache(content)
        first = len(out)
        if role == "user":
            results = [b for b in content if b["type"] == "tool_result"]
            rest = [b for b in content if b["type"] != "tool_result"]
            for b in results:
                out.append(Message(role="tool", content=_tool_result_content(b["content"]),
                                   tool_call_id=b["tool_use_id"],
                                   is_error=bool(b.get("is_error"))))
            if rest:
                out.append(Message(role="user", content=_user_parts(rest)))
        else:
            plain = all(set(b) == _PLAIN_KEYS.get(b["type"]) for b in content)
            text = "".join(b["text"] for b in content if b["type"] == "text")
            calls = tuple(ToolCall(id=b["id"], name=b["name"], arguments=b["input"])
                          for b in content if b["type"] == "tool_use")
            meta = {} if plain else {"anthropic": {"content": content}}
            out.append(Message(role="assistant", content=text, tool_calls=calls,
                               metadata=meta))
        if cache and len(out) > first:
            out[-1] = Message(role=out[-1].role, content=out[-1].content,
                              tool_call_id=out[-1].tool_call_id,
                              tool_calls=out[-1].tool_calls, is_error=out[-1].is_error,
                              metadata={**out[-1].metadata, **cache})
    return out


def wire_tools(body: dict[str, Any]) -> tuple[Tool, ...]:
    tools = []
    for t in body.get("tools") or ():
        if "type" in t:
            tools.append(Tool(name=t["name"],
                              metadata={"anthropic": {k: v for k, v in t.items() if k != "name"}}))
            continue
        extra = {k: v for k, v in t.items()
                 if k not in ("name", "description", "input_schema", "strict")}
        tools.append(Tool(name=t["name"], description=t.get("description", ""),
                          parameters=t["input_schema"], strict=t.get("strict"),
                          metadata={"anthropic": extra} if extra else {}))
    return tuple(tools)


_HANDLED = {"model", "max_tokens", "messages", "system", "tools", "tool_choice", "stream",
            "temperature", "top_p", "top_k", "stop_sequences", "thinking", "metadata",
            "output_config"}


def wire_request(body: dict[str, Any], history: list[Message] | None = None
                 ) -> tuple[Request, bool]:
    """(the allm Request a caller would write for this recorded body, stream flag).
    `history` replaces the messages (for turn N+1 built from our own turn N)."""
    messages: list[Message] = []
    system = body.get("system")
    if isinstance(system, str):
        messages.append(Message(role="system", content=system))
    elif isinstance(system, list):
        for b in system:
            if b.get("type") != "text" or not set(b) <= {"type", "text", "cache_control"}:
                raise Unrepresentable("system blocks with extra fields")
            [plain], cache = _pop_cache([b])
            messages.append(Message(role="system", content=plain["text"], metadata=cache))
    messages.extend(history if history is not None else wire_messages(body["messages"]))
    params: dict[str, Any] = {"max_tokens": body["max_tokens"]}
    for key in ("temperature", "top_p", "top_k"):
        if key in body:
            params[key] = body[key]
    if "stop_sequences" in body:
        params["stop"] = body["stop_sequences"]
    if "metadata" in body:
        params["user"] = body["metadata"]["user_id"]
    thinking = body.get("thinking")
    if thinking == {"type": "adaptive"}:
        params["thinking"] = "adaptive"
    elif thinking is not None and set(thinking) == {"type", "budget_tokens"}:
        params["thinking"] = thinking["budget_tokens"]
    elif thinking is not None:
        params["thinking"] = thinking
    choice = body.get("tool_choice")
    tool_choice: Any = None
    if choice is not None:
        if choice.get("disable_parallel_tool_use"):
            params["parallel_tool_calls"] = False
        kind = choice["type"]
        tool_choice = {"auto": "auto", "any": "required", "none": "none"}.get(kind)
        if kind == "tool":
            tool_choice = choice["name"]
    options = {k: v for k, v in body.items() if k not in _HANDLED}
    response_format = None
    output_config = dict(body.get("output_config") or {})
    fmt = output_config.pop("format", None)
    if fmt is not None:
        response_format = {"type": "json_schema", "name": "output", "schema": fmt["schema"]}
    if output_config:
        options["output_config"] = output_config
    request = Request(messages=tuple(messages), model=body["model"],
                      tools=wire_tools(body), tool_choice=tool_choice,
                      response_format=response_format, params=params, options=options)
    return request, bool(body.get("stream"))


# -- normalisation before comparing requests -----------------------------------------------

def _norm_block(b: dict[str, Any]) -> dict[str, Any]:
    # `caller` and `citations: null` are response fields; pydantic-ai strips them when
    # it rebuilds history, we replay the API's own blocks (the API accepts both).
    out = {k: v for k, v in b.items() if v is not None and k != "caller"}
    if out.get("type") == "tool_result" and out.get("is_error") is False:
        del out["is_error"]
    if out.get("type") == "tool_result" and isinstance(out.get("content"), list):
        if all(c.get("type") == "text" for c in out["content"]):
            out["content"] = "\n".join(c["text"] for c in out["content"])
    if isinstance(out.get("content"), list):
        out["content"] = [_norm_block(c) if isinstance(c, dict) else c for c in out["content"]]
    return out


_ASCII = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                        "\u2013": "-", "\u2014": "-"})


def _ascii(value: Any) -> Any:
    # The pause_turn recording's replayed history has web-result titles with
    # typographic quotes and dashes folded to ASCII (an artifact of the recorder); we
    # send the API's own blocks back byte for byte.
    if isinstance(value, str):
        return value.translate(_ASCII)
    if isinstance(value, list):
        return [_ascii(v) for v in value]
    if isinstance(value, dict):
        return {k: _ascii(v) for k, v in value.items()}
    return value


def normalize(body: dict[str, Any]) -> dict[str, Any]:
    out = dict(body)
    if out.get("stream") is False:
        del out["stream"]
    system = out.get("system")
    if isinstance(system, list) and all(set(b) == {"type", "text"} for b in system):
        out["system"] = "\n\n".join(b["text"] for b in system)
    tools = []
    for t in out.get("tools") or ():
        t = dict(t)
        if t.get("description") == "":
            del t["description"]
        tools.append(t)
    if tools:
        out["tools"] = tools
    messages = []
    for m in out.get("messages", []):
        content = m["content"]
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        messages.append({"role": m["role"], "content": [_norm_block(b) for b in content]})
    out["messages"] = _ascii(messages)
    return out
