"""A tiny sans-IO codec and adapter used to test the HTTP runtime.

Wire format: POST {base}/chat with JSON {"prompt": str, "stream": bool}.
Non-stream body: {"id": str, "text": str}. Stream: SSE `data: {"delta": "..."}` lines,
`data: {"error": {"status": int}}` for an in-stream error, `data: [DONE]` at the end.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from allm._http.adapter import HttpAdapter
from allm._http.sse import SSEDecoder
from allm.errors import AdapterError, ValidationError
from allm.events import ErrorEvent, Event, MessageCompleted, MessageStarted, TextDelta
from allm.messages import assistant
from allm.providers._codec import Codec, HttpRequest
from allm.providers._errors import adapter_error, parse_body, reason_for_status
from allm.providers.base import Call
from allm.request import Request


class TinyStreamDecoder:
    def __init__(self) -> None:
        self._sse = SSEDecoder()
        self._started = False
        self._done = False
        self._text: list[str] = []

    def _start(self, out: list[Event]) -> None:
        if not self._started:
            self._started = True
            out.append(MessageStarted(id="m1", model="tiny"))

    def feed(self, data: bytes) -> list[Event]:
        out: list[Event] = []
        for ev in self._sse.feed(data):
            if ev.data == "[DONE]":
                self._start(out)
                self._done = True
                out.append(self._completed())
                continue
            obj = json.loads(ev.data)
            if "error" in obj:
                status = int(obj["error"].get("status", 500))
                out.append(
                    ErrorEvent(
                        error=AdapterError(reason_for_status(status), provider="tiny", status=status)
                    )
                )
                self._done = True
                continue
            self._start(out)
            self._text.append(obj["delta"])
            out.append(TextDelta(delta=obj["delta"]))
        return out

    def _completed(self) -> MessageCompleted:
        return MessageCompleted(
            message=assistant("".join(self._text)), finish_reason="stop", id="m1", model="tiny"
        )

    def close(self) -> list[Event]:
        out: list[Event] = []
        for ev in self._sse.close():
            out.extend(self.feed(f"data: {ev.data}\n\n".encode()))
        if not self._done:
            out.append(
                ErrorEvent(error=AdapterError("malformed_response", "truncated", provider="tiny"))
            )
        return out


class TinyCodec:
    provider = "tiny"

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def build(self, request: Request, call: Call, *, api_key: str, stream: bool) -> HttpRequest:
        if not request.messages:
            raise ValidationError("invalid_request", errors=[("messages", "empty")])
        body = {"prompt": request.messages[-1].text, "stream": stream}
        return HttpRequest(
            method="POST",
            url=f"{self.base_url}/chat",
            headers={"authorization": f"Bearer {api_key}", "content-type": "application/json"},
            content=json.dumps(body).encode(),
        )

    def decode(self, status: int, headers: Mapping[str, str], body: bytes) -> list[Event]:
        obj = json.loads(body)
        return [
            MessageStarted(id=obj["id"], model="tiny"),
            TextDelta(delta=obj["text"]),
            MessageCompleted(
                message=assistant(obj["text"]), finish_reason="stop", id=obj["id"], model="tiny"
            ),
        ]

    def stream_decoder(self, headers: Mapping[str, str]) -> TinyStreamDecoder:
        return TinyStreamDecoder()

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> AdapterError:
        return adapter_error(
            provider="tiny",
            status=status,
            reason=reason_for_status(status),
            message=f"tiny error {status}",
            headers=headers,
            body=parse_body(body),
        )


class TinyAdapter(HttpAdapter):
    provider = "tiny"

    def codec_for(self, request: Request, call: Call) -> Codec:
        return TinyCodec(self.base_url)


def sse_body(deltas: list[str], *, done: bool = True) -> bytes:
    parts = [f"data: {json.dumps({'delta': d})}\n\n" for d in deltas]
    if done:
        parts.append("data: [DONE]\n\n")
    return "".join(parts).encode()
