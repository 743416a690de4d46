"""The ingest writer: which lanes a commit wakes, and commits after the database drops us."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import asyncpg
import pytest
from sqlalchemy import Engine, event, func, make_url, select
from tests.conftest import PG_ADMIN_DSN

from shoprelay.mapping.shopify_fields import ShopifyMetrics
from shoprelay.sim.shopify import encode, headers
from shoprelay.sim.shopify_orders import fake_order
from shoprelay.sim.shopify_payloads import START, fake_customer
from shoprelay.sources.shopify.receive import Receiver
from shoprelay.sources.shopify.topics import SOURCE
from shoprelay.store.database import Store
from shoprelay.store.ingest import IngestWriter, WebhookDelivery, WebhookOutcome
from shoprelay.store.outbox import NewItem
from shoprelay.store.plans import Plan
from shoprelay.store.schema import dead_letters, outbox, resource_state, webhook_receipts

SECRET = b"lanes-secret"
SHOP = "lanes.myshopify.com"


def delivery(receiver: Receiver, topic: str, payload: dict[str, object]) -> WebhookDelivery:
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


def new_orders(writer: IngestWriter, *, seed: int, count: int) -> list[WebhookDelivery]:
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


async def commit_capturing(
    writer: IngestWriter, deliveries: list[WebhookDelivery]
) -> tuple[list[WebhookOutcome], list[tuple[str, bool]]]:
    """Commit one group; its outcomes, and every statement sent meanwhile (whitespace folded,
    and whether it was an executemany)."""
    statements: list[tuple[str, bool]] = []

    def record(_c: object, _cur: object, sql: str, _p: object, _ctx: object, many: bool) -> None:
        statements.append((" ".join(sql.split()), many))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        outcomes = await writer.commit(deliveries)
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    assert {o.outcome for o in outcomes} == {"processed"}
    return outcomes, statements


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_sqlite_group_commit_runs_a_few_inserts_per_table(store: Store) -> None:
    """Never a step per row: an executemany or a RETURNING steps once per row, and each step
    waits to retake the GIL from a busy event loop while SQLite's write lock is held. A table's
    rows take a few statements of fixed sizes, which the connection keeps prepared."""
    writer = IngestWriter(store)
    _, statements = await commit_capturing(writer, new_orders(writer, seed=6, count=60))
    inserts = [sql for sql, many in statements if sql.startswith("INSERT")]
    per_table = Counter(sql.split()[2] for sql in inserts)
    assert set(per_table) == {
        "customer_identifiers",
        "outbox",
        "resource_state",
        "webhook_receipts",
    }
    assert per_table["webhook_receipts"] == 3  # 60 rows: 32 + 16 + 12
    assert max(per_table.values()) <= 4
    assert not any(many for _, many in statements)
    assert not any("RETURNING" in sql for sql in inserts)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_postgresql_group_commit_is_one_lookup_and_one_write(store: Store) -> None:
    """Whatever the group's size: the write is one statement, atomic on its own, where a
    statement per table took four beside the lookup."""
    writer = IngestWriter(store)
    _, statements = await commit_capturing(writer, new_orders(writer, seed=8, count=60))
    assert len(statements) == 2
    lookup, write = (sql for sql, _ in statements)
    assert lookup.startswith("SELECT")
    assert "resource_state" in lookup
    assert write.startswith("WITH fresh AS ( INSERT INTO webhook_receipts")


async def test_a_failed_group_writes_nothing_and_only_the_bad_delivery_fails(
    store: Store,
) -> None:
    """One delivery whose item the database refuses: no receipt, item or state of the group is
    left half written, and after the retry one by one the others are all committed."""
    writer = IngestWriter(store)
    good = new_orders(writer, seed=9, count=3)
    broken_item = NewItem("event", "event:broken", {"n": 1}, "shopify", account=None)  # type: ignore[arg-type]
    broken = WebhookDelivery(
        SOURCE, SHOP, "broken-1", "orders/create", Plan("processed", [broken_item]), b"{}"
    )
    with pytest.raises(Exception):  # noqa: B017, PT011 - the driver's own error for NOT NULL
        await writer.commit([*good, broken])
    async with store.read() as conn:
        for table in (webhook_receipts, outbox, resource_state):
            assert (await conn.execute(select(func.count()).select_from(table))).scalar() == 0
    await writer.start()
    try:
        outcomes = await asyncio.gather(
            *(writer.submit(d) for d in [*good, broken]), return_exceptions=True
        )
    finally:
        await writer.stop()
    assert [getattr(o, "outcome", "failed") for o in outcomes] == ["processed"] * 3 + ["failed"]
    async with store.read() as conn:
        receipts = (await conn.execute(select(webhook_receipts.c.webhook_id))).scalars().all()
    assert sorted(receipts) == sorted(d.webhook_id for d in good)


async def test_in_one_group_the_newest_version_is_stored_and_a_refund_finds_its_order(
    store: Store,
) -> None:
    """Deliveries of one order in one group: the state keeps the newest version whatever the
    order they came in, and a refund behind its order in the group is mapped, not kept."""
    writer = IngestWriter(store)
    receiver = Receiver(writer, [SECRET], ShopifyMetrics())
    rng = random.Random(10)
    placed = fake_order(rng, fake_customer(rng), at=START, number=7)
    newer = placed | {"updated_at": "2026-08-01T10:00:00-04:00", "note": "gift"}
    refund = {
        "id": 991,
        "order_id": placed["id"],
        "created_at": "2026-08-01T11:00:00-04:00",
        "transactions": [
            {"kind": "refund", "status": "success", "amount": "5.00", "currency": "USD"}
        ],
    }
    group = [
        delivery(receiver, "orders/updated", newer),
        delivery(receiver, "orders/create", placed),
        delivery(receiver, "refunds/create", refund),
        delivery(receiver, "orders/create", {"id": 5, "created_at": "not a time"}),
    ]
    outcomes = await writer.commit(group)
    assert [o.outcome for o in outcomes] == ["processed", "stale", "processed", "unprocessable"]
    async with store.read() as conn:
        versions = (
            await conn.execute(
                select(resource_state.c.kind, resource_state.c.version).order_by(
                    resource_state.c.kind
                )
            )
        ).all()
        letters = (await conn.execute(select(dead_letters.c.topic, dead_letters.c.payload))).all()
    assert versions == [
        ("order", "2026-08-01T14:00:00.000000Z"),
        ("refund", "0000-00-00T00:00:00.000000Z"),
    ]
    assert [(topic, bytes(payload)) for topic, payload in letters] == [
        ("orders/create", group[3].raw_body)
    ]


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
