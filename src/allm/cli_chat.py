"""``allm chat``: one prompt, the answer streamed to the terminal.

Owns the chat subcommand's options and terminal behaviour; the work is done by the
public API (`allm.stream_generate` for a one-off prompt, `allm.Session` stream
operations folded by `StreamReducer` for ``--session``).

- The prompt is the positional words; without them (or with ``-``) it is read from
  standard input when that is piped. ``-s`` adds a system prompt (new conversations
  only), ``-i`` attaches an image file or URL (repeatable).
- Text is written as it arrives. A spinner runs on stderr until the first token, only
  when stderr is a terminal. Usage and cost go to stderr afterwards, so stdout holds
  only the answer (pipe-friendly).
- ``--json`` prints one JSON object instead: ``model``, ``text``, ``finish_reason``,
  ``usage`` (plain numbers), ``session`` and ``response`` (the `Response` as
  `allm.dumps` tagged JSON, loadable with `allm.loads`).
- ``--session NAME`` continues a conversation kept in the local store
  (`allm.cli_sessions.SessionStore`); ``-m`` defaults to the model it used last. The
  session is saved only after a turn completed: Ctrl-C (exit 130) or an error leaves
  it as it was.
- Offline: ``-m fake:NAME`` uses the `Fake` provider. Its script (JSON, a list of
  entries such as ``[["text", "Hi"], ["delay", 0.1], ["finish", "stop"]]``, or
  ``{"scripts": [[...], ...]}``) comes from ``--fake-script`` or the environment
  variable ``ALLM_FAKE_SCRIPT``; without one the Fake echoes the prompt.

Exit statuses: 0 ok, 1 the call failed, 2 usage error or missing API key, 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import threading
from typing import TYPE_CHECKING, Any, TextIO

from .cli import error_line, format_usage, register

if TYPE_CHECKING:
    from .engine import Engine
    from .messages import Message
    from .request import Response, Usage

__all__ = ["run_chat", "FAKE_SCRIPT_ENV", "Spinner"]

FAKE_SCRIPT_ENV = "ALLM_FAKE_SCRIPT"


class _Usage(Exception):
    """A usage problem: one line on stderr, exit status 2."""


class Spinner:
    """A spinner on `out` (a terminal) until `stop` is called; a no-op elsewhere."""

    FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

    def __init__(self, out: TextIO, enabled: bool) -> None:
        self.out = out
        self.enabled = enabled
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Spinner:
        if self.enabled:
            self._thread = threading.Thread(target=self._spin, daemon=True)
            self._thread.start()
        return self

    def _spin(self) -> None:
        for frame in itertools.cycle(self.FRAMES):
            self.out.write(f"\r{frame} ")
            self.out.flush()
            if self._done.wait(0.08):
                break

    def stop(self) -> None:
        if self._thread is None:
            return
        self._done.set()
        self._thread.join()
        self._thread = None
        self.out.write("\r  \r")
        self.out.flush()


def _setup(p: argparse.ArgumentParser) -> None:
    p.add_argument("prompt", nargs="*",
                   help="the prompt (default: standard input when piped; '-' reads it too)")
    p.add_argument("-m", "--model", metavar="PROVIDER:MODEL",
                   help="e.g. openai:gpt-4.1-mini, anthropic:claude-sonnet-4-5, "
                        "gemini:gemini-2.5-flash, fake:echo (offline)")
    p.add_argument("-s", "--system", metavar="TEXT",
                   help="system prompt (applies when a conversation starts)")
    p.add_argument("-i", "--image", action="append", default=[], metavar="PATH_OR_URL",
                   help="attach an image (repeatable)")
    p.add_argument("--session", metavar="NAME",
                   help="continue (or start) the stored conversation NAME")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--temperature", type=float)
    p.add_argument("--max-tokens", type=int)
    p.add_argument("--base-url", metavar="URL",
                   help="an OpenAI-compatible server (with -m openai:MODEL)")
    p.add_argument("--fake-script", metavar="JSON",
                   help=f"the Fake provider's script (default: ${FAKE_SCRIPT_ENV})")


# -- input ----------------------------------------------------------------------------------


def _prompt(args: argparse.Namespace, stdin: TextIO) -> str:
    words: list[str] = list(args.prompt)
    if not words or "-" in words:
        if stdin.isatty():
            raise _Usage("no prompt: give one as an argument or pipe it on standard input")
        text = stdin.read().strip()
        prompt = "\n\n".join(p for p in ([text if w == "-" else w for w in words]
                                          if words else [text]) if p)
    else:
        prompt = " ".join(words)
    if not prompt.strip():
        raise _Usage("the prompt is empty")
    return prompt


def _user_message(prompt: str, images: list[str]) -> Message:
    from .errors import ValidationError
    from .messages import ImagePart, user

    if not images:
        return user(prompt)
    parts: list[Any] = [prompt]
    for item in images:
        try:
            if item.startswith(("http://", "https://")):
                parts.append(ImagePart.from_url(item))
            else:
                parts.append(ImagePart.from_path(item))
        except ValidationError as exc:
            raise _Usage(exc.message) from None
    return user(parts)


# -- the engine ---------------------------------------------------------------------------------


def _fake_script(args: argparse.Namespace, prompt: str) -> dict[str, Any]:
    raw = args.fake_script or os.environ.get(FAKE_SCRIPT_ENV)
    if not raw:
        words = f"(fake) {prompt}".split(" ")
        entries: list[tuple[Any, ...]] = [("text", w if i == 0 else " " + w)
                                          for i, w in enumerate(words)]
        entries.append(("usage", {"input_tokens": len(prompt.split()),
                                  "output_tokens": len(words)}))
        return {"script": entries}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _Usage(f"the Fake script is not valid JSON: {exc.msg} (at {exc.pos})") from None
    if isinstance(value, dict) and isinstance(value.get("scripts"), list):
        return {"scripts": [[tuple(e) for e in call] for call in value["scripts"]]}
    if isinstance(value, list) and all(isinstance(e, list) for e in value):
        return {"script": [tuple(e) for e in value]}
    raise _Usage('the Fake script must be a JSON list of entries, e.g. [["text", "Hi"]], '
                 'or {"scripts": [[...], ...]}')


def _engine(spec: str, args: argparse.Namespace, prompt: str) -> Engine:
    from . import keys
    from .engine import PROVIDERS, make_engine
    from .errors import EngineError, ValidationError

    provider = spec.partition(":")[0].strip().lower()
    kw: dict[str, Any] = {}
    if provider == "fake":
        kw = _fake_script(args, prompt)
    elif provider in PROVIDERS and keys.get(provider) is None:
        env = " or ".join(keys.env_vars_for(provider))
        raise _Usage(f"no API key for {provider!r}: set {env} (or use allm.keys)")
    if args.base_url:
        kw["base_url"] = args.base_url
    try:
        return make_engine(spec, **kw)
    except (EngineError, ValidationError) as exc:
        raise _Usage(exc.message) from None


# -- output -------------------------------------------------------------------------------------


def _usage_dict(usage: Usage) -> dict[str, Any]:
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
            "total_tokens": usage.total, "total_cost": usage.total_cost}


def _priced(usage: Usage, engine: Engine, response: Response | None) -> Usage:
    if usage.total_cost is not None or engine.provider in (None, "fake"):
        return usage
    model = (response.model if response is not None else None) or engine.model
    if not model:
        return usage
    from . import catalog

    return catalog.populate_costs(usage, engine.provider, model)


def run_chat(args: argparse.Namespace, stdin: TextIO | None = None,
             out: TextIO | None = None, err: TextIO | None = None) -> int:
    stdin, out, err = stdin or sys.stdin, out or sys.stdout, err or sys.stderr
    try:
        return _run(args, stdin, out, err)
    except _Usage as exc:
        error_line(str(exc), err)
        return 2


def _run(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    from .cli_sessions import SessionStore
    from .collector import StreamCollector
    from .errors import AllmError
    from .messages import Thread, system

    prompt = _prompt(args, stdin)
    store = SessionStore() if args.session else None
    stored = store.get(args.session) if store is not None else None
    spec = args.model or (stored.model if stored is not None else None)
    if not spec:
        raise _Usage("no model: pass -m provider:model (e.g. openai:gpt-4.1-mini, or "
                     "fake:echo to try it offline)")
    message = _user_message(prompt, args.image)
    engine = _engine(spec, args, prompt)
    params = {k: v for k, v in (("temperature", args.temperature),
                                ("max_tokens", args.max_tokens)) if v is not None}

    reducer = None
    collector = StreamCollector()
    try:
        if store is not None:
            from .session import Session

            if stored is not None:
                session = stored.session()
                if args.system:
                    print(f"allm: note: -s applies when a session starts; session "
                          f"{args.session!r} keeps its system prompt", file=err)
                events: Any = session.stream_reply(engine, message, **params)
            else:
                thread = Thread()
                if args.system:
                    thread = thread.add_message(system(args.system))
                events = Session.stream_start(engine, thread.add_message(message),
                                              id=args.session, **params)
            reducer = events.reducer()
        else:
            from .facade import stream_generate

            thread = Thread()
            if args.system:
                thread = thread.add_message(system(args.system))
            events = stream_generate(engine, thread.add_message(message), **params)
    except AllmError as exc:  # pre-flight: invalid request, missing key, bad session
        error_line(exc.message, err)
        return 2 if exc.reason == "missing_key" else 1

    spinner = Spinner(err, enabled=err.isatty() and not args.json).start()
    error: AllmError | None = None
    wrote = ""
    try:
        for event in events:
            kind = event.type
            if kind == "text_delta":
                spinner.stop()
                if not args.json:
                    out.write(event.delta)
                    out.flush()
                    wrote = event.delta or wrote
            elif kind == "error" and error is None:
                error = event.error
            if reducer is not None:
                reducer.apply(event)
            else:
                collector.apply(event)
    except AllmError as exc:
        error = exc
    finally:
        spinner.stop()
        events.close()
        if wrote and not wrote.endswith("\n"):
            out.write("\n")
            out.flush()

    if error is not None:
        error_line(error.message, err)
        return 1
    if reducer is not None:
        new_session, result = reducer.finalize()
        response = getattr(result, "final_response", None)
        usage = getattr(result, "usage", None) or (response.usage if response else None)
        if new_session.status == "error":
            failure = new_session.error
            error_line(getattr(failure, "message", None) or "the turn failed", err)
            return 1
        assert store is not None
        store.save(args.session, new_session, spec)
    else:
        response = collector.to_response(model=engine.model)
        usage = response.usage
    from .request import Usage as UsageType

    usage = _priced(usage or UsageType(), engine, response)
    if args.json:
        from .serializer import dumps

        text = response.output_text if response is not None else ""
        print(json.dumps({
            "model": spec,
            "text": text,
            "finish_reason": response.finish_reason if response is not None else None,
            "usage": _usage_dict(usage),
            "session": args.session,
            "response": json.loads(dumps(response)) if response is not None else None,
        }, ensure_ascii=False), file=out)
    else:
        print(f"[{spec}] usage: {format_usage(usage)}", file=err)
    return 0


register("chat", "send a prompt and stream the answer (optionally in a stored session)",
         _setup, run_chat)
