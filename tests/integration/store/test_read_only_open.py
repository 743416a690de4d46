"""Read-only commands never change the schema: behind this release's, they stop and name
`shoprelay migrate`; a SQLite file that is not there is not created."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Connection
from typer.testing import CliRunner

from shoprelay.cli.main import app
from shoprelay.errors import SchemaError
from shoprelay.store.database import Store, _current_revisions, alembic_config


def _step_back(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, "-1")


async def _revisions(database_url: str, *, step_back: bool = False) -> tuple[str, ...]:
    store = await Store.open(database_url, migrate=False)
    try:
        if step_back:
            async with store.engine.begin() as conn:
                await conn.run_sync(_step_back)
        async with store.engine.connect() as conn:
            return await conn.run_sync(_current_revisions)
    finally:
        await store.close()


def test_a_schema_behind_is_named_and_left_as_it_is(cli: CliRunner, database_url: str) -> None:
    """`status`, `dlq list`, `dlq show` and `reconcile` exit 1 with one line that points to
    `shoprelay migrate`, and the schema is still the older revision afterwards."""
    older = asyncio.run(_migrated_then_stepped_back(database_url))
    try:
        for arguments in (["status"], ["dlq", "list"], ["dlq", "show", "1"], ["reconcile"]):
            result = cli.invoke(app, arguments)
            assert result.exit_code == 1, (arguments, result.output)
            assert "run `shoprelay migrate`" in result.output
            assert "Traceback" not in result.output
        assert asyncio.run(_revisions(database_url)) == older
        with pytest.raises(SchemaError, match="this release reads"):
            asyncio.run(_open_for_reading(database_url))
    finally:
        assert cli.invoke(app, ["migrate"]).exit_code == 0
    assert cli.invoke(app, ["status"]).exit_code == 0


async def _migrated_then_stepped_back(database_url: str) -> tuple[str, ...]:
    await (await Store.open(database_url)).close()
    return await _revisions(database_url, step_back=True)


async def _open_for_reading(database_url: str) -> None:
    await (await Store.open_for_reading(database_url)).close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_missing_sqlite_file_is_not_created(
    cli: CliRunner, database_url: str, tmp_path: Path
) -> None:
    """`status` on a DATABASE_URL whose file is not there says to migrate and creates nothing."""
    database = Path(database_url.split("///", 1)[1])
    assert not database.exists()
    result = cli.invoke(app, ["status"])
    assert result.exit_code == 1
    assert "does not exist yet: run `shoprelay migrate`" in result.output
    assert not database.exists()
    assert sorted(path.name for path in database.parent.iterdir()) == []
