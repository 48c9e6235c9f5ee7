"""Benchmark runner: allm vs raw httpx2 (and the peers) side by side, in the same rounds.

    .venv/bin/python benchmarks/run.py            # full run, ~5-10 minutes on 2 cores
    .venv/bin/python benchmarks/run.py --quick    # smoke run, well under a minute

Stdlib only. Starts `mock_server.py` on a free loopback port, then runs every
measurement in a fresh `worker.py` process: allm and the raw-httpx2 floor with the
project's interpreter (``.venv/bin/python``, else this one), the peers (openai and
anthropic SDKs, pydantic-ai) with ``.venv-peers/bin/python`` when it exists (see
``requirements-peers.txt``; a peer that cannot be imported there is skipped).
Rounds are interleaved (round r runs every job once, the order rotated by r), each
ratio is computed inside a round against the floor measured in that same round, and
the tables report medians over rounds with the min-max spread.

Writes ``benchmarks/results/latest.json`` (every round's raw values) and
``latest.md`` (the tables and the issue-10 targets), and prints the Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORKER = HERE / "worker.py"
PROVIDERS = ("openai", "responses", "anthropic", "gemini")
PROVIDER_NAMES = {"openai": "OpenAI Chat", "responses": "OpenAI Responses",
                  "anthropic": "Anthropic", "gemini": "Gemini"}
PEER_MODULES = {"openai": "openai", "anthropic": "anthropic", "pydantic-ai": "pydantic_ai"}


def _python(candidate: Path, fallback: str | None) -> str | None:
    return str(candidate) if candidate.exists() else fallback


# -- plumbing ---------------------------------------------------------------------------------


class Mock:
    """The mock server as a child process (bounded lifetime; stopped by pid)."""

    def __init__(self, python: str, max_seconds: float) -> None:
        self.proc = subprocess.Popen(
            [python, str(HERE / "mock_server.py"), "--max-seconds", str(max_seconds)],
            stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "PORT":
            self.stop()
            raise SystemExit(f"mock server did not start: {line!r}")
        self.base = f"http://127.0.0.1:{line[1]}"

    def cpu_seconds(self) -> float | None:
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.lower().endswith("_proxy") and not k.endswith("_BASE_URL")}
    env["PYTHONDONTWRITEBYTECODE"] = "0"
    return env


def run_worker(python: str, measure: str, cfg: dict[str, Any], timeout: float) -> dict[str, Any]:
    cfg = {**cfg, "src": str(ROOT / "src")}
    try:
        proc = subprocess.run([python, str(WORKER), measure, json.dumps(cfg)],
                              capture_output=True, text=True, timeout=timeout, env=_env())
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]
        return {"error": tail[0][:300]}
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def import_ms(python: str, stmt: str, repeat: int) -> float:
    """Median wall ms of `python -c stmt` in fresh interpreters (after one untimed run)."""
    subprocess.run([python, "-c", stmt], check=True, env=_env())
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([python, "-c", stmt], check=True, env=_env())
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def available_peers(python: str | None) -> dict[str, str]:
    """Peer name -> version, for the peers importable in the peers' interpreter."""
    if python is None:
        return {}
    out = {}
    for name, module in PEER_MODULES.items():
        proc = subprocess.run(
            [python, "-c", f"import {module}, importlib.metadata as m; print(m.version("
             f"{'pydantic-ai-slim' if name == 'pydantic-ai' else name!r}))"],
            capture_output=True, text=True, env=_env())
        if proc.returncode == 0:
            out[name] = proc.stdout.strip()
    return out


# -- the plan -----------------------------------------------------------------------------------


