"""The Admin client paces from the cost bucket Shopify reports, and names what a refusal means."""

from __future__ import annotations

import random
from typing import Any

import httpx
import orjson
import pytest

from shoprelay.sources.shopify.admin.client import (
    AdminClient,
    ShopifyAuthError,
    ShopifyUnreachable,
)
from shoprelay.sources.shopify.admin.queries import SHOP

URL = "https://demo.myshopify.com"


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _answer(available: float, *, requested: float = 200, errors: Any = None) -> httpx.Response:
    body: dict[str, Any] = {
        "extensions": {
            "cost": {
                "requestedQueryCost": requested,
                "actualQueryCost": None if errors else requested,
                "throttleStatus": {
                    "maximumAvailable": 1000.0,
                    "currentlyAvailable": available,
                    "restoreRate": 100.0,
                },
            }
        }
    }
    if errors:
        body["errors"] = errors
    else:
        body["data"] = {"shop": {"name": "Demo"}}
    return httpx.Response(200, content=orjson.dumps(body))


def _client(handler: Any, fake: FakeTime) -> AdminClient:
    return AdminClient(
        URL,
        "shpat_test",
        "2026-10",
        transport=httpx.MockTransport(handler),
        sleep=fake.sleep,
        clock=fake.clock,
        rng=random.Random(1),
    )


async def test_waits_for_the_bucket_before_a_query_it_cannot_pay_for() -> None:
    fake = FakeTime()
    answers = iter([_answer(50), _answer(800)])
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return next(answers)

    async with _client(handler, fake) as client:
        await client.query(SHOP)
        # The bucket holds 50 and the query costs 200: 150 points at 100/s.
        await client.query(SHOP)
    assert fake.sleeps == [pytest.approx(1.5)]
    assert seen[0].url.path == "/admin/api/2026-10/graphql.json"
    assert seen[0].headers["X-Shopify-Access-Token"] == "shpat_test"
    assert client.tally.actual == 400


async def test_throttled_waits_for_the_refill_then_retries() -> None:
    fake = FakeTime()
    throttled = [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]
    answers = iter([_answer(20, errors=throttled), _answer(900)])

    async with _client(lambda _: next(answers), fake) as client:
        data = await client.query(SHOP)
    assert data == {"shop": {"name": "Demo"}}
    assert fake.sleeps == [pytest.approx(1.8)]  # (200 - 20) / 100, not a fixed sleep
    assert client.tally.throttled == 1


async def test_429_and_5xx_retry() -> None:
    fake = FakeTime()
    answers = iter(
        [httpx.Response(429, headers={"Retry-After": "2"}), httpx.Response(502), _answer(900)]
    )
    async with _client(lambda _: next(answers), fake) as client:
        await client.query(SHOP)
    assert len(fake.sleeps) == 2
    assert fake.sleeps[0] >= 2


async def test_403_names_the_missing_scope() -> None:
    fake = FakeTime()
    async with _client(lambda _: httpx.Response(403), fake) as client:
        with pytest.raises(ShopifyAuthError, match="read_orders"):
            await client.query(SHOP, scope="read_orders")


async def test_a_shop_that_never_answers_is_unreachable() -> None:
    fake = FakeTime()
    async with _client(lambda _: httpx.Response(503), fake) as client:
        with pytest.raises(ShopifyUnreachable):
            await client.query(SHOP)
