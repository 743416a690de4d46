"""What each Shopify topic becomes: a plan of outbox items and resource state."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from shoprelay.mapping import shopify as mapping
from shoprelay.mapping import shopify_customers as customers
from shoprelay.mapping.klaviyo import KlaviyoProfile
from shoprelay.mapping.shopify_fields import ShopifyMetrics, UnmappableError
from shoprelay.mapping.values import as_dict, sortable_utc
from shoprelay.sources.items import event_item, profile_item
from shoprelay.sources.shopify import consent
from shoprelay.sources.shopify.privacy import PRIVACY_TOPICS, customer_links, plan_privacy
from shoprelay.store.plans import UNDATED, Plan, ResourceRef

SOURCE = "shopify"
TOPICS = frozenset(
    {
        "customers/create",
        "customers/update",
        "orders/create",
        "orders/updated",
        "orders/fulfilled",
        "orders/cancelled",
        "refunds/create",
        "checkouts/create",
        "checkouts/update",
        *consent.TOPICS,
        *PRIVACY_TOPICS,
    }
)


def version(moment: datetime | None) -> str:
    """A resource version that sorts as text: UTC with microseconds."""
    return UNDATED if moment is None else sortable_utc(moment)


def plan(topic: str, shop: str, payload: Any, metrics: ShopifyMetrics) -> Plan:
    """Map one verified payload; a payload we cannot use becomes an unprocessable plan."""
    if topic not in TOPICS:
        return Plan(outcome="ignored", reason=f"topic {topic!r} is not one shoprelay handles")
    if not isinstance(payload, dict):
        return Plan(outcome="unprocessable", reason="payload is not a JSON object")
    try:
        if topic in PRIVACY_TOPICS:
            return plan_privacy(topic, shop, payload)
        return _PLANNERS[topic.split("/", 1)[0]](shop, payload, metrics)
    except UnmappableError as exc:
        return Plan(outcome="unprocessable", reason=str(exc))
    except orjson.JSONEncodeError as exc:
        return Plan(outcome="unprocessable", reason=f"cannot be encoded for Klaviyo: {exc}")


def _resource_id(payload: dict[str, Any], key: str = "id") -> str:
    value = payload.get(key)
    if value is None or value == "":
        raise UnmappableError(f"payload has no {key}")
    return str(value)


def _customer(shop: str, payload: dict[str, Any], _: ShopifyMetrics) -> Plan:
    profile = customers.customer_to_profile(payload, shop)
    ref = ResourceRef("customer", _resource_id(payload), version(mapping.updated_at(payload)))
    item = profile_item(profile, SOURCE, f"{shop}:customer:{ref.id}", ref.version)
    links = customer_links(ref.id, profile)
    return Plan("processed", [item], ref, notes=profile.notes, links=links)


def _order(shop: str, payload: dict[str, Any], metrics: ShopifyMetrics) -> Plan:
    ref = ResourceRef("order", _resource_id(payload), version(mapping.updated_at(payload)))
    events = mapping.order_to_events(payload, shop, metrics)
    # Every event carries the order's profile: reuse it rather than map the customer twice.
    profile = events[0].profile if events else customers.order_profile(payload, shop)
    state = {"profile": _identity(profile), "currency": payload.get("currency")}
    items = [event_item(event, SOURCE) for event in events]
    links = customer_links(as_dict(payload.get("customer")).get("id"), profile)
    return Plan("processed", items, ref, state, notes=profile.notes, links=links)


def _identity(profile: KlaviyoProfile) -> dict[str, Any]:
    """What a later refund needs to name the customer: identifiers and names only."""
    return {
        key: value
        for key, value in profile.to_attributes().items()
        if key in {"email", "phone_number", "external_id", "first_name", "last_name"}
    }


def _refund(shop: str, payload: dict[str, Any], metrics: ShopifyMetrics) -> Plan:
    refund_ref = ResourceRef("refund", _resource_id(payload))
    order_id = _resource_id(payload, "order_id")
    # A partial of a module function, not a closure: plans travel between processes.
    finish = functools.partial(_finish_refund, shop, payload, metrics, refund_ref)
    return Plan(
        "processed", resource=refund_ref, needs=ResourceRef("order", order_id), finish=finish
    )


def _finish_refund(
    shop: str,
    payload: dict[str, Any],
    metrics: ShopifyMetrics,
    refund_ref: ResourceRef,
    order_state: dict[str, Any] | None,
) -> Plan:
    if not order_state or not order_state.get("profile"):
        return Plan(
            outcome="unprocessable",
            reason=f"refund for order {payload.get('order_id')}, which shoprelay has not "
            "received yet; replay it once the order has arrived",
        )
    profile = KlaviyoProfile(**order_state["profile"])
    event = mapping.refund_to_event(payload, shop, metrics, profile, order_state.get("currency"))
    return Plan("processed", [event_item(event, SOURCE)], refund_ref)


def _checkout(shop: str, payload: dict[str, Any], metrics: ShopifyMetrics) -> Plan:
    ref = ResourceRef(
        "checkout", _resource_id(payload, "token"), version(mapping.updated_at(payload))
    )
    event = mapping.checkout_to_event(payload, shop, metrics)
    if event is None:
        return Plan("ignored", resource=ref, reason="checkout has no email yet")
    return Plan("processed", [event_item(event, SOURCE)], ref)


_PLANNERS: dict[str, Callable[[str, dict[str, Any], ShopifyMetrics], Plan]] = {
    "customers": _customer,
    "orders": _order,
    "refunds": _refund,
    "checkouts": _checkout,
    "customers_email_marketing_consent": consent.plan_email,
    "customers_marketing_consent": consent.plan_sms,
}
