"""Outbox items: the encoded body always matches the body."""

from __future__ import annotations

import dataclasses

import orjson

from shoprelay.store.outbox import NewItem


def test_a_copy_with_another_body_encodes_its_own_body() -> None:
    """replace(body=...) never carries the original's encoding along."""
    original = NewItem("event", "k1", {"unique_id": "a"}, "shopify")
    assert orjson.loads(original.encoded) == {"unique_id": "a"}
    copy = dataclasses.replace(original, dedup_key="k2", body={"unique_id": "b"})
    assert orjson.loads(copy.encoded) == {"unique_id": "b"}
