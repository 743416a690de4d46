"""/readyz tells the database and delivery as they are now, over a real socket."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.exc import OperationalError
from tests.support.harness import (
    RunningService,
    eventually,
)

from shoprelay.store import outbox


async def readyz(relay: RunningService) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(f"{relay.admin_url}/readyz")


async def test_readiness_reports_a_delivery_lane_that_keeps_failing(
    relay: RunningService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lane whose claims fail round after round is reported by /readyz, which stays 200:
    the receiver still stores webhooks. Once the claims work, the report clears by itself."""
    from tests.integration.delivery.harness import enqueue, event_item

    async def unreachable(*_: Any, **__: Any) -> list[outbox.Item]:
        raise OperationalError("SELECT", {}, ConnectionError("server closed"))

    assert (await readyz(relay)).status_code == 200
    real_claim = outbox.claim
    monkeypatch.setattr(outbox, "claim", unreachable)
    await enqueue(relay.store, [event_item(1)])
    relay.service.dispatcher.wake()

    async def failing() -> httpx.Response | None:
        response = await readyz(relay)
        return response if response.json()["delivery"]["lanes_failing"] else None

    response = await eventually(failing, timeout=20)
    assert response.status_code == 200
    assert response.json()["delivery"]["lanes_failing"] == 1
    assert "delivery failing in 1 lane" in response.json()["detail"]
    monkeypatch.setattr(outbox, "claim", real_claim)

    async def recovered() -> bool:
        return (await readyz(relay)).json()["delivery"]["lanes_failing"] == 0

    await eventually(recovered, timeout=40)


async def test_readiness_reports_the_database_as_it_is_after_backends_were_killed(
    relay: RunningService,
) -> None:
    """Pooled connections whose PostgreSQL backends were terminated fail once and are
    replaced: /readyz answers for the database as it is now, not for a dead connection."""
    if relay.store.backend != "postgresql":
        pytest.skip("terminating backends is PostgreSQL's")
    assert (await readyz(relay)).status_code == 200
    database = relay.store.engine.url.database
    admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
    finally:
        await admin.close()
    assert killed >= 1
    response = await readyz(relay)
    assert response.status_code == 200, response.json()
