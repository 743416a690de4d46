"""A Klaviyo simulator on a socket, a client and a dispatcher over one store, for delivery tests."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from shoprelay.delivery.dispatcher import DeliveryConfig, Dispatcher
from shoprelay.delivery.klaviyo import KlaviyoClient
from shoprelay.delivery.ratelimit import EndpointLimit
from shoprelay.sim.klaviyo import KlaviyoSim, KlaviyoSimConfig, create_app
from shoprelay.store import outbox
from shoprelay.store.database import Store
from shoprelay.store.outbox import NewItem
from shoprelay.web.serving import serving

KEY = "pk_sim_demo"
REVISION = "2026-07-15"
FAST = DeliveryConfig(
    max_attempts=50,
    backoff_base_seconds=0.05,
    backoff_cap_seconds=0.5,
    lease_seconds=20.0,
    auth_probe_seconds=0.3,
    poll_seconds=0.1,
    job_poll_seconds=0.05,
    stop_grace_seconds=2.0,
)


# Bulk limits of a window short enough to stream through in a test: a steady spacing of 1 s.
STREAM_BULK_LIMIT = EndpointLimit(burst=10, steady=10, steady_seconds=10.0)
# Batches of 500 a stream never fills, so that every batch it sends is partial.
STREAM = dataclasses.replace(
    FAST,
    bulk_batch_size=500,
    bulk_threshold=5,
    limits=dict(FAST.limits) | {"bulk_create_events": STREAM_BULK_LIMIT},
)


def event_body(n: int, email: str | None = None, metric: str = "Placed Order") -> dict[str, Any]:
    """Event attributes as mapping stores them: profile and metric inline, a unique_id."""
    return {
        "metric": {"data": {"type": "metric", "attributes": {"name": metric}}},
        "profile": {
            "data": {"type": "profile", "attributes": {"email": email or f"c{n}@example.com"}}
        },
        "properties": {"OrderId": str(n)},
        "time": "2026-01-02T10:00:00Z",
        "value": 10.5,
        "unique_id": f"order:{n}",
    }


def event_item(n: int, body: dict[str, Any] | None = None, account: str = "default") -> NewItem:
    return NewItem("event", f"event:{n}", body or event_body(n), "test", account)


def profile_item(n: int, body: dict[str, Any] | None = None) -> NewItem:
    attributes = body or {"email": f"c{n}@example.com", "first_name": f"C{n}"}
    return NewItem("profile", f"profile:{n}", attributes, "test")


async def enqueue(store: Store, items: Sequence[NewItem]) -> None:
    async with store.transaction() as conn:
        await outbox.enqueue(store, conn, items, time.time())


@dataclass
class Harness:
    """What a delivery test sees: the account it delivers to, and the running dispatcher."""

    sim: KlaviyoSim
    base_url: str
    dispatcher: Dispatcher
    client: KlaviyoClient

    async def counts(self) -> dict[str, int]:
        async with self.dispatcher.store.read() as conn:
            return await outbox.counts(conn)

    async def settled(self, within: float = 60.0) -> dict[str, int]:
        """Wait until nothing is pending or in flight; the counts by status."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            found = await self.counts()
            if found["pending"] == 0 and found["in_flight"] == 0:
                return found
            await asyncio.sleep(0.1)
        raise AssertionError(f"delivery did not settle: {await self.counts()}")


@contextlib.asynccontextmanager
async def running(
    store: Store,
    sim_config: KlaviyoSimConfig | None = None,
    config: DeliveryConfig = FAST,
    *,
    # Long: a spurious timeout on a loaded machine would add a retry the counts do not expect.
    timeout_seconds: float = 30.0,
) -> AsyncIterator[Harness]:
    """Serve the simulator, run a dispatcher against it, and stop both at the end."""
    app = create_app(sim_config or KlaviyoSimConfig())
    async with serving(app) as base_url:
        client = KlaviyoClient(base_url, SecretStr(KEY), REVISION, timeout_seconds=timeout_seconds)
        dispatcher = Dispatcher(store, client, config, owner="test-worker")
        stop = asyncio.Event()
        task = asyncio.create_task(dispatcher.run(stop))
        try:
            yield Harness(app.state.sim, base_url, dispatcher, client)
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=15)
            await client.close()


def recorded_keys(sim: KlaviyoSim) -> list[tuple[str, str | None]]:
    """(metric, unique_id) of every event the account recorded."""
    return [(event.metric, event.unique_id) for event in sim.events]
