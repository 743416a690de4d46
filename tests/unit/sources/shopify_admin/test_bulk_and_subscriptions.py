"""Bulk rows join their parents as they stream; subscriptions are planned by their name mark."""

from __future__ import annotations

from typing import Any

import pytest

from shoprelay.sources.shopify import topics
from shoprelay.sources.shopify.admin import convert
from shoprelay.sources.shopify.admin.backfill import reach
from shoprelay.sources.shopify.admin.bulk import Assembler
from shoprelay.sources.shopify.admin.client import ShopifyAdminError
from shoprelay.sources.shopify.admin.subscriptions import (
    BadWebhookUrl,
    Subscription,
    check_url,
    enum_name,
    plan_subscriptions,
    subscription_name,
    wanted_topics,
)

URL = "https://relay.example.com/webhooks/shopify"


def _rows() -> list[dict[str, Any]]:
    order = "gid://shopify/Order/1"
    refund = "gid://shopify/Refund/9"
    return [
        {"id": order, "refunds": [{"id": refund, "createdAt": "2026-11-01T00:00:00Z"}]},
        {"id": "gid://shopify/LineItem/11", "quantity": 1, "__parentId": order},
        {"id": "gid://shopify/LineItem/12", "quantity": 2, "__parentId": order},
        {
            "id": "gid://shopify/RefundLineItem/21",
            "quantity": 1,
            "subtotalSet": {"shopMoney": {"amount": "5.00"}},
            "lineItem": {"id": "gid://shopify/LineItem/11"},
            "__parentId": refund,
        },
        {
            "id": "gid://shopify/OrderTransaction/31",
            "kind": "REFUND",
            "status": "SUCCESS",
            "amountSet": {"shopMoney": {"amount": "5.00", "currencyCode": "USD"}},
            "__parentId": refund,
        },
        {"id": "gid://shopify/Order/2", "refunds": []},
        {"id": "gid://shopify/LineItem/13", "quantity": 1, "__parentId": "gid://shopify/Order/2"},
    ]


def test_children_join_the_record_they_follow() -> None:
    assembler = Assembler()
    finished = [record for row in _rows() if (record := assembler.feed(row)) is not None]
    finished.append(assembler.finish())
    assert [record["id"] for record in finished] == [
        "gid://shopify/Order/1",
        "gid://shopify/Order/2",
    ]
    first = convert.order(finished[0])
    assert [line["id"] for line in first["line_items"]] == [11, 12]
    refund = first["refunds"][0]
    assert refund["refund_line_items"][0]["line_item"]["id"] == 11
    assert refund["transactions"][0] == refund["transactions"][0] | {
        "kind": "refund",
        "status": "success",
        "amount": "5.00",
    }
    assert [line["id"] for line in convert.order(finished[1])["line_items"]] == [13]


def test_a_child_away_from_its_parent_is_refused() -> None:
    assembler = Assembler()
    assembler.feed({"id": "gid://shopify/Order/1"})
    assembler.feed({"id": "gid://shopify/Order/2"})
    with pytest.raises(ShopifyAdminError, match="groupObjects"):
        assembler.feed({"id": "gid://shopify/LineItem/1", "__parentId": "gid://shopify/Order/1"})


def test_topics_come_from_the_registry() -> None:
    assert set(wanted_topics()) == set(topics.TOPICS) - {
        "customers/data_request",
        "customers/redact",
        "shop/redact",
    }
    assert enum_name("orders/create") == "ORDERS_CREATE"
    assert enum_name("customers_email_marketing_consent/update") == (
        "CUSTOMERS_EMAIL_MARKETING_CONSENT_UPDATE"
    )
    assert len(subscription_name("customers_email_marketing_consent/update")) <= 50


def test_plan_creates_missing_repoints_ours_and_leaves_others_alone() -> None:
    existing = [
        Subscription("gid://1", "ORDERS_CREATE", URL, subscription_name("orders/create")),
        Subscription(
            "gid://2", "ORDERS_UPDATED", "https://old/x", subscription_name("orders/updated")
        ),
        Subscription("gid://3", "ORDERS_CANCELLED", "https://someone-else/x", "their-hook"),
        Subscription("gid://4", "REFUNDS_CREATE", "https://someone-else/y", None),
    ]
    planned = plan_subscriptions(existing, URL)
    assert planned.in_place == ["orders/create"]
    assert [(topic, sub.id) for topic, sub in planned.repoint] == [("orders/updated", "gid://2")]
    assert "orders/cancelled" in planned.create
    assert "refunds/create" in planned.create
    assert {sub.id for sub in planned.foreign} == {"gid://3", "gid://4"}
    assert planned.changes == len(wanted_topics()) - 1


@pytest.mark.parametrize(
    "url", ["https://relay.example.com/webhooks/shopify", "http://127.0.0.1:8000/webhooks/shopify"]
)
def test_urls_shopify_can_deliver_to(url: str) -> None:
    assert check_url(url) == url


@pytest.mark.parametrize("url", ["http://relay.example.com/webhooks", "ftp://x", "relay"])
def test_urls_refused(url: str) -> None:
    with pytest.raises(BadWebhookUrl):
        check_url(url)


def test_reach_without_read_all_orders_is_sixty_days() -> None:
    assert reach(90, {"read_orders", "read_all_orders"}) == (90, None)
    days, note = reach(90, {"read_orders"})
    assert days == 60
    assert note is not None
    assert "read_all_orders" in note
    assert reach(30, {"read_orders"}) == (30, None)
