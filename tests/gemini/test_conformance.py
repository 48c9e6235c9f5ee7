"""The `allm.testing` conformance suite on the Gemini adapter, sync and async.

Scenarios come from the recordings: every recorded generateContent call is served in
both wire modes. A recorded JSON body is paired with the SSE stream Gemini would send
for it (one chunk per part, text cut into small pieces, finishReason and usage on the
last chunk, as in the recorded streams); a recorded stream is paired with the single
response object it adds up to (consecutive text chunks of one kind joined, as the
non-streaming API returns them)."""

from __future__ import annotations

import json
from typing import Any, cast

from allm.messages import Message
from allm.providers.base import Adapter, Call
from allm.providers.gemini import Gemini
from allm.request import Request
from allm.testing import AdapterConformance, Recorded, Scenario, Wire

from .recordings import FILES, chunks, model_calls

SSE_HEADERS = {"content-type": "text/event-stream"}
JSON_HEADERS = {"content-type": "application/json; charset=UTF-8"}


def response_to_sse(response: dict[str, Any]) -> str:
    head = {k: v for k, v in response.items() if k in ("responseId", "modelVersion")}
    candidate = (response.get("candidates") or [{}])[0]
    pieces: list[dict[str, Any] | None] = []
    for part in (candidate.get("content") or {}).get("parts") or []:
        text = part.get("text")
        if isinstance(text, str) and set(part) <= {"text", "thought", "thoughtSignature"} \
                and len(text) > 6:
            for i in range(0, len(text), 6):
                piece: dict[str, Any] = {**part, "text": text[i:i + 6]}
                if i:
                    piece.pop("thoughtSignature", None)
                pieces.append(piece)
        else:
            pieces.append(part)
    out = []
    for i, part in enumerate(pieces or [None]):  # a candidate may have no content
        chunk: dict[str, Any] = dict(head)
        cand: dict[str, Any] = {"index": 0}
        if part is not None:
            cand["content"] = {"role": "model", "parts": [part]}
        if i == max(len(pieces) - 1, 0):
            cand.update({k: v for k, v in candidate.items() if k not in ("content", "index")})
            if "usageMetadata" in response:
                chunk["usageMetadata"] = response["usageMetadata"]
            if "promptFeedback" in response:
                chunk["promptFeedback"] = response["promptFeedback"]
        chunk["candidates"] = [cand]
        out.append("data: " + json.dumps(chunk) + "\r\n\r\n")
    return "".join(out)


def stream_to_response(objs: list[dict[str, Any]]) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    candidate: dict[str, Any] = {}
    whole: dict[str, Any] = {}
    for obj in objs:
        whole.update({k: v for k, v in obj.items() if k != "candidates"})
        for cand in obj.get("candidates") or []:
            candidate.update({k: v for k, v in cand.items() if k != "content"})
            for part in (cand.get("content") or {}).get("parts") or []:
                prev = parts[-1] if parts else None
                textual = "text" in part and set(part) <= {"text", "thought", "thoughtSignature"}
                if prev is not None and textual and "text" in prev and \
                        prev.get("thought") == part.get("thought") and (
                        "thoughtSignature" not in part
                        or (part["text"] == "" and "thoughtSignature" not in prev)):
                    prev["text"] += part["text"]
                    if "thoughtSignature" in part:
                        prev["thoughtSignature"] = part["thoughtSignature"]
                else:
                    parts.append(dict(part))
    candidate["content"] = {"role": "model", "parts": parts}
    whole["candidates"] = [candidate]
    return whole


def scenarios() -> list[Scenario]:
    out = []
    for path in FILES:
        for it in model_calls(path):
            name = f"{path.stem.removeprefix('pydantic-ai__')}#{it.index}"
            call = Call(model=it.model, api_key="AIza-test")
            request = Request(messages=(Message(role="user", content="hi"),))
            if it.status != 200:
                rec = Recorded(status=it.status, headers=it.headers, body=it.body)
                out.append(Scenario(name=name, request=request, call=call, stream=[rec],
                                    non_stream=[rec], expect_error=True))
                continue
            if it.is_stream:
                stream = Recorded(headers=SSE_HEADERS, body=it.body, chunk_size=97)
                whole = stream_to_response(chunks(it))
            else:
                whole = json.loads(it.body)
                stream = Recorded(headers=SSE_HEADERS, body=response_to_sse(whole),
                                  chunk_size=97)
            non_stream = Recorded(headers=JSON_HEADERS, body=json.dumps(whole))
            out.append(Scenario(name=name, request=request, call=call, stream=[stream],
                                non_stream=[non_stream]))
    return out


SCENARIOS = scenarios()


class TestGeminiConformance(AdapterConformance):
    def make_adapter(self, wire: Wire) -> Adapter:
        adapter = Gemini(http_client=wire.http_client, async_http_client=wire.async_http_client,
                         retry=False)
        return cast(Adapter, adapter)

    def scenarios(self) -> list[Scenario]:
        return SCENARIOS


def test_scenarios_cover_every_generate_content_call() -> None:
    calls = sum(len(model_calls(p)) for p in FILES)
    assert len(SCENARIOS) == calls == 57
    assert sum(s.expect_error for s in SCENARIOS) == 1  # the recorded 404
