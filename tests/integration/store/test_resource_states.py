"""Stored resource versions: looked up by key, without reading the rest of the shop."""

from __future__ import annotations

from sqlalchemy import text

from shoprelay.store.database import Store
from shoprelay.store.schema import resource_state
from shoprelay.store.states import get_states, newer_state_upsert, state_keys, states_query

SHOP = "bench.myshopify.com"


def state_row(kind: str, n: int) -> dict[str, object]:
    return {
        "source": "shopify",
        "scope": SHOP,
        "kind": kind,
        "resource_id": str(n),
        "version": f"2026-01-01T00:00:{n % 60:02d}Z",
        "state": None,
        "updated_at": 0.0,
    }


async def test_states_are_found_by_kind_and_id(store: Store) -> None:
    rows = [state_row(kind, n) for kind in ("order", "customer") for n in range(500)]
    async with store.transaction() as conn:
        await conn.execute(newer_state_upsert(store), rows)
    async with store.read() as conn:
        orders = await get_states(conn, "shopify", SHOP, "order", ["7", "499", "500"])
        customers = await get_states(conn, "shopify", SHOP, "customer", ["7"])
        elsewhere = await get_states(conn, "shopify", "other.myshopify.com", "order", ["7"])
    assert sorted(orders) == ["499", "7"]
    assert orders["499"].version == "2026-01-01T00:00:19Z"
    assert list(customers) == ["7"]
    assert elsewhere == {}


async def test_states_are_looked_up_through_the_whole_key(store: Store) -> None:
    """A lookup that used only the key's prefix would read every resource of the shop.

    PostgreSQL has not analysed the new rows here, as between autovacuum runs (or without
    autovacuum): the plan must not depend on its statistics.
    """
    rows = [state_row("order", n) for n in range(2_000)]
    async with store.transaction() as conn:
        await conn.execute(newer_state_upsert(store), rows)
    keys = state_keys("shopify", SHOP, "order", ["1", "1999"])
    query = states_query(store.dialect)
    compiled = query.params(keys).compile(
        dialect=store.engine.dialect, compile_kwargs={"literal_binds": True}
    )
    explain = "EXPLAIN QUERY PLAN" if store.dialect.name == "sqlite" else "EXPLAIN ANALYZE"
    async with store.read() as conn:
        plan = " ".join(str(row[-1]) for row in (await conn.execute(text(f"{explain} {compiled}"))))
        found = (await conn.execute(query, keys)).all()
    assert sorted(row.resource_id for row in found) == ["1", "1999"]
    if store.dialect.name == "sqlite":
        assert f"{resource_state.name} USING" in plan
        assert "resource_id=?" in plan
    else:
        assert "Index Cond" in plan
        assert "Rows Removed by Filter" not in plan
