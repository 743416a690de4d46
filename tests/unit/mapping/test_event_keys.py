"""Event outbox keys: one per (metric, unique_id), in the order sources hand out ids."""

from __future__ import annotations

import random

from shoprelay.mapping.klaviyo import dedup_key
from shoprelay.sim.shopify_payloads import new_id
from shoprelay.store.schema import outbox


def test_a_key_names_one_metric_and_unique_id() -> None:
    key = dedup_key("shopify:s.myshopify.com:order:1001", "Placed Order")
    assert key == dedup_key("shopify:s.myshopify.com:order:1001", "Placed Order")
    assert key != dedup_key("shopify:s.myshopify.com:order:1001", "Fulfilled Order")
    assert key != dedup_key("shopify:s.myshopify.com:order:1002", "Placed Order")


def test_keys_of_growing_ids_sort_in_id_order() -> None:
    """Each new key lands after the last one in the unique index: an append, not a random page."""
    ids = sorted(random.Random(3).sample(range(10**12, 10**13), 200))
    keys = [dedup_key(f"shopify:s.myshopify.com:line:{n}", "Ordered Product") for n in ids]
    assert keys == sorted(keys)


def test_a_long_unique_id_still_fits_the_key_column_and_stays_unique() -> None:
    shared = "x" * 300
    first, second = dedup_key(shared + "a", "Placed Order"), dedup_key(shared + "b", "Placed Order")
    assert first != second
    assert max(len(first), len(second)) <= outbox.c.dedup_key.type.length


def test_a_generator_hands_out_growing_ids_of_shopify_size() -> None:
    rng = random.Random(11)
    ids = [new_id(rng) for _ in range(1_000)]
    assert ids == sorted(set(ids))
    assert all(10**12 <= n < 10**13 for n in ids)
    again = random.Random(11)
    assert [new_id(again) for _ in range(1_000)] == ids  # the same seed, the same ids
