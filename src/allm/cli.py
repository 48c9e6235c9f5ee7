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
interrupted.
"""

from __future__ import annotations

import argparse
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

DEMO_PROMPT = "In three short sentences: why is streaming the primitive in allm?"
DEMO_ANSWER = (
    "Every call in allm is a stream of typed events, so a chat UI can show text the "
    "moment it arrives. The non-streaming calls are just a fold over that same stream, "
    "which means the two can never disagree. And because this answer came from the "
    "scripted Fake provider, the whole demo ran offline with no API key."
)


def demo_script(delay: float) -> list[tuple[Any, ...]]:
    """The scripted Fake conversation the demo streams (word by word)."""
    entries: list[tuple[Any, ...]] = []
    words = DEMO_ANSWER.split(" ")
    for i, word in enumerate(words):
        entries.append(("text", word if i == 0 else " " + word))
        if delay:
            entries.append(("delay", delay))
    entries.append(("usage", {"input_tokens": 18, "output_tokens": len(words) + 9}))
    entries.append(("finish", "stop"))
    return entries


def _demo_setup(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="PROVIDER:MODEL",
                   help="run the prompt against a real provider, e.g. openai:gpt-4.1-mini "
                        "(needs its API key in the environment)")
    p.add_argument("--prompt", default=DEMO_PROMPT, help="the prompt (default: the demo's)")
    p.add_argument("--delay", type=float, default=0.035,
                   help="seconds between streamed words of the offline demo")


def _demo_engine(args: argparse.Namespace) -> tuple[Engine | None, int]:
    from . import keys
    from .engine import PROVIDERS, make_engine
    from .errors import AllmError

    if not args.model:
        return make_engine("fake:allm-demo", script=demo_script(max(args.delay, 0.0))), 0
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
    """Stream the demo conversation to `out` (stdout)."""
    from .errors import AllmError
    from .events import ErrorEvent, MessageCompleted, TextDelta
    from .facade import stream_generate
    from .messages import user

    out = out or sys.stdout
    engine, status = _demo_engine(args)
    if engine is None:
        return status
    print(_dim(f"[{engine.provider}:{engine.model}]", out), file=out)
    print(f"> {args.prompt}\n", file=out, flush=True)
    completed: MessageCompleted | None = None
    error: AllmError | None = None
    try:
        for event in stream_generate(engine, [user(args.prompt)]):
            if type(event) is TextDelta:
                out.write(event.delta)
                out.flush()
            elif isinstance(event, MessageCompleted):
                completed = event
            elif isinstance(event, ErrorEvent):
                error = event.error
    except AllmError as exc:  # pre-flight: bad request, key rejected before sending, ...
        print(file=out)
        error_line(exc.message)
        return 2 if exc.reason == "missing_key" else 1
    print("\n", file=out)
    if error is not None:
        error_line(error.message)
        return 1
    if completed is not None:
        usage = completed.usage
        details = f"finish: {completed.finish_reason}"
        if usage is not None:
            details += f" | usage: {format_usage(usage)}"
        print(_dim(details, out), file=out)
    return 0


register("demo", "stream a scripted conversation (offline), or one prompt to a provider",
         _demo_setup, run_demo)
