"""Conversation data: content parts, tool calls, messages and threads.

Owns Layer A's conversation values. All are frozen, keyword-only dataclasses that
round-trip through `allm.dumps` / `allm.loads`. Collections are tuples so a value
handed to the library is never mutated behind the caller's back. Must not know about
providers, engines or I/O.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Union

from ._fastinit import fast_init
from .image import Image

__all__ = [
    "Role",
    "TextPart",
    "ImagePart",
    "ContentPart",
    "ToolCall",
    "Message",
    "Thread",
    "system",
    "user",
    "assistant",
    "tool_result",
]

Role = Literal["system", "user", "assistant", "tool"]
ROLES: frozenset[str] = frozenset({"system", "user", "assistant", "tool"})


@dataclass(frozen=True, slots=True, kw_only=True)
class TextPart:
    """A piece of text inside a multi-part message."""

    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ImagePart:
    """An image inside a user message (vision input). `detail`: auto | low | high."""

    image: Image
    detail: Literal["auto", "low", "high"] = "auto"
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], **kw: Any) -> ImagePart:
        return cls(image=Image.from_path(path), **kw)

    @classmethod
    def from_bytes(cls, data: bytes, mime_type: str | None = None, **kw: Any) -> ImagePart:
        return cls(image=Image.from_bytes(data, mime_type), **kw)

    @classmethod
    def from_base64(cls, b64: str, mime_type: str | None = None, **kw: Any) -> ImagePart:
        return cls(image=Image.from_base64(b64, mime_type), **kw)

    @classmethod
    def from_data_uri(cls, uri: str, **kw: Any) -> ImagePart:
        return cls(image=Image.from_data_uri(uri), **kw)

    @classmethod
    def from_url(cls, url: str, mime_type: str | None = None, **kw: Any) -> ImagePart:
        return cls(image=Image.from_url(url, mime_type), **kw)


ContentPart = Union[TextPart, ImagePart]


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCall:
    """A model's request to run a tool.

    `arguments` is the parsed JSON object; `raw_arguments` the JSON text exactly as the
    model produced it (kept so a malformed call can be reported faithfully).
    `metadata` carries provider replay data (e.g. Gemini's `thoughtSignature`).
    """

    id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    raw_arguments: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def arguments_json(self) -> str:
        """The arguments as JSON text (the raw text when the model gave one)."""
        if self.raw_arguments is not None:
            return self.raw_arguments
        return json.dumps(self.arguments, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One conversation turn.

    - `content` is a string or a tuple of `TextPart` / `ImagePart`.
    - An assistant message carries the tool calls it made in `tool_calls`.
    - A tool message answers the call named by `tool_call_id`; `is_error` marks a
      failed tool so providers that have a flag for it (Anthropic) can set it.
    - `metadata` holds provider replay state (reasoning signatures, item ids) under
      the provider's name, plus anything the caller wants to keep.
    """

    role: Role
    content: str | tuple[ContentPart, ...] = ""
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    is_error: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The message's text: the string content, or its text parts joined by newlines."""
        content = self.content
        if isinstance(content, str):
            return content
        return "\n".join(p.text for p in content if isinstance(p, TextPart))

    @property
    def images(self) -> tuple[ImagePart, ...]:
        content = self.content
        if isinstance(content, str):
            return ()
        return tuple(p for p in content if isinstance(p, ImagePart))

    @property
    def parts(self) -> tuple[ContentPart, ...]:
        """The content as parts (a string becomes one `TextPart`)."""
        content = self.content
        if isinstance(content, str):
            return (TextPart(text=content),) if content else ()
        return content


def _parts(content: str | Iterable[str | ContentPart | Image]) -> str | tuple[ContentPart, ...]:
    if isinstance(content, str):
        return content
    out: list[ContentPart] = []
    for item in content:
        if isinstance(item, str):
            out.append(TextPart(text=item))
        elif isinstance(item, Image):
            out.append(ImagePart(image=item))
        else:
            out.append(item)
    return tuple(out)


def system(text: str, **kw: Any) -> Message:
    """A system message (instructions)."""
    return Message(role="system", content=text, **kw)


def user(content: str | Iterable[str | ContentPart | Image], **kw: Any) -> Message:
    """A user message: text, or a list of parts (a plain `str` stands for a `TextPart`,
    an `Image` for an `ImagePart`)."""
    return Message(role="user", content=_parts(content), **kw)


def assistant(
    content: str | Iterable[str | ContentPart] = "",
    *,
    tool_calls: Sequence[ToolCall] = (),
    **kw: Any,
) -> Message:
    """An assistant message, optionally with the tool calls it made."""
    return Message(role="assistant", content=_parts(content), tool_calls=tuple(tool_calls), **kw)


def tool_result(
    tool_call_id: str, content: Any, *, name: str | None = None, is_error: bool = False,
    **kw: Any,
) -> Message:
    """A tool message answering `tool_call_id`. Non-string content is JSON-encoded."""
    if not isinstance(content, str):
        content = json.dumps(content, ensure_ascii=False, default=str)
    return Message(role="tool", content=content, tool_call_id=tool_call_id, name=name,
                   is_error=is_error, **kw)


@dataclass(frozen=True, slots=True, kw_only=True)
class Thread:
    """An ordered conversation. Every helper returns a new thread."""

    messages: tuple[Message, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_messages(cls, messages: Iterable[Message], **kw: Any) -> Thread:
        return cls(messages=tuple(messages), **kw)

    def add(self, *messages: Message) -> Thread:
        return replace(self, messages=self.messages + messages)

    def add_message(self, message: Message) -> Thread:
        return replace(self, messages=(*self.messages, message))

    def add_messages(self, messages: Iterable[Message]) -> Thread:
        return replace(self, messages=self.messages + tuple(messages))

    def add_system(self, text: str) -> Thread:
        return self.add_message(system(text))

    def add_user(self, content: str | Iterable[str | ContentPart | Image]) -> Thread:
        return self.add_message(user(content))

    def add_assistant(self, text: str) -> Thread:
        return self.add_message(assistant(text))

    @property
    def last_message(self) -> Message | None:
        return self.messages[-1] if self.messages else None

    def __len__(self) -> int:
        return len(self.messages)


def coerce_messages(value: Thread | Message | Sequence[Message] | str) -> Thread:
    """A thread from what callers pass: a Thread, a list of messages, one message, or
    a plain string (a single user message)."""
    if isinstance(value, Thread):
        return value
    if isinstance(value, Message):
        return Thread(messages=(value,))
    if isinstance(value, str):
        return Thread(messages=(user(value),))
    return Thread(messages=tuple(value))

for _cls in (TextPart, ImagePart, ToolCall, Message, Thread):  # see `_fastinit`
    fast_init(_cls)
del _cls
