"""Smoke run of the benchmark harness (benchmarks/), so it keeps working.

Starts the loopback mock server, runs every worker measurement for allm (and the raw
httpx2 floor) at toy sizes in this process, and renders the report from them. The
full benchmark (`benchmarks/run.py`) is not part of the test suite.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
PROVIDERS = ("openai", "responses", "anthropic", "gemini")


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"allm_bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def worker() -> ModuleType:
    return _load("worker")


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, str(BENCH / "mock_server.py"), "--max-seconds", "120"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        assert line[:1] == ["PORT"], line
        yield f"http://127.0.0.1:{line[1]}"
    finally:
        proc.terminate()
        proc.wait(10)


def _cfg(base: str, lib: str, provider: str, **kw: Any) -> dict[str, Any]:
    return {"lib": lib, "provider": provider, "chunk_size": 6, "base": base, **kw}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_nonstream_and_stream(worker: ModuleType, base: str, provider: str) -> None:
    for lib in ("httpx2", "allm"):
        out = worker.measure_nonstream(_cfg(base, lib, provider, n=3, warmup=1, chunks=4))
        assert out["us_per_request"] > 0
    for lib in ("httpx2", "allm", "allm-fold"):
        out = worker.measure_stream(_cfg(base, lib, provider, chunks=7, repeat=2))
        assert out["us_per_chunk"] > 0 and out["cpu_ms"] >= 0


def test_text_check_catches_a_short_reply(worker: ModuleType) -> None:
    with pytest.raises(SystemExit):
        worker._check("x" * 5, {"lib": "allm", "provider": "openai", "chunk_size": 6}, 1)


def test_concurrency_chat_serialize(worker: ModuleType, base: str) -> None:
    for lib in ("httpx2", "allm"):
        out = worker.measure_concurrency(
            _cfg(base, lib, "openai", streams=4, chunks=5, limit=10))
        assert out["ms"] > 0 and "rss_growth_mb" in out
    chat = worker.measure_chat({"lib": "allm", "steps": 3, "repeat": 2})
    assert chat["sync_us_per_step"] > 0 and chat["async_us_per_step"] > 0
    ser = worker.measure_serialize({"lib": "allm", "messages": 20, "repeat": 2})
    assert ser["dumps_ms"] > 0 and ser["bytes"] > 0


def test_report_renders_targets(worker: ModuleType, base: str) -> None:
    run = _load("run")
    res: dict[str, Any] = {"import:bare": {"ms": 10.0, "net_ms": 0.0},
                           "import:httpx2": {"ms": 90.0, "net_ms": 80.0},
                           "import:allm": {"ms": 60.0, "net_ms": 50.0}}
    for lib in ("httpx2", "allm"):
        res[f"nonstream:{lib}:openai"] = worker.measure_nonstream(
            _cfg(base, lib, "openai", n=2, warmup=1, chunks=3))
        res[f"stream:{lib}:openai"] = worker.measure_stream(
            _cfg(base, lib, "openai", chunks=3, repeat=1))
    data = {"meta": {"started": "now", "quick": True, "mock_cpu_s": 0.1, "machine": "test",
                     "versions": {"python": "3"}, "cfg": {"n": 2, "stream_chunks": 3,
                                                          "conc_provider": "openai"}},
            "rounds": [res]}
    md = run.report(data)
    assert "## Targets (issue 10)" in md
    assert "`import allm` vs `import httpx2`" in md
    assert "| OpenAI Chat | allm |" in md
