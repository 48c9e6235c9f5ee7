"""Helpers for the image tests: real tiny images, a recording MockTransport, recordings."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Callable
from email.message import MIMEPart
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any

import httpx2

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"
KEY = "sk-test-images-0123456789"


def make_png(width: int = 4, height: int = 4, pad: int = 0) -> bytes:
    """A valid RGBA PNG (optionally padded with a private chunk to reach a size)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    raw = b"".join(b"\x00" + b"\x80\x40\x20\xff" * width for _ in range(height))
    out = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw)))
    if pad:
        out += chunk(b"prVt", b"\x00" * pad)
    return out + chunk(b"IEND", b"")


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 32 + b"\xff\xd9"
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
BMP = b"BM" + b"\x00" * 60
PNG = make_png()


class Recorder:
    """A MockTransport handler that records requests and answers from a queue (the
    last answer repeats)."""

    def __init__(self, *responses: httpx2.Response | Callable[[httpx2.Request], httpx2.Response]) -> None:
        self.responses = list(responses)
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        request.read()
        self.requests.append(request)
        answer = self.responses[min(len(self.requests) - 1, len(self.responses) - 1)] \
            if self.responses else httpx2.Response(500)
        return answer(request) if callable(answer) else answer

    @property
    def calls(self) -> int:
        return len(self.requests)

    def client(self) -> httpx2.Client:
        return httpx2.Client(transport=httpx2.MockTransport(self))

    def async_client(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(transport=httpx2.MockTransport(self))


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> httpx2.Response:
    return httpx2.Response(status, content=json.dumps(body).encode(),
                           headers={"content-type": "application/json", **(headers or {})})


def multipart(request: httpx2.Request) -> list[MIMEPart]:
    """The parts of a multipart/form-data request, parsed by the stdlib email parser
    (an independent decoder of what the codec encoded)."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + request.content)
    assert message.is_multipart()
    return list(message.iter_parts())  # type: ignore[attr-defined,unused-ignore]


def part_name(part: MIMEPart) -> str | None:
    return part.get_param("name", header="content-disposition")  # type: ignore[return-value]


def load_fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data
