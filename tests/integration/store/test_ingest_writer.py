"""The ingest writer: which lanes a commit wakes, and commits after the database drops us."""

from __future__ import annotations

import asyncio
import random

import asyncpg
import pytest
from sqlalchemy import Engine, event, func, make_url, select
from tests.conftest import PG_ADMIN_DSN

from shoprelay.mapping.shopify_fields import ShopifyMetrics
from shoprelay.sim.shopify import encode, headers
from shoprelay.sim.shopify_orders import fake_order
from shoprelay.sim.shopify_payloads import START, fake_customer
from shoprelay.sources.shopify.ingest import Delivery, IngestWriter
from shoprelay.sources.shopify.receive import Receiver
from shoprelay.store.database import Store
from shoprelay.store.schema import outbox, webhook_receipts

SECRET = b"lanes-secret"
SHOP = "lanes.myshopify.com"


def delivery(receiver: Receiver, topic: str, payload: dict[str, object]) -> Delivery:
    body = encode(payload)
    signed = {name.lower(): value for name, value in headers(topic, body, SECRET, SHOP).items()}
    prepared = receiver.prepare(signed, body)
    assert prepared is not None
    return prepared


async def test_each_commit_reports_the_lanes_its_items_joined(store: Store) -> None:
    woken: list[frozenset[tuple[str, str]]] = []
    writer = IngestWriter(store, on_commit=woken.append)
    receiver = Receiver(writer, [SECRET], ShopifyMetrics())
    rng = random.Random(3)
    customer = fake_customer(rng)
    order = delivery(receiver, "orders/create", fake_order(rng, customer, at=START, number=1))
    await writer.start()
    try:
        assert (await writer.submit(order)).lanes == {("default", "event")}
        await writer.submit(delivery(receiver, "customers/create", customer))
        duplicate = await writer.submit(order)
        await writer.submit(delivery(receiver, "app/uninstalled", {"id": 1}))
    finally:
        await writer.stop()
    assert woken == [{("default", "event")}, {("default", "profile")}]
    assert duplicate.outcome == "duplicate"
    assert duplicate.lanes == frozenset()


def new_orders(writer: IngestWriter, *, seed: int, count: int) -> list[Delivery]:
    """`count` verified orders/create deliveries, each of its own customer."""
    receiver, rng = Receiver(writer, [SECRET], ShopifyMetrics()), random.Random(seed)
    return [
        delivery(receiver, "orders/create", fake_order(rng, fake_customer(rng), at=START, number=n))
        for n in range(count)
    ]


async def test_a_group_with_duplicates_commits_each_delivery_once(store: Store) -> None:
    """Within a group and against earlier groups: one receipt, one set of items each."""
    writer = IngestWriter(store)
    orders = new_orders(writer, seed=5, count=40)
    first = await writer.commit([*orders[:30], orders[3]])
    second = await writer.commit(orders[20:])
    assert [o.outcome for o in first] == ["processed"] * 30 + ["duplicate"]
    assert [o.outcome for o in second] == ["duplicate"] * 10 + ["processed"] * 10
    async with store.read() as conn:
        receipts = (await conn.execute(select(func.count()).select_from(webhook_receipts))).scalar()
        items = (await conn.execute(select(func.count()).select_from(outbox))).scalar()
    assert receipts == 40
    assert items == sum(o.items for o in first + second)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_sqlite_group_commit_runs_one_insert_per_table(store: Store) -> None:
    """Whatever the group's size. An executemany or a RETURNING steps once per row, and each
    step waits to retake the GIL from a busy event loop while SQLite's write lock is held."""
    writer = IngestWriter(store)
    orders = new_orders(writer, seed=6, count=60)
    statements: list[tuple[str, bool]] = []

    def record(
        _conn: object, _cursor: object, sql: str, _p: object, _c: object, many: bool
    ) -> None:
        statements.append((" ".join(sql.split()), many))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        outcomes = await writer.commit(orders)
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    assert {o.outcome for o in outcomes} == {"processed"}
    inserts = [sql for sql, _ in statements if sql.startswith("INSERT")]
    assert sorted(sql.split()[2] for sql in inserts) == [
        "outbox",
        "resource_state",
        "webhook_receipts",
    ]
    assert not any(many for _, many in statements)
    assert not any("RETURNING" in sql for sql in inserts)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_webhooks_still_commit_after_postgresql_drops_every_connection(
    store: Store, database_url: str
) -> None:
    """No pre-ping: the first statement on a dead connection fails, the retry reconnects."""
    writer = IngestWriter(store)
    receiver = Receiver(writer, [SECRET], ShopifyMetrics())
    rng = random.Random(5)
    customer = fake_customer(rng)
    orders = [
        delivery(receiver, "orders/create", fake_order(rng, customer, at=START, number=n))
        for n in (1, 2, 3)
    ]
    await writer.start()
    try:
        assert (await writer.submit(orders[0])).outcome == "processed"
        # As after a restart of PostgreSQL: every pooled connection is gone.
        admin = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                make_url(database_url).database,
            )
        finally:
            await admin.close()
        later = await asyncio.gather(*(writer.submit(order) for order in orders[1:]))
    finally:
        await writer.stop()
    assert [outcome.outcome for outcome in later] == ["processed", "processed"]
    async with store.read() as conn:
        receipts = (await conn.execute(select(func.count()).select_from(webhook_receipts))).scalar()
    assert receipts == 3
