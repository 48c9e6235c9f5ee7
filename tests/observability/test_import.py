"""`import allm` stays lean: no OpenTelemetry, no catalog data read."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import builtins, io, sys
opened = []
real_open = io.open
def spy(file, *a, **k):
    opened.append(str(file))
    return real_open(file, *a, **k)
io.open = builtins.open = spy
import allm
import allm.telemetry
mods = sorted(m for m in sys.modules if m.startswith(("opentelemetry", "allm.catalog", "genai_prices")))
print(mods)
print([f for f in opened if f.endswith("models.json")])
"""


def _run(code: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *flags, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)


def test_import_allm_does_not_import_otel_or_read_catalog() -> None:
    out = _run(CHECK).stdout.splitlines()
    assert out == ["[]", "[]"]


def test_importtime_shows_neither() -> None:
    err = _run("import allm", "-X", "importtime").stderr
    assert "opentelemetry" not in err
    assert "allm.catalog" not in err


def test_catalog_import_is_lazy_about_the_data_file() -> None:
    code = CHECK.replace("import allm.telemetry", "import allm.catalog; import allm.facade")
    out = _run(code).stdout.splitlines()
    assert out[1] == "[]"
    assert "opentelemetry" not in out[0]
    code = CHECK.replace("import allm.telemetry", "import allm.catalog; allm.catalog.get('openai:o3')")
    out = _run(code).stdout.splitlines()
    assert len(eval(out[1])) == 1  # read on first use, once
