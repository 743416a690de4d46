"""Chaos on PostgreSQL with `serve --workers 2`: orders and concurrent customer updates stream
in while database backends are terminated every second, Klaviyo answers 5xx and 429 now and
then, and a receiver and then the delivery process are killed with -9. Afterwards every
acknowledged webhook is in Klaviyo exactly once, every customer has their newest version,
and /readyz is 200.

`CHAOS_ORDERS` and `CHAOS_CUSTOMERS` make it longer; the defaults keep it under a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url
from tests.scenarios.test_kill9 import (
    SHOP,
    admin_url,
    child_pids,
    expected_events,
    orders,
    output,
    recorded,
    serve_process,
)
from tests.scenarios.test_profile_order_race import versions
from tests.support.harness import WEBHOOK_SECRET, eventually, free_port, klaviyo_sim

from shoprelay.sim import shopify as sender
from shoprelay.sim.klaviyo_config import KlaviyoSimConfig

ORDERS = int(os.environ.get("CHAOS_ORDERS", "300"))
CUSTOMERS = int(os.environ.get("CHAOS_CUSTOMERS", "100"))
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass
class Shopify:
    """Sends each webhook until it is acknowledged with a 200, as Shopify retries."""

    port: int
    acked: set[str] = field(default_factory=set)
    refused: int = 0  # answers other than 200, and connections that failed

    async def deliver(self, topic: str, webhook_id: str, payload: dict[str, Any]) -> None:
        body = sender.encode(payload)
        headers = sender.headers(topic, body, WEBHOOK_SECRET.encode(), SHOP, webhook_id)
        url = f"http://127.0.0.1:{self.port}/webhooks/shopify"
        async with httpx.AsyncClient(timeout=30) as client:
            while True:
                try:
                    response = await client.post(url, content=body, headers=headers)
                except httpx.TransportError:
                    response = None
                if response is not None and response.status_code == 200:
                    self.acked.add(webhook_id)
                    return
                self.refused += 1
                await asyncio.sleep(0.3)


@contextlib.asynccontextmanager
async def terminating_backends(database: str, quiet: asyncio.Event) -> AsyncIterator[list[int]]:
    """Terminate every backend of `database` once a second, except while `quiet` is set."""
    terminated: list[int] = []

    async def loop() -> None:
        admin = await asyncpg.connect(PG_ADMIN)
        try:
            while True:
                await asyncio.sleep(1)
                if quiet.is_set():
                    continue
                killed = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = $1 AND pid <> pg_backend_pid()",
                    database,
                )
                terminated.append(int(killed))
        finally:
            await admin.close()

    task = asyncio.create_task(loop())
    try:
        yield terminated
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def outbox_settled(database: str) -> bool:
    admin = await asyncpg.connect(PG_ADMIN.rsplit("/", 1)[0] + f"/{database}")
    try:
        unsettled = await admin.fetchval(
            "SELECT count(*) FROM outbox WHERE status IN ('pending', 'in_flight')"
        )
    finally:
        await admin.close()
    return int(unsettled) == 0


async def test_chaos_loses_nothing_doubles_nothing_and_keeps_the_newest(
    database_url: str,
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("backends are terminated on PostgreSQL")
    database = str(make_url(database_url).database)
    payloads = list(orders(ORDERS))
    rng = random.Random(15)
    customers = [versions(rng, index) for index in range(CUSTOMERS)]
    port = free_port()
    shopify = Shopify(port)
    quiet = asyncio.Event()
    faults = KlaviyoSimConfig(rate_503=0.05, rate_429=0.05)

    async def stream() -> None:
        gate = asyncio.Semaphore(24)

        async def one(topic: str, webhook_id: str, payload: dict[str, Any]) -> None:
            async with gate:
                await shopify.deliver(topic, webhook_id, payload)

        async def pair(index: int, newer: dict[str, Any], older: dict[str, Any]) -> None:
            # The older version a few milliseconds behind the newer, on its own connection.
            async def late() -> None:
                await asyncio.sleep(0.003)
                await one("customers/update", f"old-{index}", older)

            await asyncio.gather(one("customers/update", f"new-{index}", newer), late())

        await asyncio.gather(
            *(one("orders/create", f"order-{i}", p) for i, p in enumerate(payloads)),
            *(pair(i, newer, older) for i, (newer, older) in enumerate(customers)),
        )

    async with klaviyo_sim(faults) as sim, terminating_backends(database, quiet) as terminated:
        sending: asyncio.Task[None] | None = None
        # Killed with -9: a receiver, then the delivery process (forked last). Each death
        # stops `serve`, and it is started again, as a process manager does.
        for victim, after_events in ((min, 50), (max, 150), (None, 0)):
            quiet.set()  # start-up migrates and forks; the chaos is for what runs
            async with serve_process(database_url, sim.url, port, workers=2) as server:
                quiet.clear()
                sending = sending or asyncio.create_task(stream())
                if victim is None:
                    await asyncio.wait_for(sending, timeout=180)
                    await eventually(lambda: outbox_settled(database), timeout=180, interval=0.5)
                    quiet.set()
                    async with httpx.AsyncClient() as client:
                        ready = await client.get(f"{admin_url(port)}/readyz")
                    assert ready.status_code == 200, (ready.text, output(server))
                    continue
                await eventually(lambda n=after_events: len(sim.sim.events) > n, timeout=60)
                await eventually(lambda: len(child_pids(server.pid)) == 3, timeout=10)
                os.kill(victim(child_pids(server.pid)), signal.SIGKILL)
                await asyncio.to_thread(server.wait, 30)

    # The figures for a person running it with -s.
    print(
        f"chaos: {len(shopify.acked)} webhooks acknowledged, {shopify.refused} refused or cut "
        f"off and sent again, {sum(terminated)} backends terminated, "
        f"{sum(sim.sim.faults_injected.values())} Klaviyo faults, {len(sim.sim.events)} events"
    )
    assert sum(terminated) > 0, "no backend was terminated: the chaos did not happen"
    assert shopify.refused > 0, "every webhook got a 200 at once: nothing was killed mid-stream"
    assert len(shopify.acked) == ORDERS + 2 * CUSTOMERS
    expected = expected_events(payloads)
    assert recorded(sim) == expected
    assert len(sim.sim.events) == len(expected), "an event reached Klaviyo twice"
    # The updated customers' profiles, told from the orders' buyers by their first names.
    names = [
        name
        for profile in sim.sim.all_profiles()
        if (name := str(profile.attributes.get("first_name"))).startswith(("Newer", "Older"))
    ]
    assert len(names) == CUSTOMERS
    stale = sorted(name for name in names if not name.startswith("Newer"))
    assert stale == [], f"{len(stale)} customers ended with an older version"
