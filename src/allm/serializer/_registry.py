"""The tag <-> class registry: `register`, the fixed table of allm modules whose
classes register lazily, and the registration of every built-in allm value type.

Decoding never imports or executes anything named by the input: a tag resolves only
through this registry (plus the fixed `_LAZY_MODULES` table).
"""

from __future__ import annotations

import dataclasses
import importlib

from ..errors import ERROR_TYPES, AllmError
from ._core import _BUILTIN_TAGS, _BY_CLASS, _BY_TAG, _LAZY_MODULES, _Codec


def register(cls: type, *, tag: str | None = None) -> type:
    """Make a dataclass (or an `AllmError` subclass) serializable under `tag`
    (default: its class name). Usable as a decorator. Fields are converted from
    their type hints; fields typed as callables are never written."""
    if not (dataclasses.is_dataclass(cls) or issubclass(cls, AllmError)):
        raise TypeError(f"register() needs a dataclass or an AllmError subclass, got {cls!r}")
    name = tag or cls.__name__
    if name in _BUILTIN_TAGS:
        raise ValueError(f"tag {name!r} is reserved")
    existing = _BY_TAG.get(name)
    if existing is not None and existing.cls is not cls:
        raise ValueError(f"tag {name!r} is already registered for {existing.cls!r}")
    codec = _Codec(cls, name)
    _BY_TAG[name] = codec
    _BY_CLASS[cls] = codec
    return cls


def _lazy_codec(tag: str) -> _Codec | None:
    """The codec for a tag defined in an allm module not imported yet (fixed table)."""
    module_name = _LAZY_MODULES.get(tag)
    if module_name is None:
        return None
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    if tag not in _BY_TAG:
        cls = getattr(module, tag, None)
        if isinstance(cls, type) and dataclasses.is_dataclass(cls):
            register(cls, tag=tag)
    return _BY_TAG.get(tag)


def _lazy_register_class(cls: type) -> bool:
    """Register an allm dataclass named in the lazy table on first encode."""
    if cls in _BY_CLASS:
        return True
    if _LAZY_MODULES.get(cls.__name__) == cls.__module__ and cls.__name__ not in _BY_TAG:
        register(cls)
        return True
    return False


def _register_builtins() -> None:
    from .. import events
    from ..image import Image
    from ..image_types import ImageRequest, ImageResponse, ImageUsage
    from ..messages import ImagePart, Message, TextPart, Thread, ToolCall
    from ..request import ModelRef, Request, Response, Usage
    from ..results import ChatResult, StepResult
    from ..retry import RetryPolicy
    from ..tool import Tool

    for cls in (Message, TextPart, ImagePart, Image, ToolCall, Tool, Thread, Request,
                Response, Usage, ModelRef, StepResult, ChatResult, ImageRequest,
                ImageResponse, ImageUsage, RetryPolicy, *events.EVENT_TYPES.values(),
                AllmError, *ERROR_TYPES.values()):
        register(cls)


_register_builtins()
