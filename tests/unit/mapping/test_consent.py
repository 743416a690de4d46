"""Shopify's consent states become the Klaviyo changes a careful merchant expects."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shoprelay.mapping.consent import (
    Action,
    ConsentChange,
    consent_profile,
    email_consent,
    graphql_consent,
    historical_change,
    live_change,
    sms_consent,
)
from shoprelay.mapping.shopify_fields import UnmappableError

SAMPLES = Path(__file__).parents[2] / "fixtures" / "shopify"
SHOP = "jsmith.myshopify.com"
AT = "2026-11-30T09:15:00-05:00"
AS_OF = datetime(2026, 12, 4, tzinfo=UTC)


def email_payload(
    state: str | None, email: str | None = "bob@biller.com", at: str | None = AT
) -> dict[str, Any]:
    sample: dict[str, Any] = json.loads(
        (SAMPLES / "customers-email-marketing-consent-update.json").read_text()
    )
    sample["email_address"] = email
    sample["email_marketing_consent"] |= {"state": state, "consent_updated_at": at}
    return sample


def sms_payload(state: str | None, phone: str | None = "+16135550123") -> dict[str, Any]:
    return {
        "id": 706405506930370084,
        "phone": phone,
        "sms_marketing_consent": {
            "state": state,
            "opt_in_level": "single_opt_in",
            "consent_updated_at": AT,
            "consent_collected_from": "OTHER",
        },
    }


def test_the_reference_sample_asks_klaviyo_for_nothing() -> None:
    """The docs sample (not_subscribed, no time) changes no subscription; the flag is false."""
    sample = json.loads((SAMPLES / "customers-email-marketing-consent-update.json").read_text())
    consent = email_consent(sample)
    assert consent.customer_id == "706405506930370084"
    assert consent.updated_at is None
    assert live_change(consent).to_body() == {
        "action": "none",
        "channel": "email",
        "historical": False,
    }
    profile = consent_profile(consent, SHOP)
    assert profile is not None
    assert profile.to_attributes()["properties"] == {
        "Accepts Marketing": False,
        "Email Marketing Consent": "not_subscribed",
    }


@pytest.mark.parametrize(
    ("state", "action", "accepts"),
    [
        ("subscribed", Action.SUBSCRIBE, True),
        ("unsubscribed", Action.UNSUBSCRIBE, False),
        ("pending", Action.NONE, False),
        ("not_subscribed", Action.NONE, False),
        ("invalid", Action.NONE, False),
        (None, Action.NONE, False),
    ],
)
def test_each_email_state_maps_to_its_action_and_flag(
    state: str | None, action: Action, accepts: bool
) -> None:
    """Only `subscribed` subscribes, only `unsubscribed` unsubscribes; the rest change nothing."""
    consent = email_consent(email_payload(state))
    assert live_change(consent).action is action
    profile = consent_profile(consent, SHOP)
    assert profile is not None
    assert profile.properties["Accepts Marketing"] is accepts
    assert profile.email == "bob@biller.com"
    assert profile.external_id == f"shopify:{SHOP}:706405506930370084"


def test_a_live_subscription_carries_no_consent_time() -> None:
    """Klaviyo refuses consented_at outside a historical import: the time rides as a property."""
    consent = email_consent(email_payload("subscribed"))
    assert live_change(consent).to_body() == {
        "action": "subscribe",
        "channel": "email",
        "historical": False,
        "profile": {
            "type": "profile",
            "attributes": {
                "email": "bob@biller.com",
                "subscriptions": {"email": {"marketing": {"consent": "SUBSCRIBED"}}},
            },
        },
    }
    profile = consent_profile(consent, SHOP)
    assert profile is not None
    assert profile.properties["Email Marketing Consent Updated At"] == "2026-11-30T14:15:00Z"


def test_sms_uses_its_own_keys_and_channel() -> None:
    """The SMS topic's `id` and `phone` name the customer; the change is on the sms channel."""
    consent = sms_consent(sms_payload("unsubscribed"))
    change = live_change(consent)
    assert consent.customer_id == "706405506930370084"
    assert change.to_body()["profile"]["attributes"] == {
        "phone_number": "+16135550123",
        "subscriptions": {"sms": {"marketing": {"consent": "UNSUBSCRIBED"}}},
    }
    profile = consent_profile(consent, SHOP)
    assert profile is not None
    assert "Accepts Marketing" not in profile.properties  # an email flag, as Klaviyo's own
    assert profile.properties["SMS Marketing Consent"] == "unsubscribed"


def test_a_redacted_customer_gets_no_profile_properties() -> None:
    """Redacted: nothing to subscribe and no profile written that would bring the data back."""
    consent = email_consent(email_payload("redacted", email=None))
    assert live_change(consent).action is Action.NONE
    assert consent_profile(consent, SHOP) is None


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (email_payload("subscribed", email="not an address"), "without a usable email"),
        (sms_payload("subscribed", phone="12"), "without an E.164 phone"),
        (email_payload("opted_in"), "unknown email marketing state"),
        (email_payload("subscribed", at="yesterday"), "consent_updated_at"),
        ({"email_marketing_consent": {"state": "subscribed"}}, "no customer_id"),
    ],
)
def test_a_change_that_cannot_reach_klaviyo_is_unmappable(
    payload: dict[str, Any], message: str
) -> None:
    """A subscription without its address, or an unknown state, becomes a dead letter."""
    parse = sms_consent if "sms_marketing_consent" in payload else email_consent
    with pytest.raises(UnmappableError, match=message):
        live_change(parse(payload))


def test_the_backfill_imports_a_subscription_as_history() -> None:
    """The current consent goes as a historical import with its past consent time."""
    node = {"marketingState": "SUBSCRIBED", "consentUpdatedAt": "2025-03-01T10:00:00Z"}
    consent = graphql_consent("email", "gid-less-42", node, "ann@example.com")
    body = historical_change(consent, AS_OF).to_body()
    assert body["historical"] is True
    assert body["profile"]["attributes"]["subscriptions"] == {
        "email": {"marketing": {"consent": "SUBSCRIBED", "consented_at": "2025-03-01T10:00:00Z"}}
    }


def test_the_backfill_records_its_own_time_when_shopify_has_none_or_a_future_one() -> None:
    """Klaviyo needs a past consented_at; without a usable one, the backfill's time is it."""
    for when in (None, "2027-01-01T00:00:00Z"):
        node = {"marketingState": "SUBSCRIBED", "consentUpdatedAt": when}
        change = historical_change(graphql_consent("sms", 42, node, "+16135550123"), AS_OF)
        assert change.consented_at == AS_OF


def test_the_backfill_sends_other_states_as_live_changes() -> None:
    """Unsubscribe has no historical form; states that ask for nothing still ask for nothing."""
    unsubscribed = graphql_consent("email", 1, {"marketingState": "UNSUBSCRIBED"}, "a@b.co")
    assert historical_change(unsubscribed, AS_OF) == ConsentChange(
        "email", Action.UNSUBSCRIBE, email="a@b.co"
    )
    pending = graphql_consent("sms", 1, {"marketingState": "PENDING"}, None)
    assert historical_change(pending, AS_OF).action is Action.NONE
