"""Every ```python block of README.md and docs/*.md runs.

Blocks of one file run in order in one namespace (a guide builds on its earlier
blocks), offline: provider keys are removed from the environment, so a block that
would reach a real provider fails instead of calling it. A block whose first line is
``# doc: skip-run (reason)`` needs a real provider: it is compiled, not run.
Process-global state a guide may touch (the key store, telemetry hooks, the sandbox)
is reset after each file.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import allm

ROOT = Path(__file__).resolve().parents[2]
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
SKIP = "# doc: skip-run"
KEY_VARS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY")


def blocks(path: Path) -> list[tuple[int, str]]:
    """(line number, source) of every python block in `path`."""
    text = path.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 2, m.group(1)) for m in FENCE.finditer(text)]


def test_every_guide_has_code() -> None:
    for path in FILES:
        if path.name not in ("reference.md", "cli.md"):
            assert blocks(path), f"{path.name} has no python block"


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_code_blocks_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (*KEY_VARS, "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"doc_{path.stem.replace('-', '_')}"}
    try:
        for line, source in blocks(path):
            code = compile(source, f"{path.name}:{line}", "exec")
            if source.lstrip().startswith(SKIP):
                continue
            exec(code, namespace)
    finally:
        allm.keys.clear()
        allm.keys.disable_dotenv()
        for handle in allm.telemetry.handlers():
            allm.telemetry.detach(handle)
        allm.telemetry.configure(record_content=False, otel="auto", tracer_provider=False)
        allm.sandbox.unset_engine()
