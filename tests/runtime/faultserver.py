"""A scripted loopback HTTP/1.1 server for fault tests (threads, 127.0.0.1, bounded).

Each request takes the next `Step` of the script: a plain response, or a chunked
stream that ends normally, drops the connection half way, stalls, or drips slowly
(to observe a client that hangs up early). Keep-alive is supported so tests can check
that one pooled client reuses its connection.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Step:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    # streaming: chunks sent with Transfer-Encoding: chunked
    chunks: list[bytes] | None = None
    after: str = "end"  # "end" | "drop" (close mid-body) | "stall" (stop sending)
    drip: float = 0.0  # seconds between chunks
    stall_for: float = 5.0  # upper bound on a stall, so the server thread ends


@dataclass
class Record:
    times: list[float] = field(default_factory=list)
    connections: int = 0
    disconnects: list[float] = field(default_factory=list)  # client hung up mid-stream
    bodies: list[bytes] = field(default_factory=list)


class FaultServer:
    def __init__(self, script: list[Step]) -> None:
        self.script = list(script)
        self.record = Record()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                server._serve_connection(self.request)

        class TCP(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._tcp = TCP(("127.0.0.1", 0), Handler)
        self.port = self._tcp.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._tcp.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._tcp.shutdown()
        self._tcp.server_close()
        self._thread.join(timeout=5)

    def _next(self) -> Step:
        with self._lock:
            self.record.times.append(time.monotonic())
            return self.script.pop(0) if self.script else Step(status=500, body=b"script exhausted")

    def _serve_connection(self, sock: socket.socket) -> None:
        with self._lock:
            self.record.connections += 1
        sock.settimeout(5)
        reader = sock.makefile("rb")
        try:
            while not self._stop.is_set():
                request_line = reader.readline()
                if not request_line:
                    return
                length = 0
                while True:
                    line = reader.readline()
                    if line in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                body = reader.read(length) if length else b""
                with self._lock:
                    self.record.bodies.append(body)
                if not self._respond(sock, self._next()):
                    return
        except OSError:
            return
        finally:
            try:
                reader.close()
                sock.close()
            except OSError:
                pass

    def _respond(self, sock: socket.socket, step: Step) -> bool:
        """Send one response; False when the connection must be closed."""
        reason = {200: "OK", 429: "Too Many Requests", 500: "Internal Server Error"}.get(
            step.status, "Status"
        )
        head = [f"HTTP/1.1 {step.status} {reason}"]
        headers = dict(step.headers)
        if step.chunks is None:
            headers.setdefault("content-type", "application/json")
            headers["content-length"] = str(len(step.body))
            head += [f"{k}: {v}" for k, v in headers.items()]
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + step.body)
            return True
        headers.setdefault("content-type", "text/event-stream")
        headers["transfer-encoding"] = "chunked"
        head += [f"{k}: {v}" for k, v in headers.items()]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        try:
            for chunk in step.chunks:
                if step.drip:
                    time.sleep(step.drip)
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            with self._lock:
                self.record.disconnects.append(time.monotonic())
            return False
        if step.after == "drop":
            sock.shutdown(socket.SHUT_RDWR)
            return False
        if step.after == "stall":
            self._stop.wait(step.stall_for)
            return False
        sock.sendall(b"0\r\n\r\n")
        return True
