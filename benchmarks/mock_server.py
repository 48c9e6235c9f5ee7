"""Loopback mock LLM provider for the benchmarks (stdlib only, raw asyncio HTTP/1.1).

Serves wire-faithful answers, instantly, so a benchmark measures the client and not
the network or a model:

| route | provider |
|---|---|
| ``POST /v1/chat/completions`` | OpenAI Chat Completions (``"stream": true`` -> SSE, ``[DONE]``) |
| ``POST /v1/responses`` | OpenAI Responses (``"stream": true`` -> typed SSE events) |
| ``POST /v1/messages`` | Anthropic Messages (``"stream": true`` -> SSE) |
| ``POST /v1beta/models/{m}:generateContent`` | Gemini, one JSON answer |
| ``POST /v1beta/models/{m}:streamGenerateContent?alt=sse`` | Gemini, SSE (``\\r\\n\\r\\n``) |
| ``GET /health`` | ``ok`` |

Knobs (a header, a query parameter, or a path prefix ``/_mock/k=v,k=v`` in front of
the normal path, so an SDK can be pointed at it through its base URL):

| header | query / prefix | default | meaning |
|---|---|---|---|
| ``x-mock-chunks`` | ``chunks`` | 20 | text deltas in a stream (non-streaming: the same text at once) |
| ``x-mock-chunk-size`` | ``chunk_size`` | 6 | ASCII characters per delta |
| ``x-mock-delay-ms`` | ``delay_ms`` | 0 | pause between streamed events (0: one write) |

Every reply's text is exactly ``chunks * chunk_size`` characters, so a client that
drops a delta is caught by the runner. Streams send each SSE event as its own HTTP
chunk (``Transfer-Encoding: chunked``), as the real services do. Bodies are rendered
once per knob combination and cached, so the server costs little CPU per request.
OpenAI chat streams carry the usage-only final chunk (and ``"usage": null`` on every
other chunk) when the request sets ``stream_options.include_usage``.

Binds 127.0.0.1 only and exits by itself after ``--max-seconds`` (default 1800).

    python benchmarks/mock_server.py [--port 0] [--max-seconds 1800]

prints ``PORT <n>`` on stdout once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from typing import Any
from urllib.parse import parse_qsl, unquote

CREATED = 1764000000
OPENAI_MODEL = "gpt-4.1-mini-2025-04-14"
ANTHROPIC_MODEL = "claude-sonnet-4-5-20250929"
GEMINI_MODEL = "gemini-2.5-flash"
PROMPT_TOKENS = 12
_STREAM_RE = re.compile(rb'"stream"\s*:\s*true')
_USAGE_RE = re.compile(rb'"include_usage"\s*:\s*true')
_MAX_BODY = 64 * 1024 * 1024


def delta_texts(chunks: int, size: int) -> list[str]:
    """`chunks` ASCII strings of exactly `size` characters (word-like, JSON-safe)."""
    out = []
    for i in range(chunks):
        word = f" tok{i}" + "abcdefghij" * (size // 10 + 1)
        out.append(word[:size])
    return out


def _j(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


# -- OpenAI Chat Completions ----------------------------------------------------------


def openai_usage(n: int) -> dict[str, Any]:
    return {
        "prompt_tokens": PROMPT_TOKENS, "completion_tokens": n,
        "total_tokens": PROMPT_TOKENS + n,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0},
    }


def openai_chat(texts: list[str], stream: bool, usage: bool) -> list[bytes] | bytes:
    n = len(texts)
    if not stream:
        return _j({
            "id": "chatcmpl-mock", "object": "chat.completion", "created": CREATED,
            "model": OPENAI_MODEL,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(texts),
                                                 "refusal": None, "annotations": []},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": openai_usage(n), "service_tier": "default",
            "system_fingerprint": "fp_mock",
        }).encode()

    def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
        obj: dict[str, Any] = {
            "id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": CREATED,
            "model": OPENAI_MODEL, "service_tier": "default", "system_fingerprint": "fp_mock",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if usage:
            obj["usage"] = None
        return f"data: {_j(obj)}\n\n".encode()

    events = [chunk({"role": "assistant", "content": "", "refusal": None}, None)]
    events += [chunk({"content": t}, None) for t in texts]
    events.append(chunk({}, "stop"))
    if usage:
        events.append(f"data: {_j({'id': 'chatcmpl-mock', 'object': 'chat.completion.chunk', 'created': CREATED, 'model': OPENAI_MODEL, 'service_tier': 'default', 'system_fingerprint': 'fp_mock', 'choices': [], 'usage': openai_usage(n)})}\n\n".encode())
    events.append(b"data: [DONE]\n\n")
    return events


# -- OpenAI Responses ------------------------------------------------------------------


def openai_responses(texts: list[str], stream: bool) -> list[bytes] | bytes:
    n = len(texts)
    text = "".join(texts)
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    item = {"type": "message", "id": "msg_mock", "status": "completed", "role": "assistant",
            "content": [part]}

    def response(status: str, output: list[Any], with_usage: bool) -> dict[str, Any]:
        return {
            "id": "resp_mock", "object": "response", "created_at": CREATED, "status": status,
            "background": False, "error": None, "incomplete_details": None,
            "instructions": None, "max_output_tokens": None, "model": OPENAI_MODEL,
            "output": output, "parallel_tool_calls": True, "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None}, "service_tier": "default",
            "store": True, "temperature": 1.0, "text": {"format": {"type": "text"}},
            "tool_choice": "auto", "tools": [], "top_p": 1.0, "truncation": "disabled",
            "usage": ({"input_tokens": PROMPT_TOKENS,
                       "input_tokens_details": {"cached_tokens": 0},
                       "output_tokens": n, "output_tokens_details": {"reasoning_tokens": 0},
                       "total_tokens": PROMPT_TOKENS + n} if with_usage else None),
            "user": None, "metadata": {},
        }

    if not stream:
        return _j(response("completed", [item], True)).encode()
    seq = 0
    events: list[bytes] = []

    def ev(kind: str, **fields: Any) -> None:
        nonlocal seq
        events.append(f"event: {kind}\ndata: {_j({'type': kind, 'sequence_number': seq, **fields})}\n\n".encode())
        seq += 1

    ev("response.created", response=response("in_progress", [], False))
    ev("response.in_progress", response=response("in_progress", [], False))
    ev("response.output_item.added", output_index=0,
       item={**item, "status": "in_progress", "content": []})
    ev("response.content_part.added", item_id="msg_mock", output_index=0, content_index=0,
       part={**part, "text": ""})
    for t in texts:
        ev("response.output_text.delta", item_id="msg_mock", output_index=0, content_index=0,
           delta=t, logprobs=[])
    ev("response.output_text.done", item_id="msg_mock", output_index=0, content_index=0,
       text=text, logprobs=[])
    ev("response.content_part.done", item_id="msg_mock", output_index=0, content_index=0,
       part=part)
    ev("response.output_item.done", output_index=0, item=item)
    ev("response.completed", response=response("completed", [item], True))
    return events


# -- Anthropic Messages ------------------------------------------------------------------


def anthropic(texts: list[str], stream: bool) -> list[bytes] | bytes:
    n = len(texts)
    if not stream:
        return _j({
            "id": "msg_mock", "type": "message", "role": "assistant", "model": ANTHROPIC_MODEL,
            "content": [{"type": "text", "text": "".join(texts)}],
            "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": PROMPT_TOKENS, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0, "output_tokens": n,
                      "service_tier": "standard"},
        }).encode()

    def ev(kind: str, obj: dict[str, Any]) -> bytes:
        return f"event: {kind}\ndata: {_j({'type': kind, **obj})}\n\n".encode()

    events = [ev("message_start", {"message": {
        "id": "msg_mock", "type": "message", "role": "assistant", "model": ANTHROPIC_MODEL,
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": PROMPT_TOKENS, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 0, "output_tokens": 1,
                  "service_tier": "standard"}}})]
    events.append(ev("content_block_start",
                     {"index": 0, "content_block": {"type": "text", "text": ""}}))
    events.append(ev("ping", {}))
    events += [ev("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": t}})
               for t in texts]
    events.append(ev("content_block_stop", {"index": 0}))
    events.append(ev("message_delta", {"delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                       "usage": {"output_tokens": n}}))
    events.append(ev("message_stop", {}))
    return events


# -- Gemini --------------------------------------------------------------------------------


def _gj(obj: Any) -> str:  # Gemini's own spacing: `{"a": 1,"b": 2}`
    return json.dumps(obj, separators=(",", ": "))


def gemini(texts: list[str], stream: bool) -> list[bytes] | bytes:
    n = len(texts)
    details = [{"modality": "TEXT", "tokenCount": PROMPT_TOKENS}]
    full_usage = {"promptTokenCount": PROMPT_TOKENS, "candidatesTokenCount": n,
                  "totalTokenCount": PROMPT_TOKENS + n, "promptTokensDetails": details}
    if not stream:
        return _gj({
            "candidates": [{"content": {"parts": [{"text": "".join(texts)}], "role": "model"},
                            "finishReason": "STOP", "index": 0}],
            "usageMetadata": full_usage, "modelVersion": GEMINI_MODEL,
            "responseId": "mockresp",
        }).encode()
    events = []
    last = len(texts) - 1
    for i, t in enumerate(texts):
        cand: dict[str, Any] = {"content": {"parts": [{"text": t}], "role": "model"}, "index": 0}
        usage: dict[str, Any] = {"promptTokenCount": PROMPT_TOKENS,
                                 "totalTokenCount": PROMPT_TOKENS,
                                 "promptTokensDetails": details}
        if i == last:
            cand["finishReason"] = "STOP"
            usage = full_usage
        events.append(f"data: {_gj({'candidates': [cand], 'usageMetadata': usage, 'modelVersion': GEMINI_MODEL, 'responseId': 'mockresp'})}\r\n\r\n".encode())
    return events


# -- HTTP ------------------------------------------------------------------------------------

_cache: dict[tuple[Any, ...], tuple[bytes, list[bytes] | None]] = {}


def _head(status: str, ctype: str, extra: str) -> bytes:
    return (f"HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\n{extra}"
            "connection: keep-alive\r\nserver: allm-bench-mock\r\n\r\n").encode()


def render(kind: str, stream: bool, usage: bool, chunks: int, size: int,
           delay: bool) -> tuple[bytes, list[bytes] | None]:
    """(whole response bytes, or the head + a list of chunk frames when paced)."""
    key = (kind, stream, usage, chunks, size, delay)
    hit = _cache.get(key)
    if hit is not None:
        return hit
    texts = delta_texts(chunks, size)
    if kind == "chat":
        body = openai_chat(texts, stream, usage)
    elif kind == "responses":
        body = openai_responses(texts, stream)
    elif kind == "messages":
        body = anthropic(texts, stream)
    else:
        body = gemini(texts, stream)
    if isinstance(body, bytes):
        out: tuple[bytes, list[bytes] | None] = (
            _head("200 OK", "application/json", f"content-length: {len(body)}\r\n") + body, None)
    else:
        frames = [b"%x\r\n%s\r\n" % (len(e), e) for e in body] + [b"0\r\n\r\n"]
        head = _head("200 OK", "text/event-stream; charset=utf-8",
                     "transfer-encoding: chunked\r\ncache-control: no-cache\r\n")
        out = (head, frames) if delay else (head + b"".join(frames), None)
    if len(_cache) > 256:
        _cache.clear()
    _cache[key] = out
    return out


def _plain(status: str, text: str) -> bytes:
    body = text.encode()
    return _head(status, "text/plain", f"content-length: {len(body)}\r\n") + body


def _knobs(path: str, query: str, headers: dict[str, str]) -> tuple[str, dict[str, str]]:
    knobs: dict[str, str] = {}
    if path.startswith("/_mock/"):
        prefix, _, rest = path[len("/_mock/"):].partition("/")
        for item in prefix.split(","):
            k, _, v = item.partition("=")
            if k:
                knobs[k] = v
        path = "/" + rest
    knobs.update(parse_qsl(query))
    for name, key in (("x-mock-chunks", "chunks"), ("x-mock-chunk-size", "chunk_size"),
                      ("x-mock-delay-ms", "delay_ms")):
        if name in headers:
            knobs[key] = headers[name]
    return path, knobs


def respond(method: str, target: str, headers: dict[str, str],
            body: bytes) -> tuple[bytes, list[bytes] | None, float]:
    path, _, query = target.partition("?")
    path, knobs = _knobs(unquote(path), query, headers)
    try:
        chunks = max(1, int(knobs.get("chunks", 20)))
        size = max(1, int(knobs.get("chunk_size", 6)))
        delay = max(0.0, float(knobs.get("delay_ms", 0)) / 1000)
    except ValueError:
        return _plain("400 Bad Request", "bad mock knob"), None, 0.0
    if method == "GET" and path == "/health":
        return _plain("200 OK", "ok"), None, 0.0
    if method != "POST":
        return _plain("405 Method Not Allowed", "POST only"), None, 0.0
    if path.endswith("/chat/completions"):
        kind, stream = "chat", bool(_STREAM_RE.search(body))
    elif path.endswith("/responses"):
        kind, stream = "responses", bool(_STREAM_RE.search(body))
    elif path.endswith("/messages"):
        kind, stream = "messages", bool(_STREAM_RE.search(body))
    elif path.endswith(":generateContent"):
        kind, stream = "gemini", False
    elif path.endswith(":streamGenerateContent"):
        kind, stream = "gemini", True
    else:
        return _plain("404 Not Found", f"no mock route for {path}"), None, 0.0
    usage = kind == "chat" and stream and bool(_USAGE_RE.search(body))
    data, frames = render(kind, stream, usage, chunks, size, delay > 0)
    return data, frames, delay


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            try:
                method, target, _ = lines[0].split(" ", 2)
            except ValueError:
                writer.write(_plain("400 Bad Request", "bad request line"))
                return
            headers: dict[str, str] = {}
            for line in lines[1:]:
                if line:
                    k, _, v = line.partition(":")
                    headers[k.strip().lower()] = v.strip()
            length = int(headers.get("content-length", "0") or 0)
            if length > _MAX_BODY:
                writer.write(_plain("413 Payload Too Large", "too big"))
                return
            body = await reader.readexactly(length) if length else b""
            data, frames, delay = respond(method, target, headers, body)
            writer.write(data)
            if frames is not None:
                for frame in frames:
                    await asyncio.sleep(delay)
                    writer.write(frame)
                    await writer.drain()
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                return
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def serve(port: int, max_seconds: float) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096,
                                        limit=1 << 20)
    bound = server.sockets[0].getsockname()[1]
    print(f"PORT {bound}", flush=True)
    async with server:
        try:
            await asyncio.wait_for(server.serve_forever(), timeout=max_seconds)
        except (TimeoutError, asyncio.CancelledError):
            pass


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="loopback mock LLM provider (benchmarks)")
    ap.add_argument("--port", type=int, default=0, help="0 = any free port")
    ap.add_argument("--max-seconds", type=float, default=1800.0,
                    help="exit after this long (default 1800)")
    args = ap.parse_args(argv)
    try:
        asyncio.run(serve(args.port, args.max_seconds))
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
