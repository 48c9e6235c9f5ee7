"""Recorded Gemini traffic for the tests: loading, expectations derived from the recorded
JSON independently of the codec under test (plain dict walking, a naive line split of
the SSE text), and the normalization used to compare requests."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "gemini"
FILES = sorted(FIXTURES.glob("*.json"))

# Recordings (or interactions) that are not Gemini generateContent calls.
NOT_GEMINI_NATIVE = {
    "pydantic-ai__test_compatible_api_with_tool_calls_without_id.json":
        "Gemini's OpenAI-compatible endpoint (OpenAI wire format): replayed through "
        "allm.providers.OpenAI in test_openai_compat.py",
}


@dataclass
class Interaction:
    file: str
    index: int
    url: str
    method: str
    request: dict[str, Any]
    status: int
    headers: dict[str, str]
    body: str

    @property
    def is_model_call(self) -> bool:
        return self.method.upper() == "POST" and (
            self.url.endswith(":generateContent") or ":streamGenerateContent" in self.url)

    @property
    def is_stream(self) -> bool:
        return ":streamGenerateContent" in self.url

    @property
    def model(self) -> str:
        return self.url.split("/models/", 1)[1].split(":", 1)[0]


def load(path: Path) -> list[Interaction]:
    data = json.loads(path.read_text())
    out = []
    for i, it in enumerate(data["interactions"]):
        req, resp = it["request"], it["response"]
        try:
            body = json.loads(req["body"]) if req.get("body") else {}
        except ValueError:
            body = {}
        out.append(Interaction(
            file=path.name, index=i, url=req["url"], method=req["method"],
            request=body if isinstance(body, dict) else {}, status=resp["status"],
            headers=dict(resp["headers"]), body=resp["body"],
        ))
    return out


def model_calls(path: Path) -> list[Interaction]:
    if path.name in NOT_GEMINI_NATIVE:
        return []
    return [it for it in load(path) if it.is_model_call]


def chunks(it: Interaction) -> list[dict[str, Any]]:
    """The response objects of an interaction: one for JSON, one per SSE data line."""
    if not it.is_stream:
        return [json.loads(it.body)]
    out = []
    for line in it.body.replace("\r\n", "\n").split("\n"):
        if line.startswith("data:"):
            out.append(json.loads(line[5:].strip()))
    return out


# ----------------------------------------------------------------------------- expected
@dataclass
class Expected:
    id: str | None = None
    model: str | None = None
    text: str = ""
    reasoning: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)  # name, args, id, sig
    raw_finish: str | None = None
    finish: str | None = None
    usage: dict[str, Any] | None = None
    block_reason: str | None = None


def expected(it: Interaction) -> Expected:
    exp = Expected()
    for chunk in chunks(it):
        exp.id = chunk.get("responseId", exp.id)
        exp.model = chunk.get("modelVersion", exp.model)
        if "usageMetadata" in chunk:
            exp.usage = chunk["usageMetadata"]
        block = (chunk.get("promptFeedback") or {}).get("blockReason")
        if block:
            exp.block_reason = block
        for cand in chunk.get("candidates") or []:
            if cand.get("index", 0) != 0:
                continue
            for part in (cand.get("content") or {}).get("parts") or []:
                if "functionCall" in part:
                    fc = part["functionCall"]
                    exp.calls.append({"name": fc["name"], "args": fc.get("args") or {},
                                      "id": fc.get("id"), "sig": part.get("thoughtSignature")})
                elif "text" in part and part.get("thought"):
                    exp.reasoning += part["text"]
                elif "text" in part:
                    exp.text += part["text"]
            if cand.get("finishReason"):
                exp.raw_finish = cand["finishReason"]
    table = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter",
             "RECITATION": "content_filter", "OTHER": "other"}
    if exp.raw_finish is not None:
        exp.finish = table.get(exp.raw_finish, "other")
        if exp.finish == "stop" and exp.calls:
            exp.finish = "tool_calls"
    elif exp.block_reason is not None:
        exp.finish, exp.raw_finish = "content_filter", exp.block_reason
    return exp


# -------------------------------------------------------------------- request compare
def b64bytes(value: str) -> bytes:
    """Bytes of standard or URL-safe base64 (the SDK re-encodes bytes URL-safe)."""
    padded = value + "=" * (-len(value) % 4)
    try:
        return base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_"))
    except (binascii.Error, ValueError):
        return value.encode()


_CAMEL = {"parameters_json_schema": "parametersJsonSchema",
          "include_thoughts": "includeThoughts", "thinking_budget": "thinkingBudget",
          "inline_data": "inlineData", "mime_type": "mimeType",
          "function_call": "functionCall", "function_response": "functionResponse"}


def camel(value: Any) -> Any:
    """Rename the wire keys the recorder spelled in snake_case (protobuf JSON accepts
    both); schema property names are left alone."""
    if isinstance(value, dict):
        return {_CAMEL.get(k, k): camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel(v) for v in value]
    return value


def unwrap_response(response: Any) -> Any:
    """A functionResponse.response reduced to the value the tool returned: the
    single-key wrappers ({"return_value"|"output"|"result": v}) are taken off; an
    ``error`` wrapper is kept as ("error", v)."""
    if isinstance(response, dict) and len(response) == 1:
        (key, value), = response.items()
        if key in ("return_value", "output", "result"):
            return value
        if key == "error":
            return ("error", value)
    return response


DUMMY_SIG = b"skip_thought_signature_validator"


def norm_part(part: dict[str, Any]) -> dict[str, Any]:
    part = camel(part)
    out: dict[str, Any] = {}
    if "thoughtSignature" in part:
        out["sig"] = b64bytes(part["thoughtSignature"])
    if "functionCall" in part:
        fc = part["functionCall"]
        out["fc"] = (fc["name"], fc.get("args") or {})
    elif "functionResponse" in part:
        fr = part["functionResponse"]
        out["fr"] = (fr["name"], unwrap_response(fr.get("response")))
    elif "inlineData" in part:
        out["inline"] = (part["inlineData"]["mimeType"], b64bytes(part["inlineData"]["data"]))
    elif "text" in part:
        out["text"] = part["text"]
        if part.get("thought"):
            out["thought"] = True
    else:  # server-side tool parts etc.: the kind of part is what must survive
        out["kinds"] = sorted(k for k in part if k != "thoughtSignature")
    return out


def norm_contents(contents: list[dict[str, Any]], *, ours: bool = False,
                  recorded: list[dict[str, Any]] | None = None) -> list[Any]:
    return [(c.get("role"), [norm_part(p) for p in c.get("parts", [])]) for c in contents]


def same_contents(ours: list[dict[str, Any]], recorded: list[dict[str, Any]]) -> list[str]:
    """Differences between our contents and the recorded ones (empty when equal). A
    bypass signature we add where the recorder sent none is accepted."""
    a, b = norm_contents(ours), norm_contents(recorded)
    problems = []
    if len(a) != len(b):
        return [f"{len(a)} contents != recorded {len(b)}: {a!r} vs {b!r}"[:2000]]
    for i, ((ra, pa), (rb, pb)) in enumerate(zip(a, b, strict=True)):
        if ra != rb:
            problems.append(f"contents.{i}.role {ra} != {rb}")
        if len(pa) != len(pb):
            problems.append(f"contents.{i}: {len(pa)} parts != {len(pb)}: {pa!r} vs {pb!r}"
                            [:2000])
            continue
        for j, (x, y) in enumerate(zip(pa, pb, strict=True)):
            if x.get("sig") == DUMMY_SIG and "sig" not in y:
                x = {k: v for k, v in x.items() if k != "sig"}
            if x != y:
                problems.append(f"contents.{i}.parts.{j}: {x!r} != {y!r}"[:2000])
    return problems
