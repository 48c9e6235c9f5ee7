"""Recorded tool conversations as provider-neutral scenarios, and their replay.

A `Conversation` is one recording read back into what a caller would write (the
prompt, the tools, the options) and what the model did at each turn (its tool calls,
its text, its usage, and the results the recorded *next* request answered each call
with). A `Replay` serves the recorded responses in order through
`httpx2.MockTransport` (or a `Fake` script for the Fake engine), records every
request allm sends, and can mint a fresh engine instance at any point (a `Session`
resumed on a new engine picks up the next recorded response).

Everything provider-specific lives in a `Wire`: how to read a recorded request /
response, how to make the engine, and how to project a request body onto the fields
the scenario compares (the conversation: assistant tool calls and tool results in the
provider's wire shape). The caller code in `test_same_scenario.py` never sees it.

The expectations are read from the recorded JSON by plain dict walking, independently
of the codecs under test. Fixtures: ``../shared/fixtures`` beside the repository.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2

import allm
from allm.engine import Engine
from allm.messages import Message
from allm.providers.fake import Fake
from allm.tool import Tool
from allm.tools import ToolContext

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"

# Keys the engines find in the environment (set by the test module's fixture).
KEYS = {"OPENAI_API_KEY": "sk-integration-test-key",
        "ANTHROPIC_API_KEY": "sk-ant-integration-test-key",
        "GEMINI_API_KEY": "AIza-integration-test-key"}

# pydantic-ai's output tool: the model "answers" by calling it. allm has no output
# tools (structured output uses the provider's JSON-schema mode), so a caller declares
# it manual: the loop stops with the call pending, its arguments are the answer.
OUTPUT_TOOL = "final_result"
BARRIER_TIMEOUT = 5.0


@dataclass(frozen=True)
class Exchange:
    """One recorded model call."""

    request: dict[str, Any]
    status: int
    body: str

    @property
    def is_stream(self) -> bool:
        return self.body.lstrip().startswith(("data:", "event:"))


def exchanges(provider: str, name: str) -> list[Exchange]:
    data = json.loads((FIXTURES / provider / name).read_text())
    out = []
    for it in data["interactions"]:
        body = it["request"].get("body")
        out.append(Exchange(request=json.loads(body) if body else {},
                            status=it["response"]["status"], body=it["response"]["body"]))
    return out


def sse_data(body: str) -> list[Any]:
    """The JSON payloads of an SSE body (``[DONE]`` dropped), by a naive line split."""
    out = []
    for line in body.replace("\r\n", "\n").split("\n"):
        if line.startswith("data:"):
            data = line[5:].strip()
            if data and data != "[DONE]":
                out.append(json.loads(data))
    return out


@dataclass(frozen=True)
class Turn:
    """What the model did at one recorded turn."""

    calls: tuple[tuple[str, dict[str, Any]], ...]  # (name, arguments), response order
    ids: tuple[str | None, ...]  # the ids the provider gave them (None: it gave none)
    text: str
    input_tokens: int
    output_tokens: int
    results: tuple[Any, ...] = ()  # what the next recorded request answers, by position


# ------------------------------------------------------------------------------ wires
class Wire:
    """The provider-specific half of a scenario (recorded JSON in, engine out)."""

    provider = ""
    model = ""

    def turn(self, ex: Exchange) -> Turn:
        raise NotImplementedError

    def results(self, request: dict[str, Any]) -> tuple[Any, ...]:
        """The tool results the request's last message carries, in order."""
        raise NotImplementedError

    def prompt(self, request: dict[str, Any]) -> list[Message]:
        raise NotImplementedError

    def tool_specs(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def tool_choice(self, request: dict[str, Any]) -> str:
        raise NotImplementedError

    def history(self, body: dict[str, Any]) -> Any:
        """The conversation a request body carries, normalized for comparison."""
        raise NotImplementedError

    def check_ids(self, body: dict[str, Any]) -> None:
        """Each tool result names the call it answers (wire-level pairing)."""

    def engine(self, client: httpx2.Client, aclient: httpx2.AsyncClient) -> Engine:
        return allm.engine(f"{self.provider}:{self.model}", http_client=client,
                           async_http_client=aclient)


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


class OpenAIChat(Wire):
    """Chat Completions (JSON or SSE)."""

    provider = "openai"

    def __init__(self, model: str) -> None:
        self.model = model

    def turn(self, ex: Exchange) -> Turn:
        if not ex.is_stream:
            body = json.loads(ex.body)
            msg = body["choices"][0]["message"]
            calls = [(tc["id"], tc["function"]["name"], tc["function"]["arguments"])
                     for tc in msg.get("tool_calls") or []]
            text, usage = msg.get("content") or "", body["usage"]
        else:
            pending: dict[int, list[str]] = {}
            chunks: list[str] = []
            usage = {}
            for chunk in sse_data(ex.body):
                usage = chunk.get("usage") or usage
                for choice in chunk.get("choices") or []:
                    delta = choice.get("delta") or {}
                    chunks.append(delta.get("content") or "")
                    for tc in delta.get("tool_calls") or []:
                        entry = pending.setdefault(tc["index"], ["", "", ""])
                        fn = tc.get("function") or {}
                        entry[0] = entry[0] or tc.get("id") or ""
                        entry[1] = entry[1] or fn.get("name") or ""
                        entry[2] += fn.get("arguments") or ""
            calls = [(c[0], c[1], c[2]) for _, c in sorted(pending.items())]
            text = "".join(chunks)
        return Turn(calls=tuple((name, json.loads(args or "{}")) for _, name, args in calls),
                    ids=tuple(cid for cid, _, _ in calls), text=text,
                    input_tokens=usage["prompt_tokens"],
                    output_tokens=usage["completion_tokens"])

    def results(self, request: dict[str, Any]) -> tuple[Any, ...]:
        out: list[Any] = []
        for m in reversed(request["messages"]):
            if m["role"] != "tool":
                break
            out.insert(0, m["content"])
        return tuple(out)

    def prompt(self, request: dict[str, Any]) -> list[Message]:
        return [allm.user(m["content"]) if m["role"] == "user" else allm.system(m["content"])
                for m in request["messages"]]

    def tool_specs(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"name": t["function"]["name"],
                 "description": t["function"].get("description") or "",
                 "parameters": t["function"]["parameters"],
                 "strict": t["function"].get("strict")} for t in request.get("tools") or []]

    def tool_choice(self, request: dict[str, Any]) -> str:
        return str(request.get("tool_choice", "auto"))

    def history(self, body: dict[str, Any]) -> Any:
        # A tool-call-only assistant message: allm sends "content": null, one recorder
        # omitted the key (the API takes both); arguments compared as parsed JSON.
        out = []
        for m in _drop_none(body["messages"]):
            for tc in m.get("tool_calls") or []:
                tc["function"]["arguments"] = json.loads(tc["function"]["arguments"] or "{}")
            out.append(m)
        return out


