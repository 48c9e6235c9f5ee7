"""The ``allm`` command line (also ``python -m allm``).

Owns argument parsing and the subcommands' terminal output; the work is done by the
public API. Subcommands are registered with `register(name, help, setup, run)` (a
setup function adding arguments to its sub-parser, and a run function returning the
exit status), so new ones (``chat``, ``sessions``, ``models``) are one function pair
each; `main` imports ``allm.cli_chat`` / ``cli_sessions`` / ``cli_models`` when they
exist so they can register themselves.

- ``allm demo``: streams a scripted `Fake` conversation offline (no key, no
  network); ``--model provider:model`` sends the same prompt to a real provider
  when its API key is set (a missing key is a one-line error, exit status 2).

Exit statuses: 0 success, 1 the call failed, 2 usage error / missing key, 130
interrupted. Any error is one line on stderr (``ALLM_DEBUG=1`` re-raises it with its
traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from .engine import Engine
    from .request import Usage

__all__ = ["main", "build_parser", "register", "Command", "COMMANDS"]

SetupFn = Callable[[argparse.ArgumentParser], None]
RunFn = Callable[[argparse.Namespace], int]


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    help: str
    setup: SetupFn
    run: RunFn


COMMANDS: dict[str, Command] = {}


def register(name: str, help: str, setup: SetupFn, run: RunFn) -> None:
    """Register (or replace) the subcommand `name`."""
    COMMANDS[name] = Command(name, help, setup, run)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="allm", description="Provider-neutral LLM execution (OpenAI, Anthropic, Gemini)."
    )
    parser.add_argument("--version", action="version", version=f"allm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in COMMANDS.values():
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        cmd.setup(p)
        p.set_defaults(_run=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    _load_extensions()
    parser = build_parser()
    args = parser.parse_args(argv)
    run: RunFn | None = getattr(args, "_run", None)
    if run is None:
        parser.print_help()
        return 2
    try:
        return run(args)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:  # `allm models | head`: the reader left; not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:  # one line, never a traceback (ALLM_DEBUG=1 shows it)
        if os.environ.get("ALLM_DEBUG"):
            raise
        from .errors import AllmError

        if isinstance(exc, AllmError):
            error_line(exc.message)
            return 2 if exc.reason == "missing_key" else 1
        error_line(f"{type(exc).__name__}: {exc} (set ALLM_DEBUG=1 for a traceback)")
        return 1


def _load_extensions() -> None:
    """Import modules that register more subcommands, when they exist."""
    import importlib

    for name in ("cli_chat", "cli_sessions", "cli_models"):
        try:
            importlib.import_module(f".{name}", __package__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{name}":
                raise


# -- shared output helpers ----------------------------------------------------------------


def error_line(message: str, out: TextIO | None = None) -> None:
    """Print a one-line error (no traceback, never a key)."""
    print(f"allm: error: {message}", file=out or sys.stderr)


def format_usage(usage: Usage) -> str:
    parts = []
    if usage.input_tokens is not None:
        parts.append(f"{usage.input_tokens} input")
    if usage.output_tokens is not None:
        parts.append(f"{usage.output_tokens} output")
    total = usage.total
    if total is not None:
        parts.append(f"{total} total")
    if usage.total_cost is not None:
        parts.append(f"${usage.total_cost:.6f}")
    return ", ".join(parts) if parts else "not reported"


def _dim(text: str, out: TextIO) -> str:
    return f"\x1b[2m{text}\x1b[0m" if getattr(out, "isatty", lambda: False)() else text


# -- demo ----------------------------------------------------------------------------------

DEMO_TURNS: tuple[tuple[str, str], ...] = (
    (
        "In three short sentences: why is streaming the primitive in allm?",
        "Every call in allm is a stream of typed events, so a chat UI can show text the "
        "moment it arrives. The non-streaming calls are just a fold over that same "
        "stream, which means the two can never disagree. And the conversation is plain "
        "data, so you can store it between requests and resume it anywhere.",
    ),
    (
        "And how do I test code built on it?",
        "Use the scripted Fake provider, which is what answered you just now: it emits "
        "the same events as a real provider, offline and deterministically, so your "
        "loop, streaming and error handling run exactly as in production.",
    ),
)


def demo_script(answer: str, delay: float, input_tokens: int) -> list[tuple[Any, ...]]:
    """One scripted Fake answer, streamed word by word."""
    entries: list[tuple[Any, ...]] = []
    words = answer.split(" ")
    for i, word in enumerate(words):
        entries.append(("text", word if i == 0 else " " + word))
        if delay:
            entries.append(("delay", delay))
    entries.append(("usage", {"input_tokens": input_tokens,
                              "output_tokens": len(words) + len(words) // 4}))
    entries.append(("finish", "stop"))
    return entries


def _demo_setup(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="PROVIDER:MODEL",
                   help="send the demo's prompts to a real provider, e.g. "
                        "openai:gpt-4.1-mini (needs its API key in the environment)")
    p.add_argument("--prompt", action="append",
                   help="a user turn instead of the demo's (repeat for more turns)")
    p.add_argument("--delay", type=float, default=0.035,
                   help="seconds between streamed words of the offline demo")


def _demo_engine(args: argparse.Namespace) -> tuple[Engine | None, int]:
    from . import keys
    from .engine import PROVIDERS, make_engine
    from .errors import AllmError

    if not args.model:
        delay = max(args.delay, 0.0)
        scripts = [demo_script(answer, delay, 20 + 60 * i)
                   for i, (_, answer) in enumerate(DEMO_TURNS)]
        # Custom prompts get the canned answers in turn (the Fake ignores the request).
        while len(scripts) < len(args.prompt or ()):
            scripts.append(scripts[-1])
        return make_engine("fake:allm-demo", scripts=scripts), 0
    provider = args.model.partition(":")[0].strip().lower()
    if provider in PROVIDERS and provider != "fake" and keys.get(provider) is None:
        env = " or ".join(keys.env_vars_for(provider))
        error_line(f"no API key for {provider!r}: set {env} (or use allm.keys)")
        return None, 2
    try:
        return make_engine(args.model), 0
    except AllmError as exc:
        error_line(exc.message)
        return None, 2


def run_demo(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Stream the demo conversation to `out` (stdout): each turn's events are printed
    as they arrive and folded by a `StreamCollector` into the reply that goes back
    into the thread (the same fold `allm.generate` uses)."""
    from .collector import StreamCollector
    from .errors import AllmError
    from .facade import stream_generate
    from .messages import Thread, user
    from .request import Usage

    out = out or sys.stdout
    engine, status = _demo_engine(args)
    if engine is None:
        return status
    prompts = list(args.prompt or [q for q, _ in DEMO_TURNS])
    print(_dim(f"[{engine.provider}:{engine.model}]", out), file=out)
    thread = Thread()
    total = Usage()
    for prompt in prompts:
        print(f"\n> {prompt}\n", file=out, flush=True)
        thread = thread.add_message(user(prompt))
        collector = StreamCollector()
        try:
            for event in stream_generate(engine, thread):
                if event.type == "text_delta":
                    out.write(event.delta)  # type: ignore[union-attr]
                    out.flush()
                collector.apply(event)
        except AllmError as exc:  # pre-flight: bad request, missing key, ...
            print(file=out)
            error_line(exc.message)
            return 2 if exc.reason == "missing_key" else 1
        response = collector.to_response()
        print("\n", file=out)
        if collector.error is not None:
            error_line(collector.error.message)
            return 1
        total = total + response.usage
        details = f"finish: {response.finish_reason} | usage: {format_usage(response.usage)}"
        print(_dim(details, out), file=out)
        if response.message is not None:
            thread = thread.add_message(response.message)
    if len(prompts) > 1:
        print(_dim(f"\n{len(prompts)} turns, {format_usage(total)} tokens in all", out),
              file=out)
    return 0


register("demo", "stream a scripted conversation (offline), or send it to a provider",
         _demo_setup, run_demo)
