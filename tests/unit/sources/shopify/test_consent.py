"""Consent topics as outbox items: which changes share an order, and which are one change."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shoprelay.mapping.consent import graphql_consent
from shoprelay.mapping.shopify_fields import ShopifyMetrics
from shoprelay.sources.shopify.consent import EMAIL_TOPIC, SMS_TOPIC, history_items
from shoprelay.sources.shopify.topics import TOPICS, plan
from shoprelay.store.outbox import NewItem

SHOP = "jsmith.myshopify.com"
AT = "2026-11-30T09:15:00Z"


def email(state: str, at: str | None = AT) -> dict[str, Any]:
    consent = {"state": state, "opt_in_level": None, "consent_updated_at": at}
    return {
        "customer_id": 42,
        "email_address": "ann@example.com",
        "email_marketing_consent": consent,
    }


def sms(state: str) -> dict[str, Any]:
    consent = {"state": state, "opt_in_level": None, "consent_updated_at": AT}
    return {"id": 42, "phone": "+16135550123", "sms_marketing_consent": consent}


def items(topic: str, payload: dict[str, Any]) -> list[NewItem]:
    planned = plan(topic, SHOP, payload, ShopifyMetrics())
    assert planned.outcome == "processed", planned.reason
    return planned.items


def consent_item(found: list[NewItem]) -> NewItem:
    return next(item for item in found if item.kind == "consent")


def test_both_topics_are_registered() -> None:
    """`shopify register` reads TOPICS: the consent topics are in it."""
    assert {EMAIL_TOPIC, SMS_TOPIC} <= TOPICS


def test_one_channel_shares_an_order_and_the_two_channels_do_not() -> None:
    """Subscribe and unsubscribe of one channel share a key; email and SMS never do."""
    subscribed = consent_item(items(EMAIL_TOPIC, email("subscribed")))
    unsubscribed = consent_item(items(EMAIL_TOPIC, email("unsubscribed")))
    by_sms = consent_item(items(SMS_TOPIC, sms("subscribed")))
    assert subscribed.ordering_key == unsubscribed.ordering_key != by_sms.ordering_key
    assert subscribed.ordering_version == "2026-11-30T09:15:00.000000Z"
    assert subscribed.dedup_key != unsubscribed.dedup_key


def test_the_properties_have_their_own_order() -> None:
    """A profile item of the same change never supersedes the subscription, nor a customer's
    own profile updates."""
    found = items(EMAIL_TOPIC, email("subscribed"))
    keys = {item.kind: item.ordering_key for item in found}
    assert keys["profile"] != keys["consent"]
    assert keys["profile"] is not None
    assert "customer" not in keys["profile"]


def test_undated_states_are_different_changes() -> None:
    """Without a consent time, two states are still two changes (queue order decides)."""
    first = consent_item(items(EMAIL_TOPIC, email("pending", at=None)))
    second = consent_item(items(EMAIL_TOPIC, email("subscribed", at=None)))
    assert first.dedup_key != second.dedup_key


def test_the_backfill_does_not_resend_a_change_a_webhook_brought() -> None:
    """Same customer, channel, state and time: one dedup key, whichever way it arrived."""
    live = consent_item(items(EMAIL_TOPIC, email("subscribed")))
    node = {"marketingState": "SUBSCRIBED", "consentUpdatedAt": AT}
    backfilled = history_items(
        SHOP, graphql_consent("email", 42, node, "ann@example.com"), datetime.now(UTC)
    )
    assert consent_item(backfilled).dedup_key == live.dedup_key
    assert consent_item(backfilled).ordering_key == live.ordering_key
    assert consent_item(backfilled).body["historical"] is True


def test_redacted_queues_the_change_but_no_properties() -> None:
    """A redacted state orders later changes and writes nothing about the customer."""
    found = items(EMAIL_TOPIC, email("redacted") | {"email_address": None})
    assert [item.kind for item in found] == ["consent"]
    assert found[0].body == {"action": "none", "channel": "email", "historical": False}