class Anthropic(Wire):
    """Messages API (JSON)."""

    provider = "anthropic"

    def __init__(self, model: str) -> None:
        self.model = model

    def turn(self, ex: Exchange) -> Turn:
        body = json.loads(ex.body)
        uses = [b for b in body["content"] if b["type"] == "tool_use"]
        return Turn(calls=tuple((b["name"], b["input"]) for b in uses),
                    ids=tuple(b["id"] for b in uses),
                    text="".join(b["text"] for b in body["content"] if b["type"] == "text"),
                    input_tokens=body["usage"]["input_tokens"],
                    output_tokens=body["usage"]["output_tokens"])

    def results(self, request: dict[str, Any]) -> tuple[Any, ...]:
        last = request["messages"][-1]
        return tuple(b["content"] for b in last["content"] if b["type"] == "tool_result")

    def prompt(self, request: dict[str, Any]) -> list[Message]:
        out = [allm.system(request["system"])] if request.get("system") else []
        [first] = request["messages"][:1]
        content = first["content"]
        text = content if isinstance(content, str) else "".join(b["text"] for b in content)
        return [*out, allm.user(text)]

    def tool_specs(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"name": t["name"], "description": t.get("description") or "",
                 "parameters": t["input_schema"], "strict": t.get("strict")}
                for t in request.get("tools") or []]

    def tool_choice(self, request: dict[str, Any]) -> str:
        kind = str((request.get("tool_choice") or {}).get("type", "auto"))
        return {"any": "required"}.get(kind, kind)

    def history(self, body: dict[str, Any]) -> Any:
        # `is_error: false` is the API's default: allm omits it, the recorder sent it.
        out = []
        for m in body["messages"]:
            content = m["content"]
            if isinstance(content, str):
                content = [{"type": "text", "text": content}]
            blocks = []
            for b in content:
                b = {k: v for k, v in b.items() if not (k == "is_error" and v is False)}
                blocks.append(b)
            out.append({"role": m["role"], "content": blocks})
        return out


