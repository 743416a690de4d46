"""The migrated database is the schema schema.py declares, and claims read only what they take."""

from __future__ import annotations

import json

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text

from shoprelay.store import outbox
from shoprelay.store.database import Store
from shoprelay.store.outbox import NewItem
from shoprelay.store.schema import metadata


async def test_the_migrations_create_every_table_and_index_as_declared(store: Store) -> None:
    def differences(connection: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(connection), metadata))

    async with store.engine.connect() as conn:
        assert await conn.run_sync(differences) == []


async def test_a_claim_reads_the_oldest_ready_items_in_index_order(store: Store) -> None:
    """With a backlog, picking a claim's items must not read and sort the whole backlog."""
    backlog = [
        NewItem(kind="event", dedup_key=f"k{n}", body={"n": n}, source="shopify")
        for n in range(3_000)
    ]
    async with store.transaction() as conn:
        await outbox.enqueue(store, conn, backlog, now=100.0)
    query = outbox.ready_query(account="default", kind="event", now=200.0, limit=10)
    compiled = query.compile(dialect=store.engine.dialect, compile_kwargs={"literal_binds": True})
    async with store.read() as conn:
        taken = (await conn.execute(query)).scalars().all()
        if store.dialect.name == "sqlite":
            plan = " ".join(
                str(row[-1]) for row in await conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))
            )
            assert "ix_outbox_ready" in plan
            assert "TEMP B-TREE" not in plan  # no sort of its own
        else:
            explain = f"EXPLAIN (ANALYZE, FORMAT JSON) {compiled}"
            document = (await conn.execute(text(explain))).scalar()
            plan = json.loads(document) if isinstance(document, str) else document
            rows_read = max(_actual_rows(plan[0]["Plan"], "outbox"))
            assert rows_read <= 10, f"read {rows_read} rows of the backlog for 10"
    assert len(taken) == 10
    assert list(taken) == sorted(taken)


def _actual_rows(node: dict[str, object], table: str) -> list[int]:
    """Actual rows of every scan of `table` in a JSON plan."""
    found = []
    if node.get("Relation Name") == table:
        found.append(int(str(node["Actual Rows"])))
    for child in node.get("Plans", []):  # type: ignore[attr-defined]
        found.extend(_actual_rows(child, table))
    return found
