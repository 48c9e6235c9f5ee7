"""Import hygiene: codecs may import the SSE decoder without pulling in httpx2, and
`allm.testing` imports httpx2 only when a scenario needs mock HTTP."""

from __future__ import annotations

import subprocess
import sys


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout
    return set(out.split())


def test_sse_and_testing_do_not_import_httpx2() -> None:
    mods = _modules_after("import allm._http.sse, allm.testing")
    assert "httpx2" not in mods
    assert "allm._http.adapter" not in mods
    assert "allm._http.adapter" in _modules_after("import allm._http.adapter")
