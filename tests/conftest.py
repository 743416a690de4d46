"""Markers by folder, and a `store` fixture over SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text

from shoprelay import logs
from shoprelay.store.database import Store
from shoprelay.store.schema import metadata

PG_ADMIN_DSN = os.environ.get("SHOPRELAY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
FIXTURES = Path(__file__).parent / "fixtures"


def pytest_configure(config: pytest.Config) -> None:
    # As `serve` logs: every level here, tracebacks as plain text (rich ones with every frame's
    # locals take seconds to render each).
    logs.configure("DEBUG")


@pytest.fixture(autouse=True)
def _logs_at_every_level() -> None:
    """A CLI test configures logging from its own settings (a level, a format); the next test
    starts from every level again, so what it captures does not depend on the order."""
    logs.configure("DEBUG")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = Path(str(item.fspath)).relative_to(Path(__file__).parent).parts[0]
        if folder in {"unit", "integration", "scenarios"}:
            item.add_marker(getattr(pytest.mark, folder))


async def _postgres_reachable() -> bool:
    try:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


def _require_postgres(reachable: bool) -> None:
    if reachable:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required under CI=true and is not reachable at {PG_ADMIN_DSN}")
    pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_DSN}; PostgreSQL tests skipped")


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str | None]:
    """A fresh database for this test session, dropped at the end."""
    import asyncio

    name = f"shoprelay_test_{uuid.uuid4().hex[:8]}"

    async def create() -> bool:
        if not await _postgres_reachable():
            return False
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()
        return True

    async def drop() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()

    created = asyncio.run(create())
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    yield f"{base}/{name}" if created else None
    if created:
        asyncio.run(drop())


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_database: str | None
) -> str:
    """A database URL on each backend, migrated and empty."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'shoprelay.db'}"
    _require_postgres(postgres_database is not None)
    assert postgres_database is not None
    store = await Store.open(postgres_database)
    async with store.transaction() as conn:
        names = ", ".join(table.name for table in metadata.sorted_tables)
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))
    await store.close()
    return postgres_database


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(database_url)
    yield opened
    await opened.close()
