"""Shared test fixtures: the anyio backend and the recorded-traffic fixtures path."""

from __future__ import annotations

from pathlib import Path

import pytest

# CI clones main with shared/ beside it: <root>/main/tests/conftest.py -> <root>/shared.
FIXTURES = Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def fixtures_dir() -> Path:
    """The directory of recorded provider traffic (``../shared/fixtures``)."""
    return FIXTURES
