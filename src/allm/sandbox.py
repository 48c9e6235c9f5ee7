"""Per-context engine override for tests (the original's `ALLM.Sandbox`).

Owns one `contextvars.ContextVar`. An app that looks its engine up with
``allm.sandbox.get_engine() or default_engine`` can have its tests swap in a Fake
engine with `use_engine` without patching globals. Like the original, this is a
lookup helper only: the facade (`allm.generate`, `allm.chat`, ...) never consults it
implicitly; callers pass the engine they got.

Scope: the value follows the current context, so it propagates into asyncio tasks
and anyio task groups created inside the block. Plain threads do not inherit it: run
their work with ``contextvars.copy_context().run(fn)`` (or an executor that copies
the context) to carry the override across.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["set_engine", "get_engine", "unset_engine", "use_engine"]

_ENGINE: contextvars.ContextVar[Engine | None] = contextvars.ContextVar(
    "allm_sandbox_engine", default=None
)

F = TypeVar("F", bound=Callable[..., Any])


def set_engine(engine: Engine | None) -> contextvars.Token[Engine | None]:
    """Register `engine` for the current context; returns a token for `unset_engine`."""
    return _ENGINE.set(engine)


def get_engine() -> Engine | None:
    """The engine registered for the current context, or None."""
    return _ENGINE.get()


def unset_engine(token: contextvars.Token[Engine | None] | None = None) -> None:
    """Restore the value before `token`'s `set_engine`, or clear it without a token."""
    if token is not None:
        _ENGINE.reset(token)
    else:
        _ENGINE.set(None)


class use_engine:
    """Use `engine` for the duration of a block or a function call::

        with allm.sandbox.use_engine(fake_engine):
            app.handle(request)

        @allm.sandbox.use_engine(fake_engine)
        def test_handler(): ...

    The previous value is restored on exit, also when the block raises. Works on
    async functions too (the override is set inside the coroutine's context).
    """

    def __init__(self, engine: Engine | None) -> None:
        self.engine = engine
        self._tokens: list[contextvars.Token[Engine | None]] = []

    def __enter__(self) -> Engine | None:
        self._tokens.append(_ENGINE.set(self.engine))
        return self.engine

    def __exit__(self, *exc: object) -> None:
        _ENGINE.reset(self._tokens.pop())

    def __call__(self, fn: F) -> F:
        import inspect

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def awrapper(*args: Any, **kwargs: Any) -> Any:
                with _scoped(self.engine):
                    return await fn(*args, **kwargs)

            return awrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with _scoped(self.engine):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


@contextmanager
def _scoped(engine: Engine | None) -> Iterator[None]:
    token = _ENGINE.set(engine)
    try:
        yield
    finally:
        _ENGINE.reset(token)
