"""The reference tables in the guides match the code, so they cannot drift:
the event table (every kind, its class and fields, in order), every error reason per
class, the Fake script vocabulary, the session statuses, the retry policy fields and
defaults, the CLI's options, and the MkDocs navigation."""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import pytest

import allm
from allm import cli
from allm.events import EVENT_TYPES
from allm.providers import fake
from allm.session import STATUSES

DOCS = Path(__file__).resolve().parents[2] / "docs"


def table_rows(text: str) -> list[list[str]]:
    """The body rows of every markdown table in `text`, as lists of cell texts."""
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not re.match(r"^\|[\s|:-]+\|$", line):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


def section(text: str, heading: str) -> str:
    start = text.index(heading)
    match = re.search(r"^#{1,3} ", text[start + len(heading):], re.M)
    return text[start:start + len(heading) + match.start()] if match else text[start:]


def ticks(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def test_event_table_lists_every_event_in_order() -> None:
    text = section((DOCS / "streaming.md").read_text(), "## Event reference")
    rows = [r for r in table_rows(text) if r[0] != "type"]
    assert [ticks(r[0])[0] for r in rows] == list(EVENT_TYPES)
    for row in rows:
        cls = EVENT_TYPES[ticks(row[0])[0]]
        assert ticks(row[1]) == [cls.__name__]
        assert ticks(row[2]) == [f.name for f in dataclasses.fields(cls)], cls.__name__


@pytest.mark.parametrize("cls", [allm.AdapterError, allm.ImageAdapterError, allm.EngineError,
                                 allm.SessionError, allm.StreamError, allm.ToolError,
                                 allm.ValidationError])
def test_every_error_reason_is_documented(cls: type[allm.AllmError]) -> None:
    text = section((DOCS / "errors.md").read_text(), f"### {cls.__name__}")
    documented = [ticks(r[0])[0] for r in table_rows(text) if r[0] != "reason"]
    assert len(documented) == len(set(documented))
    assert set(documented) == set(cls.reasons)


def test_error_tree_names_every_class() -> None:
    text = (DOCS / "errors.md").read_text()
    tree = text[text.index("AllmError\n"):text.index("```", text.index("AllmError\n"))]
    assert sorted(re.findall(r"── (\w+)", tree)) == sorted(
        c.__name__ for c in allm.AllmError.__subclasses__())


def test_fake_vocabulary_is_complete() -> None:
    text = section((DOCS / "testing.md").read_text(), "## The script vocabulary")
    tags = [re.match(r'`\("(\w+)"', r[0]).group(1)  # type: ignore[union-attr]
            for r in table_rows(text) if r[0] != "entry"]
    assert tags == list(fake._TAGS)


def test_session_status_table() -> None:
    text = section((DOCS / "sessions.md").read_text(), "## Statuses")
    statuses = [ticks(r[0])[0] for r in table_rows(text) if r[0] != "status"]
    assert set(statuses) == set(STATUSES)


def test_retry_policy_table() -> None:
    text = section((DOCS / "errors.md").read_text(), "## Retries")
    rows = {ticks(r[0])[0]: r[1] for r in table_rows(text) if r[0] != "field"}
    defaults = allm.RetryPolicy()
    assert list(rows) == [f.name for f in dataclasses.fields(allm.RetryPolicy)]
    for name, cell in rows.items():
        value = getattr(defaults, name)
        if name == "retry_on":
            assert {x.strip("` ") for x in cell.split(",")} == {str(v) for v in value}
        else:
            assert cell == str(value), name


def test_cli_chat_options_are_documented() -> None:
    cli._load_extensions()
    parser = argparse.ArgumentParser()
    cli.COMMANDS["chat"].setup(parser)
    text = section((DOCS / "cli.md").read_text(), "## `allm chat`")
    documented = " ".join(" ".join(ticks(r[0])) for r in table_rows(text))
    for action in parser._actions:
        for flag in action.option_strings:
            if flag not in ("-h", "--help"):
                assert flag in documented, flag


def test_mkdocs_nav_lists_every_page() -> None:
    nav = (DOCS.parent / "mkdocs.yml").read_text()
    pages = set(re.findall(r":\s+([\w-]+\.md)\s*$", nav, re.M))
    assert pages == {p.name for p in DOCS.glob("*.md")}


def test_readme_starts_with_the_two_quick_start_commands() -> None:
    readme = (DOCS.parent / "README.md").read_text()
    first_block = readme[readme.index("```"):].split("```")[1]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()[1:] if line]
    assert commands == ["make demo", "make test"]


def test_make_test_builds_the_docs_and_ci_runs_make_test() -> None:
    makefile = (DOCS.parent / "Makefile").read_text()
    test_target = makefile[makefile.index("\ntest:"):].split("\n\n")[0]
    assert "mkdocs build --strict" in test_target and "-q" not in test_target
    assert "make test" in (DOCS.parent / ".ci" / "run").read_text()
