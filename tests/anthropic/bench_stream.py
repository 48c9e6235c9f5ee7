"""Streaming cost per chunk: the Anthropic adapter vs raw httpx2 parsing of the same
stream, against the loopback mock in ../shared/bench (not a test; run by hand):

    .venv/bin/python tests/anthropic/bench_stream.py [chunks] [rounds]

"raw" = `httpx2.Client.stream` + `iter_lines` + `json.loads` of every ``data:`` line
(the least a client must do); "allm" = `Anthropic.stream(...)` consumed to the end
(SSE decoding, the event state machine, allm events). Both run on one pooled client,
interleaved, best of `rounds`. Times are CPU seconds of this process
(`time.process_time`): the mock runs in another process, and on a shared machine wall
time mostly measures the neighbours.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2

from allm.messages import user
from allm.providers.anthropic import Anthropic
from allm.providers.base import Call
from allm.request import Request

MOCK = Path(__file__).resolve().parents[2] / ".." / "shared" / "bench" / "mock_server.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    chunks = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    port = free_port()
    server = subprocess.Popen([sys.executable, str(MOCK), str(port)], stdout=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx2.get(base + "/health")
                break
            except httpx2.HTTPError:
                time.sleep(0.05)
        headers = {"x-mock-chunks": str(chunks), "x-api-key": "k",
                   "anthropic-version": "2023-06-01"}
        body = {"model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": True,
                "messages": [{"role": "user", "content": "hi"}]}
        client = httpx2.Client()
        adapter = Anthropic(base_url=base, http_client=client, retry=False,
                            default_headers={"x-mock-chunks": str(chunks)})
        request = Request(messages=(user("hi"),), model="claude-sonnet-4-5",
                          params={"max_tokens": 1024})
        call = Call(model="claude-sonnet-4-5", api_key="k", stream=True)

        def raw() -> int:
            n = 0
            with client.stream("POST", base + "/v1/messages", json=body,
                               headers=headers) as r:
                for line in r.iter_lines():
                    if line.startswith("data:"):
                        json.loads(line[5:])
                        n += 1
            return n

        def ours() -> int:
            return sum(1 for _ in adapter.stream(request, call))

        raw(), ours()  # warm up
        best = {"raw": float("inf"), "allm": float("inf")}
        for _ in range(rounds):
            for name, fn in (("raw", raw), ("allm", ours)):
                t0 = time.process_time()
                fn()
                best[name] = min(best[name], time.process_time() - t0)
        per_raw = best["raw"] / chunks * 1e6
        per_ours = best["allm"] / chunks * 1e6
        print(f"chunks={chunks} rounds={rounds}")
        print(f"raw httpx2 + json: {per_raw:.2f} us/chunk")
        print(f"allm Anthropic:    {per_ours:.2f} us/chunk  ({per_ours / per_raw:.2f}x)")
        adapter.close()
        client.close()
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
