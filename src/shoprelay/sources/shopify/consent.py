"""Shopify's consent topics, and the history backfill's current consent, as outbox items."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from shoprelay.mapping import consent as mapping
from shoprelay.mapping.consent import ConsentChange, ShopifyConsent
from shoprelay.mapping.shopify_fields import ShopifyMetrics
from shoprelay.mapping.values import sortable_utc
from shoprelay.sources.shopify.privacy import customer_links
from shoprelay.store.outbox import NewItem
from shoprelay.store.plans import UNDATED, Plan, ResourceRef

SOURCE = "shopify"
CONSENT_KIND = "consent"
# Since API 2025-01 consent is not in customer payloads: these topics are its source.
EMAIL_TOPIC = "customers_email_marketing_consent/update"
SMS_TOPIC = "customers_marketing_consent/update"
TOPICS = (EMAIL_TOPIC, SMS_TOPIC)


def plan_email(shop: str, payload: dict[str, Any], _: ShopifyMetrics) -> Plan:
    """customers_email_marketing_consent/update."""
    return _plan(shop, mapping.email_consent(payload))


def plan_sms(shop: str, payload: dict[str, Any], _: ShopifyMetrics) -> Plan:
    """customers_marketing_consent/update (SMS)."""
    return _plan(shop, mapping.sms_consent(payload))


def _plan(shop: str, consent: ShopifyConsent) -> Plan:
    return change_plan(shop, consent, mapping.live_change(consent))


def change_plan(shop: str, consent: ShopifyConsent, change: ConsentChange) -> Plan:
    """The plan of one channel's consent change, live (a webhook) or historical (a backfill)."""
    # The resource's version makes an older change that arrives later "stale": it queues
    # nothing. Changes committed side by side are ordered by the outbox's ordering key.
    ref = ResourceRef(f"{consent.channel}_consent", consent.customer_id, _version(consent))
    items = consent_items(shop, consent, change)
    # Remembered so a customers/delete, which carries only the id, finds this address too.
    profile = mapping.consent_profile(consent, shop)
    links = customer_links(consent.customer_id, profile) if profile else ()
    return Plan("processed", items, ref, links=links)


def history_items(shop: str, consent: ShopifyConsent, as_of: datetime) -> list[NewItem]:
    """The items that import a customer's current consent (for the Shopify history backfill).

    They share the webhooks' ordering keys and dedup keys: a change already received is not
    sent again, and a newer one received meanwhile is never overridden. `as_of` is when the
    backfill started (a consent time must be in the past when Klaviyo gets it). A change
    that needs an address the customer lacks raises UnmappableError.
    """
    return consent_items(shop, consent, mapping.historical_change(consent, as_of))


def consent_items(shop: str, consent: ShopifyConsent, change: ConsentChange) -> list[NewItem]:
    """The subscription change (always queued, to order later changes) and the profile's
    consent properties, each with its own ordering key per customer and channel."""
    version = _version(consent)
    identity = f"{SOURCE}:{shop}:{consent.customer_id}:{consent.channel}"
    digest = _digest(identity, version, consent.state)
    items = [
        NewItem(
            CONSENT_KIND,
            f"consent:{digest}",
            change.to_body(),
            SOURCE,
            ordering_key=f"consent:{identity}",
            ordering_version=version,
        )
    ]
    profile = mapping.consent_profile(consent, shop)
    if profile is not None:
        items.append(
            NewItem(
                "profile",
                f"profile:consent:{digest}",
                profile.to_attributes(),
                SOURCE,
                ordering_key=f"profile:consent:{identity}",
                ordering_version=version,
            )
        )
    return items


def _version(consent: ShopifyConsent) -> str:
    return UNDATED if consent.updated_at is None else sortable_utc(consent.updated_at)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]
