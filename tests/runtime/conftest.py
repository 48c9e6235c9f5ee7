"""Fixtures for the HTTP runtime tests (SSE decoder, HttpAdapter, allm.testing)."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
