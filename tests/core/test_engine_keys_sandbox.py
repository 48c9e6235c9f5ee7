"""Engine (parsing, helpers), keys (resolution chain), sandbox (context override)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from pathlib import Path

import pytest

import allm
from allm import keys, sandbox
from allm.engine import Engine, make_engine
from allm.errors import EngineError, ValidationError
from allm.providers import Fake
from allm.retry import DEFAULT_RETRY, NO_RETRY, RetryPolicy
from allm.tool import Tool

from ._scripts import SECRET

# -- engine -------------------------------------------------------------------------


def test_make_engine_fake() -> None:
    e = allm.engine("fake:demo", script=[("text", "x")], params={"temperature": 0.2})
    assert isinstance(e.adapter, Fake) and e.model == "demo" and e.provider == "fake"
    assert e.params == {"temperature": 0.2}
    assert allm.engine("fake").model is None
    assert allm.engine("fake:a:b").model == "a:b"  # model ids may contain colons
    assert allm.engine("FAKE:m", model="override").model == "override"


def test_make_engine_errors() -> None:
    with pytest.raises(EngineError) as info:
        allm.engine("nope:model")
    assert info.value.reason == "unknown_provider"
    assert "openai" in str(info.value) and "fake" in str(info.value)
    with pytest.raises(EngineError) as info:
        allm.engine("fake:m", scirpt=[])
    assert info.value.reason == "invalid_engine" and "scirpt" in str(info.value)
    with pytest.raises(EngineError):
        allm.engine("fake:m", adapter=Fake())
    with pytest.raises(EngineError):
        allm.engine("")
    with pytest.raises(EngineError) as info:
        allm.engine("fake:m", api_key=SECRET)
    assert SECRET not in str(info.value)
    with pytest.raises(EngineError):
        make_engine(None, bogus=1)
    assert make_engine(None, model="x").adapter is None


def test_make_engine_real_providers_build_or_fail_clearly() -> None:
    for spec in ("openai:gpt-4.1-mini", "anthropic:claude-sonnet-4-5", "gemini:gemini-2.5-flash",
                 "google:gemini-2.5-flash"):
        try:
            e = allm.engine(spec)
        except EngineError as exc:  # provider not built yet
            assert exc.reason == "unknown_provider"
            assert "not available" in str(exc)
        else:
            assert e.model == spec.partition(":")[2]
            assert e.provider in ("openai", "anthropic", "gemini")


def test_engine_helpers() -> None:
    a, b, a2, c = Tool(name="a"), Tool(name="b"), Tool(name="a", description="2"), Tool(name="c")
    e = Engine(adapter=Fake(), model="m", tools=[a, b])
    assert isinstance(e.tools, tuple)
    assert e.with_model("n").model == "n" and e.model == "m"
    assert e.put_tool(a2).tools == (a2, b)
    assert e.put_tool(c).tools == (a, b, c)
    assert e.with_tools([c]).tools == (c,)
    assert e.remove_tool("a").tools == (b,)
    assert e.resolve_tools([c, a2]) == (a2, b, c)
    assert e.resolve_tools() == (a, b)
    assert e.put_param("temperature", 1).params == {"temperature": 1}
    assert e.put_context("user", "u1").context == {"user": "u1"}
    e2 = e.put_param("temperature", 0.1).put_param("max_tokens", 5)
    assert e2.resolve_params({"temperature": 0.9, "max_tokens": None}) == {"temperature": 0.9}
    assert e.merge(tools=[a2], params={"x": 1}).tools == (a2, b)
    assert e.tool("b") is b and e.tool("zz") is None
    with pytest.raises(EngineError):
        Engine(tools=[lambda: None])  # type: ignore[list-item]


def test_engine_retry_is_resolved() -> None:
    assert Engine().retry_policy == DEFAULT_RETRY
    assert Engine(retry=False).retry_policy == NO_RETRY
    assert Engine(retry={"max_attempts": 5}).retry_policy.max_attempts == 5
    p = RetryPolicy(max_attempts=2)
    assert Engine(retry=p).retry is p
    with pytest.raises(ValidationError):
        Engine(retry={"bogus": 1})


def test_engine_repr_shows_provider_and_model_only() -> None:
    e = allm.engine("fake:demo", params={"extra_headers": {"Authorization": SECRET}},
                    context={"token": SECRET}, tools=[Tool(name="t")])
    text = repr(e)
    assert "provider='fake'" in text and "model='demo'" in text and "'t'" in text
    assert SECRET not in text and SECRET not in str(e)


# -- keys ------------------------------------------------------------------------------


@pytest.fixture
def clean_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY",
                "MISTRAL_API_KEY", "FAKE_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    keys.clear()
    keys.disable_dotenv()
    yield
    keys.clear()
    keys.disable_dotenv()


def test_key_chain_order(clean_keys: None, monkeypatch: pytest.MonkeyPatch,
                         tmp_path: Path) -> None:
    assert keys.get("openai") is None
    env = tmp_path / ".env"
    env.write_text('# c\n\nexport OPENAI_API_KEY="from-dotenv"\nBROKEN\nX=1\n')
    keys.load_dotenv(env)
    assert keys.get("openai") == ("from-dotenv", "dotenv")
    monkeypatch.setenv("OPENAI_API_KEY", "from-env")
    assert keys.get("openai") == ("from-env", "env")
    keys.put("openai", "from-store")
    assert keys.get("openai") == ("from-store", "runtime")
    assert keys.get("openai", "per-call") == ("per-call", "api_key")
    assert keys.resolve("openai", "per-call") == "per-call"
    assert keys.get("openai", "") == ("from-store", "runtime")  # "" counts as missing
    keys.delete("openai")
    assert keys.resolve("openai") == "from-env"


def test_gemini_env_vars(clean_keys: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert keys.env_vars_for("gemini") == ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    assert keys.env_vars_for("google") == ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    assert keys.env_vars_for("mistral") == ("MISTRAL_API_KEY",)
    monkeypatch.setenv("GOOGLE_API_KEY", "g")
    assert keys.resolve("gemini") == "g"
    monkeypatch.setenv("GEMINI_API_KEY", "gem")
    assert keys.resolve("google") == "gem"
    monkeypatch.setenv("GEMINI_API_KEY", "")
    assert keys.resolve("gemini") == "g"


def test_missing_key_error(clean_keys: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(EngineError) as info:
        keys.resolve("anthropic")
    err = info.value
    assert err.reason == "missing_key" and err.provider == "anthropic"
    assert err.metadata["checked_sources"] == ["api_key", "runtime", "env"]
    assert "ANTHROPIC_API_KEY" in str(err)
    keys.load_dotenv("/nonexistent/.env")
    with pytest.raises(EngineError) as info:
        keys.resolve("anthropic")
    assert "dotenv" in info.value.metadata["checked_sources"]
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    assert SECRET not in repr(info.value)


def test_put_rejects_empty(clean_keys: None) -> None:
    with pytest.raises(EngineError):
        keys.put("openai", "")


def test_dotenv_not_read_unless_enabled(clean_keys: None, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("OPENAI_API_KEY=x\n")
    monkeypatch.chdir(tmp_path)
    assert keys.get("openai") is None
    keys.load_dotenv()
    assert keys.get("openai") == ("x", "dotenv")


# -- sandbox ---------------------------------------------------------------------------


def test_sandbox_set_get_unset() -> None:
    e = Engine(model="x")
    assert sandbox.get_engine() is None
    token = sandbox.set_engine(e)
    assert sandbox.get_engine() is e
    sandbox.unset_engine(token)
    assert sandbox.get_engine() is None
    sandbox.set_engine(e)
    sandbox.unset_engine()
    assert sandbox.get_engine() is None


def test_use_engine_context_manager_and_decorator() -> None:
    outer, inner = Engine(model="o"), Engine(model="i")
    with sandbox.use_engine(outer):
        with sandbox.use_engine(inner) as got:
            assert got is inner and sandbox.get_engine() is inner
        assert sandbox.get_engine() is outer
    assert sandbox.get_engine() is None

    @sandbox.use_engine(inner)
    def f() -> Engine | None:
        return sandbox.get_engine()

    assert f() is inner and sandbox.get_engine() is None
    with pytest.raises(RuntimeError), sandbox.use_engine(inner):
        raise RuntimeError
    assert sandbox.get_engine() is None


def test_use_engine_on_async_function_and_task_propagation() -> None:
    e = Engine(model="t")

    @sandbox.use_engine(e)
    async def main() -> list[Engine | None]:
        async def child() -> Engine | None:
            await asyncio.sleep(0)
            return sandbox.get_engine()

        return list(await asyncio.gather(child(), asyncio.create_task(child())))

    assert asyncio.run(main()) == [e, e]
    assert sandbox.get_engine() is None


def test_threads_need_copy_context() -> None:
    e = Engine(model="th")
    seen: dict[str, Engine | None] = {}
    with sandbox.use_engine(e):
        plain = threading.Thread(target=lambda: seen.__setitem__("plain", sandbox.get_engine()))
        ctx = contextvars.copy_context()
        copied = threading.Thread(
            target=lambda: ctx.run(lambda: seen.__setitem__("copied", sandbox.get_engine())))
        plain.start(), copied.start()
        plain.join(), copied.join()
    assert seen == {"plain": None, "copied": e}
