"""Helpers for ShipStation tests: the account under test, the queued events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import select

from shoprelay.sim.shipstation import ShipStationSim, ShipStationSimConfig, SimClock
from shoprelay.sources.shipstation.client import ShipStationClient, ShipStationRetry
from shoprelay.sources.shipstation.session import SyncReport
from shoprelay.store.database import Store
from shoprelay.store.schema import outbox

# A quiet Tuesday in spring, well away from a daylight-saving change.
START = datetime(2025, 4, 15, 17, 0, tzinfo=UTC)
# The same 40 requests per window as ShipStation, in a 1-second window so tests stay fast.
TEST_LIMIT = ShipStationSimConfig(rate_limit=40, window_seconds=1.0)


@dataclass
class Account:
    """A running simulator and what a test needs to sync against it."""

    sim: ShipStationSim
    url: str
    clock: SimClock

    def client(self, *, key: str | None = None, secret: str | None = None) -> ShipStationClient:
        return ShipStationClient(
            self.url,
            key or self.sim.config.api_key,
            secret or self.sim.config.api_secret,
            reset_padding=0.05,
            retry=ShipStationRetry(attempts=4, backoff_base=0.05, backoff_cap=0.2),
        )


SyncOnce = Callable[..., Awaitable[SyncReport]]


async def queued_events(store: Store) -> list[dict[str, Any]]:
    """The bodies of every ShipStation event in the outbox, oldest first."""
    query = (
        select(outbox.c.body)
        .where(outbox.c.source == "shipstation", outbox.c.kind == "event")
        .order_by(outbox.c.id)
    )
    async with store.read() as conn:
        return [orjson.loads(body) for body in (await conn.execute(query)).scalars()]


def by_order(events: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Metric names queued per order id, in order."""
    found: dict[str, list[str]] = {}
    for event in events:
        order_id = event["properties"]["OrderId"]
        found.setdefault(order_id, []).append(event["metric"]["data"]["attributes"]["name"])
    return found
