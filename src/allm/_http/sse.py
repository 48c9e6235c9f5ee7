"""Sans-IO Server-Sent Events decoder (WHATWG HTML "event stream" parsing).

Owns turning response-body bytes (any chunking) into `SSEEvent`s. Knows nothing
about HTTP, providers or allm events: codecs feed it and interpret `data`.

Spec: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation

- Lines end in CRLF, LF or CR; a chunk may end between the CR and the LF
  (`_pending_cr`), inside a line, or inside a UTF-8 character: we work on bytes and
  decode once per dispatched event, so split characters are never seen.
- `data` lines are joined with LF; a blank line dispatches; comments (``:``) are
  dropped; one leading space after the colon is stripped; `event`, `id` (ignored if it
  contains NUL; persists across events, as the spec's "last event ID buffer") and
  `retry` (ASCII digits only) fields; a leading UTF-8 BOM is skipped.
- Deliberate deviation: `close()` dispatches a final event that lacks its trailing
  blank line instead of discarding it (the spec discards it). For LLM streams a lost
  last event means lost data; the codec decides whether the stream was complete.
- Hot path: the common OpenAI/Anthropic/Gemini chunk is a run of complete LF lines,
  handled with one `bytes.split`; a long line arriving in many small chunks is kept
  as a list of parts (no quadratic re-concatenation) and bounded by `max_line`.

Measured against httpx-sse, httpx2's built-in parser and the OpenAI SDK's decoder in
`benchmarks/sse_bench.py` (results in `benchmarks/results/sse.md`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import StreamError

__all__ = ["SSEEvent", "SSEDecoder", "DEFAULT_MAX_LINE"]

DEFAULT_MAX_LINE = 16 * 1024 * 1024
"""Longest line (and largest pending event) accepted, in bytes: 16 MiB."""

_BOM = b"\xef\xbb\xbf"


@dataclass(slots=True)
class SSEEvent:
    """One dispatched event. `event` is None for the default ("message") type."""

    event: str | None
    data: str
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Incremental SSE parser: `feed(bytes) -> list[SSEEvent]`, then `close()`."""

    __slots__ = (
        "_data",
        "_data_len",
        "_event",
        "_last_id",
        "_max_line",
        "_pending_cr",
        "_retry",
        "_started",
        "_tail",
        "_tail_len",
    )

    def __init__(self, *, max_line: int = DEFAULT_MAX_LINE) -> None:
        self._max_line = max_line
        self._tail: list[bytes] = []  # parts of the current, unterminated line
        self._tail_len = 0
        self._pending_cr = False  # last chunk ended in CR: skip a leading LF next
        self._started = False  # BOM check done
        self._data: list[bytes] = []
        self._data_len = 0
        self._event: bytes | None = None
        self._last_id: str | None = None
        self._retry: int | None = None

    # -- public API ---------------------------------------------------------------

    def feed(self, data: bytes) -> list[SSEEvent]:
        """Consume the next bytes; return the events completed by them."""
        if not data:
            return []
        if not self._tail and not self._data and self._started and not self._pending_cr:
            fast = self._one_event(data)
            if fast is not None:
                return fast
        if self._pending_cr:
            self._pending_cr = False
            if data[:1] == b"\n":
                data = data[1:]
                if not data:
                    return []
        if b"\r" in data:
            # Normalize CRLF and lone CR to LF. A trailing CR already ends its line;
            # remember it so that an LF opening the next chunk is not a blank line.
            self._pending_cr = data[-1:] == b"\r"
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if data[-1] != 10 and b"\n" not in data:  # 10 == LF; most chunks end in one
            self._tail.append(data)
            self._tail_len += len(data)
            if self._tail_len > self._max_line:
                self._too_long("line")
            return []
        if self._tail:
            self._tail.append(data)
            data = b"".join(self._tail)
            self._tail = []
            self._tail_len = 0
        lines = data.split(b"\n")
        rest = lines.pop()
        if rest:
            if len(rest) > self._max_line:
                self._too_long("line")
            self._tail.append(rest)
            self._tail_len = len(rest)
        if len(data) > self._max_line and max(map(len, lines)) > self._max_line:
            self._too_long("line")
        return self._lines(lines)

    def close(self) -> list[SSEEvent]:
        """End of body: process an unterminated last line and dispatch a pending
        event (see the module note on this deviation from the spec)."""
        lines: list[bytes] = []
        if self._tail:
            lines.append(b"".join(self._tail))
            self._tail = []
            self._tail_len = 0
        lines.append(b"")
        self._pending_cr = False
        return self._lines(lines)

    # -- internals ----------------------------------------------------------------

    def _one_event(self, data: bytes) -> list[SSEEvent] | None:
        """Fast path for the chunk a streaming server writes per event: exactly
        ``[event: NAME\\n]data: VALUE\\n\\n`` (LF or CRLF), nothing buffered before it.
        Same result as the general path (which handles everything else: None)."""
        if data[-2:] == b"\n\n":
            end = -2
            if b"\r" in data:
                return None
            newlines = 2
        elif data[-4:] == b"\r\n\r\n":  # Gemini
            end = -4
            if data.count(b"\r") != 2:
                return None
            newlines = 2
        else:
            return None
        if len(data) > self._max_line:
            return None
        count = data.count(b"\n")
        if count == newlines and data.startswith(b"data: "):
            name = self._event
            value = data[6:end]
        elif count == newlines + 1 and data.startswith(b"event: ") and end == -2:
            i = data.index(b"\n")
            if not data.startswith(b"data: ", i + 1):
                return None
            name = data[7:i]
            value = data[i + 7:end]
        else:
            return None
        self._event = None
        retry, self._retry = self._retry, None
        return [SSEEvent(name.decode("utf-8", "replace") if name else None,
                         value.decode("utf-8", "replace"), self._last_id, retry)]

    def _lines(self, lines: list[bytes]) -> list[SSEEvent]:
        if not self._started and lines:
            self._started = True
            if lines[0].startswith(_BOM):
                lines[0] = lines[0][3:]
        out: list[SSEEvent] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    out.append(self._dispatch())
                    data = self._data
                else:
                    self._event = None
                    self._retry = None
                continue
            if line.startswith(b"data: "):  # the overwhelmingly common line
                value = line[6:]
                data.append(value)
                self._data_len += len(value)
                if self._data_len > self._max_line:
                    self._too_long("event")
                continue
            if line[0] == 58:  # b":" comment
                continue
            name, _, value = line.partition(b":")
            if value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                data.append(value)
                self._data_len += len(value)
                if self._data_len > self._max_line:
                    self._too_long("event")
            elif name == b"event":
                self._event = value
            elif name == b"id":
                if b"\0" not in value:
                    self._last_id = value.decode("utf-8", "replace")
            elif name == b"retry" and value.isdigit():
                self._retry = int(value)
            # unknown fields are ignored (spec)
        return out

    def _dispatch(self) -> SSEEvent:
        data = self._data
        raw = data[0] if len(data) == 1 else b"\n".join(data)
        event = self._event
        ev = SSEEvent(
            event.decode("utf-8", "replace") if event else None,
            raw.decode("utf-8", "replace"),
            self._last_id,
            self._retry,
        )
        self._data = []
        self._data_len = 0
        self._event = None
        self._retry = None
        return ev

    def _too_long(self, what: str) -> None:
        # Drop the buffered bytes: the stream is unusable past this point anyway.
        self._tail = []
        self._tail_len = 0
        self._data = []
        self._data_len = 0
        raise StreamError(
            "malformed_event",
            f"SSE {what} longer than {self._max_line} bytes",
        )