def _b64(value: str) -> bytes:
    padded = value + "=" * (-len(value) % 4)
    try:
        return base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_"))
    except (binascii.Error, ValueError):  # pragma: no cover - recorded values are valid
        return value.encode()


def _unwrap(response: Any) -> Any:
    """A functionResponse's `response` reduced to the tool's value: pydantic-ai wraps it
    as ``{"return_value": v}``, allm as ``{"output": v}`` (Gemini takes any object;
    its docs use "output" / "error")."""
    if isinstance(response, dict) and len(response) == 1:
        (key, value), = response.items()
        if key in ("return_value", "output", "result"):
            return value
    return response


class Gemini(Wire):
    """generateContent (JSON)."""

    provider = "gemini"

    def __init__(self, model: str) -> None:
        self.model = model

    def turn(self, ex: Exchange) -> Turn:
        chunks = sse_data(ex.body) if ex.is_stream else [json.loads(ex.body)]
        calls: list[tuple[str, dict[str, Any]]] = []
        ids: list[str | None] = []
        text = ""
        usage: dict[str, Any] = {}
        for chunk in chunks:
            usage = chunk.get("usageMetadata") or usage
            for cand in chunk.get("candidates") or []:
                for part in (cand.get("content") or {}).get("parts") or []:
                    if "functionCall" in part:
                        fc = part["functionCall"]
                        calls.append((fc["name"], fc.get("args") or {}))
                        ids.append(fc.get("id"))
                    elif "text" in part and not part.get("thought"):
                        text += part["text"]
        # allm's output tokens are candidates + thoughts (allm.providers.gemini.decode).
        return Turn(calls=tuple(calls), ids=tuple(ids), text=text,
                    input_tokens=usage["promptTokenCount"],
                    output_tokens=usage.get("candidatesTokenCount", 0)
                    + usage.get("thoughtsTokenCount", 0))

    def results(self, request: dict[str, Any]) -> tuple[Any, ...]:
        last = request["contents"][-1]
        return tuple(_unwrap(p["functionResponse"]["response"]) for p in last["parts"]
                     if "functionResponse" in p)

    def prompt(self, request: dict[str, Any]) -> list[Message]:
        out = []
        if request.get("systemInstruction"):
            out.append(allm.system("".join(
                p["text"] for p in request["systemInstruction"]["parts"])))
        first = request["contents"][0]
        return [*out, allm.user("".join(p["text"] for p in first["parts"]))]

    def tool_specs(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        for group in request.get("tools") or []:
            for fd in group.get("functionDeclarations") or []:
                schema = fd.get("parameters_json_schema", fd.get("parametersJsonSchema"))
                out.append({"name": fd["name"], "description": fd.get("description") or "",
                            "parameters": schema, "strict": None})
        return out

    def tool_choice(self, request: dict[str, Any]) -> str:
        mode = ((request.get("toolConfig") or {}).get("functionCallingConfig") or {}).get(
            "mode", "AUTO")
        return {"ANY": "required", "NONE": "none"}.get(mode, "auto")

    def history(self, body: dict[str, Any]) -> Any:
        # The recorder re-encoded signatures URL-safe (compare bytes) and invented its
        # own call ids where Gemini sent none (pairing checked in `check_ids`).
        out = []
        for content in body["contents"]:
            parts = []
            for p in content["parts"]:
                q: dict[str, Any] = {}
                if "thoughtSignature" in p:
                    q["thoughtSignature"] = _b64(p["thoughtSignature"])
                if "functionCall" in p:
                    fc = p["functionCall"]
                    q["functionCall"] = {"name": fc["name"], "args": fc.get("args") or {}}
                elif "functionResponse" in p:
                    fr = p["functionResponse"]
                    q["functionResponse"] = {"name": fr["name"],
                                             "response": _unwrap(fr["response"])}
                else:
                    q.update({k: v for k, v in p.items() if k != "thoughtSignature"})
                parts.append(q)
            out.append({"role": content["role"], "parts": parts})
        return out

    def check_ids(self, body: dict[str, Any]) -> None:
        contents = body["contents"]
        for asked, answered in zip(contents, contents[1:], strict=False):
            calls = [p["functionCall"] for p in asked["parts"] if "functionCall" in p]
            answers = [p["functionResponse"] for p in answered["parts"]
                       if "functionResponse" in p]
            if calls and answers:
                assert [a["id"] for a in answers] == [c["id"] for c in calls]
                assert len({c["id"] for c in calls}) == len(calls)


# ---------------------------------------------------------------------- conversations
@dataclass
class Conversation:
    """A recorded tool conversation read as a scenario."""

    label: str
    wire: Wire
    exchanges: list[Exchange]
    turns: list[Turn]
    prompt: list[Message]
    tool_specs: list[dict[str, Any]]
    tool_choice: str
    fake: bool = False  # replayed through a Fake script instead of HTTP

    @property
    def stream(self) -> bool:
        """The recording's wire mode (the caller asks for the same)."""
        return self.exchanges[0].is_stream

    @property
    def answer(self) -> tuple[str, Any]:
        """("text", str) or ("tool", (name, arguments)) of the output tool."""
        last = self.turns[-1]
        if last.calls:
            assert [name for name, _ in last.calls] == [OUTPUT_TOOL]
            return "tool", last.calls[0]
        return "text", last.text

    @property
    def halted_reason(self) -> str:
        return "completed" if self.answer[0] == "text" else "manual_tool_calls"

    @property
    def usage(self) -> tuple[int, int]:
        return (sum(t.input_tokens for t in self.turns),
                sum(t.output_tokens for t in self.turns))


def conversation(label: str, wire: Wire, name: str) -> Conversation:
    exs = exchanges(wire.provider, name)
    assert all(ex.status == 200 for ex in exs)
    turns = []
    for ex, nxt in zip(exs, [*exs[1:], None], strict=True):
        turn = wire.turn(ex)
        if nxt is not None:
            results = wire.results(nxt.request)
            assert len(results) == len(turn.calls), (label, results, turn.calls)
            turn = Turn(calls=turn.calls, ids=turn.ids, text=turn.text,
                        input_tokens=turn.input_tokens, output_tokens=turn.output_tokens,
                        results=results)
        turns.append(turn)
    first = exs[0].request
    return Conversation(label=label, wire=wire, exchanges=exs, turns=turns,
                        prompt=wire.prompt(first), tool_specs=wire.tool_specs(first),
                        tool_choice=wire.tool_choice(first))


def as_fake(conv: Conversation, label: str) -> Conversation:
    """The same conversation scripted for the Fake engine (same turns, same shape)."""
    return Conversation(label=label, wire=FakeWire(conv), exchanges=conv.exchanges,
                        turns=conv.turns, prompt=conv.prompt, tool_specs=conv.tool_specs,
                        tool_choice=conv.tool_choice, fake=True)


class FakeWire(Wire):
    """The Fake adapter: the script is the conversation's turns; the "request body" is
    the neutral `Request` the Fake recorded, rendered as plain data."""

    provider = "fake"
    model = "fake-model"

    def __init__(self, conv: Conversation) -> None:
        self.ids = [tuple(f"call_{k}_{i}" for i in range(len(t.calls)))
                    for k, t in enumerate(conv.turns)]

    def script(self, k: int, turn: Turn) -> list[tuple[Any, ...]]:
        entries: list[tuple[Any, ...]] = []
        if turn.text:
            entries.append(("text", turn.text))
        for cid, (name, args) in zip(self.ids[k], turn.calls, strict=True):
            entries.append(("tool_call", {"id": cid, "name": name, "arguments": args}))
        entries.append(("usage", {"input_tokens": turn.input_tokens,
                                  "output_tokens": turn.output_tokens}))
        return entries


def neutral_history(messages: Any) -> list[Any]:
    """Messages as plain data: role, text, tool calls, the call a result answers."""
    out: list[Any] = []
    for m in messages:
        text = m.content if isinstance(m.content, str) else "".join(
            getattr(p, "text", "") for p in m.content)
        calls = [(tc.id, tc.name, dict(tc.arguments)) for tc in m.tool_calls]
        out.append((m.role, text, calls, m.tool_call_id))
    return out


def expected_fake_history(conv: Conversation, wire: FakeWire, k: int) -> list[Any]:
    """The neutral thread a Fake must receive at turn k (tool results JSON-free
    strings here, as every recorded result is one)."""
    out = neutral_history(conv.prompt)
    for j in range(k):
        turn = conv.turns[j]
        out.append(("assistant", turn.text,
                    [(cid, name, args) for cid, (name, args)
                     in zip(wire.ids[j], turn.calls, strict=True)], None))
        for cid, result in zip(wire.ids[j], turn.results, strict=True):
            out.append(("tool", result, [], cid))
    return out


# ------------------------------------------------------------------------------ replay
@dataclass
class Replay:
    """Serves one conversation's recorded responses in order, records what allm
    sent, and builds tools whose handlers answer what the recording answered."""

    conv: Conversation
    sent: list[dict[str, Any]] = field(default_factory=list)  # HTTP bodies, parsed
    fakes: list[Any] = field(default_factory=list)
    ran: list[tuple[int, int, str, dict[str, Any]]] = field(default_factory=list)
    _per_engine: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def served(self) -> int:
        if self.conv.fake:
            return sum(len(f.calls) for f in self.fakes)
        return len(self.sent)

    @property
    def per_engine(self) -> list[int]:
        """How many model calls each engine instance made, in creation order."""
        if self.conv.fake:
            return [len(f.calls) for f in self.fakes]
        return self._per_engine

    def _handler(self, index: int) -> Callable[[httpx2.Request], httpx2.Response]:
        def handler(request: httpx2.Request) -> httpx2.Response:
            with self._lock:
                body = json.loads(request.content)
                ex = self.conv.exchanges[len(self.sent)]
                self.sent.append(body)
                self._per_engine[index] += 1
            ctype = "text/event-stream" if ex.is_stream else "application/json"
            return httpx2.Response(ex.status, headers={"content-type": ctype},
                                   content=ex.body.encode())
        return handler

    def engine(self) -> Engine:
        """A new engine instance (new adapter, new HTTP clients) that continues where
        the replay stands."""
        wire = self.conv.wire
        if isinstance(wire, FakeWire):
            start = self.served
            scripts = [wire.script(k, t) for k, t in enumerate(self.conv.turns)][start:]
            fake = Fake(scripts=scripts, record=True)
            self.fakes.append(fake)
            return allm.engine(adapter=fake, model=wire.model)
        self._per_engine.append(0)
        transport = httpx2.MockTransport(self._handler(len(self._per_engine) - 1))
        return wire.engine(httpx2.Client(transport=transport),
                           httpx2.AsyncClient(transport=transport))

    def call_ids(self) -> list[tuple[str, ...]]:
        """The ids the engine gives each turn's calls: the recorded ones, or (Gemini
        sends none) the stable ones allm derives, read by decoding that response alone
        through a separate engine."""
        wire = self.conv.wire
        if isinstance(wire, FakeWire):
            return list(wire.ids)
        out = []
        for k, turn in enumerate(self.conv.turns):
            if all(turn.ids):
                out.append(tuple(i for i in turn.ids if i is not None))
                continue
            probe = Replay(self.conv)
            probe.sent.extend([{}] * k)  # serve exchange k first
            response = allm.generate(probe.engine(), self.conv.prompt,
                                     stream=self.conv.exchanges[k].is_stream)
            out.append(tuple(tc.id for tc in response.tool_calls))
        return out

    def tools(self) -> list[Tool]:
        """The recording's tools; handlers return the recorded results, and the calls
        of one turn wait for each other (a barrier), so they must run concurrently."""
        where: dict[str, tuple[int, int]] = {}
        for k, ids in enumerate(self.call_ids()):
            assert len(ids) == len(self.conv.turns[k].calls)
            for i, cid in enumerate(ids):
                where[cid] = (k, i)
        barriers = {k: threading.Barrier(len(t.calls), timeout=BARRIER_TIMEOUT)
                    for k, t in enumerate(self.conv.turns) if len(t.calls) > 1}

        def make(name: str) -> Callable[[dict[str, Any], ToolContext], Any]:
            def handler(arguments: dict[str, Any], ctx: ToolContext) -> Any:
                assert ctx.tool_call is not None
                k, i = where[ctx.tool_call.id]
                with self._lock:
                    self.ran.append((k, i, name, dict(arguments)))
                if k in barriers:
                    barriers[k].wait()
                return self.conv.turns[k].results[i]
            return handler

        return [allm.tool(name=s["name"], description=s["description"],
                          parameters=s["parameters"], strict=s["strict"],
                          handler=make(s["name"]), manual=s["name"] == OUTPUT_TOOL)
                for s in self.conv.tool_specs]

    def histories(self) -> list[Any]:
        """What allm sent at each turn, normalized by the wire."""
        if self.conv.fake:
            return [neutral_history(r.messages) for f in self.fakes for r in f.requests]
        return [self.conv.wire.history(body) for body in self.sent]

    def expected_histories(self) -> list[Any]:
        wire = self.conv.wire
        if isinstance(wire, FakeWire):
            return [expected_fake_history(self.conv, wire, k)
                    for k in range(len(self.conv.turns))]
        return [wire.history(ex.request) for ex in self.conv.exchanges]
