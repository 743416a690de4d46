"""A realistic payload for each Shopify topic shoprelay handles, for `shoprelay send-webhook`.

The samples tell one story with the same ids on every call: the refund is of the sample order,
so a refunds/create sent after orders/create finds its order. Their times are now, so each send
is the newest version of its resource rather than a stale one.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from shoprelay.sim.shopify_orders import cancel_order, fake_order, fake_refund, fulfill_order
from shoprelay.sim.shopify_payloads import fake_cart, fake_checkout, fake_customer

SAMPLE_SEED = 2026
SAMPLE_PHONE = "+16135550123"  # a fictional number (555-01xx)
Payload = dict[str, Any]


def sample_payload(topic: str, *, at: datetime | None = None) -> Payload:
    """The sample for `topic`, stamped `at` (default now); KeyError for a topic without one."""
    return _story(at or datetime.now(UTC))[topic]


def sample_topics() -> list[str]:
    """Every topic with a sample, sorted."""
    return sorted(_story(datetime.now(UTC)))


def _story(at: datetime) -> dict[str, Payload]:
    """One customer's checkout, order, fulfilment, refund and cancellation, drawn the same way
    each time from a fixed seed."""
    rng = random.Random(SAMPLE_SEED)
    customer = fake_customer(rng, at=at)
    # The generator leaves some customers without an email; a sample should reach Klaviyo.
    customer["email"] = customer["email"] or f"sample.{customer['id']}@example.com"
    cart = fake_cart(rng)
    checkout = fake_checkout(rng, customer, at=at, cart=cart) | {"email": customer["email"]}
    order = fake_order(rng, customer, at=at, cart=cart, checkout_token=checkout["token"])
    fulfilled = fulfill_order(rng, order, at=at)
    cancelled, _ = cancel_order(rng, order, at=at)
    refund = fake_refund(rng, order, at=at, line_ids={order["line_items"][0]["id"]})
    return {
        "customers/create": customer,
        "customers/update": customer | {"note": "Updated by hand"},
        "checkouts/create": checkout,
        "checkouts/update": checkout | {"buyer_accepts_marketing": True},
        "orders/create": order,
        "orders/updated": order | {"tags": "sample"},
        "orders/fulfilled": fulfilled,
        "orders/cancelled": cancelled,
        "refunds/create": refund,
        **_consent_samples(customer, at),
        **_privacy_samples(customer, order),
    }


def _privacy_samples(customer: Payload, order: Payload) -> dict[str, Payload]:
    """The customer asks to be forgotten (the compliance topics' shapes), or for their data."""
    shop = {"shop_id": 954889, "shop_domain": "demo-shop.myshopify.com"}
    person = {key: customer.get(key) for key in ("id", "email", "phone")}
    return {
        "customers/redact": shop | {"customer": person, "orders_to_redact": [order["id"]]},
        "customers/data_request": shop
        | {"customer": person, "orders_requested": [order["id"]], "data_request": {"id": 9999}},
        "customers/delete": {
            "id": customer["id"],
            "tax_exemptions": [],
            "admin_graphql_api_id": f"gid://shopify/Customer/{customer['id']}",
        },
        "shop/redact": shop,
    }


def _consent_samples(customer: Payload, at: datetime) -> dict[str, Payload]:
    """The customer subscribes to email and to SMS (the SMS topic's keys are `id`, `phone`)."""
    updated_at = at.isoformat()
    return {
        "customers_email_marketing_consent/update": {
            "customer_id": customer["id"],
            "email_address": customer["email"],
            "email_marketing_consent": {
                "state": "subscribed",
                "opt_in_level": "single_opt_in",
                "consent_updated_at": updated_at,
            },
        },
        "customers_marketing_consent/update": {
            "id": customer["id"],
            "phone": customer.get("phone") or SAMPLE_PHONE,
            "sms_marketing_consent": {
                "state": "subscribed",
                "opt_in_level": "single_opt_in",
                "consent_updated_at": updated_at,
                "consent_collected_from": "SHOPIFY",
            },
        },
    }
