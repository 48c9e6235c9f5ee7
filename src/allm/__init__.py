"""allm: provider-neutral LLM execution for Python.

One engine surface over OpenAI (Chat Completions and Responses), Anthropic Messages
and Google Gemini. Streaming is the primitive: every synchronous call is a fold over
a typed event stream. Conversation state is plain data that round-trips through JSON.

The data types are imported eagerly (they are stdlib-only and cheap); everything
else is loaded on first attribute access so `import allm` stays lean (no provider,
no HTTP client, no pydantic, no OpenTelemetry at import time).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    AdapterError,
    AllmError,
    EngineError,
    ImageAdapterError,
    SessionError,
    StreamError,
    ToolError,
    ValidationError,
)
from .events import (
    AskUserRequested,
    ChatCompleted,
    ErrorEvent,
    Event,
    MessageCompleted,
    MessageStarted,
    RawChunk,
    StepCompleted,
    TextCompleted,
    TextDelta,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
    ToolExecutionCompleted,
    ToolExecutionStarted,
    ToolHalt,
    ToolResultEncoded,
)
from .image import Image
from .image_types import ImageRequest, ImageResponse, ImageUsage
from .messages import (
    ImagePart,
    Message,
    TextPart,
    Thread,
    ToolCall,
    assistant,
    system,
    tool_result,
    user,
)
from .request import ModelRef, Request, Response, Usage
from .results import ChatResult, StepResult
from .retry import RetryPolicy
from .tool import Tool

# Importing the `allm.tool` submodule bound the name `tool` to that module; drop it so
# `allm.tool` resolves lazily to the `@allm.tool` decorator (allm.tools.tool).
globals().pop("tool", None)

# The same clash for `allm.engine` (the `allm.engine` module vs the `allm.engine(...)`
# factory): importing the submodule later (the facade does, lazily) would rebind the
# name to the module. Load it now (stdlib-only, cheap) so the factory stays bound.
from . import engine as _engine_module  # noqa: E402

globals()["engine"] = _engine_module.make_engine

__version__ = "0.1.0"

# name -> "module" (attribute of the same name) or "module:attr"
_LAZY: dict[str, str] = {
    # serializer / validation
    "dumps": "serializer",
    "loads": "serializer",
    "to_jsonable": "serializer",
    "from_jsonable": "serializer",
    "validate": "validate:",
    # engine, keys, sandbox
    "Engine": "engine",
    "engine": "engine:make_engine",
    "keys": "keys:",
    "sandbox": "sandbox:",
    # facade: one model call
    "generate": "facade",
    "agenerate": "facade",
    "stream_generate": "facade",
    "astream_generate": "facade",
    "json_schema": "facade",
    "unwrap": "facade",
    "StreamCollector": "collector",
    # tools and the loop
    "tool": "tools",
    "tool_error": "tools",
    "ask_user": "tools",
    "halt": "tools",
    "ToolExecutor": "tools",
    "ToolResultEncoder": "tools",
    "ToolContext": "tools",
    "step": "loop",
    "astep": "loop",
    "stream_step": "loop",
    "astream_step": "loop",
    "chat": "loop",
    "achat": "loop",
    "stream": "loop",
    "astream": "loop",
    # sessions
    "Session": "session",
    "StreamReducer": "session",
    # images
    "generate_image": "imaging",
    "agenerate_image": "imaging",
    "edit_image": "imaging",
    "aedit_image": "imaging",
    "image_variations": "imaging",
    "aimage_variations": "imaging",
    "images_in": "imaging",
    "ImageAdapter": "providers.base",
    "Adapter": "providers.base",
    "Call": "providers.base",
    # subpackages / modules
    "providers": "providers:",
    "telemetry": "telemetry:",
    "catalog": "catalog:",
    "testing": "testing:",
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'allm' has no attribute {name!r}")
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(f".{module_name}", __name__)
    value = module if (attr == "" and target.endswith(":")) else getattr(module, attr or name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    # data
    "Message", "TextPart", "ImagePart", "ToolCall", "Thread", "Image", "Tool",
    "Request", "Response", "Usage", "ModelRef", "StepResult", "ChatResult",
    "ImageRequest", "ImageResponse", "ImageUsage", "RetryPolicy",
    "system", "user", "assistant", "tool_result",
    # events
    "Event", "MessageStarted", "TextDelta", "TextCompleted", "ToolCallStarted",
    "ToolCallDelta", "ToolCallCompleted", "ToolExecutionStarted",
    "ToolExecutionCompleted", "ToolResultEncoded", "AskUserRequested", "ToolHalt",
    "MessageCompleted", "StepCompleted", "ChatCompleted", "RawChunk", "ErrorEvent",
    # errors
    "AllmError", "AdapterError", "EngineError", "ImageAdapterError", "SessionError",
    "StreamError", "ToolError", "ValidationError",
    # lazily loaded (see _LAZY)
    "Adapter",
    "Call",
    "Engine",
    "ImageAdapter",
    "Session",
    "StreamCollector",
    "StreamReducer",
    "ToolContext",
    "ToolExecutor",
    "ToolResultEncoder",
    "achat",
    "aedit_image",
    "agenerate",
    "agenerate_image",
    "aimage_variations",
    "ask_user",
    "astep",
    "astream",
    "astream_generate",
    "astream_step",
    "catalog",
    "chat",
    "dumps",
    "edit_image",
    "engine",
    "from_jsonable",
    "generate",
    "generate_image",
    "halt",
    "image_variations",
    "images_in",
    "json_schema",
    "keys",
    "loads",
    "providers",
    "sandbox",
    "step",
    "stream",
    "stream_generate",
    "stream_step",
    "telemetry",
    "testing",
    "to_jsonable",
    "tool",
    "tool_error",
    "unwrap",
    "validate",
    "__version__",
]

if TYPE_CHECKING:  # pragma: no cover - static view of the lazy names
    from . import catalog, keys, providers, sandbox, telemetry, testing, validate
    from .collector import StreamCollector
    from .engine import Engine
    from .engine import make_engine as engine
    from .facade import (
        agenerate,
        astream_generate,
        generate,
        json_schema,
        stream_generate,
        unwrap,
    )
    from .imaging import (
        aedit_image,
        agenerate_image,
        aimage_variations,
        edit_image,
        generate_image,
        image_variations,
        images_in,
    )
    from .loop import achat, astep, astream, astream_step, chat, step, stream, stream_step
    from .providers.base import Adapter, Call, ImageAdapter
    from .serializer import dumps, from_jsonable, loads, to_jsonable
    from .session import Session, StreamReducer
    from .tools import (
        ToolContext,
        ToolExecutor,
        ToolResultEncoder,
        ask_user,
        halt,
        tool,
        tool_error,
    )
