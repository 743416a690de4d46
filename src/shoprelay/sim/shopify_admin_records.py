"""Webhook JSON -> the GraphQL Admin view of the same object: the value forms, and Customer.

The shop keeps each order and customer once, as its webhook payload; GraphQL records are drawn
from it, so one change reads the same through a webhook and through the Admin API. Shopify's
GraphQL differs from the webhook JSON in ways a client must handle, and so does this view:
times are UTC with `Z`, enums are upper case, ids are gids (with `legacyResourceId` strings),
money is a `MoneyBag` whose `Decimal` amounts drop trailing zeros ("10.0", "5.99"), tags are a
list, discount codes are bare strings, and nested lists of many are connections.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

Record = dict[str, Any]


def utc(stamp: str | None) -> str | None:
    """A payload time (shop offset) as GraphQL's DateTime: UTC, to the second, with Z."""
    if stamp is None:
        return None
    moment = datetime.fromisoformat(stamp).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def decimal(amount: Any) -> str:
    """Shopify's Decimal scalar: no trailing zeros, but at least one decimal ("10.0")."""
    text = format(Decimal(str(amount)).normalize(), "f")
    return text if "." in text else f"{text}.0"


def money(amount: Any, currency: str = "USD") -> Record:
    return {"__typename": "MoneyV2", "amount": decimal(amount), "currencyCode": currency}


def bag(money_set: dict[str, Any] | None) -> Record | None:
    """A webhook `*_set` as a MoneyBag."""
    if money_set is None:
        return None
    shop, shown = money_set["shop_money"], money_set["presentment_money"]
    return {
        "__typename": "MoneyBag",
        "shopMoney": money(shop["amount"], shop["currency_code"]),
        "presentmentMoney": money(shown["amount"], shown["currency_code"]),
    }


def bag_of(amount: Decimal, currency: str = "USD") -> Record:
    return {
        "__typename": "MoneyBag",
        "shopMoney": money(amount, currency),
        "presentmentMoney": money(amount, currency),
    }


def gid(kind: str, resource_id: Any) -> str:
    return f"gid://shopify/{kind}/{resource_id}"


def upper(value: str | None) -> str | None:
    return value.upper() if value else None


# --- customers --------------------------------------------------------------------------------


def address_record(address: dict[str, Any] | None) -> Record | None:
    if address is None:
        return None
    # Order addresses carry no id in webhooks; derive a stable one from the content.
    address_id = address.get("id") or zlib.crc32(repr(sorted(address.items())).encode())
    return {
        "__typename": "MailingAddress",
        "id": gid("MailingAddress", address_id),
        "address1": address.get("address1"),
        "address2": address.get("address2"),
        "city": address.get("city"),
        "company": address.get("company"),
        "country": address.get("country"),
        "countryCodeV2": address.get("country_code"),
        "firstName": address.get("first_name"),
        "lastName": address.get("last_name"),
        "name": address.get("name"),
        "phone": address.get("phone"),
        "province": address.get("province"),
        "provinceCode": address.get("province_code"),
        "zip": address.get("zip"),
        "latitude": address.get("latitude"),
        "longitude": address.get("longitude"),
        "coordinatesValidated": False,
        "timeZone": None,
        "formattedArea": ", ".join(
            filter(None, (address.get("city"), address.get("province_code"), "United States"))
        ),
    }


def email_consent_record(consent: dict[str, Any] | None) -> Record | None:
    """`email_marketing_consent` of the consent webhook -> CustomerEmailMarketingConsentState."""
    if not consent or consent.get("state") is None:
        return None
    return {
        "__typename": "CustomerEmailMarketingConsentState",
        "marketingState": consent["state"].upper(),
        "marketingOptInLevel": upper(consent.get("opt_in_level")),
        "consentUpdatedAt": utc(consent.get("consent_updated_at")),
        "sourceLocation": None,
    }


def sms_consent_record(consent: dict[str, Any] | None) -> Record | None:
    """`sms_marketing_consent` of the consent webhook -> CustomerSmsMarketingConsentState."""
    if not consent or consent.get("state") is None:
        return None
    return {
        "__typename": "CustomerSmsMarketingConsentState",
        "marketingState": consent["state"].upper(),
        "marketingOptInLevel": upper(consent.get("opt_in_level")) or "UNKNOWN",
        "consentUpdatedAt": utc(consent.get("consent_updated_at")),
        "consentCollectedFrom": upper(consent.get("consent_collected_from")),
        "sourceLocation": None,
    }


def customer_record(
    payload: dict[str, Any],
    *,
    email_consent: dict[str, Any] | None = None,
    sms_consent: dict[str, Any] | None = None,
    tags: list[str] | None = None,
    number_of_orders: int = 0,
) -> Record:
    """A customers/* payload plus what Shopify moved to other topics (consent, tags)."""
    addresses = [address_record(a) for a in payload.get("addresses", [])]
    email_state, sms_state = email_consent_record(email_consent), sms_consent_record(sms_consent)
    email, phone = payload.get("email"), payload.get("phone")
    first, last = payload.get("first_name"), payload.get("last_name")
    return {
        "__typename": "Customer",
        "id": gid("Customer", payload["id"]),
        "legacyResourceId": str(payload["id"]),
        "firstName": first,
        "lastName": last,
        "displayName": " ".join(filter(None, (first, last))) or email or phone or "",
        "email": email,
        "phone": phone,
        "createdAt": utc(payload["created_at"]),
        "updatedAt": utc(payload["updated_at"]),
        "note": payload.get("note"),
        "state": (payload.get("state") or "disabled").upper(),
        "verifiedEmail": bool(payload.get("verified_email")),
        "validEmailAddress": email is not None,
        "taxExempt": bool(payload.get("tax_exempt")),
        "taxExemptions": [],
        "tags": list(tags or []),
        "locale": "en",
        "multipassIdentifier": payload.get("multipass_identifier"),
        "numberOfOrders": str(number_of_orders),
        "defaultAddress": address_record(payload.get("default_address")),
        "addresses": addresses,
        "addressesV2": addresses,
        "emailMarketingConsent": email_state,
        "smsMarketingConsent": sms_state if phone else None,
        "defaultEmailAddress": _email_address(email, email_state),
        "defaultPhoneNumber": _phone_number(phone, sms_state),
    }


def _email_address(email: str | None, state: Record | None) -> Record | None:
    if email is None:
        return None
    return {
        "__typename": "CustomerEmailAddress",
        "emailAddress": email,
        "marketingState": state["marketingState"] if state else "NOT_SUBSCRIBED",
        "marketingOptInLevel": state["marketingOptInLevel"] if state else None,
        "marketingUpdatedAt": state["consentUpdatedAt"] if state else None,
        "validFormat": True,
    }


_NEVER = {"NOT_SUBSCRIBED": "NEVER_SUBSCRIBED"}


def _phone_number(phone: str | None, state: Record | None) -> Record | None:
    if phone is None:
        return None
    consent = {
        "__typename": "CustomerSmsMarketingConsent",
        # CustomerMarketingConsentState says NEVER_SUBSCRIBED where the older enum said NOT_.
        "state": _NEVER.get(state["marketingState"], state["marketingState"])
        if state
        else "NEVER_SUBSCRIBED",
        "optInLevel": state["marketingOptInLevel"] if state else None,
        "updatedAt": state["consentUpdatedAt"] if state else None,
        "collectedFrom": state["consentCollectedFrom"] if state else None,
        "sourceLocation": None,
    }
    return {
        "__typename": "CustomerPhoneNumber",
        "phoneNumber": phone,
        "smsMarketingConsent": consent,
    }
