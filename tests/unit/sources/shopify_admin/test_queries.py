"""Every GraphQL document shoprelay sends is valid for the Admin API version it pins."""

from __future__ import annotations

import functools
import gzip
import json
from pathlib import Path

import pytest
from graphql import GraphQLSchema, build_client_schema, parse, validate

import shoprelay.sim
from shoprelay.sources.shopify.admin import queries

# Shopify's official introspection of Admin API 2026-10; the simulator validates against it too.
SCHEMA = Path(shoprelay.sim.__file__).parent / "data" / "shopify_admin_2026-10.json.gz"


@functools.cache
def schema() -> GraphQLSchema:
    with gzip.open(SCHEMA) as file:
        built = build_client_schema(json.load(file)["data"])
    # Shopify's deprecation markers on interface fields fail graphql-core's schema check,
    # which says nothing about the documents: mark the schema as checked.
    built._validation_errors = []  # type: ignore[attr-defined]
    return built


SINCE = "2026-09-05T00:00:00Z"
DOCUMENTS = dict(queries.PAGED_DOCUMENTS) | {
    "bulk orders": queries.bulk_orders_query(queries.created_since(SINCE)),
    "bulk customers": queries.bulk_customers_query(queries.updated_since(SINCE)),
}


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_document_is_valid_for_the_pinned_version(name: str) -> None:
    assert queries.SCHEMA_VERSION == "2026-10"
    errors = validate(schema(), parse(DOCUMENTS[name]))
    assert errors == [], [error.message for error in errors]


def test_a_wrong_field_is_caught() -> None:
    # The check itself can fail: a field 2026-10 removed (`callbackUrl` on the input still
    # exists, deprecated; `endpoint` selection without subfields does not validate).
    broken = queries.SHOP.replace("ianaTimezone", "timezone")
    assert validate(schema(), parse(broken))


def test_bulk_queries_keep_shopifys_limits() -> None:
    # At most five connections, nested at most two deep, and no `first` inside.
    document = DOCUMENTS["bulk orders"]
    assert document.count("edges") <= 5
    # Lists (fulfillments, refunds) may keep theirs: they are not connections.
    lists_removed = document.replace("fulfillments (first: 50)", "").replace(
        "refunds (first: 50)", ""
    )
    assert "first:" not in lists_removed
    assert "pageInfo" not in document
    # No connection inside a list: refunds' details come from OrderRefunds.
    assert "refundLineItems" not in document