def plan(args: argparse.Namespace, peers: dict[str, str]) -> list[dict[str, Any]]:
    """Every job of one round: (measure, lib, provider, interpreter, config)."""
    q = args.quick
    jobs: list[dict[str, Any]] = []

    def add(measure: str, lib: str, provider: str, peer: bool, **cfg: Any) -> None:
        jobs.append({"measure": measure, "lib": lib, "provider": provider, "peer": peer,
                     "cfg": {"lib": lib, "provider": provider, "chunk_size": 6, **cfg}})

    if "nonstream" in args.measures:
        ns = {"n": 20 if q else args.n, "warmup": 5 if q else 20, "chunks": 20}
        for p in PROVIDERS:
            add("nonstream", "httpx2", p, False, **ns)
            add("nonstream", "allm", p, False, **ns)
        for lib, p in (("openai", "openai"), ("anthropic", "anthropic"),
                       ("pydantic-ai", "openai")):
            if lib in peers:
                add("nonstream", lib, p, True, **ns)
    if "stream" in args.measures:
        st = {"chunks": 50 if q else args.chunks, "repeat": 2 if q else 5}
        for p in PROVIDERS:
            for lib in ("httpx2", "allm", "allm-fold"):
                add("stream", lib, p, False, **st)
        for lib in ("openai", "anthropic"):
            if lib in peers:
                add("stream", lib, lib, True, **st)
    if "concurrency" in args.measures:
        cc = {"streams": 20 if q else args.streams, "chunks": 20 if q else 200,
              "limit": args.limit}
        for lib in ("httpx2", "allm"):
            add("concurrency", lib, args.conc_provider, False, **cc)
    if "chat" in args.measures:
        add("chat", "allm", "fake", False, steps=10, repeat=20 if q else 300)
    if "serialize" in args.measures:
        se = {"messages": 1000, "repeat": 3 if q else 30}
        add("serialize", "allm", "-", False, **se)
        if "pydantic-ai" in peers:
            add("serialize", "pydantic-ai", "-", True, **se)
    return jobs


# -- statistics ---------------------------------------------------------------------------------------


