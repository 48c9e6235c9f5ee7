"""The `allm` console script, driven in subprocesses (offline: the Fake provider with
a script from ALLM_FAKE_SCRIPT, sessions in a temporary ALLM_HOME)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import allm
from allm.cli_chat import Spinner

SCRIPT = Path(sys.executable).with_name("allm")
CMD = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "allm"]
KEY_VARS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k not in KEY_VARS}
    out["ALLM_HOME"] = str(tmp_path / "home")
    out.pop("ALLM_FAKE_SCRIPT", None)
    return out


def run(args: list[str], env: dict[str, str], input: str | None = None,
        script: list[list[object]] | None = None) -> subprocess.CompletedProcess[str]:
    if script is not None:
        env = {**env, "ALLM_FAKE_SCRIPT": json.dumps(script)}
    return subprocess.run([*CMD, *args], env=env, input=input, capture_output=True,
                          text=True, timeout=60,
                          stdin=None if input is not None else subprocess.DEVNULL)


def test_console_script_is_installed() -> None:
    assert SCRIPT.exists(), "the allm console script is not installed in this venv"


def test_chat_streams_text_then_usage_on_stderr(env: dict[str, str]) -> None:
    script = [["text", "Hello"], ["text", ", world"],
              ["usage", {"input_tokens": 5, "output_tokens": 3}], ["finish", "stop"]]
    proc = run(["chat", "-m", "fake:test", "Say hello"], env, script=script)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Hello, world\n"
    assert proc.stderr.strip() == "[fake:test] usage: 5 input, 3 output, 8 total"


def test_text_arrives_before_the_stream_ends(env: dict[str, str]) -> None:
    script = [["text", "first "], ["delay", 1.0], ["text", "last"]]
    env = {**env, "ALLM_FAKE_SCRIPT": json.dumps(script)}
    proc = subprocess.Popen([*CMD, "chat", "-m", "fake:slow", "go"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        assert proc.stdout.read(6) == b"first "
        assert proc.poll() is None  # still streaming
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill() if proc.poll() is None else None
    assert out == b"last\n"
    assert proc.returncode == 0


def test_prompt_from_piped_stdin(env: dict[str, str]) -> None:
    proc = run(["chat", "-m", "fake:echo"], env, input="hello from a pipe\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "(fake) hello from a pipe\n"


def test_stdin_and_prompt_with_dash(env: dict[str, str]) -> None:
    proc = run(["chat", "-m", "fake:echo", "-", "summarize"], env, input="notes")
    assert proc.stdout == "(fake) notes\n\nsummarize\n"


def test_no_prompt_is_a_usage_error(env: dict[str, str]) -> None:
    proc = run(["chat", "-m", "fake:echo"], env, input="")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("allm: error:")


def test_session_is_stored_and_resumed(env: dict[str, str]) -> None:
    first = run(["chat", "-m", "fake:s", "-s", "Be brief.", "--session", "trip",
                 "Plan a trip"], env, script=[["text", "Go to Oslo."]])
    assert first.returncode == 0, first.stderr
    # the model is remembered: no -m on the second turn
    second = run(["chat", "--session", "trip", "And then?"], env,
                 script=[["text", "Then Bergen."]])
    assert second.returncode == 0, second.stderr
    assert second.stdout == "Then Bergen.\n"

    shown = run(["sessions", "show", "trip", "--json"], env)
    session = allm.loads(shown.stdout)
    assert isinstance(session, allm.Session)
    assert session.id == "trip" and session.status == "completed"
    assert [m.role for m in session.messages] == ["system", "user", "assistant", "user",
                                                   "assistant"]
    assert session.messages[-1].text == "Then Bergen."

    listed = run(["sessions", "list"], env)
    assert listed.stdout.startswith("trip\tfake:s\tcompleted\t5 messages")
    transcript = run(["sessions", "show", "trip"], env).stdout
    assert "user: And then?" in transcript
    assert run(["sessions", "delete", "trip"], env).returncode == 0
    gone = run(["sessions", "show", "trip"], env)
    assert gone.returncode == 1 and "no session named 'trip'" in gone.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_mid_stream_keeps_the_session(env: dict[str, str]) -> None:
    assert run(["chat", "-m", "fake:s", "--session", "s", "hi"], env,
               script=[["text", "Hello."]]).returncode == 0
    before = run(["sessions", "show", "s", "--json"], env).stdout

    slow = [entry for i in range(200) for entry in (["text", f"w{i} "], ["delay", 0.05])]
    env2 = {**env, "ALLM_FAKE_SCRIPT": json.dumps(slow)}
    proc = subprocess.Popen([*CMD, "chat", "--session", "s", "tell me more"], env=env2,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    assert proc.stdout.read(3) == b"w0 "  # the stream is running
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert b"Traceback" not in err
    assert run(["sessions", "show", "s", "--json"], env).stdout == before


def test_missing_key_is_one_line_exit_2(env: dict[str, str]) -> None:
    proc = run(["chat", "-m", "openai:gpt-4.1-mini", "hi"], env)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == ("allm: error: no API key for 'openai': set OPENAI_API_KEY "
                           "(or use allm.keys)\n")


def test_mid_stream_error_is_one_line_exit_1(env: dict[str, str]) -> None:
    proc = run(["chat", "-m", "fake:x", "hi"], env,
               script=[["text", "partial"], ["error", "rate_limited"]])
    assert proc.returncode == 1
    assert proc.stdout == "partial\n"
    assert proc.stderr == "allm: error: adapter error (fake): rate_limited\n"


def test_failed_turn_leaves_the_session_as_it_was(env: dict[str, str]) -> None:
    assert run(["chat", "-m", "fake:s", "--session", "e", "hi"], env).returncode == 0
    before = run(["sessions", "show", "e", "--json"], env).stdout
    proc = run(["chat", "--session", "e", "again"], env, script=[["error", "overloaded"]])
    assert proc.returncode == 1 and proc.stderr.startswith("allm: error:")
    assert run(["sessions", "show", "e", "--json"], env).stdout == before


def test_unknown_provider_and_bad_script_are_usage_errors(env: dict[str, str]) -> None:
    proc = run(["chat", "-m", "nope:x", "hi"], env)
    assert proc.returncode == 2 and "unknown provider 'nope'" in proc.stderr
    bad = run(["chat", "-m", "fake:x", "--fake-script", "[1", "hi"], env)
    assert bad.returncode == 2 and "not valid JSON" in bad.stderr


def test_json_output(env: dict[str, str]) -> None:
    proc = run(["chat", "-m", "fake:j", "--json", "hi"], env,
               script=[["text", "Hi!"], ["usage", {"input_tokens": 1, "output_tokens": 1}]])
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["text"] == "Hi!" and data["finish_reason"] == "stop"
    assert data["usage"] == {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2,
                             "total_cost": None}
    response = allm.loads(json.dumps(data["response"]))
    assert isinstance(response, allm.Response) and response.output_text == "Hi!"


def test_image_attachment(env: dict[str, str], tmp_path: Path) -> None:
    png = tmp_path / "dot.png"
    png.write_bytes(bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"))
    proc = run(["chat", "-m", "fake:v", "--session", "v", "-i", str(png), "what?"], env,
               script=[["text", "a dot"]])
    assert proc.returncode == 0, proc.stderr
    session = allm.loads(run(["sessions", "show", "v", "--json"], env).stdout)
    assert len(session.messages[0].images) == 1
    missing = run(["chat", "-m", "fake:v", "-i", str(tmp_path / "nope.png"), "x"], env)
    assert missing.returncode == 2 and "cannot read image file" in missing.stderr


def test_models(env: dict[str, str]) -> None:
    proc = run(["models", "--provider", "openai"], env)
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:3] == ["MODEL", "KIND", "CONTEXT"]
    assert all(line.startswith("openai:") for line in lines[1:] if line and ":" in line[:10])
    data = json.loads(run(["models", "--json"], env).stdout)
    assert {d["id"].split(":")[0] for d in data} >= {"openai", "anthropic", "gemini"}
    assert run(["models", "--provider", "nope"], env).returncode == 2


def test_demo_offline(env: dict[str, str]) -> None:
    proc = run(["demo", "--delay", "0"], env)
    assert proc.returncode == 0, proc.stderr
    assert "streaming" in proc.stdout


def test_spinner_only_draws_when_enabled() -> None:
    out = io.StringIO()
    spinner = Spinner(out, enabled=True).start()
    time.sleep(0.05)
    spinner.stop()
    assert out.getvalue().startswith("\r" + Spinner.FRAMES[0])
    quiet = io.StringIO()
    Spinner(quiet, enabled=False).start().stop()
    assert quiet.getvalue() == ""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX pty")
def test_spinner_on_a_terminal_until_the_first_token(env: dict[str, str]) -> None:
    import pty

    master, slave = pty.openpty()
    script = [["delay", 0.5], ["text", "done"]]
    try:
        proc = subprocess.run([*CMD, "chat", "-m", "fake:t", "go"], stderr=slave,
                              stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=60,
                              env={**env, "ALLM_FAKE_SCRIPT": json.dumps(script)})
        os.close(slave)
        err = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            err += chunk
    finally:
        os.close(master)
    assert proc.returncode == 0
    assert proc.stdout == b"done\n"
    text = err.decode()
    assert any(frame in text for frame in Spinner.FRAMES)   # drawn while waiting
    assert "\r  \r" in text                                  # and erased
    assert text.rstrip().endswith("[fake:t] usage: not reported")


def test_python_dash_m_allm(env: dict[str, str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "allm", "--version"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("allm ")
    helped = subprocess.run([sys.executable, "-m", "allm", "--help"], env=env,
                            capture_output=True, text=True, timeout=60)
    for command in ("chat", "sessions", "models", "demo"):
        assert command in helped.stdout


def test_unexpected_failure_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data directory should be")
    env = {**env, "ALLM_HOME": str(blocker / "home")}
    proc = run(["chat", "-m", "fake:x", "--session", "s", "hi"], env)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("allm: error: ")
    assert "ALLM_DEBUG=1" in proc.stderr
    debug = run(["chat", "-m", "fake:x", "--session", "s", "hi"], {**env, "ALLM_DEBUG": "1"})
    assert "Traceback" in debug.stderr
