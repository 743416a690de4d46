"""A GraphQL Order or Customer in the shape of the webhook JSON, so one mapping serves both.

Pure: no clock, no I/O. Ids come from `legacyResourceId` (or a gid's tail), money from
`*Set.shopMoney` as decimal strings, times in UTC, enums lowercased as webhooks write them,
and connections (`edges`/`nodes`) unwrapped into lists.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

# displayFulfillmentStatus → the webhook's fulfillment_status; anything else is null.
_FULFILLMENT_STATUS = {
    "FULFILLED": "fulfilled",
    "PARTIALLY_FULFILLED": "partial",
    "RESTOCKED": "restocked",
}


def legacy_id(record: dict[str, Any] | None) -> int | None:
    """The numeric id webhooks carry: `legacyResourceId`, else the tail of the gid."""
    if not record:
        return None
    raw = record.get("legacyResourceId")
    if raw is None and isinstance(record.get("id"), str):
        raw = record["id"].rsplit("/", 1)[-1].split("?", 1)[0]
    try:
        return None if raw is None else int(raw)
    except (TypeError, ValueError):
        return None


def nodes(connection: Any) -> list[dict[str, Any]]:
    """The records of a connection, whichever way it was selected; a plain list as it is."""
    if isinstance(connection, list):
        return [item for item in connection if isinstance(item, dict)]
    if not isinstance(connection, dict):
        return []
    if "nodes" in connection:
        return nodes(connection["nodes"])
    return [edge["node"] for edge in connection.get("edges") or [] if edge.get("node")]


def utc(raw: Any) -> str | None:
    """A DateTime in UTC ISO 8601; webhooks use the shop's offset, the mapping reads both."""
    if not isinstance(raw, str) or not raw:
        return None
    moment = datetime.fromisoformat(raw)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _lower(raw: Any) -> str | None:
    return raw.lower() if isinstance(raw, str) else None


def _shop_money(money_bag: Any) -> str | None:
    if not isinstance(money_bag, dict) or not isinstance(money_bag.get("shopMoney"), dict):
        return None
    amount = money_bag["shopMoney"].get("amount")
    return None if amount is None else str(amount)


def _money_set(money_bag: Any) -> dict[str, Any] | None:
    if not isinstance(money_bag, dict):
        return None
    return {
        _snake(key): {"amount": value.get("amount"), "currency_code": value.get("currencyCode")}
        for key, value in money_bag.items()
        if isinstance(value, dict)
    }


def _snake(camel: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)


def address(record: Any) -> dict[str, Any] | None:
    """A MailingAddress as webhooks write one."""
    if not isinstance(record, dict):
        return None
    found = {
        "first_name": record.get("firstName"),
        "last_name": record.get("lastName"),
        "company": record.get("company"),
        "address1": record.get("address1"),
        "address2": record.get("address2"),
        "city": record.get("city"),
        "province": record.get("province"),
        "province_code": record.get("provinceCode"),
        "zip": record.get("zip"),
        "country": record.get("country"),
        "country_code": record.get("countryCodeV2"),
        "country_name": record.get("country"),
        "phone": record.get("phone"),
        "name": record.get("name"),
    }
    return {key: value for key, value in found.items() if value is not None}


