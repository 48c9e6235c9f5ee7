"""Building the `httpx2.Request` for one attempt, without `Client.build_request`.

`Client.build_request` normalizes the same headers four times over (client defaults
copied, merged with ours key by key, copied into the request, re-copied with `Host`
prepended) and parses the URL again: about 35 µs per call, the largest single item in
allm's per-request overhead over a raw POST. Our inputs are already normalized (an
absolute URL, str headers, a bytes body), so we build the exact request httpx2 would
build (same header set and values; `Host` first, `Content-Length` last) in one pass,
through public httpx2 API only (`Request(stream=...)`, `ByteStream`, `Cookies`).

A client's cookies are applied as `build_request` would. A client's query
parameters are merged with the URL's own (the URL's win), where `build_request`
would drop the URL's query string altogether.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx2

from .transport import CallRun

_URLS: dict[str, tuple[httpx2.URL, bytes]] = {}
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "QUERY"})


def _url(url: str) -> tuple[httpx2.URL, bytes]:
    """The parsed URL and its `Host` header value, reused from call to call: httpx2
    parses a string URL on every request (~25 µs). URLs are immutable, so the small
    cache is shared (cleared when it grows past 256 entries)."""
    hit = _URLS.get(url)
    if hit is None:
        if len(_URLS) >= 256:
            _URLS.clear()
        parsed = httpx2.URL(url)
        hit = _URLS[url] = (parsed, parsed.netloc)
    return hit


def build(
    client: httpx2.Client | httpx2.AsyncClient,
    run: CallRun,
    default_headers: Mapping[str, str],
) -> httpx2.Request:
    """The request `client.build_request` would make for `run`'s current attempt
    (`tests/runtime/test_request_build.py` compares the two)."""
    req = run.http_request
    url, host = _url(req.url)
    params = client.params
    if params:
        # httpx2 would replace the URL's own query with the client's params (dropping
        # e.g. Gemini's ``?alt=sse``); merged instead, the request's own values win.
        url = url.copy_with(params=params.merge(url.params))
    ours = run.merged_headers(default_headers)
    own = {k.lower() for k in ours}
    headers: list[tuple[bytes, bytes]] = []
    if "host" not in own:
        headers.append((b"Host", host))
    for key, value in client.headers.raw:
        if key.decode("latin-1").lower() not in own:
            headers.append((key, value))
    # ASCII, as httpx2 encodes str headers by default (a non-ASCII value raises there too)
    headers.extend((k.encode("ascii"), v.encode("ascii")) for k, v in ours.items())
    body = req.content
    method = req.method.upper()
    length = None
    if "content-length" not in own and "transfer-encoding" not in own:
        if body:
            length = str(len(body))  # last, as httpx2 appends it
        elif method in _BODY_METHODS:
            headers.insert(1 if "host" not in own else 0, (b"Content-Length", b"0"))
    cookies = client.cookies
    if length is not None and not cookies:
        headers.append((b"Content-Length", length.encode()))
    timeout = run.timeout_dict()
    request = httpx2.Request(
        method,
        url,
        headers=headers,
        stream=httpx2.ByteStream(body),
        extensions={"timeout": timeout if timeout is not None else client.timeout.as_dict()},
    )
    request.read()  # as `content=` does: `request.content` stays readable (hooks, mocks)
    if cookies:  # the client's cookie jar (e.g. a provider's load-balancer cookie)
        cookies.set_cookie_header(request)
        if length is not None:
            request.headers["Content-Length"] = length
    return request