def med(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def spread(values: list[float]) -> str:
    return f"{_fmt(min(values))}–{_fmt(max(values))}" if values else "-"


def _fmt(v: float | None, digits: int | None = None) -> str:
    if v is None:
        return "-"
    if digits is not None:
        return f"{v:,.{digits}f}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def _ratio(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}x"


def values(rounds: list[dict[str, Any]], key: str, field: str) -> list[float]:
    return [r[key][field] for r in rounds if key in r and field in r[key]]


def ratios(rounds: list[dict[str, Any]], key: str, floor: str, field: str) -> list[float]:
    out = []
    for r in rounds:
        a, b = r.get(key, {}), r.get(floor, {})
        if field in a and field in b and b[field]:
            out.append(a[field] / b[field])
    return out


# -- report -------------------------------------------------------------------------------------------


def report(data: dict[str, Any]) -> str:
    rounds: list[dict[str, Any]] = data["rounds"]
    meta = data["meta"]
    lines = [
        "# allm benchmark: latest run",
        "",
        f"Run {meta['started']} UTC{' (--quick smoke run)' if meta['quick'] else ''}, "
        f"{len(rounds)} rounds, {meta['machine']}. Mock server on loopback, "
        f"{_fmt(meta.get('mock_cpu_s'))} s of server CPU for the whole run.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(meta["versions"].items())) + ".",
        "",
        "Every cell: median over rounds (min–max of the per-round values). Ratios are "
        "computed inside each round against raw httpx2 measured in that same round, then "
        "their median is taken. Lower is better.",
        "",
    ]
    targets: list[tuple[str, str, str, bool | None]] = []

    def target(name: str, got: float | None, limit: float, fmt: str) -> None:
        ok = None if got is None else got <= limit
        targets.append((name, "-" if got is None else fmt.format(got), f"≤ {fmt.format(limit)}",
                        ok))

    # (1) imports
    if any("import:allm" in r for r in rounds):
        lines += ["## 1. Import time (fresh interpreter, wall ms; net = minus bare `python -c pass`)",
                  "", "| import | wall ms | spread | net ms | net vs httpx2 | wall vs httpx2 |",
                  "|---|---|---|---|---|---|"]
        for mod in ["bare", "httpx2", "allm", "allm+openai"] + [f"peer:{p}" for p in PEER_MODULES]:
            key = f"import:{mod}"
            wall = values(rounds, key, "ms")
            if not wall:
                continue
            net = values(rounds, key, "net_ms")
            name = {"allm+openai": "allm + OpenAI adapter (`from allm.providers.openai import OpenAI`, "
                    "imports httpx2)"}.get(mod, mod.replace("peer:", ""))
            lines.append(
                f"| {name} | {_fmt(med(wall))} | {spread(wall)} | "
                f"{_fmt(med(net))} | {_ratio(med(ratios(rounds, key, 'import:httpx2', 'net_ms')))} | "
                f"{_ratio(med(ratios(rounds, key, 'import:httpx2', 'ms')))} |")
        target("1. `import allm` vs `import httpx2` (wall)",
               med(ratios(rounds, "import:allm", "import:httpx2", "ms")), 1.3, "{:.2f}x")
        lines.append("")

    # (2) nonstream
    if any(k.startswith("nonstream:") for r in rounds for k in r):
        lines += ["## 2. Non-streaming request (sequential, µs per request, median of "
                  f"{meta['cfg'].get('n')} after warm-up)", "",
                  "| provider | client | µs/request | spread | client CPU µs | vs raw httpx2 |",
                  "|---|---|---|---|---|---|"]
        for p in PROVIDERS:
            floor = f"nonstream:httpx2:{p}"
            for lib in ["httpx2", "allm", "openai", "anthropic", "pydantic-ai"]:
                key = f"nonstream:{lib}:{p}"
                v = values(rounds, key, "us_per_request")
                if not v:
                    continue
                lines.append(
                    f"| {PROVIDER_NAMES[p]} | {lib} | {_fmt(med(v))} | {spread(v)} | "
                    f"{_fmt(med(values(rounds, key, 'cpu_us_per_request')))} | "
                    f"{_ratio(med(ratios(rounds, key, floor, 'us_per_request')))} |")
            target(f"2. `generate` non-streaming, {PROVIDER_NAMES[p]}",
                   med(ratios(rounds, f"nonstream:allm:{p}", floor, "us_per_request")),
                   1.15, "{:.2f}x")
        lines.append("")

    # (3) stream
    if any(k.startswith("stream:") for r in rounds for k in r):
        chunks = meta["cfg"].get("stream_chunks")
        lines += [f"## 3. Streaming ({chunks} deltas, whole stream consumed; median of 5 "
                  "streams per process)", "",
                  "| provider | client | ms per stream | spread | µs/chunk | vs raw httpx2 | "
                  "client CPU vs raw httpx2 |",
                  "|---|---|---|---|---|---|---|"]
        for p in PROVIDERS:
            floor = f"stream:httpx2:{p}"
            for lib in ["httpx2", "allm", "allm-fold", "openai", "anthropic"]:
                key = f"stream:{lib}:{p}"
                v = values(rounds, key, "ms")
                if not v:
                    continue
                name = {"allm": "allm.stream_generate",
                        "allm-fold": "allm.generate(stream=True)"}.get(lib, lib)
                lines.append(
                    f"| {PROVIDER_NAMES[p]} | {name} | {_fmt(med(v))} | {spread(v)} | "
                    f"{_fmt(med(values(rounds, key, 'us_per_chunk')))} | "
                    f"{_ratio(med(ratios(rounds, key, floor, 'ms')))} | "
                    f"{_ratio(med(ratios(rounds, key, floor, 'cpu_ms')))} |")
            s = med(ratios(rounds, f"stream:allm:{p}", floor, "ms"))
            target(f"3. `stream_generate` per chunk, {PROVIDER_NAMES[p]}", s, 1.5, "{:.2f}x")
            fold = med(ratios(rounds, f"stream:allm-fold:{p}", f"stream:allm:{p}", "ms"))
            target(f"3. fold `generate(stream=True)` vs `stream_generate`, {PROVIDER_NAMES[p]}",
                   fold, 1.10, "{:.2f}x")
        lines.append("")

    # (4) concurrency
    if any(k.startswith("concurrency:") for r in rounds for k in r):
        c = meta["cfg"]
        lines += [f"## 4. Concurrency: {c.get('streams')} concurrent async streams × "
                  f"{c.get('conc_chunks')} deltas ({PROVIDER_NAMES[c['conc_provider']]}, "
                  f"one asyncio loop, connection limit {c.get('limit')} for both)", "",
                  "| client | wall ms | spread | chunks/s | RSS growth MB | spread | "
                  "wall vs httpx2 | RSS growth vs httpx2 |", "|---|---|---|---|---|---|---|---|"]
        floor = f"concurrency:httpx2:{c['conc_provider']}"
        for lib in ("httpx2", "allm"):
            key = f"concurrency:{lib}:{c['conc_provider']}"
            v = values(rounds, key, "ms")
            if not v:
                continue
            rss = values(rounds, key, "rss_growth_mb")
            lines.append(
                f"| {lib} | {_fmt(med(v))} | {spread(v)} | "
                f"{_fmt(med(values(rounds, key, 'chunks_per_s')), 0)} | {_fmt(med(rss))} | "
                f"{spread(rss)} | {_ratio(med(ratios(rounds, key, floor, 'ms')))} | "
                f"{_ratio(med(ratios(rounds, key, floor, 'rss_growth_mb')))} |")
        key = f"concurrency:allm:{c['conc_provider']}"
        target("4. concurrency wall time", med(ratios(rounds, key, floor, "ms")), 1.3, "{:.2f}x")
        target("4. concurrency RSS growth", med(ratios(rounds, key, floor, "rss_growth_mb")),
               1.2, "{:.2f}x")
        errors = [r[key]["error"] for r in rounds if "error" in r.get(key, {})]
        lines += ["", f"Errors: {len(errors)} (every stream's text checked)." if not errors
                  else f"Errors: {errors}", ""]

    # (5) chat loop
    if any("chat:allm:fake" in r for r in rounds):
        key = "chat:allm:fake"
        sv, av = values(rounds, key, "sync_us_per_step"), values(rounds, key, "async_us_per_step")
        tv = values(rounds, key, "async_sync_tool_us_per_step")
        lines += ["## 5. Chat loop on Fake (10 steps: 9 tool calls + final text; µs per step, "
                  "everything allm does: request building, the fake adapter's events, loop, "
                  "collector, running and encoding the tool)", "",
                  "| driver | µs per step | spread |", "|---|---|---|",
                  f"| `allm.chat` (sync; the tool runs in one of the loop's worker threads) | "
                  f"{_fmt(med(sv))} | {spread(sv)} |",
                  f"| `allm.achat` (async tool) | {_fmt(med(av))} | {spread(av)} |",
                  f"| `allm.achat` with a sync tool (run in a worker thread) | "
                  f"{_fmt(med(tv))} | {spread(tv)} |",
                  f"| (of which the Fake adapter itself, per model call) | "
                  f"{_fmt(med(values(rounds, key, 'fake_adapter_us_per_call')))} | "
                  f"{spread(values(rounds, key, 'fake_adapter_us_per_call'))} |", ""]
        target("5. chat loop, sync, µs per step", med(sv), 100, "{:.0f} µs")
        target("5. chat loop, async, µs per step", med(av), 100, "{:.0f} µs")

    # (6) serialization
    if any("serialize:allm:-" in r for r in rounds):
        lines += ["## 6. Serialization: 1,000-message history with tool calls (ms)", "",
                  "| library | dumps ms | spread | loads ms | spread | JSON bytes |",
                  "|---|---|---|---|---|---|"]
        for lib, name in (("allm", "allm.dumps / allm.loads (Session)"),
                          ("pydantic-ai", "pydantic-ai ModelMessagesTypeAdapter")):
            key = f"serialize:{lib}:-"
            d, lo = values(rounds, key, "dumps_ms"), values(rounds, key, "loads_ms")
            if d:
                lines.append(f"| {name} | {_fmt(med(d))} | {spread(d)} | {_fmt(med(lo))} | "
                             f"{spread(lo)} | {_fmt(med(values(rounds, key, 'bytes')), 0)} |")
        lines.append("")
        a, p = "serialize:allm:-", "serialize:pydantic-ai:-"
        target("6. `allm.dumps`, ms", med(values(rounds, a, "dumps_ms")), 20, "{:.2f} ms")
        target("6. `allm.loads`, ms", med(values(rounds, a, "loads_ms")), 20, "{:.2f} ms")
        dr, lr = ratios(rounds, a, p, "dumps_ms"), ratios(rounds, a, p, "loads_ms")
        target("6. `allm.dumps` vs pydantic-ai dump_json", med(dr), 0.5, "{:.2f}x")
        target("6. `allm.loads` vs pydantic-ai validate_json", med(lr), 0.5, "{:.2f}x")

    failures = [(k, v["error"]) for r in rounds for k, v in r.items()
                if isinstance(v, dict) and "error" in v]
    head = ["## Targets (issue 10)", "", "| target | measured (median) | limit | met |",
            "|---|---|---|---|"]
    head += [f"| {n} | {g} | {lim} | {'-' if ok is None else ('yes' if ok else '**NO**')} |"
             for n, g, lim, ok in targets]
    head.append("")
    if failures:
        head += ["Failed jobs: " + "; ".join(f"{k}: {e}" for k, e in failures[:10]), ""]
    return "\n".join(lines[:8] + head + lines[8:]) + "\n"


# -- main ---------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description="allm benchmarks vs raw httpx2 and peers")
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, 1 round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--measures", default="imports,nonstream,stream,concurrency,chat,serialize")
    ap.add_argument("--n", type=int, default=300, help="non-streaming requests per process")
    ap.add_argument("--chunks", type=int, default=5000, help="deltas per stream")
    ap.add_argument("--streams", type=int, default=1000, help="concurrent streams")
    ap.add_argument("--limit", type=int, default=1000,
                    help="connection limit of the async client (same for both)")
    ap.add_argument("--conc-provider", default="openai", choices=PROVIDERS)
    ap.add_argument("--import-repeat", type=int, default=15)
    ap.add_argument("--python", default=None, help="interpreter for allm and httpx2")
    ap.add_argument("--peers-python", default=None, help="interpreter for the peers")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--out", default=str(HERE / "results"), help="output directory")
    ap.add_argument("--name", default="latest", help="output file stem")
    args = ap.parse_args()
    args.measures = set(args.measures.split(","))
    if args.quick:
        args.rounds = min(args.rounds, 1) if args.rounds == 5 else args.rounds
        args.import_repeat = 2

    py = args.python or _python(ROOT / ".venv" / "bin" / "python", sys.executable)
    assert py is not None
    peers_py = None if args.no_peers else (
        args.peers_python or _python(ROOT / ".venv-peers" / "bin" / "python", None))
    peers = available_peers(peers_py)
    jobs = plan(args, peers)
    mock = Mock(py, max_seconds=3600)
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    rounds: list[dict[str, Any]] = []
    try:
        for r in range(args.rounds):
            res: dict[str, Any] = {}
            if "imports" in args.measures:
                bare = import_ms(py, "pass", args.import_repeat)
                res["import:bare"] = {"ms": bare, "net_ms": 0.0}
                for mod, stmt in (("httpx2", "import httpx2"), ("allm", "import allm"),
                                  ("allm+openai", "from allm.providers.openai import OpenAI")):
                    ms = import_ms(py, stmt, args.import_repeat)
                    res[f"import:{mod}"] = {"ms": ms, "net_ms": ms - bare}
                if peers_py and peers:
                    pbare = import_ms(peers_py, "pass", max(3, args.import_repeat // 3))
                    for name in peers:
                        ms = import_ms(peers_py, f"import {PEER_MODULES[name]}",
                                       max(3, args.import_repeat // 3))
                        res[f"import:peer:{name}"] = {"ms": ms, "net_ms": ms - pbare}
            k = len(jobs)
            for job in (jobs[(i + r) % k] for i in range(k)) if k else ():
                python = peers_py if job["peer"] else py
                assert python is not None
                timeout = 600.0 if job["measure"] == "concurrency" else 300.0
                res[f"{job['measure']}:{job['lib']}:{job['provider']}"] = run_worker(
                    python, job["measure"], {**job["cfg"], "base": mock.base}, timeout)
            rounds.append(res)
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        mock_cpu = mock.cpu_seconds()
    finally:
        mock.stop()

    versions: dict[str, str] = {"python": platform.python_version()}
    for res in rounds:
        for v in res.values():
            versions.update(v.get("versions", {}))
    versions.update({f"{k} (peer)": v for k, v in peers.items()
                     if k not in versions})
    data = {
        "meta": {
            "started": started, "quick": args.quick, "mock_cpu_s": mock_cpu,
            "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
                       f"CPython {platform.python_version()}",
            "versions": versions,
            "cfg": {"n": 20 if args.quick else args.n, "stream_chunks": 50 if args.quick else args.chunks,
                    "streams": 20 if args.quick else args.streams,
                    "conc_chunks": 20 if args.quick else 200, "limit": args.limit,
                    "conc_provider": args.conc_provider, "rounds": args.rounds},
            "peers_python": peers_py, "python": py,
        },
        "rounds": rounds,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    md = report(data)
    (out / f"{args.name}.json").write_text(json.dumps(data, indent=1) + "\n")
    (out / f"{args.name}.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
