"""`Engine`: what a call runs on (adapter, model, tools, default params, context, retry).

Owns the engine value, its helpers (with_model, put_tool, resolve_tools,
resolve_params, ...) and `make_engine`, exported as ``allm.engine("provider:model")``.
An engine never holds an API key: keys are resolved per call (`allm.keys`), so one
engine can serve many tenants and be printed or logged safely. Provider modules are
imported lazily inside `make_engine`, so `import allm.engine` loads none of them.
Must not know about the facade or the loop.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, cast

from .errors import EngineError
from .retry import RetryPolicy, resolve_retry
from .tool import Tool

if TYPE_CHECKING:
    from .providers.base import Adapter, ImageAdapter

__all__ = ["Engine", "make_engine", "PROVIDERS", "RetryArg"]

RetryArg = RetryPolicy | Mapping[str, Any] | bool | None

# provider name in "provider:model" -> (module under allm.providers, class)
PROVIDERS: dict[str, tuple[str, str]] = {
    "fake": ("fake", "Fake"),
    "openai": ("openai", "OpenAI"),
    "anthropic": ("anthropic", "Anthropic"),
    "gemini": ("gemini", "Gemini"),
    "google": ("gemini", "Gemini"),
}

IMAGE_PROVIDERS: dict[str, tuple[str, str, str]] = {
    "openai": ("openai_images", "OpenAIImages", "gpt-image-1"),
    "gemini": ("gemini_images", "GeminiImages", "gemini-2.5-flash-image"),
    "google": ("gemini_images", "GeminiImages", "gemini-2.5-flash-image"),
}
"""Providers whose `allm.engine("provider:model")` also gets an image adapter, with the
default image model (override with ``image_model=``), so `allm.generate_image` works
on the same engine."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Engine:
    """The runtime pieces of a call (never serialized as a whole: it holds objects).

    - `adapter`: the chat provider (an `allm.providers.*` instance).
    - `model`: default model id (a call's ``model=`` or a request's model wins).
    - `tools`: default tools; `params`: default neutral params (``temperature``,
      ``max_tokens``, ...); `context`: handed to 2-argument tool handlers.
    - `retry`: a `RetryPolicy`, a mapping of its fields, True/None (default policy)
      or False (no retry); stored resolved, read it as `retry_policy`.
    - `tool_executor`, `tool_result_encoder`: loop plug-ins (None: the defaults).
    - `image_adapter`: for `allm.generate_image` and friends.
    - `adapter_opts`: adapter-specific options merged under a call's.
    """

    adapter: Adapter | None = None
    model: str | None = None
    tools: Sequence[Tool] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    context: Mapping[str, Any] = field(default_factory=dict)
    retry: RetryArg = None
    tool_executor: Any = None
    tool_result_encoder: Any = None
    image_adapter: ImageAdapter | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    adapter_opts: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        tools = tuple(self.tools)
        for i, tool in enumerate(tools):
            if not isinstance(tool, Tool):
                raise EngineError(
                    "invalid_engine",
                    f"engine tools[{i}] is a {type(tool).__name__}, not an allm.Tool "
                    "(wrap functions with allm.tool)",
                )
        set_(self, "tools", tools)
        set_(self, "params", dict(self.params))
        set_(self, "context", dict(self.context))
        set_(self, "metadata", dict(self.metadata))
        set_(self, "adapter_opts", dict(self.adapter_opts))
        set_(self, "retry", resolve_retry(self.retry))

    # -- views -----------------------------------------------------------------------

    @property
    def retry_policy(self) -> RetryPolicy:
        """The resolved retry policy (`retry` after construction)."""
        return cast(RetryPolicy, self.retry)

    @property
    def provider(self) -> str | None:
        """The adapter's provider name (``"openai"``), or None without an adapter."""
        return getattr(self.adapter, "provider", None) if self.adapter is not None else None

    @property
    def tool_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tools)

    def tool(self, name: str) -> Tool | None:
        """The engine tool called `name`, or None."""
        for t in self.tools:
            if t.name == name:
                return t
        return None

    def __repr__(self) -> str:
        # Names only for params/context/metadata: their values may hold secrets
        # (extra_headers, tenant data); the adapter's own repr is never shown.
        parts = [f"provider={self.provider!r}", f"model={self.model!r}"]
        if self.tools:
            parts.append(f"tools={list(self.tool_names)!r}")
        if self.params:
            parts.append(f"params={sorted(self.params)!r}")
        if self.context:
            parts.append(f"context={sorted(self.context)!r}")
        if self.image_adapter is not None:
            parts.append(f"image_provider={getattr(self.image_adapter, 'provider', None)!r}")
        return f"Engine({', '.join(parts)})"

    __str__ = __repr__

    # -- helpers (each returns a new engine) -----------------------------------------

    def with_model(self, model: str | None) -> Engine:
        return replace(self, model=model)

    def with_adapter(self, adapter: Adapter | None) -> Engine:
        return replace(self, adapter=adapter)

    def with_tools(self, tools: Iterable[Tool]) -> Engine:
        """Replace all tools."""
        return replace(self, tools=tuple(tools))

    def put_tool(self, tool: Tool) -> Engine:
        """Add `tool`, replacing a tool of the same name in place."""
        return replace(self, tools=_merge_tools(self.tools, (tool,)))

    def put_tools(self, tools: Iterable[Tool]) -> Engine:
        return replace(self, tools=_merge_tools(self.tools, tuple(tools)))

    def remove_tool(self, name: str) -> Engine:
        return replace(self, tools=tuple(t for t in self.tools if t.name != name))

    def put_param(self, name: str, value: Any) -> Engine:
        return replace(self, params={**self.params, name: value})

    def put_context(self, name: str, value: Any) -> Engine:
        return replace(self, context={**self.context, name: value})

    def with_retry(self, retry: RetryArg) -> Engine:
        return replace(self, retry=retry)

    def merge(self, **changes: Any) -> Engine:
        """`model` replaces, `tools` merge by name, `params` / `context` /
        `metadata` / `adapter_opts` merge shallowly; other fields replace."""
        kw: dict[str, Any] = {}
        for key, value in changes.items():
            if key == "tools":
                kw[key] = _merge_tools(self.tools, tuple(value))
            elif key in ("params", "context", "metadata", "adapter_opts"):
                kw[key] = {**getattr(self, key), **dict(value)}
            else:
                kw[key] = value
        return replace(self, **kw)

    # -- resolution ------------------------------------------------------------------

    def resolve_model(self, model: str | None = None) -> str | None:
        return model if model is not None else self.model

    def resolve_tools(self, extra: Iterable[Tool] | None = None) -> tuple[Tool, ...]:
        """Engine tools in engine order; a same-name tool in `extra` replaces the
        engine's in place; new ones are appended."""
        if not extra:
            return cast(tuple[Tool, ...], self.tools)
        return _merge_tools(self.tools, tuple(extra))

    def resolve_params(self, call_params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """`engine.params` overlaid with the call's params (the call wins; a None
        value in the call removes the engine's default)."""
        out = dict(self.params)
        if call_params:
            for key, value in call_params.items():
                if value is None:
                    out.pop(key, None)
                else:
                    out[key] = value
        return out


def _merge_tools(base: Sequence[Tool], extra: Sequence[Tool]) -> tuple[Tool, ...]:
    out = list(base)
    index = {t.name: i for i, t in enumerate(out)}
    for tool in extra:
        i = index.get(tool.name)
        if i is None:
            index[tool.name] = len(out)
            out.append(tool)
        else:
            out[i] = tool
    return tuple(out)


_ENGINE_FIELDS = frozenset(f.name for f in fields(Engine))


def make_engine(spec: str | None = None, **kw: Any) -> Engine:
    """Build an engine, ``allm.engine("openai:gpt-4.1-mini", tools=[...])``.

    `spec` is ``"provider:model"`` (the model may itself contain colons) or a bare
    provider name. Keyword arguments that are `Engine` fields go to the engine; the
    rest go to the provider's constructor (e.g. ``script=`` for ``fake``,
    ``base_url=`` / ``client=`` for real providers). Without `spec`, this is
    ``Engine(**kw)``. API keys are never accepted here: pass ``api_key=`` per call or
    use `allm.keys`.
    """
    if "api_key" in kw:
        raise EngineError(
            "invalid_engine",
            "engines never hold API keys: pass api_key= to each call, or store it with "
            "allm.keys.put(provider, key)",
        )
    image_model = kw.pop("image_model", None)
    engine_kw = {k: v for k, v in kw.items() if k in _ENGINE_FIELDS}
    adapter_kw = {k: v for k, v in kw.items() if k not in _ENGINE_FIELDS}
    if spec is None:
        if adapter_kw:
            raise EngineError(
                "invalid_engine",
                f"unknown Engine fields {sorted(adapter_kw)}; expected some of "
                f"{sorted(_ENGINE_FIELDS)}",
            )
        return Engine(**engine_kw)
    if not isinstance(spec, str) or not spec.strip():
        raise EngineError("invalid_engine", "engine spec must be a 'provider:model' string")
    provider, _, model = spec.strip().partition(":")
    provider = provider.strip().lower()
    if provider not in PROVIDERS:
        raise EngineError(
            "unknown_provider",
            f"unknown provider {provider!r} in {spec!r}; known providers: "
            f"{', '.join(sorted(PROVIDERS))} (write 'provider:model', e.g. "
            "'openai:gpt-4.1-mini')",
            metadata={"provider": provider, "known": sorted(PROVIDERS)},
        )
    if "adapter" in engine_kw:
        raise EngineError(
            "invalid_engine", f"both a spec ({spec!r}) and adapter= were given; pick one"
        )
    module_name, class_name = PROVIDERS[provider]
    try:
        module = importlib.import_module(f".providers.{module_name}", __package__)
        cls = getattr(module, class_name)
    except (ImportError, AttributeError) as exc:
        raise EngineError(
            "unknown_provider",
            f"provider {provider!r} is not available in this build of allm "
            f"(allm.providers.{class_name} could not be loaded: {type(exc).__name__})",
            provider=provider,
        ) from exc
    _check_kwargs(cls, adapter_kw, provider)
    adapter = cls(**adapter_kw)
    if model:
        engine_kw.setdefault("model", model)
    if "image_adapter" not in engine_kw and provider in IMAGE_PROVIDERS:
        engine_kw["image_adapter"] = _image_adapter(provider, image_model, adapter_kw)
    elif image_model is not None:
        raise EngineError(
            "invalid_engine",
            f"image_model= needs a provider with images ({', '.join(sorted(IMAGE_PROVIDERS))})"
            " and no image_adapter=",
        )
    return Engine(adapter=adapter, **engine_kw)


def _image_adapter(provider: str, model: str | None, adapter_kw: Mapping[str, Any]) -> Any:
    """The provider's image adapter, sharing the chat adapter's connection settings
    (base_url, timeouts, clients) where it accepts them."""
    module_name, class_name, default_model = IMAGE_PROVIDERS[provider]
    module = importlib.import_module(f".providers.{module_name}", __package__)
    cls = getattr(module, class_name)
    accepted = _accepted_kwargs(cls) or frozenset()
    shared = {k: v for k, v in adapter_kw.items() if k in accepted and k != "model"}
    return cls(model=model or default_model, **shared)


@functools.lru_cache(maxsize=32)
def _accepted_kwargs(cls: Any) -> frozenset[str] | None:
    """The keyword names `cls(...)` accepts, or None when it takes ``**kwargs``."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without signatures
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return frozenset(params)


def _check_kwargs(cls: Any, kwargs: Mapping[str, Any], provider: str) -> None:
    if not kwargs:
        return
    params = _accepted_kwargs(cls)
    if params is None:
        return
    unknown = sorted(set(kwargs) - params)
    if unknown:
        accepted = sorted(set(params) | _ENGINE_FIELDS)
        raise EngineError(
            "invalid_engine",
            f"unknown options {unknown} for a {provider!r} engine; accepted: {accepted}",
            provider=provider,
        )


class _CallableModule(types.ModuleType):
    """`allm.engine` is both this module and the `make_engine` shortcut.

    Importing the submodule ``allm.engine`` (``from allm.engine import Engine``) makes
    Python bind the *module* to the package attribute ``allm.engine``, shadowing the
    lazily exported function of the same name. Making the module callable keeps
    ``allm.engine("openai:gpt-4.1-mini")`` working whatever was imported first.
    """

    def __call__(self, spec: str | None = None, **kw: Any) -> Engine:
        return make_engine(spec, **kw)


sys.modules[__name__].__class__ = _CallableModule
