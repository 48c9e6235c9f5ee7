"""The `Anthropic` adapter's own configuration: base URL (argument, env), version and
beta headers, per-call options, retries on 529, keys never shown."""

from __future__ import annotations

import json

import httpx2
import pytest

import allm.providers
from allm.errors import AdapterError
from allm.events import ErrorEvent
from allm.messages import user
from allm.providers.anthropic import Anthropic
from allm.providers.base import Call
from allm.request import Request

OK = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
      "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
      "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1}}
REQUEST = Request(messages=(user("hello"),), model="claude-haiku-4-5")


def recorder(seen: list[httpx2.Request], *responses: httpx2.Response) -> httpx2.Client:
    queue = list(responses)

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return queue.pop(0) if queue else httpx2.Response(200, json=OK)

    return httpx2.Client(transport=httpx2.MockTransport(handler))


def test_lazy_export_and_provider_name() -> None:
    assert allm.providers.Anthropic is Anthropic
    assert Anthropic.provider == "anthropic"


def test_base_url_argument_env_and_default(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx2.Request] = []
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://gateway.local/anthropic/")
    adapter = Anthropic(http_client=recorder(seen))
    list(adapter.stream(REQUEST, Call(model="claude-haiku-4-5", api_key="sk-1", stream=False)))
    assert str(seen[-1].url) == "http://gateway.local/anthropic/v1/messages"
    adapter = Anthropic(base_url="http://other", http_client=recorder(seen))
    list(adapter.stream(REQUEST, Call(model="claude-haiku-4-5", api_key="sk-1", stream=False)))
    assert str(seen[-1].url) == "http://other/v1/messages"
    monkeypatch.delenv("ANTHROPIC_BASE_URL")
    assert Anthropic().base_url == "https://api.anthropic.com"


def test_headers_version_beta_and_key() -> None:
    seen: list[httpx2.Request] = []
    adapter = Anthropic(api_version="2099-01-01", beta=["files-api-2025-04-14"],
                        default_headers={"x-team": "a"}, http_client=recorder(seen))
    call = Call(model="claude-haiku-4-5", api_key="sk-secret", stream=False,
                adapter_opts={"beta": ["context-1m-2025-08-07"]},
                params={"extra_headers": {"x-trace": "1"}})
    events = list(adapter.stream(REQUEST, call))
    assert not any(isinstance(e, ErrorEvent) for e in events)
    h = seen[0].headers
    assert h["x-api-key"] == "sk-secret"
    assert h["anthropic-version"] == "2099-01-01"
    assert h["anthropic-beta"] == "files-api-2025-04-14,context-1m-2025-08-07"
    assert (h["x-team"], h["x-trace"]) == ("a", "1")
    assert "authorization" not in h
    assert "sk-secret" not in repr(adapter)
    assert json.loads(seen[0].content)["model"] == "claude-haiku-4-5"


def test_structured_output_mode_is_checked_at_construction() -> None:
    with pytest.raises(ValueError):
        Anthropic(structured_output="sometimes")


def test_529_overloaded_is_retried() -> None:
    seen: list[httpx2.Request] = []
    overloaded = httpx2.Response(529, json={"type": "error", "error": {
        "type": "overloaded_error", "message": "Overloaded"}}, headers={"request-id": "req_1"})
    adapter = Anthropic(http_client=recorder(seen, overloaded),
                        retry={"max_attempts": 2, "base_delay": 0.0, "jitter": 0.0})
    events = list(adapter.stream(REQUEST, Call(model="claude-haiku-4-5", api_key="k",
                                               stream=False)))
    assert len(seen) == 2
    assert not any(isinstance(e, ErrorEvent) for e in events)


def test_error_surfaces_typed_with_request_id() -> None:
    seen: list[httpx2.Request] = []
    denied = httpx2.Response(401, json={"type": "error", "error": {
        "type": "authentication_error", "message": "invalid x-api-key"}},
        headers={"request-id": "req_401"})
    adapter = Anthropic(http_client=recorder(seen, denied), retry=False)
    call = Call(model="claude-haiku-4-5", api_key="sk-wrong", stream=True)
    try:
        events = list(adapter.stream(REQUEST, call))
        [err] = [e.error for e in events if isinstance(e, ErrorEvent)]
    except AdapterError as exc:  # pragma: no cover - depends on the runtime's choice
        err = exc
    assert isinstance(err, AdapterError)
    assert (err.reason, err.status, err.request_id) == ("authentication_failed", 401, "req_401")
    assert "sk-wrong" not in repr(err) and "sk-wrong" not in str(err)
