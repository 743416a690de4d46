"""Shopify marketing consent to Klaviyo subscription changes, one channel at a time. Pure.

| Shopify state    | Klaviyo                                   | `Accepts Marketing` (email) |
|------------------|-------------------------------------------|-----------------------------|
| `subscribed`     | subscribe the channel (into the list)     | true                        |
| `unsubscribed`   | unsubscribe the channel                   | false                       |
| `pending`        | nothing: double opt-in not confirmed yet  | false                       |
| `not_subscribed` | nothing: never asked, or never answered   | false                       |
| `invalid`        | nothing: Klaviyo keeps its own bounces    | false                       |
| `redacted`       | nothing, and no profile property either   | (not sent)                  |

Only an explicit `unsubscribed` unsubscribes: Klaviyo's unsubscribe is global for the channel,
and would undo a consent the person gave Klaviyo directly (a signup form).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shoprelay.mapping.klaviyo import KlaviyoProfile, klaviyo_time, unique_id
from shoprelay.mapping.shopify_fields import UnmappableError
from shoprelay.mapping.values import as_dict, e164, email_address, identifier, optional_time, text

EMAIL = "email"
SMS = "sms"
CHANNELS = (EMAIL, SMS)


class Action(enum.StrEnum):
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"
    NONE = "none"  # no request; the change still orders the customer's later ones


STATE_ACTIONS = {
    "subscribed": Action.SUBSCRIBE,
    "unsubscribed": Action.UNSUBSCRIBE,
    "pending": Action.NONE,
    "not_subscribed": Action.NONE,
    "invalid": Action.NONE,
    "redacted": Action.NONE,
}
# A consent object whose state is null: Shopify holds no consent for the channel.
NO_STATE = "not_subscribed"
# CustomerMarketingConsentState (2026-10's SMS consent) names NOT_SUBSCRIBED so.
_NEVER = {"never_subscribed": NO_STATE}
_PROPERTY_PREFIX = {EMAIL: "Email", SMS: "SMS"}


@dataclass(frozen=True)
class ShopifyConsent:
    """One customer's marketing consent on one channel, as Shopify states it."""

    channel: str
    customer_id: str
    state: str
    updated_at: datetime | None
    email: str | None = None
    phone_number: str | None = None


@dataclass(frozen=True)
class ConsentChange:
    """What Klaviyo is asked to do for one channel of one customer."""

    channel: str
    action: Action
    email: str | None = None
    phone_number: str | None = None
    # Only in a historical import: Klaviyo refuses `consented_at` on a live subscription.
    consented_at: datetime | None = None

    @property
    def historical(self) -> bool:
        return self.consented_at is not None

    def to_body(self) -> dict[str, Any]:
        """The outbox body: the action, and the profile entry of the subscription job."""
        body: dict[str, Any] = {
            "action": self.action.value,
            "channel": self.channel,
            "historical": self.historical,
        }
        if self.action is not Action.NONE:
            body["profile"] = {"type": "profile", "attributes": self._attributes()}
        return body

    def _attributes(self) -> dict[str, Any]:
        if self.action is Action.SUBSCRIBE:
            marketing: dict[str, Any] = {"consent": "SUBSCRIBED"}
            if self.consented_at is not None:
                marketing["consented_at"] = klaviyo_time(self.consented_at)
        else:
            marketing = {"consent": "UNSUBSCRIBED"}
        address = (
            {"email": self.email} if self.channel == EMAIL else {"phone_number": self.phone_number}
        )
        return {**address, "subscriptions": {self.channel: {"marketing": marketing}}}


def email_consent(payload: dict[str, Any]) -> ShopifyConsent:
    """A customers_email_marketing_consent/update payload."""
    consent = as_dict(payload.get("email_marketing_consent"))
    return ShopifyConsent(
        channel=EMAIL,
        customer_id=_customer_id(payload, "customer_id", "id"),
        state=_state(consent.get("state"), EMAIL),
        updated_at=_time(consent.get("consent_updated_at")),
        email=email_address(payload.get("email_address")),
    )


def sms_consent(payload: dict[str, Any]) -> ShopifyConsent:
    """A customers_marketing_consent/update payload (SMS: `id` and `phone`, unlike email's)."""
    consent = as_dict(payload.get("sms_marketing_consent"))
    return ShopifyConsent(
        channel=SMS,
        customer_id=_customer_id(payload, "id", "customer_id"),
        state=_state(consent.get("state"), SMS),
        updated_at=_time(consent.get("consent_updated_at")),
        phone_number=e164(payload.get("phone") or payload.get("phone_number")),
    )


