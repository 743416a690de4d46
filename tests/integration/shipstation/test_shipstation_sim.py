"""The ShipStation simulator speaks V1: Basic auth, envelopes, Pacific filters, limit headers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from tests.integration.shipstation.harness import START, Account

from shoprelay.sim.shipstation import ShipStationSimConfig

WINDOW_SECONDS = 60.0


@pytest.fixture
def sim_config() -> ShipStationSimConfig:
    """ShipStation's own 40 per 60 s: no stall of the test machine can split a burst in two."""
    return ShipStationSimConfig(rate_limit=40, window_seconds=WINDOW_SECONDS)


@pytest.fixture
async def http(account: Account) -> AsyncIterator[httpx.AsyncClient]:
    auth = httpx.BasicAuth(account.sim.config.api_key, account.sim.config.api_secret)
    async with httpx.AsyncClient(base_url=account.url, auth=auth) as client:
        yield client


async def test_wrong_secret_is_refused(account: Account) -> None:
    """Bad Basic credentials get 401 with ShipStation's message."""
    auth = httpx.BasicAuth(account.sim.config.api_key, "nope")
    async with httpx.AsyncClient(base_url=account.url, auth=auth) as client:
        response = await client.get("/orders")
    assert response.status_code == 401
    assert response.json() == {"message": "Invalid API credentials"}


async def test_every_answer_carries_the_limit_and_429_follows(
    account: Account, http: httpx.AsyncClient
) -> None:
    """X-Rate-Limit-* count down in a fixed window; past the limit comes the documented 429."""
    first = await http.get("/stores")
    assert first.headers["X-Rate-Limit-Limit"] == "40"
    assert first.headers["X-Rate-Limit-Remaining"] == "39"
    assert first.headers["X-Rate-Limit-Reset"] == str(int(WINDOW_SECONDS))
    rest = [await http.get("/stores") for _ in range(39)]
    assert [response.status_code for response in rest] == [200] * 39
    assert rest[-1].headers["X-Rate-Limit-Remaining"] == "0"
    throttled = await http.get("/stores")
    assert throttled.status_code == 429
    assert throttled.json() == {"message": "Too Many Requests"}
    assert throttled.headers["X-Rate-Limit-Remaining"] == "0"
    assert 1 <= int(throttled.headers["X-Rate-Limit-Reset"]) <= WINDOW_SECONDS


async def test_orders_envelope_paging_and_default_sort(
    account: Account, http: httpx.AsyncClient
) -> None:
    """Orders come in {orders,total,page,pages}, ascending orderId, at most 500 per page."""
    now = account.clock.now()
    account.sim.create_orders(7, start=now - timedelta(days=1), end=now)
    body = (await http.get("/orders", params={"pageSize": 3, "page": 3})).json()
    assert (body["total"], body["page"], body["pages"]) == (7, 3, 3)
    assert len(body["orders"]) == 1
    ids = [o["orderId"] for o in (await http.get("/orders")).json()["orders"]]
    assert ids == sorted(ids)
    assert (await http.get("/orders", params={"pageSize": 501})).status_code == 400


async def test_modify_date_filter_is_pacific_and_sorts_descending(
    account: Account, http: httpx.AsyncClient
) -> None:
    """`modifyDateStart` compares Pacific wall clocks; ModifyDate DESC puts the newest first."""
    now = START  # 2025-04-15 17:00 UTC is 10:00 PDT; fixed, however long the test has run
    old, new = account.sim.create_orders(2, start=now - timedelta(days=2), end=now)
    account.sim.cancel(old["orderId"], now - timedelta(minutes=30))  # 09:30 PDT
    account.sim.cancel(new["orderId"], now - timedelta(minutes=10))  # 09:50 PDT
    params = {"modifyDateStart": "2025-04-15 09:40:00", "sortBy": "ModifyDate", "sortDir": "DESC"}
    body = (await http.get("/orders", params=params)).json()
    assert [o["orderId"] for o in body["orders"]] == [new["orderId"]]
    assert body["orders"][0]["modifyDate"].startswith("2025-04-15T09:50:00.")
    params["modifyDateStart"] = "2025-04-15 09:00:00"
    body = (await http.get("/orders", params=params)).json()
    assert [o["orderId"] for o in body["orders"]] == [new["orderId"], old["orderId"]]


async def test_labels_and_fulfillments_are_listed_apart(
    account: Account, http: httpx.AsyncClient
) -> None:
    """/shipments lists labels (voided ones flagged); /fulfillments lists marked-shipped orders."""
    labelled, marked = account.sim.create_orders(
        2, start=account.clock.now() - timedelta(days=1), end=account.clock.now()
    )
    account.sim.ship_label(labelled["orderId"])
    account.sim.void_label(labelled["orderId"])
    account.sim.mark_shipped(marked["orderId"])
    shipments = (await http.get("/shipments")).json()["shipments"]
    fulfillments = (await http.get("/fulfillments")).json()["fulfillments"]
    assert [(s["orderId"], s["voided"]) for s in shipments] == [(labelled["orderId"], True)]
    assert [f["orderId"] for f in fulfillments] == [marked["orderId"]]
    assert isinstance((await http.get("/stores")).json(), list)


async def test_control_endpoints_drive_the_demo(account: Account) -> None:
    """/_sim/ creates orders, changes their status and reports counts, without auth or limits."""
    async with httpx.AsyncClient(base_url=account.url) as client:
        created = (await client.post("/_sim/orders", json={"count": 3, "days_ago": 2})).json()
        order_id = created["order_ids"][0]
        shipped = await client.post(f"/_sim/orders/{order_id}/ship_label")
        await client.post("/_sim/activity", json={"changes": 1})
        stats = (await client.get("/_sim/stats")).json()
    assert shipped.json()["orderStatus"] == "shipped"
    assert stats["orders"] == 3
    assert stats["shipments"] >= 1