def customer(record: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL Customer as the customers/create and customers/update webhooks carry it."""
    default_address = address(record.get("defaultAddress"))
    email = (record.get("defaultEmailAddress") or {}).get("emailAddress", record.get("email"))
    phone = (record.get("defaultPhoneNumber") or {}).get("phoneNumber", record.get("phone"))
    converted = {
        "id": legacy_id(record),
        "admin_graphql_api_id": record.get("id"),
        "email": email,
        "phone": phone,
        "first_name": record.get("firstName"),
        "last_name": record.get("lastName"),
        "state": _lower(record.get("state")),
        "verified_email": record.get("verifiedEmail"),
        "note": record.get("note"),
        "created_at": utc(record.get("createdAt")),
        "updated_at": utc(record.get("updatedAt")),
        "default_address": default_address,
        "addresses": [default_address] if default_address else [],
    }
    if isinstance(record.get("tags"), list):
        converted["tags"] = ", ".join(record["tags"])
    return converted


def _line_item(record: dict[str, Any]) -> dict[str, Any]:
    price_set = record.get("originalUnitPriceSet")
    return {
        "id": legacy_id(record),
        "admin_graphql_api_id": record.get("id"),
        "name": record.get("name"),
        "title": record.get("title"),
        "sku": record.get("sku"),
        "vendor": record.get("vendor"),
        "quantity": record.get("quantity"),
        "variant_title": record.get("variantTitle"),
        "price": _shop_money(price_set),
        "price_set": _money_set(price_set),
        "variant_id": legacy_id(record.get("variant")),
        "product_id": legacy_id(record.get("product")),
    }


def _fulfillment(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": legacy_id(record),
        "admin_graphql_api_id": record.get("id"),
        "name": record.get("name"),
        "status": _lower(record.get("status")),
        "created_at": utc(record.get("createdAt")),
        "updated_at": utc(record.get("updatedAt")),
    }


def _transaction(record: dict[str, Any]) -> dict[str, Any]:
    money = (record.get("amountSet") or {}).get("shopMoney") or {}
    return {
        "id": legacy_id(record),
        "admin_graphql_api_id": record.get("id"),
        "kind": _lower(record.get("kind")),
        "status": _lower(record.get("status")),
        "amount": money.get("amount"),
        "currency": money.get("currencyCode"),
        "gateway": record.get("gateway"),
        "created_at": utc(record.get("createdAt")),
        "processed_at": utc(record.get("processedAt")),
    }


def _refund_line_item(record: dict[str, Any]) -> dict[str, Any]:
    line = record.get("lineItem") or {}
    return {
        "id": legacy_id(record),
        "line_item_id": legacy_id(line),
        "quantity": record.get("quantity"),
        "subtotal": _shop_money(record.get("subtotalSet")),
        "total_tax": _shop_money(record.get("totalTaxSet")),
        "subtotal_set": _money_set(record.get("subtotalSet")),
        "total_tax_set": _money_set(record.get("totalTaxSet")),
        "line_item": {
            "id": legacy_id(line),
            "sku": line.get("sku"),
            "title": line.get("title"),
            "name": line.get("name"),
            "price": _shop_money(line.get("originalUnitPriceSet")),
        },
    }


def refund(record: dict[str, Any], order_id: int | None) -> dict[str, Any]:
    """A GraphQL Refund as the refunds/create webhook carries it."""
    return {
        "id": legacy_id(record),
        "admin_graphql_api_id": record.get("id"),
        "order_id": order_id,
        "created_at": utc(record.get("createdAt")),
        "note": record.get("note"),
        "refund_line_items": [
            _refund_line_item(item) for item in nodes(record.get("refundLineItems"))
        ],
        "transactions": [_transaction(item) for item in nodes(record.get("transactions"))],
    }


def order(record: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL Order as the orders/* webhooks carry it."""
    order_id = legacy_id(record)
    buyer = record.get("customer")
    converted = {
        "id": order_id,
        "admin_graphql_api_id": record.get("id"),
        "name": record.get("name"),
        "order_number": record.get("number"),
        "email": record.get("email"),
        "contact_email": record.get("email"),
        "phone": record.get("phone"),
        "note": record.get("note"),
        "test": record.get("test"),
        "tags": ", ".join(record.get("tags") or []),
        "discount_codes": [{"code": code} for code in record.get("discountCodes") or []],
        "source_name": record.get("sourceName"),
        "created_at": utc(record.get("createdAt")),
        "processed_at": utc(record.get("processedAt")),
        "updated_at": utc(record.get("updatedAt")),
        "cancelled_at": utc(record.get("cancelledAt")),
        "closed_at": utc(record.get("closedAt")),
        "cancel_reason": _lower(record.get("cancelReason")),
        "financial_status": _lower(record.get("displayFinancialStatus")),
        "fulfillment_status": _FULFILLMENT_STATUS.get(record.get("displayFulfillmentStatus") or ""),
        "currency": record.get("currencyCode"),
        "presentment_currency": record.get("presentmentCurrencyCode"),
        "customer": customer(buyer) if isinstance(buyer, dict) else None,
        "billing_address": address(record.get("billingAddress")),
        "shipping_address": address(record.get("shippingAddress")),
        "line_items": [_line_item(item) for item in nodes(record.get("lineItems"))],
        "fulfillments": [_fulfillment(item) for item in nodes(record.get("fulfillments"))],
        "refunds": [refund(item, order_id) for item in nodes(record.get("refunds"))],
    }
    for webhook_key, graphql_key in _MONEY_FIELDS:
        converted[webhook_key] = _shop_money(record.get(graphql_key))
        converted[f"{webhook_key}_set"] = _money_set(record.get(graphql_key))
    return converted


_MONEY_FIELDS = (
    ("total_price", "totalPriceSet"),
    ("subtotal_price", "subtotalPriceSet"),
    ("total_tax", "totalTaxSet"),
    ("total_discounts", "totalDiscountsSet"),
)


def consent_payloads(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A GraphQL Customer's consent, by channel, as the consent topics' webhooks carry it (the
    dead-letter copy a person replays): 2026-10 keeps it on the default email address and phone
    number, whose `NEVER_SUBSCRIBED` the webhooks call `not_subscribed`."""
    found: dict[str, dict[str, Any]] = {}
    customer_id = legacy_id(record)
    email = record.get("defaultEmailAddress")
    if isinstance(email, dict):
        found["email"] = {
            "customer_id": customer_id,
            "email_address": email.get("emailAddress"),
            "email_marketing_consent": {
                "state": _lower(email.get("marketingState")),
                "opt_in_level": _lower(email.get("marketingOptInLevel")),
                "consent_updated_at": utc(email.get("marketingUpdatedAt")),
            },
        }
    phone = record.get("defaultPhoneNumber")
    sms = phone.get("smsMarketingConsent") if isinstance(phone, dict) else None
    if isinstance(phone, dict) and isinstance(sms, dict):
        state = _lower(sms.get("state"))
        found["sms"] = {
            "id": customer_id,
            "phone": phone.get("phoneNumber"),
            "sms_marketing_consent": {
                "state": "not_subscribed" if state == "never_subscribed" else state,
                "opt_in_level": _lower(sms.get("optInLevel")),
                "consent_updated_at": utc(sms.get("updatedAt")),
            },
        }
    return found
