"""``allm models``: the model catalog (`allm.catalog`) as a table.

Owns the subcommand's options and formatting only. One line per model: the
``provider:model`` id to pass to ``-m``, its kind (chat or image), context window,
capability flags (tools, vision, native JSON schema, reasoning, image output) and
prices in USD per million input / output tokens. ``--provider`` filters,
``--json`` prints the catalog entries as JSON, retired models are left out unless
``--all``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from .cli import error_line, register

__all__ = ["run_models", "FLAGS"]

FLAGS: tuple[tuple[str, str], ...] = (
    ("tools", "tools"),
    ("vision", "vision"),
    ("json_native", "json"),
    ("reasoning", "reasoning"),
    ("image_generation", "image-out"),
)
"""(capability, label) pairs shown in the capabilities column."""


def _setup(p: argparse.ArgumentParser) -> None:
    p.add_argument("--provider", "-p", metavar="P", help="only this provider (openai, "
                   "anthropic, gemini)")
    p.add_argument("--all", action="store_true", help="include retired models")
    p.add_argument("--json", action="store_true", help="print the entries as JSON")


def _price(value: Any) -> str:
    if isinstance(value, int | float):
        return f"${value:g}"
    return "-"


def _flags(caps: dict[str, Any]) -> str:
    shown = [label for name, label in FLAGS if caps.get(name) is True]
    return ",".join(shown) or "-"


def run_models(args: argparse.Namespace) -> int:
    from . import catalog

    known = {ref.provider for ref in catalog.models()}
    if args.provider:
        provider = {"google": "gemini", "claude": "anthropic"}.get(
            args.provider.lower(), args.provider.lower())
        if provider not in known:
            error_line(f"unknown provider {args.provider!r}; the catalog knows "
                       f"{', '.join(sorted(known))}")
            return 2
        refs = catalog.models(provider)
    else:
        refs = catalog.models()
    if not args.all:
        refs = [r for r in refs if r.metadata.get("status") != "retired"]
    if args.json:
        print(json.dumps([{"id": str(r), "kind": r.metadata.get("kind"),
                           "capabilities": r.capabilities, "limits": r.limits,
                           "pricing": r.pricing, "status": r.metadata.get("status")}
                          for r in refs], indent=2))
        return 0
    rows = [("MODEL", "KIND", "CONTEXT", "CAPABILITIES", "IN $/M", "OUT $/M")]
    for r in refs:
        window = r.limits.get("context_window")
        pricing = r.pricing or {}
        rows.append((str(r), str(r.metadata.get("kind") or "chat"),
                     f"{window:,}" if isinstance(window, int) else "-",
                     _flags(r.capabilities), _price(pricing.get("input")),
                     _price(pricing.get("output"))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print(f"\n{len(refs)} models (catalog {catalog.catalog_version() or 'bundled'}); "
          "image models price per image: see allm.catalog.price()")
    return 0


register("models", "list the model catalog with capabilities and prices", _setup, run_models)
