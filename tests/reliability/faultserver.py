"""A loopback HTTP/1.1 fault-injection server (threads, 127.0.0.1, bounded).

Real sockets, chunked bodies, a record of what happened; used by the reliability
suite and by `tests/runtime/test_faults.py`:

- a *handler* `(Seen) -> Reply` or a script, so one server can answer
  200 tenants and check each request's credentials (a list of replies still works);
- faults below HTTP: close before the status line, raw bytes without framing, a
  chunked body that drops / stalls / never ends (an iterator), a gzip bomb;
- bounds on everything: `max_requests`, `max_seconds` (every stall and endless
  stream stops when the server closes), a socket timeout per connection, and a
  listen backlog large enough for hundreds of concurrent connects;
- a record of disconnects (the client hung up mid-body) and of connections still
  open, for the resource-hygiene tests.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

__all__ = ["Reply", "Seen", "FaultServer", "gzip_bomb", "endless"]


@dataclass
class Reply:
    """One response. `chunks` (any iterable, may be endless) -> chunked body."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    chunks: Iterable[bytes] | None = None
    after: str = "end"  # "end" | "drop" (close mid-body) | "stall" (stop sending, wait)
    drip: float = 0.0  # seconds between chunks
    stall_for: float = 5.0  # a stall ends by then at the latest (or when the server stops)
    close_before_headers: bool = False  # accept the request, then hang up
    raw: bytes | None = None  # send exactly these bytes, then close


@dataclass
class Seen:
    """One request as the server received it (header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Handler = Callable[[Seen], Reply]


@dataclass
class Record:
    requests: list[Seen] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    connections: int = 0
    open_connections: int = 0
    disconnects: list[float] = field(default_factory=list)  # client hung up mid-body
    errors: list[str] = field(default_factory=list)  # handler failures (test bugs)


class FaultServer:
    """`with FaultServer(handler_or_replies) as server:` ... `server.url`."""

    def __init__(
        self,
        handler: Handler | list[Reply],
        *,
        max_requests: int = 5000,
        max_seconds: float = 60.0,
    ) -> None:
        if isinstance(handler, list):
            script = list(handler)

            def scripted(_: Seen) -> Reply:
                return script.pop(0) if script else Reply(status=500, body=b"script exhausted")

            handler = scripted
        self.handler: Handler = handler
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.record = Record()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        server = self

        class _Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                server._serve_connection(self.request)

        class _TCP(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 1024  # 200+ concurrent connects must not hit the backlog

        self._tcp = _TCP(("127.0.0.1", 0), _Handler)
        self.port = self._tcp.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._tcp.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._deadline = 0.0

    def __enter__(self) -> FaultServer:
        self._deadline = time.monotonic() + self.max_seconds
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._tcp.shutdown()
        self._tcp.server_close()
        self._thread.join(timeout=5)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set() or time.monotonic() > self._deadline

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 3.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            time.sleep(0.01)
        return predicate()

    # -- connection handling ------------------------------------------------------------

    def _serve_connection(self, sock: socket.socket) -> None:
        with self._lock:
            self.record.connections += 1
            self.record.open_connections += 1
        sock.settimeout(5)
        reader = sock.makefile("rb")
        try:
            while not self.stopped:
                seen = _read_request(reader)
                if seen is None:
                    return
                with self._lock:
                    self.record.requests.append(seen)
                    self.record.times.append(time.monotonic())
                    over = len(self.record.requests) > self.max_requests
                if over:
                    return
                try:
                    reply = self.handler(seen)
                except Exception as exc:  # a test bug: answer 599 and remember it
                    with self._lock:
                        self.record.errors.append(repr(exc))
                    reply = Reply(status=599, body=repr(exc).encode())
                if not self._respond(sock, reply):
                    return
        except OSError:
            return
        finally:
            with self._lock:
                self.record.open_connections -= 1
            try:
                reader.close()
                sock.close()
            except OSError:
                pass

    def _respond(self, sock: socket.socket, reply: Reply) -> bool:
        """Send one response; False when the connection must be closed."""
        if reply.close_before_headers:
            sock.shutdown(socket.SHUT_RDWR)
            return False
        if reply.raw is not None:
            sock.sendall(reply.raw)
            sock.shutdown(socket.SHUT_RDWR)
            return False
        head = [f"HTTP/1.1 {reply.status} Status"]
        headers = {k.lower(): v for k, v in reply.headers.items()}
        if reply.chunks is None:
            headers.setdefault("content-type", "application/json")
            headers["content-length"] = str(len(reply.body))
            head += [f"{k}: {v}" for k, v in headers.items()]
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + reply.body)
            return True
        headers.setdefault("content-type", "text/event-stream")
        headers["transfer-encoding"] = "chunked"
        head += [f"{k}: {v}" for k, v in headers.items()]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        try:
            for chunk in reply.chunks:
                if self.stopped:
                    return False
                if reply.drip:
                    time.sleep(reply.drip)
                if chunk:
                    sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            with self._lock:
                self.record.disconnects.append(time.monotonic())
            return False
        if reply.after == "drop":
            sock.shutdown(socket.SHUT_RDWR)
            return False
        if reply.after == "stall":
            self._stop.wait(min(reply.stall_for, max(0.0, self._deadline - time.monotonic())))
            return False
        sock.sendall(b"0\r\n\r\n")
        return True


def _read_request(reader: object) -> Seen | None:
    readline = reader.readline  # type: ignore[attr-defined]
    request_line = readline(65536)
    if not request_line:
        return None
    method, _, rest = request_line.decode("latin-1").partition(" ")
    path = rest.rsplit(" ", 1)[0]
    headers: dict[str, str] = {}
    while True:
        line = readline(65536)
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    body = reader.read(length) if length else b""  # type: ignore[attr-defined]
    return Seen(method=method, path=path, headers=headers, body=body)


def endless(chunk: bytes, *, max_bytes: int = 2 << 30) -> Iterator[bytes]:
    """`chunk` forever (up to `max_bytes`, so even a broken client cannot keep the
    server thread alive: the server also stops at `max_seconds`)."""
    sent = 0
    while sent < max_bytes:
        yield chunk
        sent += len(chunk)


_ZEROS = bytes(1 << 20)


def gzip_bomb(gib: float = 2) -> Iterator[bytes]:
    """A gzip stream of `gib` GiB of zeros, ~1 KB on the wire per MiB. Each MiB block
    is compressed after a full flush, so every block is the same bytes and only two
    are ever computed (the trailer is never reached: nothing reads that far)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    first = comp.compress(_ZEROS) + comp.flush(zlib.Z_FULL_FLUSH)
    block = comp.compress(_ZEROS) + comp.flush(zlib.Z_FULL_FLUSH)
    yield first
    sixteen = block * 16  # 16 MiB per write
    for _ in range(int(gib * 64)):
        yield sixteen
