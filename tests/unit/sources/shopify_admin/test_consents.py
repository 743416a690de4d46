"""A GraphQL Customer's consent (2026-10 shape) becomes one delivery per channel."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from shoprelay.mapping.consent import graphql_consent
from shoprelay.mapping.shopify_fields import ShopifyMetrics
from shoprelay.sources.shopify.admin.consents import consent_deliveries
from shoprelay.sources.shopify.topics import plan

SHOP = "sim-shop.myshopify.com"
AS_OF = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
SINCE = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def customer(email: dict[str, Any] | None, sms: dict[str, Any] | None, phone: str = "+16135550123"):
    record: dict[str, Any] = {"id": "gid://shopify/Customer/42", "legacyResourceId": "42"}
    if email is not None:
        record["defaultEmailAddress"] = {"emailAddress": "ann@example.com", **email}
    if sms is not None:
        record["defaultPhoneNumber"] = {"phoneNumber": phone, "smsMarketingConsent": sms}
    return record


def bodies(record: dict[str, Any], **kwargs: Any) -> dict[str, dict[str, Any]]:
    """The consent item's body of each delivery, by topic."""
    found = {}
    for delivery in consent_deliveries(SHOP, record, as_of=AS_OF, **kwargs):
        assert delivery.plan.outcome == "processed", delivery.plan.reason
        (item,) = [item for item in delivery.plan.items if item.kind == "consent"]
        found[delivery.topic.split("/")[0]] = item.body
    return found


def test_the_2026_10_shapes_are_read() -> None:
    sms = graphql_consent("sms", 42, {"state": "NEVER_SUBSCRIBED", "updatedAt": None}, None)
    assert sms.state == "not_subscribed"
    email = graphql_consent(
        "email",
        42,
        {"marketingState": "SUBSCRIBED", "marketingUpdatedAt": "2026-01-02T03:04:05Z"},
        "a@b.co",
    )
    assert (email.state, email.updated_at) == (
        "subscribed",
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )


def test_a_backfill_imports_subscriptions_as_history_with_their_time() -> None:
    record = customer(
        {"marketingState": "SUBSCRIBED", "marketingUpdatedAt": "2026-03-01T10:00:00Z"},
        {"state": "UNSUBSCRIBED", "updatedAt": "2026-03-02T10:00:00Z"},
    )
    found = bodies(record, origin="backfill")
    email = found["customers_email_marketing_consent"]
    assert email["historical"] is True
    marketing = email["profile"]["attributes"]["subscriptions"]["email"]["marketing"]
    assert marketing == {"consent": "SUBSCRIBED", "consented_at": "2026-03-01T10:00:00Z"}
    assert found["customers_marketing_consent"]["action"] == "unsubscribe"


def test_catch_up_sends_a_change_within_its_gap_live_and_an_older_one_as_history() -> None:
    record = customer(
        {"marketingState": "SUBSCRIBED", "marketingUpdatedAt": "2026-12-04T10:00:00Z"},
        {"state": "SUBSCRIBED", "updatedAt": "2026-03-02T10:00:00Z"},
    )
    found = bodies(record, origin="catchup", live_since=SINCE)
    assert found["customers_email_marketing_consent"]["historical"] is False
    assert found["customers_marketing_consent"]["historical"] is True


def test_a_channel_never_asked_is_left_out_and_the_receipts_are_stable() -> None:
    record = customer(
        {"marketingState": "NOT_SUBSCRIBED", "marketingUpdatedAt": None}, {"state": "PENDING"}
    )
    first = consent_deliveries(SHOP, record, origin="backfill", as_of=AS_OF)
    assert [delivery.topic for delivery in first] == ["customers_marketing_consent/update"]
    again = consent_deliveries(SHOP, record, origin="backfill", as_of=AS_OF)
    assert [d.webhook_id for d in again] == [d.webhook_id for d in first]
    assert consent_deliveries(SHOP, customer(None, None), origin="backfill", as_of=AS_OF) == []


def test_a_subscription_without_a_usable_phone_is_kept_as_unprocessable() -> None:
    record = customer(
        None, {"state": "SUBSCRIBED", "updatedAt": "2026-03-02T10:00:00Z"}, phone="555"
    )
    (delivery,) = consent_deliveries(SHOP, record, origin="backfill", as_of=AS_OF)
    assert delivery.plan.outcome == "unprocessable"
    assert "E.164" in (delivery.plan.reason or "")
    assert b"555" in delivery.raw_body  # what a person replays from the dead letter


def test_the_kept_copy_is_the_consent_webhook_and_replays_to_the_same_items() -> None:
    record = customer(
        {"marketingState": "SUBSCRIBED", "marketingUpdatedAt": "2026-03-01T10:00:00Z"},
        {"state": "NEVER_SUBSCRIBED", "updatedAt": "2026-03-02T10:00:00Z"},
    )
    for delivery in consent_deliveries(SHOP, record, origin="backfill", as_of=AS_OF):
        replayed = plan(delivery.topic, SHOP, orjson.loads(delivery.raw_body), ShopifyMetrics())
        assert replayed.outcome == "processed", replayed.reason
        assert replayed.resource == delivery.plan.resource
        keys = [item.dedup_key for item in delivery.plan.items]
        assert [item.dedup_key for item in replayed.items] == keys
