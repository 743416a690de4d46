"""Shopify webhooks over real sockets: shoprelay serve + the Klaviyo simulator, both dialects."""

from __future__ import annotations

import asyncio
import copy
import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from tests.support.harness import (
    WEBHOOK_SECRET,
    KlaviyoSimServer,
    RunningService,
    drained,
    eventually,
    post_webhook,
)

from shoprelay.service import shopify_metrics
from shoprelay.sim import shopify as sender
from shoprelay.sources.shopify.receive import Receiver
from shoprelay.store import deadletters
from shoprelay.store.schema import outbox, webhook_receipts
from shoprelay.web.serving import serving
from shoprelay.web.webhooks import WEBHOOK_PATH, shopify_endpoint

SHOP = "demo-shop.myshopify.com"
SAMPLES = Path(__file__).parents[1] / "fixtures" / "shopify"


def sample(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((SAMPLES / name).read_text())
    return payload


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as http:
        yield http


async def send(
    client: httpx.AsyncClient,
    relay: RunningService | str,
    topic: str,
    payload: dict[str, Any],
    webhook_id: str | None = None,
    *,
    triggered_at: datetime | None = None,
) -> httpx.Response:
    body = sender.encode(payload)
    headers = sender.headers(
        topic, body, WEBHOOK_SECRET.encode(), SHOP, webhook_id, triggered_at=triggered_at
    )
    url = relay if isinstance(relay, str) else relay.url
    return await post_webhook(client, url, body, headers)


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
    from shoprelay.operations.replay import replay
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
    assert (await client.get(f"{relay.admin_url}/readyz")).status_code == 200
    delivery = next(task for task in relay.service._tasks if task.get_name() == "delivery")
    delivery.cancel()
    response = await eventually(
        lambda: _status_code_is(client, f"{relay.admin_url}/readyz", 503), timeout=5
    )
    assert "delivery" in response.json()["detail"]


async def _status_code_is(client: httpx.AsyncClient, url: str, code: int) -> httpx.Response | None:
    response = await client.get(url)
    return response if response.status_code == code else None


def outcome_count(outcome: str) -> float:
    return REGISTRY.get_sample_value("shoprelay_webhooks_total", {"outcome": outcome}) or 0.0


async def stored_rows(relay: RunningService) -> tuple[int, int]:
    """Receipts and outbox items in the store."""
    async with relay.store.read() as conn:
        receipts = (await conn.execute(select(func.count()).select_from(webhook_receipts))).scalar()
        items = (await conn.execute(select(func.count()).select_from(outbox))).scalar()
    return int(receipts or 0), int(items or 0)


def http_only(app: ASGIApp) -> ASGIApp:
    """The bare endpoint on a server of its own: it answers requests, not the lifespan."""

    async def serve_http(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await app(scope, receive, send)

    return serve_http


def endpoint(
    relay: RunningService, *, max_pending_bytes: int = 64_000_000, **receiver_options: Any
) -> ASGIApp:
    """The webhook endpoint over the running service's writer, its receiver given the store
    and options as the service gives them from the settings."""
    settings = relay.service.settings
    receiver = Receiver(
        relay.service.writer,
        settings.shopify_secrets,
        shopify_metrics(settings),
        store=relay.store,
        **receiver_options,
    )
    return shopify_endpoint(
        receiver, settings.SHOPIFY_MAX_BODY_BYTES, max_pending_bytes=max_pending_bytes
    )


@asynccontextmanager
async def served(app: ASGIApp) -> AsyncIterator[str]:
    async with serving(http_only(app)) as url:
        yield url


THREE_DAYS_AGO = datetime.now(UTC) - timedelta(days=3)


async def test_an_old_delivery_under_a_new_webhook_id_is_refused_and_not_stored(
    relay: RunningService, client: httpx.AsyncClient
) -> None:
    """A signed body replayed days later with a fresh id: 403 expired, counted, nothing kept."""
    before = outcome_count("expired")
    order = sample("orders-create.json")
    response = await send(
        client, relay, "orders/create", order, "replayed-1", triggered_at=THREE_DAYS_AGO
    )
    assert response.status_code == 403
    assert response.json()["outcome"] == "expired"
    assert "X-Shopify-Triggered-At" in response.json()["error"]
    assert outcome_count("expired") == before + 1
    assert await stored_rows(relay) == (0, 0)
    status = await relay.service.status()
    assert status["dead_letters"]["open"] == 0


async def test_an_old_delivery_already_received_is_a_duplicate(
    relay: RunningService, client: httpx.AsyncClient
) -> None:
    """Its webhook id has a receipt: acknowledged as a duplicate, as at any age."""
    order = sample("orders-create.json")
    async with served(endpoint(relay)) as url:
        first = await send(client, url, "orders/create", order, "wh-old")
        again = await send(
            client, url, "orders/create", order, "wh-old", triggered_at=THREE_DAYS_AGO
        )
    assert first.json()["outcome"] == "processed"
    assert again.status_code == 200
    assert again.json() == {"outcome": "duplicate"}
    assert (await stored_rows(relay))[0] == 1


async def test_recent_and_undated_deliveries_are_processed(
    relay: RunningService, client: httpx.AsyncClient
) -> None:
    """Within the window, or without a readable Triggered-At, a delivery is taken."""
    customer = sample("customers-create.json")
    body = sender.encode(customer)
    undated = sender.headers("customers/create", body, WEBHOOK_SECRET.encode(), SHOP, "wh-u")
    del undated["X-Shopify-Triggered-At"]
    garbled = sender.headers("customers/create", body, WEBHOOK_SECRET.encode(), SHOP, "wh-g")
    garbled["X-Shopify-Triggered-At"] = "last Tuesday"
    async with served(endpoint(relay, max_age_seconds=3600)) as url:
        recent = await send(
            client,
            url,
            "customers/create",
            customer,
            "wh-r",
            triggered_at=datetime.now(UTC) - timedelta(minutes=50),
        )
        answers = [
            recent,
            await post_webhook(client, url, body, undated),
            await post_webhook(client, url, body, garbled),
        ]
    assert [(r.status_code, r.json()["outcome"]) for r in answers] == [(200, "processed")] * 3


async def test_a_max_age_of_zero_takes_deliveries_of_any_age(
    relay: RunningService, client: httpx.AsyncClient
) -> None:
    """SHOPIFY_WEBHOOK_MAX_AGE_SECONDS=0 turns the check off."""
    order = sample("orders-create.json")
    async with served(endpoint(relay, max_age_seconds=0)) as url:
        response = await send(
            client, url, "orders/create", order, "wh-ancient", triggered_at=THREE_DAYS_AGO
        )
    assert response.json()["outcome"] == "processed"


Post = Callable[[], Awaitable[tuple[int, dict[bytes, bytes], dict[str, Any]]]]


def asgi_post(app: ASGIApp, headers: dict[str, str], receive: Receive) -> Post:
    """A POST straight to the endpoint, its body coming from `receive`: what it answered."""
    scope = {
        "type": "http",
        "method": "POST",
        "path": WEBHOOK_PATH,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }

    async def post() -> tuple[int, dict[bytes, bytes], dict[str, Any]]:
        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        await app(scope, receive, send)
        start, body = sent
        return start["status"], dict(start["headers"]), json.loads(body["body"])

    return post


def signed(
    payload: dict[str, Any], webhook_id: str, *, chunked: bool = False
) -> tuple[bytes, dict[str, str]]:
    body = sender.encode(payload)
    headers = sender.headers("orders/create", body, WEBHOOK_SECRET.encode(), SHOP, webhook_id)
    if not chunked:
        headers["Content-Length"] = str(len(body))
    return body, headers


def held_back(body: bytes, release: asyncio.Event) -> Receive:
    """The body's first half at once, the rest once `release` is set: a slow sender."""
    half = len(body) // 2
    parts = [body[:half], body[half:]]

    async def receive() -> Message:
        if len(parts) == 1:
            await release.wait()
        return {"type": "http.request", "body": parts.pop(0), "more_body": bool(parts)}

    return receive


def unread() -> Receive:
    async def receive() -> Message:
        raise AssertionError("the body of a refused request was read")

    return receive


async def test_past_the_pending_bytes_a_webhook_gets_503_before_its_body_is_read(
    relay: RunningService,
) -> None:
    """While slow senders hold the pending bytes, a declared body that does not fit is refused at
    once, counted, with Retry-After; a chunked one is refused once its chunks go past it. Once
    they are answered the room comes back, whole."""
    order = sample("orders-create.json")
    body, _ = signed(order, "x")
    pending_limit = 2 * len(body) + len(body) // 2  # two held, and half a body of room
    app = endpoint(relay, max_pending_bytes=pending_limit)
    release = asyncio.Event()
    slow = []
    for n in range(2):
        slow_body, headers = signed(order | {"id": 9000 + n}, f"slow-{n}")
        slow.append(asyncio.create_task(asgi_post(app, headers, held_back(slow_body, release))()))
    await asyncio.sleep(0.05)
    before = outcome_count("overloaded")

    _, declared = signed(order | {"id": 9100}, "declared")
    declared["Content-Length"] = str(pending_limit // 2)
    status, headers, document = await asgi_post(app, declared, unread())()
    assert status == 503
    assert headers[b"retry-after"] == b"5"
    assert document["outcome"] == "overloaded"

    chunked_body, chunked = signed(order | {"id": 9200}, "chunked", chunked=True)
    chunks = [chunked_body[i : i + 100] for i in range(0, len(chunked_body), 100)]

    async def in_chunks() -> Message:
        return {"type": "http.request", "body": chunks.pop(0), "more_body": bool(chunks)}

    status, _, document = await asgi_post(app, chunked, in_chunks)()
    assert (status, document["outcome"]) == (503, "overloaded")
    assert chunks, "refused before the whole body was read"
    assert outcome_count("overloaded") == before + 2

    release.set()
    assert [(s, d["outcome"]) for s, _, d in await asyncio.gather(*slow)] == [
        (200, "processed")
    ] * 2
    whole_body, whole = signed(order | {"id": 9300, "note": "x" * 10}, "whole", chunked=True)
    whole_body += b" " * (pending_limit - len(whole_body))  # JSON allows trailing blanks
    whole["X-Shopify-Hmac-Sha256"] = sender.sign(whole_body, WEBHOOK_SECRET.encode())
    whole["Content-Length"] = str(pending_limit)
    once = [whole_body]

    async def at_once() -> Message:
        return {"type": "http.request", "body": once.pop(), "more_body": False}

    status, _, document = await asgi_post(app, whole, at_once)()
    assert (status, document["outcome"]) == (200, "processed")
