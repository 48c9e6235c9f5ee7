"""One benchmark measurement in a fresh process; prints one JSON line on stdout.

    python benchmarks/worker.py MEASURE '{"lib": ..., ...}'

Run by `run.py` (which starts the mock server and passes its base URL); runs in the
interpreter of the library measured: the project's for ``allm`` and the ``httpx2``
floor, the peers' virtualenv for the SDKs. Stdlib at module level only: every
library is imported inside the function that measures it, so one library's import
never touches another's numbers.

Measures (``lib`` values):

- ``nonstream`` (httpx2, allm, openai, anthropic, pydantic-ai): sequential
  non-streaming requests; median µs per request over ``n`` after ``warmup``.
- ``stream`` (httpx2, allm, allm-fold, openai, anthropic): whole streams of
  ``chunks`` deltas consumed to the end; median over ``repeat`` after one warm-up.
- ``concurrency`` (httpx2, allm): ``streams`` concurrent async streams of ``chunks``
  deltas on one asyncio loop; wall ms and RSS growth.
- ``chat`` (allm): a ``steps``-step tool-using chat on `allm.providers.Fake`, sync
  and async; µs per step.
- ``serialize`` (allm, pydantic-ai): dumps/loads of a ``messages``-message history.

Every reply's text is checked (``chunks * chunk_size`` characters), or the worker
exits non-zero: a client that drops deltas cannot look fast.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

API_KEY = "sk-bench-not-a-real-key"
MODELS = {
    "openai": "gpt-4.1-mini", "responses": "gpt-4.1-mini",
    "anthropic": "claude-sonnet-4-5", "gemini": "gemini-2.5-flash",
}
PROMPT = "Say hello in a few words."
SYSTEM = "You are terse."


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _reset_peak() -> None:
    """Reset VmHWM so the peak measured afterwards belongs to the run (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def _versions(*dists: str) -> dict[str, str]:
    from importlib import metadata

    out = {}
    for d in dists:
        try:
            out[d] = metadata.version(d)
        except metadata.PackageNotFoundError:
            pass
    return out


# -- raw httpx2: the floor ---------------------------------------------------------------


def _raw_request(provider: str, base: str, stream: bool) -> tuple[str, dict[str, Any], dict[str, str]]:
    """URL, JSON payload and headers a minimal client sends for `provider`."""
    model = MODELS[provider]
    if provider == "openai":
        payload: dict[str, Any] = {"model": model, "messages": [
            {"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]}
        if stream:
            payload["stream"] = True
            payload["stream_options"] = {"include_usage": True}
        return (base + "/v1/chat/completions", payload,
                {"authorization": f"Bearer {API_KEY}"})
    if provider == "responses":
        payload = {"model": model, "instructions": SYSTEM, "input": [
            {"role": "user", "content": PROMPT}]}
        if stream:
            payload["stream"] = True
        return base + "/v1/responses", payload, {"authorization": f"Bearer {API_KEY}"}
    if provider == "anthropic":
        payload = {"model": model, "max_tokens": 1024, "system": SYSTEM,
                   "messages": [{"role": "user", "content": PROMPT}]}
        if stream:
            payload["stream"] = True
        return (base + "/v1/messages", payload,
                {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"})
    payload = {"systemInstruction": {"parts": [{"text": SYSTEM}]},
               "contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}
    verb = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return (f"{base}/v1beta/models/{model}:{verb}", payload, {"x-goog-api-key": API_KEY})


def _raw_text(provider: str, obj: Any) -> str:
    if provider == "openai":
        return obj["choices"][0]["message"]["content"]  # type: ignore[no-any-return]
    if provider == "responses":
        return "".join(c["text"] for item in obj["output"] if item["type"] == "message"
                       for c in item["content"] if c["type"] == "output_text")
    if provider == "anthropic":
        return "".join(b["text"] for b in obj["content"] if b["type"] == "text")
    return "".join(p.get("text", "") for p in obj["candidates"][0]["content"]["parts"])


def _raw_delta(provider: str, obj: Any) -> str | None:
    """The text delta of one decoded SSE data object (None: not a text delta)."""
    if provider == "openai":
        choices = obj["choices"]
        return choices[0]["delta"].get("content") if choices else None
    if provider == "responses":
        return obj["delta"] if obj["type"] == "response.output_text.delta" else None
    if provider == "anthropic":
        if obj["type"] == "content_block_delta" and obj["delta"]["type"] == "text_delta":
            return obj["delta"]["text"]  # type: ignore[no-any-return]
        return None
    cands = obj.get("candidates")
    if not cands:
        return None
    return "".join(p.get("text", "") for p in cands[0]["content"]["parts"])


def httpx2_nonstream(provider: str, base: str) -> Callable[[], str]:
    import httpx2

    client = httpx2.Client(timeout=60)
    url, payload, headers = _raw_request(provider, base, False)
    headers["content-type"] = "application/json"

    def one() -> str:
        r = client.post(url, content=json.dumps(payload).encode(), headers=headers)
        r.raise_for_status()
        return _raw_text(provider, json.loads(r.content))

    return one


def httpx2_stream(provider: str, base: str) -> Callable[[], str]:
    import httpx2

    client = httpx2.Client(timeout=60)
    url, payload, headers = _raw_request(provider, base, True)
    headers["content-type"] = "application/json"
    loads = json.loads

    def one() -> str:
        out: list[str] = []
        with client.stream("POST", url, content=json.dumps(payload).encode(),
                           headers=headers) as r:
            r.raise_for_status()
            for line in r.iter_lines():
                if line.startswith("data: "):
                    data = line[6:]
                    if data == "[DONE]":  # read on to the end: the connection is reused
                        continue
                    text = _raw_delta(provider, loads(data))
                    if text:
                        out.append(text)
        return "".join(out)

    return one


def httpx2_astream(provider: str, base: str, limit: int) -> tuple[Any, Any]:
    import httpx2

    client = httpx2.AsyncClient(timeout=120, limits=httpx2.Limits(
        max_connections=limit, max_keepalive_connections=limit))
    url, payload, headers = _raw_request(provider, base, True)
    headers["content-type"] = "application/json"
    loads = json.loads

    async def one() -> str:
        out: list[str] = []
        async with client.stream("POST", url, content=json.dumps(payload).encode(),
                                 headers=headers) as r:
            r.raise_for_status()
            async for line in r.aiter_lines():
                if line.startswith("data: "):
                    data = line[6:]
                    if data == "[DONE]":  # read on to the end: the connection is reused
                        continue
                    text = _raw_delta(provider, loads(data))
                    if text:
                        out.append(text)
        return "".join(out)

    return one, client


# -- allm -------------------------------------------------------------------------------------


def _allm_engine(provider: str, base: str, **client_kw: Any) -> Any:
    import allm

    if provider in ("openai", "responses"):
        return allm.engine(f"openai:{MODELS[provider]}", base_url=base + "/v1",
                                endpoint="chat" if provider == "openai" else "responses",
                                **client_kw)
    return allm.engine(f"{provider}:{MODELS[provider]}", base_url=base, **client_kw)


def _allm_messages() -> Any:
    import allm

    return [allm.system(SYSTEM), allm.user(PROMPT)]


def allm_nonstream(provider: str, base: str) -> Callable[[], str]:
    import allm

    engine = _allm_engine(provider, base)
    msgs = _allm_messages()

    def one() -> str:
        return allm.generate(engine, msgs, api_key=API_KEY).output_text  # type: ignore[no-any-return]

    return one


def allm_stream(provider: str, base: str) -> Callable[[], str]:
    import allm
    from allm.events import TextDelta

    engine = _allm_engine(provider, base)
    msgs = _allm_messages()

    def one() -> str:
        out: list[str] = []
        for ev in allm.stream_generate(engine, msgs, api_key=API_KEY):
            if type(ev) is TextDelta:
                out.append(ev.delta)
        return "".join(out)

    return one


def allm_fold(provider: str, base: str) -> Callable[[], str]:
    import allm

    engine = _allm_engine(provider, base)
    msgs = _allm_messages()

    def one() -> str:
        return allm.generate(engine, msgs, api_key=API_KEY,  # type: ignore[no-any-return]
                             stream=True).output_text

    return one


def allm_astream(provider: str, base: str, limit: int) -> tuple[Any, Any]:
    import httpx2

    import allm
    from allm.events import TextDelta

    client = httpx2.AsyncClient(timeout=120, limits=httpx2.Limits(
        max_connections=limit, max_keepalive_connections=limit))
    engine = _allm_engine(provider, base, async_http_client=client)
    msgs = _allm_messages()

    async def one() -> str:
        out: list[str] = []
        async for ev in allm.astream_generate(engine, msgs, api_key=API_KEY):
            if type(ev) is TextDelta:
                out.append(ev.delta)
        return "".join(out)

    return one, client


# -- peers (run in the peers' virtualenv) ------------------------------------------------------


def openai_nonstream(provider: str, base: str) -> Callable[[], str]:
    import openai

    client = openai.OpenAI(base_url=base + "/v1", api_key=API_KEY, max_retries=0)
    msgs: Any = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]

    def one() -> str:
        r = client.chat.completions.create(model=MODELS["openai"], messages=msgs)
        return r.choices[0].message.content or ""

    return one


def openai_stream(provider: str, base: str) -> Callable[[], str]:
    import openai

    client = openai.OpenAI(base_url=base + "/v1", api_key=API_KEY, max_retries=0)
    msgs: Any = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]

    def one() -> str:
        out: list[str] = []
        for chunk in client.chat.completions.create(
                model=MODELS["openai"], messages=msgs, stream=True,
                stream_options={"include_usage": True}):
            if chunk.choices and chunk.choices[0].delta.content:
                out.append(chunk.choices[0].delta.content)
        return "".join(out)

    return one


def anthropic_nonstream(provider: str, base: str) -> Callable[[], str]:
    import anthropic

    client = anthropic.Anthropic(base_url=base, api_key=API_KEY, max_retries=0)
    msgs: Any = [{"role": "user", "content": PROMPT}]

    def one() -> str:
        r = client.messages.create(model=MODELS["anthropic"], max_tokens=1024, system=SYSTEM,
                                   messages=msgs)
        return "".join(b.text for b in r.content if b.type == "text")

    return one


def anthropic_stream(provider: str, base: str) -> Callable[[], str]:
    import anthropic

    client = anthropic.Anthropic(base_url=base, api_key=API_KEY, max_retries=0)
    msgs: Any = [{"role": "user", "content": PROMPT}]

    def one() -> str:
        out: list[str] = []
        for ev in client.messages.create(model=MODELS["anthropic"], max_tokens=1024,
                                         system=SYSTEM, messages=msgs, stream=True):
            if ev.type == "content_block_delta" and ev.delta.type == "text_delta":
                out.append(ev.delta.text)
        return "".join(out)

    return one


def pydantic_ai_nonstream(provider: str, base: str) -> Callable[[], str]:
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    model = OpenAIChatModel(MODELS["openai"], provider=OpenAIProvider(
        base_url=base + "/v1", api_key=API_KEY))
    agent = Agent(model, instructions=SYSTEM)

    def one() -> str:
        return agent.run_sync(PROMPT).output

    return one


SYNC: dict[tuple[str, str], Callable[[str, str], Callable[[], str]]] = {
    ("nonstream", "httpx2"): httpx2_nonstream,
    ("nonstream", "allm"): allm_nonstream,
    ("nonstream", "openai"): openai_nonstream,
    ("nonstream", "anthropic"): anthropic_nonstream,
    ("nonstream", "pydantic-ai"): pydantic_ai_nonstream,
    ("stream", "httpx2"): httpx2_stream,
    ("stream", "allm"): allm_stream,
    ("stream", "allm-fold"): allm_fold,
    ("stream", "openai"): openai_stream,
    ("stream", "anthropic"): anthropic_stream,
}
ASYNC = {"httpx2": httpx2_astream, "allm": allm_astream}
DISTS = {
    "httpx2": ("httpx2", "httpcore2"), "allm": ("allm", "httpx2"),
    "allm-fold": ("allm", "httpx2"), "openai": ("openai", "httpx2"),
    "anthropic": ("anthropic", "httpx2"), "pydantic-ai": ("pydantic-ai-slim", "pydantic"),
}


# -- measures ----------------------------------------------------------------------------------------


def _check(text: str, cfg: dict[str, Any], chunks: int) -> None:
    want = chunks * cfg["chunk_size"]
    if len(text) != want:
        raise SystemExit(f"{cfg['lib']}/{cfg['provider']}: reply has {len(text)} chars, "
                         f"expected {want}")


def _base(cfg: dict[str, Any], chunks: int) -> str:
    return f"{cfg['base']}/_mock/chunks={chunks},chunk_size={cfg['chunk_size']}"


def measure_nonstream(cfg: dict[str, Any]) -> dict[str, Any]:
    chunks = cfg["chunks"]
    one = SYNC[("nonstream", cfg["lib"])](cfg["provider"], _base(cfg, chunks))
    for _ in range(cfg["warmup"]):
        _check(one(), cfg, chunks)
    times: list[float] = []
    cpu0 = time.process_time()
    t_all = time.perf_counter()
    for _ in range(cfg["n"]):
        t0 = time.perf_counter()
        text = one()
        times.append(time.perf_counter() - t0)
    wall = time.perf_counter() - t_all
    cpu = time.process_time() - cpu0
    _check(text, cfg, chunks)
    times.sort()
    return {
        "us_per_request": statistics.median(times) * 1e6,
        "mean_us": wall / cfg["n"] * 1e6,
        "p90_us": times[int(len(times) * 0.9)] * 1e6,
        "cpu_us_per_request": cpu / cfg["n"] * 1e6,
    }


def measure_stream(cfg: dict[str, Any]) -> dict[str, Any]:
    chunks = cfg["chunks"]
    one = SYNC[("stream", cfg["lib"])](cfg["provider"], _base(cfg, chunks))
    _check(one(), cfg, chunks)
    times, cpu = [], []
    for _ in range(cfg["repeat"]):
        c0 = time.process_time()
        t0 = time.perf_counter()
        text = one()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        _check(text, cfg, chunks)
    ms = statistics.median(times) * 1000
    return {"ms": ms, "us_per_chunk": ms * 1000 / chunks,
            "cpu_ms": statistics.median(cpu) * 1000}


def measure_concurrency(cfg: dict[str, Any]) -> dict[str, Any]:
    import asyncio

    chunks, streams = cfg["chunks"], cfg["streams"]

    async def main() -> dict[str, Any]:
        one, client = ASYNC[cfg["lib"]](cfg["provider"], _base(cfg, chunks), cfg["limit"])
        _check(await one(), cfg, chunks)  # warm-up: imports, first connection
        gc.collect()
        rss0 = _rss_mb()
        _reset_peak()
        t0 = time.perf_counter()
        texts = await asyncio.gather(*(one() for _ in range(streams)))
        wall = time.perf_counter() - t0
        peak = max(_peak_rss_mb(), _rss_mb())
        for text in texts:
            _check(text, cfg, chunks)
        await client.aclose()
        return {"ms": wall * 1000, "rss_before_mb": rss0, "rss_peak_mb": peak,
                "rss_growth_mb": peak - rss0, "chunks_per_s": streams * chunks / wall}

    return asyncio.run(main())


def measure_chat(cfg: dict[str, Any]) -> dict[str, Any]:
    """A `steps`-step chat: steps-1 model turns that each call a tool, then text."""
    import asyncio

    import allm
    from allm.providers import Fake

    steps = cfg["steps"]

    @allm.tool
    def get_weather(city: str) -> dict[str, Any]:
        """Weather in a city."""
        return {"city": city, "temp": 21}

    @allm.tool(name="get_weather")
    async def aget_weather(city: str) -> dict[str, Any]:
        """Weather in a city."""
        return {"city": city, "temp": 21}

    def scripts() -> list[list[Any]]:
        out: list[list[Any]] = [
            [("text", "Checking."),
             ("tool_call", {"id": f"c{i}", "name": "get_weather", "arguments": {"city": f"c{i}"}}),
             ("usage", {"input_tokens": 10, "output_tokens": 5})]
            for i in range(steps - 1)]
        out.append([("text", "All sunny."), ("usage", {"input_tokens": 10, "output_tokens": 3})])
        return out

    def engines(k: int, tool: Any = get_weather) -> list[Any]:
        return [allm.Engine(adapter=Fake(scripts=scripts()), model="fake",
                            tools=[tool]) for _ in range(k)]

    msgs = [allm.user("Weather everywhere?")]
    reps = cfg["repeat"]

    def check(result: Any) -> None:
        if len(result.steps) != steps or result.final_response.output_text != "All sunny.":
            raise SystemExit(f"chat: unexpected result ({len(result.steps)} steps)")

    # warm-up
    check(allm.chat(engines(1)[0], msgs, max_turns=steps + 1))
    sync_times = []
    for eng in engines(reps):
        t0 = time.perf_counter()
        res = allm.chat(eng, msgs, max_turns=steps + 1)
        sync_times.append(time.perf_counter() - t0)
        check(res)

    async def run_async(tool: Any) -> list[float]:
        check(await allm.achat(engines(1, tool)[0], msgs, max_turns=steps + 1))
        out = []
        for eng in engines(reps, tool):
            t0 = time.perf_counter()
            res = await allm.achat(eng, msgs, max_turns=steps + 1)
            out.append(time.perf_counter() - t0)
            check(res)
        return out

    # achat with an async tool (the idiomatic async case), and with the sync tool,
    # which allm runs in a worker thread so it cannot block the event loop.
    async_times = asyncio.run(run_async(aget_weather))
    async_sync_tool = asyncio.run(run_async(get_weather))

    # The stand-in model's own cost (Fake turning its script into events), for
    # context: what the loop costs on top of the adapter it drives.
    from allm.facade import build_request

    def fake_calls() -> float:
        eng = engines(1)[0]
        request, call, _ = build_request(eng, msgs)
        adapter = eng.adapter
        t0 = time.perf_counter()
        for _ in range(steps):
            for _ev in adapter.stream(request, call):
                pass
        return (time.perf_counter() - t0) / steps

    fake = statistics.median(fake_calls() for _ in range(reps))
    return {
        "fake_adapter_us_per_call": fake * 1e6,
        "sync_us_per_step": statistics.median(sync_times) / steps * 1e6,
        "async_us_per_step": statistics.median(async_times) / steps * 1e6,
        "async_sync_tool_us_per_step": statistics.median(async_sync_tool) / steps * 1e6,
    }


def _allm_session(n: int) -> Any:
    import allm
    from allm.session import Session

    msgs: list[Any] = [allm.system("You are a helpful weather assistant.")]
    i = 0
    while len(msgs) < n:
        args = {"city": f"city {i}", "unit": "celsius"}
        msgs.append(allm.user(f"What is the weather in city {i}? Please answer briefly."))
        msgs.append(allm.assistant(tool_calls=[allm.ToolCall(
            id=f"call_{i}", name="get_weather", arguments=args,
            raw_arguments=json.dumps(args))]))
        msgs.append(allm.tool_result(f"call_{i}", {"temp": 21, "sky": "clear"},
                                     name="get_weather"))
        msgs.append(allm.assistant(f"It is 21 degrees and clear in city {i}."))
        i += 1
    return Session(status="idle", thread=allm.Thread(messages=tuple(msgs[:n])))


def _pydantic_ai_history(n: int) -> Any:
    from pydantic_ai import messages as pm

    out: list[Any] = [pm.ModelRequest(parts=[pm.SystemPromptPart(
        content="You are a helpful weather assistant.")])]
    i = 0
    while len(out) < n:
        out.append(pm.ModelRequest(parts=[pm.UserPromptPart(
            content=f"What is the weather in city {i}? Please answer briefly.")]))
        out.append(pm.ModelResponse(parts=[pm.ToolCallPart(
            tool_name="get_weather", args={"city": f"city {i}", "unit": "celsius"},
            tool_call_id=f"call_{i}")]))
        out.append(pm.ModelRequest(parts=[pm.ToolReturnPart(
            tool_name="get_weather", content={"temp": 21, "sky": "clear"},
            tool_call_id=f"call_{i}")]))
        out.append(pm.ModelResponse(parts=[pm.TextPart(
            content=f"It is 21 degrees and clear in city {i}.")]))
        i += 1
    return out[:n]


def measure_serialize(cfg: dict[str, Any]) -> dict[str, Any]:
    n, reps = cfg["messages"], cfg["repeat"]
    if cfg["lib"] == "allm":
        import allm

        obj = _allm_session(n)
        dump: Callable[[], Any] = lambda: allm.dumps(obj)  # noqa: E731
        blob = dump()
        load: Callable[[], Any] = lambda: allm.loads(blob)  # noqa: E731
        if load() != obj:
            raise SystemExit("allm: dumps/loads is not the identity")
    else:
        from pydantic_ai.messages import ModelMessagesTypeAdapter as ta

        hist = _pydantic_ai_history(n)
        dump = lambda: ta.dump_json(hist)  # noqa: E731
        blob = dump()
        load = lambda: ta.validate_json(blob)  # noqa: E731
        if len(load()) != n:
            raise SystemExit("pydantic-ai: history length changed")

    def med(fn: Callable[[], Any]) -> float:
        fn()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1000

    return {"dumps_ms": med(dump), "loads_ms": med(load), "bytes": len(blob)}


MEASURES = {
    "nonstream": measure_nonstream, "stream": measure_stream,
    "concurrency": measure_concurrency, "chat": measure_chat, "serialize": measure_serialize,
}


def main() -> None:
    measure, cfg = sys.argv[1], json.loads(sys.argv[2])
    if cfg.get("src"):
        sys.path.insert(0, cfg["src"])
    out = MEASURES[measure](cfg)
    out["versions"] = _versions(*DISTS.get(cfg["lib"], ()))
    out["python"] = sys.version.split()[0]
    out["pid"] = os.getpid()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
