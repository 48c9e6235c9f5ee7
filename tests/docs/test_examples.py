"""Every example under examples/ runs offline on Fake with no arguments and exits 0.

The examples run concurrently (one subprocess each, started together by a
module-scoped fixture) so the whole set costs about as much as the slowest one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCRIPTS = sorted(p for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))
KEY_VARS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY")


@pytest.fixture(scope="module")
def outcomes() -> dict[str, tuple[int, str, str]]:
    # No key in the environment: an example that reached for a real provider fails.
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARS}
    procs = {p.name: subprocess.Popen([sys.executable, str(p)], cwd=EXAMPLES, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      stdin=subprocess.DEVNULL, text=True)
             for p in SCRIPTS}
    results = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        results[name] = (proc.returncode, out, err)
    return results


def test_every_scenario_has_an_example() -> None:
    names = {p.stem.split("_", 1)[1] for p in SCRIPTS}
    assert names == {
        "plain_text", "streaming_text", "single_tool_call", "parallel_tool_calls",
        "multi_turn_chat", "structured_output", "manual_tool_round_trip",
        "session_round_trip", "ask_user", "generate_image", "edit_image", "vision_input",
        "image_variations", "per_tool_manual", "per_tool_manual_session",
    }


@pytest.mark.parametrize("name", [p.name for p in SCRIPTS])
def test_example_runs_offline(name: str, outcomes: dict[str, tuple[int, str, str]]) -> None:
    code, out, err = outcomes[name]
    assert code == 0, f"{name} exited {code}\nstdout:\n{out}\nstderr:\n{err}"
    assert out.strip(), f"{name} printed nothing"
    assert err == "", err


def test_model_switch_without_key_fails_clearly() -> None:
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARS}
    proc = subprocess.run([sys.executable, str(EXAMPLES / "01_plain_text.py"), "--model",
                           "openai:gpt-4.1-mini"], env=env, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "no API key for 'openai': set OPENAI_API_KEY"