def graphql_consent(
    channel: str, customer_id: object, node: dict[str, Any], address: str | None
) -> ShopifyConsent:
    """An Admin API consent object, for the backfill and catch-up.

    Either the deprecated `emailMarketingConsent` / `smsMarketingConsent` (`marketingState`,
    `consentUpdatedAt`), or what 2026-10 has in their place: `defaultEmailAddress`
    (`marketingState`, `marketingUpdatedAt`) and `defaultPhoneNumber.smsMarketingConsent`
    (`state`, `updatedAt`, where NEVER_SUBSCRIBED is the older NOT_SUBSCRIBED).
    """
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    state = text(_first(node, "marketingState", "state"))
    lowered = state.lower() if state else None
    return ShopifyConsent(
        channel=channel,
        customer_id=_customer_id({"id": customer_id}, "id"),
        state=_state(_NEVER.get(lowered, lowered) if lowered else None, channel),
        updated_at=_time(_first(node, "consentUpdatedAt", "marketingUpdatedAt", "updatedAt")),
        email=email_address(address) if channel == EMAIL else None,
        phone_number=e164(address) if channel == SMS else None,
    )


def _first(node: dict[str, Any], *keys: str) -> object:
    return next((node[key] for key in keys if node.get(key) is not None), None)


def live_change(consent: ShopifyConsent) -> ConsentChange:
    """The change a consent webhook asks for, sent as it happens (Klaviyo's opt-in applies)."""
    return _change(consent, None)


def historical_change(consent: ShopifyConsent, as_of: datetime) -> ConsentChange:
    """The change that imports a customer's current consent, given before `as_of`.

    A subscription is a historical import: Klaviyo sends no double opt-in and starts no "added
    to list" flow, and records `consented_at`, which must be in the past. Without a consent
    time from Shopify (or with one after `as_of`), `as_of` itself is recorded.
    """
    if STATE_ACTIONS[consent.state] is not Action.SUBSCRIBE:
        return _change(consent, None)
    moment = consent.updated_at if consent.updated_at and consent.updated_at < as_of else as_of
    return _change(consent, moment)


def consent_profile(consent: ShopifyConsent, shop: str) -> KlaviyoProfile | None:
    """The profile properties a consent sets; none for a redacted customer, whose data is gone.

    `Accepts Marketing` is the email flag Klaviyo's own Shopify integration sets, so segments
    built on it keep working. The time of the change rides here: a live subscription cannot
    carry `consented_at`, and one job's `custom_source` serves many customers.
    """
    if consent.state == "redacted":
        return None
    prefix = _PROPERTY_PREFIX[consent.channel]
    properties: dict[str, Any] = {}
    if consent.channel == EMAIL:
        properties["Accepts Marketing"] = consent.state == "subscribed"
    properties[f"{prefix} Marketing Consent"] = consent.state
    if consent.updated_at is not None:
        properties[f"{prefix} Marketing Consent Updated At"] = klaviyo_time(consent.updated_at)
    return KlaviyoProfile(
        email=consent.email,
        phone_number=consent.phone_number,
        external_id=unique_id("shopify", shop, consent.customer_id),
        properties=properties,
    )


def _change(consent: ShopifyConsent, consented_at: datetime | None) -> ConsentChange:
    action = STATE_ACTIONS[consent.state]
    if action is not Action.NONE:
        _require_address(consent)
    return ConsentChange(
        channel=consent.channel,
        action=action,
        email=consent.email if consent.channel == EMAIL else None,
        phone_number=consent.phone_number if consent.channel == SMS else None,
        consented_at=consented_at,
    )


def _require_address(consent: ShopifyConsent) -> None:
    if consent.channel == EMAIL and consent.email is None:
        raise UnmappableError(f"email consent {consent.state} without a usable email address")
    if consent.channel == SMS and consent.phone_number is None:
        raise UnmappableError(f"SMS consent {consent.state} without an E.164 phone number")


def _customer_id(payload: dict[str, Any], *keys: str) -> str:
    for key in keys:
        found = identifier(payload.get(key))
        if found is not None:
            return str(found)
    raise UnmappableError(f"consent payload has no {keys[0]}")


def _state(raw: object, channel: str) -> str:
    if raw is None:
        return NO_STATE
    state = text(raw)
    if state is None or state.lower() not in STATE_ACTIONS:
        raise UnmappableError(f"unknown {channel} marketing state {raw!r}")
    return state.lower()


def _time(raw: object) -> datetime | None:
    try:
        return optional_time(raw)
    except ValueError as error:
        raise UnmappableError(f"consent_updated_at is {error}") from None
