"""The ingest writer outlives its own errors, never keeps a webhook waiting on a dead writer,
and refuses at once, rather than queues, past its bound."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest
from prometheus_client import REGISTRY
from starlette.types import Message
from structlog.testing import capture_logs

from shoprelay.mapping.shopify_fields import ShopifyMetrics
from shoprelay.sim.shopify import encode, headers
from shoprelay.sim.shopify_orders import fake_order
from shoprelay.sim.shopify_payloads import START, fake_customer
from shoprelay.sources.shopify.receive import Receiver
from shoprelay.store.database import Store
from shoprelay.store.ingest import (
    IngestOverloaded,
    IngestStopped,
    IngestWriter,
    WebhookDelivery,
    WebhookOutcome,
)
from shoprelay.web.webhooks import WEBHOOK_PATH, shopify_endpoint

SECRET = b"survival-secret"
SHOP = "survival.myshopify.com"
# Long enough for a commit on a busy machine; a writer that died never answers at all.
ANSWER_SECONDS = 10


def signed_orders(count: int, seed: int) -> list[tuple[bytes, dict[str, str]]]:
    """Bodies and lower-case headers of `count` new orders/create deliveries."""
    rng = random.Random(seed)
    found = []
    for number in range(count):
        body = encode(fake_order(rng, fake_customer(rng), at=START, number=number))
        signed = headers("orders/create", body, SECRET, SHOP)
        found.append((body, {name.lower(): value for name, value in signed.items()}))
    return found


def deliveries(writer: IngestWriter, count: int, seed: int) -> list[WebhookDelivery]:
    receiver = Receiver(writer, [SECRET], ShopifyMetrics())
    prepared = [receiver.prepare(signed, body) for body, signed in signed_orders(count, seed)]
    assert all(prepared)
    return [delivery for delivery in prepared if delivery is not None]


def writer_errors(step: str) -> float:
    sample = REGISTRY.get_sample_value("shoprelay_ingest_writer_errors_total", {"step": step})
    return sample or 0.0


async def answered(submitted: Any) -> Any:
    async with asyncio.timeout(ANSWER_SECONDS):
        return await submitted


async def test_a_wake_up_that_raises_leaves_later_webhooks_processed(store: Store) -> None:
    """on_commit raising is logged with its traceback and counted; the writer goes on."""

    def wake(_: frozenset[tuple[str, str]]) -> None:
        raise RuntimeError("the delivery process is not listening")

    writer = IngestWriter(store, on_commit=wake)
    before = writer_errors("wake")
    await writer.start()
    try:
        with capture_logs() as logs:
            outcomes = [
                await answered(writer.submit(delivery))
                for delivery in deliveries(writer, 5, seed=1)
            ]
    finally:
        await writer.stop()
    assert [outcome.outcome for outcome in outcomes] == ["processed"] * 5
    assert writer_errors("wake") == before + 5
    failures = [entry for entry in logs if entry["event"] == "ingest.wake_failed"]
    assert len(failures) == 5
    assert all(entry.get("exc_info") for entry in failures)


async def test_an_unexpected_error_answers_its_group_and_the_writer_goes_on(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever breaks inside the loop fails only the group it broke (its webhooks get 503);
    the next webhooks are committed."""
    writer = IngestWriter(store)
    settle = writer._settle
    broken = [True]

    def settle_once_broken(group: Any, outcomes: list[WebhookOutcome]) -> None:
        if broken.pop() if broken else False:
            raise RuntimeError("a bug in settling")
        settle(group, outcomes)

    monkeypatch.setattr(writer, "_settle", settle_once_broken)
    first, *later = deliveries(writer, 4, seed=2)
    before = writer_errors("group")
    await writer.start()
    try:
        with pytest.raises(RuntimeError, match="a bug in settling"):
            await answered(writer.submit(first))
        outcomes = [await answered(writer.submit(delivery)) for delivery in later]
    finally:
        await writer.stop()
    assert [outcome.outcome for outcome in outcomes] == ["processed"] * 3
    assert writer_errors("group") == before + 1


async def test_a_stopped_writer_fails_what_waits_and_refuses_the_rest(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deliveries being committed or queued when the writer stops are answered with an error
    (a 503, resent by Shopify), and a later submit is refused at once, not left waiting."""
    writer = IngestWriter(store)
    committing = asyncio.Event()

    async def never_commits(_: Any) -> list[WebhookOutcome]:
        committing.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    monkeypatch.setattr(writer, "commit", never_commits)
    group, queued, late = deliveries(writer, 3, seed=3)
    await writer.start()
    waiting = [asyncio.create_task(writer.submit(group))]
    await answered(committing.wait())
    waiting.append(asyncio.create_task(writer.submit(queued)))
    await asyncio.sleep(0)
    await writer.stop()
    results = await answered(asyncio.gather(*waiting, return_exceptions=True))
    assert [type(result) for result in results] == [IngestStopped, IngestStopped]
    with pytest.raises(IngestStopped):
        await answered(writer.submit(late))


async def test_past_the_waiting_bound_a_webhook_gets_503_at_once_and_the_rest_commit(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With commits held up, deliveries beyond `max_waiting` are refused at once with a 503
    the sender may retry; those taken are all committed once the database moves again."""
    writer = IngestWriter(store, max_waiting=2)
    release = asyncio.Event()
    commit = writer.commit

    async def held_commit(group: Any) -> list[WebhookOutcome]:
        await release.wait()
        return await commit(group)

    monkeypatch.setattr(writer, "commit", held_commit)
    receiver = Receiver(writer, [SECRET], ShopifyMetrics())
    endpoint = shopify_endpoint(receiver, 1_000_000)
    # Each writer takes one delivery into its (held) group; two more wait; the next is refused.
    taken = writer._writers + 2
    orders = signed_orders(taken + 2, seed=4)
    extra = receiver.prepare(orders[-1][1], orders[-1][0])
    assert extra is not None

    async def post(body: bytes, signed: dict[str, str]) -> tuple[int, dict[bytes, bytes], Any]:
        scope = {
            "type": "http",
            "method": "POST",
            "path": WEBHOOK_PATH,
            "headers": [(name.encode(), value.encode()) for name, value in signed.items()],
        }
        sent: list[Message] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Message) -> None:
            sent.append(message)

        await endpoint(scope, receive, send)
        start, answer = sent
        return start["status"], dict(start["headers"]), json.loads(answer["body"])

    await writer.start()
    try:
        accepted = []
        for body, signed in orders[:taken]:
            accepted.append(asyncio.create_task(post(body, signed)))
            await asyncio.sleep(0.01)
        status, answer_headers, document = await answered(post(*orders[taken]))
        with pytest.raises(IngestOverloaded):
            await answered(writer.submit(extra))
        assert not any(task.done() for task in accepted)
        release.set()
        answers = await answered(asyncio.gather(*accepted))
    finally:
        await writer.stop()
    assert (status, document["outcome"]) == (503, "overloaded")
    assert answer_headers[b"retry-after"] == b"5"
    assert [(s, d["outcome"]) for s, _, d in answers] == [(200, "processed")] * taken
