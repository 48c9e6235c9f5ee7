"""The `allm` command line: demo offline, missing key, unknown provider."""

from __future__ import annotations

import subprocess
import sys

import pytest

from allm.cli import main


def test_demo_streams_offline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--delay", "0"]) == 0
    out = capsys.readouterr().out
    assert "Fake provider" in out and "finish: stop" in out and "usage:" in out
    assert "2 turns" in out


def test_custom_prompts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--delay", "0", "--prompt", "one", "--prompt", "two",
                 "--prompt", "three"]) == 0
    out = capsys.readouterr().out
    assert "> one" in out and "> three" in out and "3 turns" in out


def test_missing_key_is_one_line_exit_2(capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from allm import keys

    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    keys.delete("anthropic")
    assert main(["demo", "--model", "anthropic:claude-sonnet-4-5"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ANTHROPIC_API_KEY" in err


def test_unknown_provider_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--model", "nope:model"]) == 2
    assert "unknown provider" in capsys.readouterr().err


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out


def test_python_dash_m() -> None:
    proc = subprocess.run([sys.executable, "-m", "allm", "demo", "--delay", "0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Fake provider" in proc.stdout
