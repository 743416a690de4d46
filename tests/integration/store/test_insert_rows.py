"""Many rows in one INSERT: every row lands, and conflicts apply row by row, on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from shoprelay.store.database import Store
from shoprelay.store.dialects import sqlite
from shoprelay.store.schema import resource_state
from shoprelay.store.states import newer_state_upsert


def state(n: int, version: str) -> dict[str, object]:
    return {
        "source": "shopify",
        "scope": "a.myshopify.com",
        "kind": "order",
        "resource_id": str(n),
        "version": version,
        "state": None if n % 2 else f'{{"n": {n}}}',
        "updated_at": 1.0,
    }


@pytest.mark.parametrize("count", [1, 2, 85, 300])
async def test_every_row_lands_and_newer_versions_stay(
    store: Store, count: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small statements, so that 300 rows take several.
    monkeypatch.setattr(sqlite, "MAX_PARAMETERS", 7 * 64)
    upsert = newer_state_upsert(store)
    older = [state(n, "v1") for n in range(0, count, 3)]
    newer = [state(n, "v3") for n in range(1, count, 3)]
    given = [state(n, "v2") for n in range(count)]
    for rows in (older, newer, given):
        async with store.transaction() as conn:
            await conn.run_sync(
                lambda sync, rows=rows: store.dialect.insert_rows(sync, upsert, rows)
            )
    query = select(resource_state.c.resource_id, resource_state.c.version, resource_state.c.state)
    async with store.read() as conn:
        stored = {row.resource_id: (row.version, row.state) for row in await conn.execute(query)}
    assert stored == {
        str(n): ("v3" if n % 3 == 1 else "v2", None if n % 2 else f'{{"n": {n}}}')
        for n in range(count)
    }
