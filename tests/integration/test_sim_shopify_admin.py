"""The Shopify Admin API simulator over real sockets: auth, schema, cost, paging, the 60-day
window, bulk operations, subscriptions, and deliveries that end in a subscription's deletion."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tests.support.harness import eventually

from shoprelay.sim.shopify_admin import ShopifyAdminSim, ShopifyAdminSimConfig, create_app
from shoprelay.web.serving import serving

pytestmark = pytest.mark.integration

TOKEN = "shpat_test_token"
SECRET = "test-delivery-secret"
GRAPHQL = "/admin/api/2026-10/graphql.json"
PAGE = """
query Page($after: String, $query: String) {
  orders(first: 25, after: $after, sortKey: UPDATED_AT, query: $query) {
    pageInfo { hasNextPage endCursor }
    edges { node { id updatedAt createdAt } }
  }
}
"""
CREATE = """
mutation Create($topic: WebhookSubscriptionTopic!, $sub: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $sub) {
    webhookSubscription { id topic uri name }
    userErrors { field message }
  }
}
"""
RUN_BULK = """
mutation Run($query: String!) {
  bulkOperationRunQuery(query: $query, groupObjects: false) {
    bulkOperation { id status }
    userErrors { field message code }
  }
}
"""
BULK_STATUS = """
query Status($id: ID!) {
  bulkOperation(id: $id) { id status objectCount rootObjectCount url errorCode }
}
"""
BULK_ORDERS = """
{ orders(query: "created_at:>='%s'") { edges { node {
    id name refunds { id }
    lineItems { edges { node { id title } } }
} } } }
"""


@dataclass
class Shop:
    client: httpx.AsyncClient
    sim: ShopifyAdminSim

    async def ask(self, document: str, /, **variables: Any) -> dict[str, Any]:
        response = await self.client.post(
            GRAPHQL,
            json={"query": document, "variables": variables},
            headers={"X-Shopify-Access-Token": TOKEN},
        )
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    async def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = await self.client.post(f"/_sim/{path}", json=body or {})
        assert response.status_code < 300, response.text
        return response.json()


def config(**overrides: Any) -> ShopifyAdminSimConfig:
    settings: dict[str, Any] = {
        "access_token": TOKEN,
        "webhook_secret": SECRET,
        "seed_orders": 120,
        "seed_days": 90,
        "retry_delays": (0.01,) * 8,
    }
    return ShopifyAdminSimConfig(**(settings | overrides))


@pytest.fixture
async def shop(request: pytest.FixtureRequest) -> AsyncIterator[Shop]:
    app = create_app(config(**getattr(request, "param", {})))
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        yield Shop(client, app.state.sim)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- requests ---------------------------------------------------------------------------------


async def test_a_wrong_token_is_refused_with_shopifys_words(shop: Shop) -> None:
    response = await shop.client.post(
        GRAPHQL, json={"query": "{ shop { name } }"}, headers={"X-Shopify-Access-Token": "no"}
    )
    assert response.status_code == 401
    assert response.json() == {
        "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
    }


async def test_a_query_outside_the_schema_gets_graphqls_error_and_no_data(shop: Shop) -> None:
    answer = await shop.ask("{ shop { name planName } }")
    assert "data" not in answer
    assert answer["errors"][0]["message"] == "Field 'planName' doesn't exist on type 'Shop'"


async def test_every_answer_carries_its_cost(shop: Shop) -> None:
    answer = await shop.ask("{ shop { name ianaTimezone } currentAppInstallation { id } }")
    assert answer["data"]["shop"]["ianaTimezone"]
    cost = answer["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 2
    assert cost["actualQueryCost"] == 2
    status = cost["throttleStatus"]
    assert status["maximumAvailable"] == 2000.0
    assert status["restoreRate"] == 100.0
    assert status["currentlyAvailable"] <= 2000


@pytest.mark.parametrize("shop", [{"bucket_size": 100.0, "restore_rate": 1.0}], indirect=True)
async def test_an_empty_bucket_answers_throttled_with_http_200(shop: Shop) -> None:
    query = "{ orders(first: 40) { nodes { id } } }"  # 42 points requested
    first = await shop.ask(query)
    assert "errors" not in first
    # The 40 orders came back, so nothing was refunded: 58 left, then 16, then too few.
    second = await shop.ask(query)
    assert "errors" not in second
    third = await shop.ask(query)
    assert third["errors"][0]["message"] == "Throttled"
    assert third["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert third["extensions"]["cost"]["actualQueryCost"] is None
    assert third["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] < 42
    stats = (await shop.client.get("/_sim/stats")).json()
    assert stats["throttled"] == 1


async def test_a_query_dearer_than_1000_points_is_refused(shop: Shop) -> None:
    answer = await shop.ask(
        "{ orders(first: 250) { nodes { lineItems(first: 5) { nodes { id } } } } }"
    )
    (error,) = answer["errors"]
    assert error["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert error["extensions"]["cost"] > 1000


async def test_injected_faults_come_first(shop: Shop) -> None:
    await shop.control("faults", {"fail_next": [503, 429]})
    headers = {"X-Shopify-Access-Token": TOKEN}
    body = {"query": "{ shop { name } }"}
    statuses = [(await shop.client.post(GRAPHQL, json=body, headers=headers)).status_code]
    statuses.append((await shop.client.post(GRAPHQL, json=body, headers=headers)).status_code)
    statuses.append((await shop.client.post(GRAPHQL, json=body, headers=headers)).status_code)
    assert statuses == [503, 429, 200]


# --- orders: paging, filter, window ----------------------------------------------------------


async def _all_pages(shop: Shop, query: str, between: Any = None) -> list[dict[str, Any]]:
    nodes, after = [], None
    while True:
        answer = await shop.ask(PAGE, after=after, query=query)
        page = answer["data"]["orders"]
        nodes += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["pageInfo"]["endCursor"]
        if between is not None:
            await between()
            between = None


async def test_orders_page_by_updated_at_from_a_watermark(shop: Shop) -> None:
    since = datetime.now(UTC) - timedelta(days=30)
    expected = {
        f"gid://shopify/Order/{s.id}"
        for s in shop.sim.shop.orders.values()
        if s.updated >= since.timestamp()
    }
    assert 25 < len(expected) < 120  # several pages, not everything
    changed: list[int] = []

    async def change_one_already_read() -> None:
        # An order read on the first page changes: it moves to the end and is read again.
        first_id = int(nodes_so_far[0]["id"].rsplit("/", 1)[1])
        await shop.control(f"orders/{first_id}/update")
        changed.append(first_id)

    nodes_so_far = (await shop.ask(PAGE, query=f"updated_at:>='{iso(since)}'"))["data"]["orders"]
    nodes_so_far = [edge["node"] for edge in nodes_so_far["edges"]]
    nodes = await _all_pages(shop, f"updated_at:>='{iso(since)}'", change_one_already_read)
    ids = [node["id"] for node in nodes]
    assert set(ids) == expected
    assert ids.count(f"gid://shopify/Order/{changed[0]}") == 2
    times = [node["updatedAt"] for node in nodes]
    assert times == sorted(times)
    assert min(times) >= iso(since)


@pytest.mark.parametrize("shop", [{"scopes": ("read_orders", "read_customers")}], indirect=True)
async def test_without_read_all_orders_older_orders_do_not_exist(shop: Shop) -> None:
    ninety = datetime.now(UTC) - timedelta(days=90)
    nodes = await _all_pages(shop, f"created_at:>='{iso(ninety)}'")
    sixty = iso(datetime.now(UTC) - timedelta(days=60, minutes=1))
    assert nodes
    assert min(node["createdAt"] for node in nodes) >= sixty
    oldest = min(shop.sim.shop.orders.values(), key=lambda s: s.created)
    answer = await shop.ask(f'{{ order(id: "gid://shopify/Order/{oldest.id}") {{ id }} }}')
    assert answer["data"]["order"] is None
    # A bulk query reaches no further.
    started = await shop.ask(RUN_BULK, query=BULK_ORDERS % iso(ninety))
    operation = started["data"]["bulkOperationRunQuery"]["bulkOperation"]["id"]
    assert int((await _finished(shop, operation))["rootObjectCount"]) == len(nodes)
    await shop.control("scopes", {"scopes": ["read_orders", "read_customers", "read_all_orders"]})
    assert len(await _all_pages(shop, f"created_at:>='{iso(ninety)}'")) > len(nodes)


@pytest.mark.parametrize("shop", [{"scopes": ("read_customers",)}], indirect=True)
async def test_without_read_orders_orders_are_denied(shop: Shop) -> None:
    answer = await shop.ask("{ shop { name } orders(first: 1) { nodes { id } } }")
    assert answer["data"] is None  # orders is non-null, so the null reaches the root
    (error,) = answer["errors"]
    assert error["extensions"]["code"] == "ACCESS_DENIED"
    assert "`read_orders`" in error["message"]


# --- bulk operations -------------------------------------------------------------------------


async def _finished(shop: Shop, operation: str) -> dict[str, Any]:
    async def ended() -> dict[str, Any] | None:
        status: dict[str, Any] = (await shop.ask(BULK_STATUS, id=operation))["data"][
            "bulkOperation"
        ]
        return status if status["status"] in ("COMPLETED", "FAILED", "CANCELED") else None

    finished: dict[str, Any] = await eventually(ended, interval=0.02)
    return finished


@pytest.mark.parametrize(
    "shop",
    [{"bulk_rows_per_tick": 20, "bulk_pause": 0.005, "concurrent_bulk_queries": 1}],
    indirect=True,
)
async def test_a_bulk_query_runs_to_a_jsonl_of_parents_and_children(shop: Shop) -> None:
    since = iso(datetime.now(UTC) - timedelta(days=45))
    finish = {"uri": "http://127.0.0.1:9/webhooks/shopify", "name": "finish"}
    await shop.ask(CREATE, topic="BULK_OPERATIONS_FINISH", sub=finish)
    await shop.control("endpoint", {"failure": 503})
    started = await shop.ask(RUN_BULK, query=BULK_ORDERS % since)
    payload = started["data"]["bulkOperationRunQuery"]
    assert payload["userErrors"] == []
    operation = payload["bulkOperation"]["id"]
    assert payload["bulkOperation"]["status"] == "CREATED"
    busy = await shop.ask(RUN_BULK, query=BULK_ORDERS % since)
    (error,) = busy["data"]["bulkOperationRunQuery"]["userErrors"]
    assert error["code"] == "OPERATION_IN_PROGRESS"

    status = await _finished(shop, operation)
    assert status["status"] == "COMPLETED"
    listed = await shop.ask(
        '{ bulkOperations(first: 5, query: "status:completed") { nodes { id } } }'
    )
    assert listed["data"]["bulkOperations"]["nodes"] == [{"id": operation}]
    lines = [json.loads(line) for line in (await shop.client.get(status["url"])).text.splitlines()]
    roots = [line for line in lines if "__parentId" not in line]
    assert int(status["objectCount"]) == len(lines)
    assert int(status["rootObjectCount"]) == len(roots)
    expected = [
        s
        for s in shop.sim.shop.orders.values()
        if iso(datetime.fromtimestamp(s.created, UTC)) >= since
    ]
    assert len(roots) == len(expected)
    parent = None
    for line in lines:
        if "__parentId" not in line:
            parent = line["id"]
            assert line["id"].startswith("gid://shopify/Order/")
            assert "lineItems" not in line  # a nested connection becomes rows of its own
            continue
        assert line["__parentId"] == parent  # children follow their parent
        assert line["id"].startswith("gid://shopify/LineItem/")

    # Shopify also tells the app: bulk_operations/finish (with no URL in it).
    async def attempts() -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = (await shop.client.get("/_sim/deliveries")).json()[
            "attempts"
        ]
        return listed

    assert {attempt["topic"] for attempt in await eventually(attempts)} == {
        "bulk_operations/finish"
    }


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        (
            "{ orders { edges { node { id "
            "refunds { refundLineItems { edges { node { id } } } } } } } }",
            "within a list field",
        ),
        ("{ shop { name } }", "at least one connection"),
    ],
)
async def test_a_bulk_query_shopify_refuses_is_refused(shop: Shop, query: str, reason: str) -> None:
    answer = await shop.ask(RUN_BULK, query=query)
    payload = answer["data"]["bulkOperationRunQuery"]
    assert payload["bulkOperation"] is None
    (error,) = payload["userErrors"]
    assert error["code"] == "INVALID"
    assert reason in error["message"]


@pytest.mark.parametrize("shop", [{"bulk_rows_per_tick": 1, "bulk_pause": 0.01}], indirect=True)
async def test_a_bulk_query_can_be_cancelled(shop: Shop) -> None:
    started = await shop.ask(RUN_BULK, query=BULK_ORDERS % "2020-01-01T00:00:00Z")
    operation = started["data"]["bulkOperationRunQuery"]["bulkOperation"]["id"]
    cancel = await shop.ask(
        "mutation($id: ID!) { bulkOperationCancel(id: $id) { bulkOperation { status } "
        "userErrors { message } } }",
        id=operation,
    )
    assert cancel["data"]["bulkOperationCancel"]["bulkOperation"]["status"] == "CANCELING"
    status = await _finished(shop, operation)
    assert status["status"] == "CANCELED"
    assert status["url"] is None


# --- subscriptions and deliveries --------------------------------------------------------------


async def test_subscriptions_are_checked_as_shopify_checks_them(shop: Shop) -> None:
    async def create(topic: str, **sub: Any) -> dict[str, Any]:
        answer = await shop.ask(CREATE, topic=topic, sub=sub)
        payload: dict[str, Any] = answer["data"]["webhookSubscriptionCreate"]
        return payload

    made = await create("ORDERS_CREATE", uri="https://relay.example/webhooks/shopify", name="sr-1")
    assert made["userErrors"] == []
    assert made["webhookSubscription"]["name"] == "sr-1"
    loopback = await create("ORDERS_CREATE", uri="http://127.0.0.1:9/webhooks/shopify")
    assert loopback["userErrors"] == []
    refusals = [
        await create("ORDERS_UPDATED", uri="http://relay.example/webhooks/shopify"),
        await create("ORDERS_CREATE", uri="https://relay.example/webhooks/shopify"),
        await create("ORDERS_UPDATED", uri="https://relay.example/webhooks/shopify", name="sr-1"),
        await create("ORDERS_UPDATED", uri="https://relay.example/webhooks/shopify", name="a b"),
    ]
    assert [r["userErrors"][0]["message"] for r in refusals] == [
        "Address protocol http:// is not supported",
        "Address for this topic has already been taken",
        "Name has already been taken",
        "Name is invalid",
    ]
    assert all(r["webhookSubscription"] is None for r in refusals)
    listed = await shop.ask(
        "{ webhookSubscriptions(first: 10, topics: [ORDERS_CREATE]) { nodes { id uri } } }"
    )
    assert len(listed["data"]["webhookSubscriptions"]["nodes"]) == 2
    gone = await shop.ask(
        "mutation($id: ID!) { webhookSubscriptionDelete(id: $id) "
        "{ deletedWebhookSubscriptionId userErrors { message } } }",
        id=made["webhookSubscription"]["id"],
    )
    assert (
        gone["data"]["webhookSubscriptionDelete"]["deletedWebhookSubscriptionId"]
        == (made["webhookSubscription"]["id"])
    )


@dataclass
class Receiver:
    """Our side of the deliveries: records them, answers `status`."""

    status: int = 200
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    async def endpoint(self, request: Request) -> Response:
        self.received.append((dict(request.headers), await request.body()))
        return Response(status_code=self.status)


async def test_deliveries_are_signed_retried_and_end_in_deletion(shop: Shop) -> None:
    receiver = Receiver()
    app = Starlette(routes=[Route("/webhooks/shopify", receiver.endpoint, methods=["POST"])])
    async with serving(app) as url:
        uri = f"{url}/webhooks/shopify"
        for topic in ("ORDERS_CREATE", "ORDERS_FULFILLED"):
            made = await shop.ask(CREATE, topic=topic, sub={"uri": uri, "name": f"sr-{topic}"})
            assert made["data"]["webhookSubscriptionCreate"]["userErrors"] == []
        (order_id,) = (await shop.control("orders", {"count": 1}))["order_ids"]
        await eventually(lambda: receiver.received)
        headers, body = receiver.received[0]
        digest = hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
        assert headers["x-shopify-hmac-sha256"] == base64.b64encode(digest).decode()
        assert headers["x-shopify-topic"] == "orders/create"
        assert headers["x-shopify-name"] == "sr-ORDERS_CREATE"
        assert json.loads(body)["id"] == order_id

        receiver.status = 500  # our endpoint breaks; the shop goes on
        await shop.control(f"orders/{order_id}/fulfill")
        for _ in range(500):
            if not (await shop.client.get("/_sim/subscriptions")).json()["subscriptions"]:
                break
            await shop.control("orders", {"count": 1})
            await asyncio.sleep(0.01)
    listing = (await shop.client.get("/_sim/subscriptions")).json()
    assert listing["subscriptions"] == []
    assert {d["name"] for d in listing["deleted"]} == {"sr-ORDERS_CREATE", "sr-ORDERS_FULFILLED"}
    attempts = (await shop.client.get("/_sim/deliveries")).json()["attempts"]
    fulfilled = [a for a in attempts if a["topic"] == "orders/fulfilled"]
    # The one fulfilment was tried 8 times with the same webhook id, then the subscription went.
    assert len(fulfilled) == 8
    assert len({a["webhook_id"] for a in fulfilled}) == 1
    assert [a["attempt"] for a in fulfilled] == list(range(8))
    # The shop kept changing: the order reads as fulfilled through the Admin API.
    answer = await shop.ask(
        f'{{ order(id: "gid://shopify/Order/{order_id}") {{ displayFulfillmentStatus }} }}'
    )
    assert answer["data"]["order"]["displayFulfillmentStatus"] == "FULFILLED"


async def test_a_consent_change_reads_the_same_by_webhook_and_by_graphql(shop: Shop) -> None:
    receiver = Receiver()
    app = Starlette(routes=[Route("/webhooks/shopify", receiver.endpoint, methods=["POST"])])
    async with serving(app) as url:
        sub = {"uri": f"{url}/webhooks/shopify"}
        await shop.ask(CREATE, topic="CUSTOMERS_EMAIL_MARKETING_CONSENT_UPDATE", sub=sub)
        customer_id = shop.sim.shop.customer_ids[-1]
        await shop.control(f"customers/{customer_id}/consent", {"email": "UNSUBSCRIBED"})
        await eventually(lambda: receiver.received)
    headers, body = receiver.received[0]
    assert headers["x-shopify-topic"] == "customers_email_marketing_consent/update"
    webhook = json.loads(body)
    assert webhook["customer_id"] == customer_id
    answer = await shop.ask(
        "query($q: String!) { customers(first: 5, sortKey: UPDATED_AT, query: $q) { nodes { "
        "legacyResourceId emailMarketingConsent { marketingState consentUpdatedAt } } } }",
        q=f"updated_at:>='{iso(datetime.now(UTC) - timedelta(minutes=5))}'",
    )
    (customer,) = answer["data"]["customers"]["nodes"]
    assert customer["legacyResourceId"] == str(customer_id)
    consent = customer["emailMarketingConsent"]
    assert consent["marketingState"] == webhook["email_marketing_consent"]["state"].upper()
    assert datetime.fromisoformat(consent["consentUpdatedAt"]) == datetime.fromisoformat(
        webhook["email_marketing_consent"]["consent_updated_at"]
    )
