"""SSE decoder: spec cases, chunking invariance (hypothesis), recorded streams, limits."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allm._http.sse import SSEDecoder, SSEEvent
from allm.errors import StreamError

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"


def _recorded_streams() -> list[tuple[str, bytes]]:
    out = []
    for path in sorted(FIXTURES.glob("*/*.json")):
        data = json.loads(path.read_text())
        for i, inter in enumerate(data["interactions"]):
            body = inter["response"].get("body") or ""
            if "data:" in body:
                out.append((f"{path.parent.name}/{path.stem}#{i}", body.encode()))
    return out


STREAMS = _recorded_streams()


def whole(data: bytes) -> list[SSEEvent]:
    d = SSEDecoder()
    return d.feed(data) + d.close()


def chunked(data: bytes, cuts: list[int]) -> list[SSEEvent]:
    d = SSEDecoder()
    out: list[SSEEvent] = []
    prev = 0
    for cut in sorted(set(cuts)):
        out += d.feed(data[prev:cut])
        prev = cut
    out += d.feed(data[prev:])
    return out + d.close()


def reference(text: str) -> list[SSEEvent]:
    """A straightforward transcription of the WHATWG algorithm, on str, for
    comparison (plus our documented close() flush of a final pending event)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = re.split(r"\r\n|\r|\n", text)
    # the last element is an unterminated line (or ""); close() processes it, then
    # dispatches
    events = []
    data: list[str] = []
    event = None
    last_id = None
    retry = None
    for line in [*lines, ""]:
        if line == "":
            if data:
                events.append(SSEEvent(event or None, "\n".join(data), last_id, retry))
            data, event, retry = [], None, None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id":
            if "\0" not in value:
                last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            retry = int(value)
    return events


# -- spec cases -----------------------------------------------------------------------


def test_basic_fields_and_comments() -> None:
    body = (
        b": a comment\n"
        b"event: add\ndata: 1\ndata:2\ndata:  3\nid: 7\nretry: 1500\n\n"
        b"data\n\n"  # field with no colon: empty data
        b"data: x\nretry: soon\nunknown: y\n\n"
        b"\n\n"  # blank lines alone dispatch nothing
    )
    assert whole(body) == [
        SSEEvent("add", "1\n2\n 3", "7", 1500),
        SSEEvent(None, "", "7", None),  # the last event id persists (spec)
        SSEEvent(None, "x", "7", None),
    ]


def test_line_endings_all_equivalent() -> None:
    lf = b"event: e\ndata: a\ndata: b\n\ndata: c\n\n"
    for variant in (lf, lf.replace(b"\n", b"\r\n"), lf.replace(b"\n", b"\r")):
        assert whole(variant) == [SSEEvent("e", "a\nb"), SSEEvent(None, "c")]


def test_crlf_split_between_cr_and_lf() -> None:
    d = SSEDecoder()
    assert d.feed(b"data: a\r") == []
    assert d.feed(b"\n") == []  # the LF completes CRLF, it is not a blank line
    assert d.feed(b"\r") == [SSEEvent(None, "a")]
    assert d.feed(b"\ndata: b\r\n\r\n") == [SSEEvent(None, "b")]
    assert d.close() == []


def test_utf8_split_inside_character() -> None:
    body = "data: héllo 🌍 wörld\n\n".encode()
    for cut in range(1, len(body)):
        assert chunked(body, [cut]) == [SSEEvent(None, "héllo 🌍 wörld")]


def test_bom_and_id_with_nul_ignored() -> None:
    assert whole(b"\xef\xbb\xbfdata: a\nid: x\x00y\n\n") == [SSEEvent(None, "a")]
    assert chunked(b"\xef\xbb\xbfdata: a\n\n", [1, 2]) == [SSEEvent(None, "a")]


def test_close_flushes_unterminated_last_event() -> None:
    d = SSEDecoder()
    assert d.feed(b"data: a\n\ndata: b") == [SSEEvent(None, "a")]
    assert d.close() == [SSEEvent(None, "b")]


def test_done_marker_is_just_data() -> None:
    assert whole(b"data: [DONE]\n\n") == [SSEEvent(None, "[DONE]")]


def test_long_line_limit() -> None:
    d = SSEDecoder(max_line=100)
    d.feed(b"data: " + b"x" * 50)
    with pytest.raises(StreamError) as info:
        for _ in range(10):
            d.feed(b"x" * 10)
    assert info.value.reason == "malformed_event"
    with pytest.raises(StreamError):
        SSEDecoder(max_line=100).feed(b"data: " + b"y" * 200 + b"\n")
    # many short data lines without a blank line also count
    with pytest.raises(StreamError):
        SSEDecoder(max_line=100).feed(b"data: 0123456789\n" * 20)
    # under the limit is fine
    assert whole(b"data: " + b"z" * 90 + b"\n\n")[0].data == "z" * 90


# -- recorded streams -------------------------------------------------------------------


def test_recorded_streams_found() -> None:
    assert len(STREAMS) >= 10
    providers = {name.split("/")[0] for name, _ in STREAMS}
    assert providers >= {"openai", "anthropic", "gemini"}


@pytest.mark.parametrize("name,body", STREAMS, ids=[n for n, _ in STREAMS])
def test_recorded_stream_matches_reference_and_line_ending_variants(name: str, body: bytes) -> None:
    events = whole(body)
    assert events, name
    assert events == reference(body.decode())
    for ev in events:
        if ev.data != "[DONE]":
            json.loads(ev.data)  # every recorded event is one JSON document
    normalized = body.replace(b"\r\n", b"\n")
    assert whole(normalized.replace(b"\n", b"\r\n")) == events
    assert whole(normalized.replace(b"\n", b"\r")) == events
    # byte-at-a-time for the small ones, as a worst case
    if len(body) < 20_000:
        d = SSEDecoder()
        out: list[SSEEvent] = []
        for i in range(len(body)):
            out += d.feed(body[i : i + 1])
        assert out + d.close() == events


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    index=st.integers(min_value=0, max_value=max(len(STREAMS) - 1, 0)),
    cuts=st.lists(st.floats(min_value=0, max_value=1), max_size=40),
    ending=st.sampled_from([b"\n", b"\r\n", b"\r"]),
)
def test_any_chunking_of_recorded_stream(index: int, cuts: list[float], ending: bytes) -> None:
    body = STREAMS[index][1].replace(b"\r\n", b"\n").replace(b"\n", ending)
    positions = [int(c * len(body)) for c in cuts]
    assert chunked(body, positions) == whole(body)


_line = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n"),
             max_size=12).map(lambda s: "data: " + s),
    st.text(alphabet="ab: é🌍", max_size=8).map(lambda s: "data:" + s),
    st.sampled_from(["", "", ": comment", "event: ping", "event:", "id: 1", "id", "retry: 30",
                     "retry: x", "data", "bogus: 1", "\ufeffdata: bom"]),
)


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(_line, max_size=25),
    endings=st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=1, max_size=25),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=20),
    bom=st.booleans(),
)
def test_generated_streams_match_reference(
    lines: list[str], endings: list[str], cuts: list[int], bom: bool
) -> None:
    text = "".join(line + endings[i % len(endings)] for i, line in enumerate(lines))
    if bom:
        text = "\ufeff" + text
    body = text.encode()
    expected = reference(text)
    assert whole(body) == expected
    assert chunked(body, [c for c in cuts if c <= len(body)]) == expected
