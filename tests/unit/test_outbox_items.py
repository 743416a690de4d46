"""Outbox items: the encoded body always matches the body; only ordered kinds are ordered."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from shoprelay.store.outbox import NewItem


def test_a_copy_with_another_body_encodes_its_own_body() -> None:
    """replace(body=...) never carries the original's encoding along."""
    original = NewItem("event", "k1", {"unique_id": "a"}, "shopify")
    assert orjson.loads(original.encoded) == {"unique_id": "a"}
    copy = dataclasses.replace(original, dedup_key="k2", body={"unique_id": "b"})
    assert orjson.loads(copy.encoded) == {"unique_id": "b"}


def test_only_an_ordered_kind_takes_an_ordering_key() -> None:
    """Claims keep the newest-last rule only in ordered lanes: a key on another kind would be
    silently ignored, so it is refused where the item is made."""
    with pytest.raises(ValueError, match="cannot be ordered"):
        NewItem("event", "e1", {}, "shopify", ordering_key="k", ordering_version="v")
    assert NewItem("profile", "p1", {}, "shopify", ordering_key="k").ordering_key == "k"
