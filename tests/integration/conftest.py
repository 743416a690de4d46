"""Fixtures the integration tests share: the Klaviyo simulator, shoprelay over it, the CLI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.support.harness import (
    KlaviyoSimServer,
    RunningService,
    klaviyo_sim,
    service_settings,
    shoprelay_service,
)
from typer.testing import CliRunner


@pytest.fixture
async def sim() -> AsyncIterator[KlaviyoSimServer]:
    async with klaviyo_sim() as server:
        yield server


@pytest.fixture
async def relay(database_url: str, sim: KlaviyoSimServer) -> AsyncIterator[RunningService]:
    async with shoprelay_service(service_settings(database_url, sim.url)) as running:
        yield running


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    """A command line in an empty folder, on the test's database, logging only errors."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("LOG_LEVEL", "ERROR")
    return CliRunner()
