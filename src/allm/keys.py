"""API key resolution, at call time: per-call key > runtime store > environment > .env.

Owns the resolution chain and the runtime store. Adapters call `resolve(provider,
call.api_key)` while building a request; keys are never stored on an engine, never
serialized, and never appear in a repr, log line or error message (errors name the
*sources* that were checked, never a value).

- Per call: ``allm.generate(engine, msgs, api_key=tenant_key)``: the way to serve many
  tenants from one process (bring-your-own-key).
- Runtime store: `put` / `delete`. It is **process-global** (shared by every thread
  and task), so never use it for per-tenant keys.
- Environment: ``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, gemini/google:
  ``GEMINI_API_KEY`` then ``GOOGLE_API_KEY``, otherwise ``<PROVIDER>_API_KEY``.
- ``.env``: off until `load_dotenv()` turns it on (the original's parser subset:
  ``KEY=VALUE``, ``# comments``, blank lines, a leading ``export``, surrounding
  double quotes stripped; no interpolation, escapes or multi-line values). It never
  modifies `os.environ`.

An empty string counts as missing everywhere.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from .errors import EngineError

__all__ = [
    "resolve",
    "get",
    "put",
    "delete",
    "clear",
    "env_vars_for",
    "load_dotenv",
    "disable_dotenv",
    "SOURCES",
]

SOURCES = ("api_key", "runtime", "env", "dotenv")
"""Source names, in resolution order (the second item `get` returns)."""

_ENV_VARS: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",),
    "anthropic": ("ANTHROPIC_API_KEY",),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
}
_ALIASES = {"google": "gemini"}

_lock = threading.Lock()
_store: dict[str, str] = {}
_dotenv: dict[str, str] | None = None  # None: .env lookup is off
_dotenv_path: Path | None = None


def _canonical(provider: str) -> str:
    name = str(provider).strip().lower()
    return _ALIASES.get(name, name)


def env_vars_for(provider: str) -> tuple[str, ...]:
    """The environment variable names checked for `provider`, in order."""
    name = _canonical(provider)
    known = _ENV_VARS.get(name)
    if known is not None:
        return known
    return (name.upper().replace("-", "_").replace(".", "_") + "_API_KEY",)


def put(provider: str, key: str) -> None:
    """Store `key` for `provider` in the process-global runtime store."""
    if not isinstance(key, str) or not key:
        raise EngineError("missing_key", "allm.keys.put needs a non-empty string key",
                          provider=_canonical(provider))
    with _lock:
        _store[_canonical(provider)] = key


def delete(provider: str) -> None:
    """Remove `provider`'s key from the runtime store (no error if absent)."""
    with _lock:
        _store.pop(_canonical(provider), None)


def clear() -> None:
    """Empty the runtime store."""
    with _lock:
        _store.clear()


def _parse_dotenv(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not name:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            value = value[1:-1]
        out[name] = value
    return out


def load_dotenv(path: str | os.PathLike[str] | None = None) -> None:
    """Turn on ``.env`` lookup, reading `path` (default ``./.env``) now. A missing
    file is not an error (nothing is found there). Call again to re-read."""
    global _dotenv, _dotenv_path
    target = Path(path) if path is not None else Path.cwd() / ".env"
    try:
        values = _parse_dotenv(target.read_text(encoding="utf-8"))
    except FileNotFoundError:
        values = {}
    with _lock:
        _dotenv, _dotenv_path = values, target


def disable_dotenv() -> None:
    """Turn ``.env`` lookup off again."""
    global _dotenv, _dotenv_path
    with _lock:
        _dotenv, _dotenv_path = None, None


def get(provider: str, api_key: str | None = None) -> tuple[str, str] | None:
    """``(key, source)`` for `provider`, or None. `source` is one of `SOURCES`."""
    if api_key:
        return api_key, "api_key"
    name = _canonical(provider)
    with _lock:
        stored = _store.get(name)
        dotenv = _dotenv
    if stored:
        return stored, "runtime"
    env_vars = env_vars_for(name)
    for var in env_vars:
        value = os.environ.get(var)
        if value:
            return value, "env"
    if dotenv is not None:
        for var in env_vars:
            value = dotenv.get(var)
            if value:
                return value, "dotenv"
    return None


def resolve(provider: str, api_key: str | None = None) -> str:
    """The key for `provider`, or `EngineError(reason="missing_key")` naming every
    source checked (never any value)."""
    found = get(provider, api_key)
    if found is not None:
        return found[0]
    name = _canonical(provider)
    env_vars = env_vars_for(name)
    checked = ["api_key", "runtime", "env"]
    where = [
        "the api_key= argument",
        "the runtime store (allm.keys.put)",
        "environment variable" + ("s " if len(env_vars) > 1 else " ") + ", ".join(env_vars),
    ]
    with _lock:
        dotenv_path = _dotenv_path if _dotenv is not None else None
    if dotenv_path is not None:
        checked.append("dotenv")
        where.append(f"{dotenv_path}")
    raise EngineError(
        "missing_key",
        f"no API key found for provider {name!r} (checked: {'; '.join(where)})",
        provider=name,
        metadata={"checked_sources": checked, "env_vars": list(env_vars)},
    )
