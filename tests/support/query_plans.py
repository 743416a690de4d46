"""What a query's plan does, on each backend: SQLite's plan text, PostgreSQL's rows read."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from shoprelay.store.database import Store


async def sqlite_plan(store: Store, conn: AsyncConnection, query: Select[Any]) -> str:
    """SQLite's EXPLAIN QUERY PLAN, its steps joined into one line."""
    rows = await conn.execute(text(f"EXPLAIN QUERY PLAN {_literal(store, query)}"))
    return " ".join(str(row[-1]) for row in rows)


async def table_rows_read(
    store: Store, conn: AsyncConnection, query: Select[Any], table: str
) -> int:
    """Rows of `table` PostgreSQL read to run the query, kept or filtered out."""
    explain = f"EXPLAIN (ANALYZE, FORMAT JSON) {_literal(store, query)}"
    document = (await conn.execute(text(explain))).scalar()
    plan = json.loads(document) if isinstance(document, str) else document
    return _rows_read(plan[0]["Plan"], table)


def _literal(store: Store, query: Select[Any]) -> str:
    return str(query.compile(dialect=store.engine.dialect, compile_kwargs={"literal_binds": True}))


def _rows_read(node: dict[str, Any], table: str) -> int:
    read = 0
    if node.get("Relation Name") == table:
        read += int(node["Actual Rows"]) * int(node["Actual Loops"])
        for removed in ("Rows Removed by Filter", "Rows Removed by Index Recheck"):
            read += int(node.get(removed, 0))
    for child in node.get("Plans", []):
        read += _rows_read(child, table)
    return read
