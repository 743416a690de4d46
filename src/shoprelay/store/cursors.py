"""Named cursors: where a poller or a pass got to, as a small JSON document."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from shoprelay.store.database import Store
from shoprelay.store.schema import cursors


async def get_cursor(conn: AsyncConnection, name: str) -> dict[str, Any] | None:
    value = (await conn.execute(select(cursors.c.value).where(cursors.c.name == name))).scalar()
    return None if value is None else dict(orjson.loads(value))


async def put_cursor(
    store: Store, conn: AsyncConnection, name: str, value: dict[str, Any], now: float
) -> None:
    encoded = orjson.dumps(value).decode()
    await store.upsert(conn, cursors, {"name": name}, {"value": encoded, "updated_at": now})
