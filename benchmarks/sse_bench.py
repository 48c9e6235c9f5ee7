"""SSE decoding speed: allm's decoder vs httpx-sse, httpx2's built-in parser and the
OpenAI SDK's decoder, bytes chunks in -> events out, same input for all.

Run with the bench venv (it has openai, httpx-sse and httpx; never the dev .venv):

    .venv-bench/bin/python benchmarks/sse_bench.py [--events 6000] [--repeat 15]

The stream is built from the OpenAI Chat Completions chunks recorded in
../shared/fixtures/openai (`data: {...chat.completion.chunk...}` events), repeated
until it holds `--events` events, then fed in three chunkings: one event per chunk
(what a streaming server's writes look like), 64 KiB reads (bulk), and 7-byte
splits (worst case: boundaries inside lines and UTF-8 characters).
Each library is run the way it runs inside its client: text decoders get an
incremental UTF-8 decode first (httpx's `iter_text`), byte decoders get the bytes.
Reports the median of `--repeat` runs, in milliseconds and ns per event.
"""

from __future__ import annotations

import argparse
import codecs
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

FIXTURES = ROOT / ".." / "shared" / "fixtures" / "openai"


def build_stream(n_events: int) -> tuple[list[bytes], int]:
    """Events (each `data: ...\\n\\n`) from recorded chat chunks, repeated."""
    events: list[bytes] = []
    for path in sorted(FIXTURES.glob("*.json")):
        for inter in json.loads(path.read_text())["interactions"]:
            body = inter["response"].get("body") or ""
            if "chat.completion.chunk" not in body:
                continue
            for block in body.replace("\r\n", "\n").split("\n\n"):
                if block.startswith("data: {"):
                    events.append((block + "\n\n").encode())
    if not events:
        raise SystemExit("no recorded chat.completion.chunk streams found")
    out = (events * (n_events // len(events) + 1))[:n_events]
    out.append(b"data: [DONE]\n\n")
    return out, len(out)


def chunkings(events: list[bytes]) -> dict[str, list[bytes]]:
    blob = b"".join(events)
    return {
        "one event per chunk": events,
        "64 KiB chunks": [blob[i : i + 65536] for i in range(0, len(blob), 65536)],
        "7-byte chunks": [blob[i : i + 7] for i in range(0, len(blob), 7)],
    }


def text_chunks(chunks: list[bytes]) -> Iterator[str]:
    dec = codecs.getincrementaldecoder("utf-8")(errors="replace")
    for chunk in chunks:
        text = dec.decode(chunk)
        if text:
            yield text
    tail = dec.decode(b"", final=True)
    if tail:
        yield tail


def run_allm(chunks: list[bytes]) -> int:
    from allm._http.sse import SSEDecoder

    d = SSEDecoder()
    n = 0
    for chunk in chunks:
        n += len(d.feed(chunk))
    return n + len(d.close())


def run_httpx_sse(chunks: list[bytes]) -> int:
    from httpx_sse._decoders import SSEDecoder, SSELineDecoder

    lines = SSELineDecoder()
    dec = SSEDecoder()
    n = 0
    for text in text_chunks(chunks):
        for line in lines.decode(text):
            if dec.decode(line) is not None:
                n += 1
    for line in lines.flush():
        if dec.decode(line) is not None:
            n += 1
    if dec.decode("") is not None:
        n += 1
    return n


def run_httpx2(chunks: list[bytes]) -> int:
    from httpx2._sse import _SSEParser

    parser = _SSEParser(None)
    n = 0
    for text in text_chunks(chunks):
        for _ in parser.decode(text):
            n += 1
    for _ in parser.flush():
        n += 1
    return n


def run_openai(chunks: list[bytes]) -> int:
    from openai._streaming import SSEDecoder

    return sum(1 for _ in SSEDecoder().iter_bytes(iter(chunks)))


RUNNERS: dict[str, Callable[[list[bytes]], int]] = {
    "allm": run_allm,
    "httpx-sse": run_httpx_sse,
    "httpx2 (built-in)": run_httpx2,
    "openai SDK": run_openai,
}


def available() -> dict[str, Callable[[list[bytes]], int]]:
    out = {}
    for name, fn in RUNNERS.items():
        try:
            fn([b"data: 1\n\n"])
        except ImportError as exc:
            print(f"skipping {name}: {exc}", file=sys.stderr)
            continue
        out[name] = fn
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=6000)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    events, n = build_stream(args.events)
    size = sum(map(len, events))
    runners = available()
    print(f"stream: {n} events, {size / 1e6:.2f} MB; median of {args.repeat} runs\n")
    header = "| chunking | " + " | ".join(runners) + " |"
    print(header)
    print("|" + "---|" * (len(runners) + 1))
    for label, chunks in chunkings(events).items():
        for name, fn in runners.items():
            got = fn(chunks)
            if got != n:
                raise SystemExit(f"{name} decoded {got} events, expected {n} ({label})")
        # Interleaved (one run of each library per round) so that load from other
        # processes on a shared machine hits every library alike.
        times: dict[str, list[float]] = {name: [] for name in runners}
        for _ in range(args.repeat):
            for name, fn in runners.items():
                gc.collect()
                t0 = time.perf_counter()
                fn(chunks)
                times[name].append(time.perf_counter() - t0)
        base = statistics.median(times["allm"]) if "allm" in times else None
        cells = []
        for name in runners:
            med = statistics.median(times[name])
            ratio = f", {med / base:.2f}x" if base else ""
            cells.append(f"{med * 1e3:.2f} ms ({med / n * 1e9:.0f} ns/ev{ratio})")
        print(f"| {label} ({len(chunks)} chunks) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
