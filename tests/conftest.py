"""Shared fixtures: a real Azurite per test session, isolated tables per test, demo workspaces."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.settings import SETTINGS, Settings
from shared.tooling.azurite_process import AzuriteProcess

# Fixed so expected numbers never depend on the day the tests run.
DEMO_END = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
TEST_API_KEY = "test-api-key-0123456789"


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteProcess]:
    # In memory: the session's tables only grow, and a saved-to-disk Azurite rewrites all of them
    # every few seconds (tests that restart Azurite start their own, with a location).
    with AzuriteProcess(tmp_path_factory.mktemp("azurite"), in_memory=True) as process:
        yield process


def make_settings(workspace: Path, connection_string: str, **overrides: str) -> Settings:
    values = {
        "LOG_SOURCE": "local",
        "LOCAL_WORKSPACE_PATH": str(workspace),
        "TABLES_CONNECTION_STRING": connection_string,
        # A fresh prefix per test: tests share one Azurite but never each other's rows.
        "TABLE_PREFIX": "t" + uuid.uuid4().hex[:12],
        "API_AUTH": "apikey",
        "API_KEY": TEST_API_KEY,
    }
    values.update(overrides)
    return Settings(values)


@contextmanager
def process_environment(settings: Settings) -> Iterator[None]:
    """Functions read their settings from the process environment, as in Azure: set exactly
    ``settings`` (every registry key not in it removed) and restore the environment after."""
    keys = [spec.name for spec in SETTINGS]
    saved = {k: os.environ.get(k) for k in keys}
    for key in keys:
        os.environ.pop(key, None)
    os.environ.update(settings._values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def settings(tmp_path: Path, azurite: AzuriteProcess) -> Settings:
    return make_settings(tmp_path / "workspace.duckdb", azurite.connection_string)
