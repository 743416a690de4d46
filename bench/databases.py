"""A throwaway database per run: a SQLite file in a temporary folder, or a PostgreSQL database."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg

BACKENDS = ("sqlite", "postgresql")
# The server's admin URL (trust auth locally); BENCH_POSTGRES_URL points elsewhere.
POSTGRES_ADMIN_DSN = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")


def sqlalchemy_url(backend: str, name: str, folder: Path) -> str:
    """The DATABASE_URL shoprelay reads for database `name`."""
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{folder / name}.db"
    return POSTGRES_ADMIN_DSN.replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(f"{POSTGRES_ADMIN_DSN}/postgres")
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def fresh(backend: str, folder: Path, template: str | None = None) -> AsyncIterator[str]:
    """A new empty database (or a copy of `template`) for one run; dropped afterwards."""
    name = f"shoprelay_bench_{uuid.uuid4().hex[:10]}"
    if backend == "sqlite":
        if template is not None:
            for suffix in (".db", ".db-wal"):
                if (folder / f"{template}{suffix}").exists():
                    shutil.copyfile(folder / f"{template}{suffix}", folder / f"{name}{suffix}")
        try:
            yield sqlalchemy_url(backend, name, folder)
        finally:
            for suffix in (".db", ".db-wal", ".db-shm"):
                (folder / f"{name}{suffix}").unlink(missing_ok=True)
        return
    copy = f" TEMPLATE {template}" if template else ""
    await _admin(f"CREATE DATABASE {name}{copy}")
    try:
        yield sqlalchemy_url(backend, name, folder)
    finally:
        await _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def database_name(url: str) -> str:
    """The database (or SQLite file stem) a URL names, usable as a `template`."""
    return Path(url.rsplit("/", 1)[1]).stem
