"""Property tests: for any Fake script, generate == fold(stream_generate), and the
collector's text / tool-call assembly does not depend on how the stream is chunked."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import allm
from allm.collector import StreamCollector
from allm.errors import AllmError

text = st.text(max_size=8)
ids = st.sampled_from(["c1", "c2", "c3"])
entry = st.one_of(
    st.tuples(st.just("text"), text),
    st.tuples(st.just("tool_call_delta"),
              st.fixed_dictionaries({"id": ids, "arguments_delta": text,
                                     "name": st.sampled_from(["f", "g"])})),
    st.tuples(st.just("tool_call"),
              st.fixed_dictionaries({"id": st.sampled_from(["t1", "t2"]), "name": st.just("h"),
                                     "arguments": st.dictionaries(st.text(max_size=3),
                                                                  st.integers(), max_size=2)})),
    st.tuples(st.just("usage"), st.fixed_dictionaries({"input_tokens": st.integers(0, 99)})),
    st.tuples(st.just("raw_chunk"), st.integers()),
    st.tuples(st.just("error"), st.sampled_from(["rate_limited", "timeout", "weird"])),
    st.tuples(st.just("finish"), st.sampled_from(["stop", "length", "tool_calls"])),
)
scripts = st.lists(entry, max_size=12)


def generate_or_partial(script: list[Any], **opts: Any) -> allm.Response:
    try:
        r = allm.generate(allm.engine("fake:m", script=script), [allm.user("x")], **opts)
    except AllmError as exc:
        r = exc.partial  # type: ignore[attr-defined]
    return replace(r, request_id=None)


@settings(max_examples=150, deadline=None)
@given(scripts)
def test_generate_equals_fold_of_stream(script: list[Any]) -> None:
    events = list(allm.stream_generate(allm.engine("fake:m", script=script), [allm.user("x")]))
    folded = StreamCollector().collect(events).to_response(model="m")
    assert generate_or_partial(script) == folded
    assert generate_or_partial(script, stream=True) == folded


@settings(max_examples=150, deadline=None)
@given(st.lists(text, max_size=10), st.data())
def test_text_chunking_does_not_matter(chunks: list[str], data: st.DataObject) -> None:
    whole = "".join(chunks)
    cut = sorted(data.draw(st.lists(st.integers(0, len(whole)), max_size=5)))
    pieces = [whole[a:b] for a, b in zip([0, *cut], [*cut, len(whole)], strict=True)]
    a = generate_or_partial([("text", c) for c in chunks])
    b = generate_or_partial([("text", p) for p in pieces])
    assert a.output_text == b.output_text == whole
