"""Shopify webhooks over real sockets: shoprelay serve + the Klaviyo simulator, both dialects."""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.harness import (
    WEBHOOK_SECRET,
    KlaviyoSimServer,
    RunningService,
    drained,
    eventually,
    klaviyo_sim,
    post_webhook,
    service_settings,
    shoprelay_service,
)

from shoprelay.sim import shopify as sender
from shoprelay.store import deadletters
from shoprelay.web.webhooks import WEBHOOK_PATH, shopify_endpoint

SHOP = "demo-shop.myshopify.com"
SAMPLES = Path(__file__).parents[1] / "fixtures" / "shopify"


def sample(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((SAMPLES / name).read_text())
    return payload


@pytest.fixture
async def sim() -> AsyncIterator[KlaviyoSimServer]:
    async with klaviyo_sim() as server:
        yield server


@pytest.fixture
async def relay(database_url: str, sim: KlaviyoSimServer) -> AsyncIterator[RunningService]:
    async with shoprelay_service(service_settings(database_url, sim.url)) as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as http:
        yield http


async def send(
    client: httpx.AsyncClient,
    relay: RunningService,
    topic: str,
    payload: dict[str, Any],
    webhook_id: str | None = None,
) -> httpx.Response:
    body = sender.encode(payload)
    headers = sender.headers(topic, body, WEBHOOK_SECRET.encode(), SHOP, webhook_id)
    return await post_webhook(client, relay.url, body, headers)


def metrics_by_unique_id(sim: KlaviyoSimServer) -> Counter[tuple[str, str | None]]:
    return Counter((event.metric, event.unique_id) for event in sim.sim.events)


async def test_order_topics_produce_the_order_events_once(
    relay: RunningService, sim: KlaviyoSimServer, client: httpx.AsyncClient
) -> None:
    """A create, its redelivery and an update yield Placed Order once, Ordered Product per line."""
    order = sample("orders-create.json")
    order["cancelled_at"] = None  # the docs sample is cancelled; start from a live order
    first = await send(client, relay, "orders/create", order, "wh-1")
    again = await send(client, relay, "orders/create", order, "wh-1")
    updated = await send(client, relay, "orders/updated", order, "wh-2")
    assert [r.status_code for r in (first, again, updated)] == [200, 200, 200]
    assert again.json()["outcome"] == "duplicate"
    await eventually(lambda: drained(relay.service))
    seen = metrics_by_unique_id(sim)
    assert seen[("Placed Order", f"shopify:{SHOP}:order:{order['id']}")] == 1
    lines = [key for key in seen if key[0] == "Ordered Product"]
    assert len(lines) == len(order["line_items"])
    assert all(count == 1 for count in seen.values())
    assert "Cancelled Order" not in {metric for metric, _ in seen}


async def test_every_topic_maps_real_samples(
    relay: RunningService, sim: KlaviyoSimServer, client: httpx.AsyncClient
) -> None:
    """Each supported topic, fed a real sample payload, produces its profile or events."""
    order = sample("orders-create.json")
    cancelled = sample("orders-cancelled.real.json")
    checkout = sample("checkouts-create.json")
    checkout["email"] = checkout.get("email") or "buyer@example.com"
    plan = [
        ("customers/create", sample("customers-create.json")),
        ("orders/create", order),
        ("orders/cancelled", cancelled),
        ("refunds/create", sample("refunds-create.json")),
        ("checkouts/create", checkout),
    ]
    for topic, payload in plan:
        response = await send(client, relay, topic, payload)
        assert response.status_code == 200, (topic, response.text)
        assert response.json()["outcome"] == "processed", (topic, response.text)
    await eventually(lambda: drained(relay.service))
    metrics = {event.metric for event in sim.sim.events}
    assert {"Placed Order", "Ordered Product", "Cancelled Order", "Refunded Order"} <= metrics
    assert "Started Checkout" in metrics
    emails = {profile.attributes.get("email") for profile in sim.sim.all_profiles()}
    assert sample("customers-create.json")["email"] in emails
    status = await relay.service.status()
    assert status["outbox"]["dead_lettered"] == 0


async def test_unverified_webhook_is_refused_and_not_stored(
    relay: RunningService, client: httpx.AsyncClient
) -> None:
    """A bad HMAC gets 401 and leaves no trace in the store."""
    body = sender.encode(sample("orders-create.json"))
    headers = sender.headers("orders/create", body, b"wrong-secret", SHOP)
    response = await post_webhook(client, relay.url, body, headers)
    assert response.status_code == 401
    status = await relay.service.status()
    assert sum(status["webhooks"].values()) == 0
    assert status["outbox"]["pending"] == 0


# A fault the store raises for every receipt it is asked to insert, on either dialect.
REFUSE_RECEIPTS = {
    "sqlite": [
        "CREATE TRIGGER refuse_receipts BEFORE INSERT ON webhook_receipts "
        "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$",
        "CREATE TRIGGER refuse_receipts BEFORE INSERT ON webhook_receipts "
        "FOR EACH ROW EXECUTE FUNCTION refuse()",
    ],
}


async def test_a_webhook_the_store_cannot_take_is_answered_503_and_taken_when_resent(
    relay: RunningService, client: httpx.AsyncClient
) -> None:
    """Not acknowledged, so Shopify sends it again; the next delivery is processed once."""
    order = sample("orders-create.json")
    async with relay.store.transaction() as conn:
        for statement in REFUSE_RECEIPTS[relay.store.backend]:
            await conn.exec_driver_sql(statement)
    refused = await send(client, relay, "orders/create", order, webhook_id="refused-1")
    async with relay.store.transaction() as conn:
        await conn.exec_driver_sql(
            "DROP TRIGGER refuse_receipts ON webhook_receipts"
            if relay.store.backend == "postgresql"
            else "DROP TRIGGER refuse_receipts"
        )
    assert refused.status_code == 503
    assert "send it again" in refused.json()["error"]
    status = await relay.service.status()
    assert sum(status["webhooks"].values()) == 0
    resent = await send(client, relay, "orders/create", order, webhook_id="refused-1")
    assert resent.status_code == 200
    assert resent.json()["outcome"] == "processed"


async def test_a_sender_gone_before_the_body_ends_gets_no_answer_and_nothing_is_stored(
    relay: RunningService,
) -> None:
    """Half a signed body, then the connection drops: nothing to verify, nothing stored."""
    body = sender.encode(sample("orders-create.json"))
    headers = sender.headers("orders/create", body, WEBHOOK_SECRET.encode(), SHOP)
    messages = [
        {"type": "http.request", "body": body[:100], "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    endpoint = shopify_endpoint(relay.service.receiver, 1_000_000)
    scope = {
        "type": "http",
        "method": "POST",
        "path": WEBHOOK_PATH,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    await endpoint(scope, receive, send)
    assert sent == []
    status = await relay.service.status()
    assert sum(status["webhooks"].values()) == 0


async def test_oversized_body_is_refused(relay: RunningService, client: httpx.AsyncClient) -> None:
    """A body over the limit gets 413 before it is read whole."""
    body = b"{" + b" " * (relay.service.settings.SHOPIFY_MAX_BODY_BYTES + 10) + b"}"
    headers = sender.headers("orders/create", body, WEBHOOK_SECRET.encode(), SHOP)
    response = await post_webhook(client, relay.url, body, headers)
    assert response.status_code == 413


async def test_verified_invalid_json_is_kept_in_the_dead_letter_queue(
    relay: RunningService, client: httpx.AsyncClient
) -> None:
    """Signed bytes that are not JSON are acknowledged and kept raw with the reason."""
    body = b'{"id": 1, "email": '
    headers = sender.headers("orders/create", body, WEBHOOK_SECRET.encode(), SHOP)
    response = await post_webhook(client, relay.url, body, headers)
    assert response.status_code == 200
    assert response.json()["outcome"] == "unprocessable"
    async with relay.store.read() as conn:
        letters = await deadletters.list_open(conn)
        full = await deadletters.get(conn, [letters[0].id])
    assert "not valid JSON" in letters[0].reason
    assert full[0].payload == body


async def test_payload_without_identifier_is_dead_lettered_with_its_reason(
    relay: RunningService, client: httpx.AsyncClient
) -> None:
    """A customer with no email, phone or id is kept for a person, not sent."""
    response = await send(client, relay, "customers/create", {"first_name": "Nobody"})
    assert response.json()["outcome"] == "unprocessable"
    status = await relay.service.status()
    assert status["dead_letters"]["open"] == 1


async def test_unknown_topic_is_acknowledged_and_ignored(
    relay: RunningService, client: httpx.AsyncClient
) -> None:
    """A topic shoprelay does not handle is counted as ignored."""
    response = await send(client, relay, "products/update", {"id": 5})
    assert response.json()["outcome"] == "ignored"
    status = await relay.service.status()
    assert status["webhooks"]["ignored"] == 1
    assert status["outbox"]["pending"] == 0


async def test_older_customer_update_does_not_regress_the_profile(
    relay: RunningService, sim: KlaviyoSimServer, client: httpx.AsyncClient
) -> None:
    """customers/update older than one already applied changes nothing."""
    newer = sample("customers-create.json")
    newer["updated_at"] = "2026-01-02T10:00:00-05:00"
    newer["first_name"] = "Newer"
    older = copy.deepcopy(newer)
    older["updated_at"] = "2026-01-01T10:00:00-05:00"
    older["first_name"] = "Older"
    assert (await send(client, relay, "customers/update", newer)).json()["outcome"] == "processed"
    assert (await send(client, relay, "customers/update", older)).json()["outcome"] == "stale"
    await eventually(lambda: drained(relay.service))
    names = [p.attributes.get("first_name") for p in sim.sim.all_profiles()]
    assert names == ["Newer"]


async def test_refund_before_its_order_is_kept_and_replayable(
    relay: RunningService, sim: KlaviyoSimServer, client: httpx.AsyncClient
) -> None:
    """A refund for an unseen order is dead-lettered; replayed after the order, it is delivered."""
    from shoprelay.replay import replay
    from shoprelay.service import shopify_metrics

    refund = await send(client, relay, "refunds/create", sample("refunds-create.json"))
    assert refund.json()["outcome"] == "unprocessable"
    await send(client, relay, "orders/create", sample("orders-create.json"))
    async with relay.store.read() as conn:
        letters = await deadletters.get(conn, [d.id for d in await deadletters.list_open(conn)])
    report = await replay(relay.store, letters, shopify_metrics(relay.service.settings))
    assert report.reprocessed == 1
    relay.service.dispatcher.wake()
    await eventually(lambda: drained(relay.service))
    assert "Refunded Order" in {event.metric for event in sim.sim.events}


async def test_readiness_fails_when_delivery_has_stopped(
    relay: RunningService, client: httpx.AsyncClient
) -> None:
    """/readyz is 200 while all runs, and 503 naming the task once delivery has stopped."""
    assert (await client.get(f"{relay.url}/readyz")).status_code == 200
    delivery = next(task for task in relay.service._tasks if task.get_name() == "delivery")
    delivery.cancel()
    response = await eventually(
        lambda: _status_code_is(client, f"{relay.url}/readyz", 503), timeout=5
    )
    assert "delivery" in response.json()["detail"]


async def _status_code_is(client: httpx.AsyncClient, url: str, code: int) -> httpx.Response | None:
    response = await client.get(url)
    return response if response.status_code == code else None
