"""Shopify's privacy topics: redaction, deletion and data requests become privacy plans."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from shoprelay.mapping.klaviyo import KlaviyoProfile, unique_id
from shoprelay.mapping.values import as_dict, e164, identifier, text
from shoprelay.store.plans import CustomerLink, Plan, PrivacyRequest, ResourceRef

# Which of them reach Klaviyo by default: a redaction is a privacy request; deleting a
# customer in Shopify's admin is not, so it stays local unless SHOPIFY_DELETE_PROPAGATES.
PROPAGATES_BY_DEFAULT = {
    "customers/redact": True,
    "shop/redact": True,
    "customers/delete": False,
}
PRIVACY_TOPICS = frozenset({*PROPAGATES_BY_DEFAULT, "customers/data_request"})
# Set in the app's configuration (TOML `compliance_topics`, or the dashboard): the Admin API
# cannot subscribe to them, so a registration through it leaves them out.
COMPLIANCE_TOPICS = frozenset({"customers/redact", "shop/redact", "customers/data_request"})


def plan_privacy(topic: str, shop: str, payload: dict[str, Any]) -> Plan:
    """The plan of one privacy topic; `propagate` is the default, the receiver may change it."""
    if topic == "customers/data_request":
        # Nothing changes: the merchant answers it with `shoprelay privacy export`.
        return Plan("processed", reason="data request: answer it with `shoprelay privacy export`")
    propagate = PROPAGATES_BY_DEFAULT[topic]
    if topic == "shop/redact":
        # Every body about the shop's customers carries ids that start so (mapping.klaviyo).
        marker = '"' + unique_id("shopify", shop, "")
        request = PrivacyRequest(topic, shop, markers=(marker,), whole_scope=True)
    elif topic == "customers/delete":
        request = customer_request(topic, shop, payload.get("id"))
    else:
        customer = as_dict(payload.get("customer"))
        orders = [
            found for raw in payload.get("orders_to_redact") or [] if (found := identifier(raw))
        ]
        request = customer_request(
            topic,
            shop,
            customer.get("id"),
            emails=_present([customer.get("email")]),
            phones=phone_forms([customer.get("phone")]),
            orders=[str(order) for order in orders],
        )
    return Plan("processed", privacy=replace(request, propagate=propagate))


def customer_request(
    action: str,
    shop: str,
    customer_id: object,
    *,
    emails: tuple[str, ...] = (),
    phones: tuple[str, ...] = (),
    orders: list[str] | None = None,
) -> PrivacyRequest:
    """Everything that names one Shopify customer: the export and the erasure look for it."""
    found = identifier(customer_id)
    ids = () if found is None else (str(found),)
    markers = tuple(f'"{unique_id("shopify", shop, value)}"' for value in ids)
    markers += tuple(f'"{unique_id("shopify", shop, "order", order)}"' for order in orders or ())
    resources = tuple(ResourceRef("customer", value) for value in ids)
    resources += tuple(ResourceRef("order", order) for order in orders or ())
    return PrivacyRequest(
        action,
        shop,
        customer_ids=ids,
        emails=emails,
        phones=phones,
        markers=markers,
        resources=resources,
    )


def _present(values: list[Any]) -> tuple[str, ...]:
    return tuple(found for value in values if (found := text(value)))


def phone_forms(values: list[Any]) -> tuple[str, ...]:
    """As sent (a copy of the raw payload holds that) and in E.164 (a mapped body holds that)."""
    raw = _present(values)
    return tuple(dict.fromkeys([*raw, *(found for value in raw if (found := e164(value)))]))


def customer_links(customer_id: object, profile: KlaviyoProfile) -> tuple[CustomerLink, ...]:
    """The email and phone a webhook names for a customer id, to remember for its deletion."""
    found = identifier(customer_id)
    if found is None:
        return ()
    pairs = [("email", profile.email), ("phone_number", profile.phone_number)]
    return tuple(
        CustomerLink(str(found), name, value.lower() if name == "email" else value)
        for name, value in pairs
        if value
    )
