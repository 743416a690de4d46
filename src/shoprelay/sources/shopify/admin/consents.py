"""A GraphQL Customer's marketing consent, committed beside the customer by backfill and catch-up.

Each channel is a delivery of its own, on the consent webhooks' resource (`email_consent`,
`sms_consent`) and ordering keys: a state older than one a webhook applied is stale, a state
a webhook delivered already is a duplicate by its outbox key, and a newer webhook that comes
later still wins.

- Backfill: a historical import (`historical_import: true`, the past `consented_at`): the
  customer consented in Shopify long ago, so Klaviyo sends no double opt-in and starts no
  "added to list" flow.
- Catch-up: a change made since the catch-up's start (watermark minus overlap) is a consent
  webhook shoprelay missed while down, and is sent as that webhook would have been: live, so
  the list's opt-in and "added to list" flows (a welcome series) apply as they would have
  hours earlier. An older state it finds (a customer updated for another reason) is history,
  imported as the backfill does.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import orjson

from shoprelay.mapping import consent as mapping
from shoprelay.mapping.consent import EMAIL, SMS, ShopifyConsent
from shoprelay.mapping.shopify_fields import UnmappableError
from shoprelay.sources.shopify.admin.convert import consent_payloads, legacy_id
from shoprelay.sources.shopify.consent import EMAIL_TOPIC, SMS_TOPIC, SOURCE, change_plan
from shoprelay.store.ingest import WebhookDelivery
from shoprelay.store.plans import Plan

_TOPICS = {EMAIL: EMAIL_TOPIC, SMS: SMS_TOPIC}


def consent_nodes(record: dict[str, Any]) -> list[tuple[str, dict[str, Any], str | None]]:
    """(channel, consent object, address) of a GraphQL Customer, for each address it has."""
    found = []
    email = record.get("defaultEmailAddress")
    if isinstance(email, dict):
        found.append((EMAIL, email, email.get("emailAddress")))
    phone = record.get("defaultPhoneNumber")
    if isinstance(phone, dict) and isinstance(phone.get("smsMarketingConsent"), dict):
        found.append((SMS, phone["smsMarketingConsent"], phone.get("phoneNumber")))
    return found


def change_for(
    consent: ShopifyConsent, as_of: datetime, live_since: datetime | None
) -> mapping.ConsentChange:
    """Live for a change made since `live_since` (catch-up's gap), else a historical import."""
    changed = consent.updated_at
    if live_since is not None and changed is not None and changed >= live_since:
        return mapping.live_change(consent)
    return mapping.historical_change(consent, as_of)


def consent_deliveries(
    shop: str,
    record: dict[str, Any],
    *,
    origin: str,
    as_of: datetime,
    live_since: datetime | None = None,
) -> list[WebhookDelivery]:
    """One delivery per channel whose consent Shopify knows; none for a channel never asked
    (no state and no time: there is nothing to import, and no webhook would have come)."""
    deliveries = []
    customer_id = legacy_id(record)
    payloads = consent_payloads(record)
    for channel, node, address in consent_nodes(record):
        # Kept as the consent webhook's JSON: a dead letter replays through the webhook path.
        raw = orjson.dumps(payloads[channel], option=orjson.OPT_SORT_KEYS)
        receipt_id = f"{origin}:{channel}_consent:{customer_id}"
        try:
            consent = mapping.graphql_consent(channel, customer_id, node, address)
            if consent.state == mapping.NO_STATE and consent.updated_at is None:
                continue
            planned = change_plan(shop, consent, change_for(consent, as_of, live_since))
            stamp = consent.updated_at.isoformat() if consent.updated_at else "undated"
            receipt_id = f"{receipt_id}:{stamp}:{consent.state}"
        except UnmappableError as exc:
            planned = Plan("unprocessable", reason=str(exc))
            receipt_id = f"{receipt_id}:unprocessable:{hashlib.sha256(raw).hexdigest()[:16]}"
        deliveries.append(WebhookDelivery(SOURCE, shop, receipt_id, _TOPICS[channel], planned, raw))
    return deliveries
