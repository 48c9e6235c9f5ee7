"""`_http.request.build` makes the very request `Client.build_request` would make."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from allm._http.request import build
from allm._http.transport import CallRun, Timeouts
from allm.providers._codec import HttpRequest
from allm.retry import RetryPolicy

DEFAULTS = {"User-Agent": "allm-test/1", "X-Default": "d"}


def run_for(http_request: HttpRequest, *, use_client: bool = False,
            timeouts: Timeouts | None = None) -> CallRun:
    return CallRun(
        provider="tiny",
        codec=None,
        http_request=http_request,
        stream=False,
        policy=RetryPolicy(),
        timeouts=timeouts or Timeouts(connect=5.0, read=30.0, total=None),
        use_client_timeouts=use_client,
        api_key="sk-test",
    )


def same(client: httpx2.Client | httpx2.AsyncClient, run: CallRun,
         defaults: dict[str, str] | None = None) -> httpx2.Request:
    defaults = DEFAULTS if defaults is None else defaults
    ours = build(client, run, defaults)
    timeout = run.timeout_dict()
    theirs = client.build_request(
        run.http_request.method, run.http_request.url,
        headers=run.merged_headers(defaults), content=run.http_request.content or None,
        **({} if timeout is None else {"timeout": httpx2.Timeout(**timeout)}),
    )
    assert ours.method == theirs.method
    assert ours.url == theirs.url
    assert ours.headers.multi_items() == theirs.headers.multi_items()
    assert ours.content == theirs.content
    mine, other = ours.extensions["timeout"], theirs.extensions["timeout"]
    assert mine.keys() == other.keys()
    for key, value in mine.items():  # a deadline's remaining time moves on in between
        assert value == other[key] or abs(value - other[key]) < 0.05
    return ours


POST = HttpRequest(
    method="POST",
    url="https://api.example.test:8443/v1/chat?x=1",
    headers={"authorization": "Bearer sk-test", "content-type": "application/json",
             "x-default": "override"},
    content=b'{"a": "\xc3\xa9"}',
)


@pytest.mark.parametrize("client_kw", [
    {},
    {"headers": {"User-Agent": "theirs", "X-Client": "c", "Accept": "application/json"}},
    {"base_url": "https://elsewhere.test/base/"},
    {"timeout": httpx2.Timeout(3.0)},
])
def test_matches_build_request(client_kw: dict[str, Any]) -> None:
    with httpx2.Client(**client_kw) as client:
        req = same(client, run_for(POST))
    assert req.headers["x-default"] == "override"  # the codec's header wins
    assert req.headers["user-agent"] == "allm-test/1"  # the adapter's default wins
    assert req.headers.raw[0] == (b"Host", b"api.example.test:8443")


def test_async_client_and_user_client_timeouts() -> None:
    client = httpx2.AsyncClient(timeout=httpx2.Timeout(7.0, read=9.0))
    req = same(client, run_for(POST, use_client=True))
    assert req.extensions["timeout"] == {"connect": 7.0, "read": 9.0, "write": 7.0, "pool": 7.0}


def test_empty_post_and_get() -> None:
    client = httpx2.Client()
    req = same(client, run_for(HttpRequest(method="POST", url="http://h.test/x", headers={})))
    assert req.headers["content-length"] == "0"
    req = same(client, run_for(HttpRequest(method="get", url="http://h.test/x", headers={})))
    assert "content-length" not in req.headers
    assert req.method == "GET"


def test_explicit_host_and_length_headers_are_kept() -> None:
    client = httpx2.Client()
    req = same(client, run_for(HttpRequest(
        method="POST", url="http://h.test/x",
        headers={"Host": "proxy.test", "Content-Length": "3"}, content=b"abc")))
    assert req.headers.get_list("host") == ["proxy.test"]
    assert req.headers.get_list("content-length") == ["3"]


def test_client_cookies_are_sent() -> None:
    client = httpx2.Client(cookies={"session": "s1"})
    req = same(client, run_for(POST))
    assert req.headers["cookie"] == "session=s1"


def test_client_params_merge_with_the_urls_own_query() -> None:
    # httpx2's build_request replaces the URL's query with the client's params; a
    # Gemini stream would lose its `alt=sse`. Merged, the request's own values win.
    client = httpx2.Client(params={"key": "v", "x": "client"})
    req = build(client, run_for(POST), DEFAULTS)
    assert dict(req.url.params) == {"key": "v", "x": "1"}
    assert req.url.path == "/v1/chat"
    assert req.headers["host"] == "api.example.test:8443"


def test_gemini_stream_keeps_alt_sse_with_a_client_that_has_params() -> None:
    import allm

    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        body = (b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"hi"}]},'
                b'"finishReason":"STOP"}]}\n\n')
        return httpx2.Response(200, content=body,
                               headers={"content-type": "text/event-stream"})

    client = httpx2.Client(params={"tenant": "t1"}, transport=httpx2.MockTransport(handler))
    engine = allm.engine("gemini:gemini-2.5-flash", http_client=client)
    response = allm.generate(engine, "hi", api_key="k", stream=True)
    assert response.output_text == "hi"
    assert dict(seen[0].url.params) == {"tenant": "t1", "alt": "sse"}


def test_deadline_caps_the_timeout() -> None:
    run = run_for(POST, timeouts=Timeouts(connect=5.0, read=30.0, total=2.0))
    run.begin_attempt()
    req = same(httpx2.Client(), run)
    timeout = req.extensions["timeout"]
    assert 0 < timeout["read"] <= 2.0
    assert timeout["connect"] <= 2.0


def test_request_is_sent_as_built() -> None:
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, content=b"ok")

    client = httpx2.Client(transport=httpx2.MockTransport(handler))
    response = client.send(build(client, run_for(POST), DEFAULTS))
    assert response.content == b"ok"
    assert seen[0].content == POST.content
    assert seen[0].headers["authorization"] == "Bearer sk-test"


@pytest.mark.parametrize("model", ["openai:gpt-4o-mini", "openai:gpt-5-mini",
                                   "anthropic:claude-sonnet-4-5", "gemini:gemini-2.5-flash"])
def test_unencodable_body_is_a_validation_error_before_any_traffic(model: str) -> None:
    import allm
    from allm.errors import ValidationError

    sent: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:  # pragma: no cover
        sent.append(request)
        return httpx2.Response(500)

    engine = allm.engine(model, http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))
    with pytest.raises(ValidationError) as info:
        allm.generate(engine, "hi", api_key="sk-test", extra_body={"tags": {"a", "b"}})
    assert info.value.reason == "invalid_request"
    assert info.value.errors == [("body", "not_json_serializable")]
    assert "set is not JSON serializable" in str(info.value)
    assert sent == []


def test_body_bytes_matches_compact_json() -> None:
    import json
    import math

    from allm.providers._common import body_bytes

    for value in [{"a": "é\u2028\"\\", "b": [1, 2.5, None, True, -0.0, 10**30]},
                  {"nan": math.nan, "inf": -math.inf}, [], {}, "s", 3]:
        assert body_bytes(value) == json.dumps(
            value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
