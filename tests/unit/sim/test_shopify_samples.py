"""`send-webhook`'s samples: one for every topic shoprelay handles, each one it can use, and one
story, so that the sample refund finds the sample order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shoprelay.mapping.shopify_fields import ShopifyMetrics
from shoprelay.sim.shopify_samples import sample_payload, sample_topics
from shoprelay.sources.shopify.privacy import PRIVACY_TOPICS
from shoprelay.sources.shopify.topics import TOPICS, plan, version
from shoprelay.store.plans import ResourceRef

SHOP = "demo-shop.myshopify.com"
AT = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def test_every_handled_topic_has_a_sample() -> None:
    """A topic shoprelay learns to handle needs a sample too; an unknown one has none."""
    assert set(sample_topics()) == TOPICS
    with pytest.raises(KeyError):
        sample_payload("shop/update")


@pytest.mark.parametrize("topic", sorted(TOPICS))
def test_each_sample_is_processed_into_klaviyo_items(topic: str) -> None:
    """No sample is ignored (a checkout without an email) or unprocessable."""
    planned = plan(topic, SHOP, sample_payload(topic, at=AT), ShopifyMetrics())
    assert planned.outcome == "processed", planned.reason
    if topic in PRIVACY_TOPICS:
        # An erasure, or an acknowledged data request: nothing for Klaviyo at planning time.
        assert planned.privacy is not None or topic == "customers/data_request"
    elif planned.finish is None:
        assert planned.items
    else:
        # A refund becomes its event once its order's stored state is at hand.
        assert planned.finish({"profile": {"email": "a@example.com"}}).items


def test_the_refund_is_of_the_sample_order_and_ids_stay_put() -> None:
    """The same ids on every call, so a refund sent after the order finds it."""
    order = sample_payload("orders/create", at=AT)
    planned = plan("refunds/create", SHOP, sample_payload("refunds/create"), ShopifyMetrics())
    assert planned.needs == ResourceRef("order", str(order["id"]))
    assert sample_payload("customers/create")["id"] == sample_payload("customers/create")["id"]


def test_each_send_is_a_newer_version_than_the_last() -> None:
    """Times are the moment of sending, so a resend is not stale."""
    earlier = plan(
        "orders/updated", SHOP, sample_payload("orders/updated", at=AT), ShopifyMetrics()
    )
    later_payload = sample_payload("orders/updated", at=AT + timedelta(minutes=1))
    later = plan("orders/updated", SHOP, later_payload, ShopifyMetrics())
    assert earlier.resource is not None
    assert later.resource is not None
    assert later.resource.version > earlier.resource.version == version(AT)
