"""Shopify's privacy topics become privacy plans; deletion jobs name one identifier each."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.klaviyo_schema import validate_request

from shoprelay.delivery.requests import deletion_request
from shoprelay.mapping.shopify_fields import ShopifyMetrics
from shoprelay.sources.deletions import deletion_items
from shoprelay.sources.shopify.topics import TOPICS, plan
from shoprelay.store.plans import ResourceRef

SHOP = "demo-shop.myshopify.com"
SAMPLES = Path(__file__).parents[3] / "fixtures" / "shopify"


def sample(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((SAMPLES / name).read_text())
    return payload


def test_the_privacy_topics_are_registered() -> None:
    """`shopify register` and the receiver both know them."""
    wanted = {"customers/redact", "shop/redact", "customers/delete", "customers/data_request"}
    assert wanted <= TOPICS


def test_customers_redact_names_the_customer_their_orders_and_propagates() -> None:
    """Email, the phone as sent and in E.164 when it parses, the external id and the orders."""
    payload = sample("customers-redact.json")
    payload["customer"]["phone"] = "+1 (415) 555-2671"
    request = plan("customers/redact", SHOP, payload, ShopifyMetrics()).privacy
    assert request is not None
    assert (request.action, request.scope, request.propagate) == ("customers/redact", SHOP, True)
    assert request.customer_ids == ("191167",)
    assert request.emails == ("john@example.com",)
    assert request.phones == ("+1 (415) 555-2671", "+14155552671")
    assert f'"shopify:{SHOP}:191167"' in request.markers
    assert f'"shopify:{SHOP}:order:299938"' in request.markers
    assert ResourceRef("order", "220458") in request.resources


def test_customers_delete_has_only_the_id_and_stays_local_by_default() -> None:
    request = plan("customers/delete", SHOP, {"id": 42}, ShopifyMetrics()).privacy
    assert request is not None
    assert (request.customer_ids, request.emails, request.propagate) == (("42",), (), False)


def test_shop_redact_covers_the_whole_shop() -> None:
    request = plan("shop/redact", SHOP, sample("shop-redact.json"), ShopifyMetrics()).privacy
    assert request is not None
    assert request.whole_scope
    assert request.markers == (f'"shopify:{SHOP}:',)


def test_a_data_request_changes_nothing() -> None:
    planned = plan(
        "customers/data_request", SHOP, sample("customers-data_request.json"), ShopifyMetrics()
    )
    assert (planned.outcome, planned.items, planned.privacy) == ("processed", [], None)


def test_customers_and_orders_link_their_identifiers_to_the_customer_id() -> None:
    """What a later customers/delete needs: the id's email (lower case) and E.164 phone."""
    customer = sample("customers-create.json")
    customer.update(email="Bob@Biller.com", phone="+14155552671")
    links = plan("customers/create", SHOP, customer, ShopifyMetrics()).links
    assert {(link.identifier, link.value) for link in links} == {
        ("email", "bob@biller.com"),
        ("phone_number", "+14155552671"),
    }
    order = plan("orders/create", SHOP, sample("orders-create.json"), ShopifyMetrics())
    assert {link.customer_id for link in order.links} == {
        str(sample("orders-create.json")["customer"]["id"])
    }


def test_deletion_jobs_take_one_identifier_each_and_validate() -> None:
    """An email and an E.164 phone make two jobs; an unusable phone none; keys name no one."""
    items = deletion_items(["John@Example.com"], ["555-625-1199", "+14155552671"], "shopify", "k")
    assert [item.body for item in items] == [
        {"email": "john@example.com"},
        {"phone_number": "+14155552671"},
    ]
    assert all("example" not in item.dedup_key and "4155" not in item.dedup_key for item in items)
    for item in items:
        assert validate_request("request_profile_deletion", deletion_request(item.body)) == []
    again = deletion_items(["john@example.com"], [], "shopify", "k")
    assert again[0].dedup_key == items[0].dedup_key
