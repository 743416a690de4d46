"""The account's sync lease: renewed while labels load, checked by every writing transaction."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from tests.integration.shipstation.harness import Account, by_order, queued_events

from shoprelay.sources.shipstation.poll import run_sync
from shoprelay.sources.shipstation.session import LeaseLost, SyncOptions, SyncReport
from shoprelay.store.database import Store
from shoprelay.store.leases import try_lease
from shoprelay.store.schema import leases
from shoprelay.store.states import get_states, put_newer_state

LEASE = "shipstation:default"
AfterPage = Callable[[str, Mapping[str, str | int]], Awaitable[None]]


async def sync_with(
    store: Store, account: Account, options: SyncOptions, after_page: AfterPage
) -> SyncReport:
    """One sync whose client runs `after_page` once each response has arrived."""
    async with account.client() as client:
        fetch = client.page

        async def page(path: str, params: Mapping[str, str | int]) -> dict[str, Any]:
            envelope = await fetch(path, params)
            await after_page(path, params)
            return envelope

        client.page = page  # type: ignore[method-assign]
        return await run_sync(store, client, options, clock=account.clock.now)


async def expire_lease(store: Store) -> None:
    """As if the sync had waited longer than the lease's ttl since it last renewed it."""
    async with store.transaction() as conn:
        await conn.execute(update(leases).where(leases.c.name == LEASE).values(expires_at=0))


async def test_label_loading_renews_the_lease(store: Store, account: Account) -> None:
    """A lease run out during the first /shipments page is renewed before the next one."""
    now = account.clock.now()
    for order in account.sim.create_orders(600, start=now - timedelta(days=30), end=now):
        account.sim.ship_label(order["orderId"], now - timedelta(hours=1))
    taken_by_other: list[bool] = []

    async def after_page(path: str, params: Mapping[str, str | int]) -> None:
        if path == "/shipments" and params["page"] == 1:
            await expire_lease(store)
        elif path == "/shipments" and params["page"] == 2:
            taken = await try_lease(store, LEASE, "other", now=time.time(), ttl=60)
            taken_by_other.append(taken)

    await sync_with(store, account, SyncOptions(), after_page)
    assert taken_by_other == [False]
    assert len(await queued_events(store)) == 600


async def test_sync_that_lost_its_lease_writes_nothing_more(store: Store, account: Account) -> None:
    """Once another process has taken the lease, the next page is not recorded."""
    now = account.clock.now()
    account.sim.create_orders(300, start=now - timedelta(days=30), end=now)
    options = SyncOptions(page_size=100)

    async def after_page(path: str, params: Mapping[str, str | int]) -> None:
        if path == "/orders" and params["page"] == 2:
            later = time.time() + options.lease_ttl + 1
            assert await try_lease(store, LEASE, "other", now=later, ttl=options.lease_ttl)

    with pytest.raises(LeaseLost):
        await sync_with(store, account, options, after_page)
    assert len(await queued_events(store)) == 100


async def test_older_copy_of_an_order_changes_nothing(store: Store, account: Account) -> None:
    """An order read older than its recorded version queues nothing and keeps the newer state."""
    order = account.sim.create_order(at=account.clock.now() - timedelta(days=1))
    other = account.sim.create_order(at=account.clock.now() - timedelta(days=1))
    newer = {"status": "cancelled", "metric": "Order Cancelled"}
    order_id = str(order["orderId"])
    async with store.transaction() as conn:
        await put_newer_state(
            store,
            conn,
            source="shipstation",
            scope="default",
            kind="order",
            resource_id=order_id,
            version="2099-01-01T00:00:00.000000Z",
            state=newer,
            now=time.time(),
        )

    async def nothing(path: str, params: Mapping[str, str | int]) -> None:
        return None

    await sync_with(store, account, SyncOptions(), nothing)
    assert by_order(await queued_events(store)) == {
        str(other["orderId"]): ["Order Awaiting Shipment"]
    }
    async with store.read() as conn:
        states = await get_states(conn, "shipstation", "default", "order", [order_id])
    assert states[order_id].state == newer


async def test_state_write_never_replaces_a_newer_version(store: Store) -> None:
    """put_newer_state keeps a stored version newer than the one written, and takes a newer one."""
    key = {"source": "shipstation", "scope": "default", "kind": "order", "resource_id": "7"}
    for version, status in (("2025-02", "shipped"), ("2025-01", "on_hold"), ("2025-03", "x")):
        async with store.transaction() as conn:
            await put_newer_state(
                store, conn, **key, version=version, state={"status": status}, now=time.time()
            )
        async with store.read() as conn:
            stored = (await get_states(conn, "shipstation", "default", "order", ["7"]))["7"]
        assert stored.state["status"] == ("shipped" if status == "on_hold" else status)
