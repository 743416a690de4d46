"""The Shopify simulator's query cost and leaky bucket follow Shopify's documented rules."""

from __future__ import annotations

import pytest

from shoprelay.sim.shopify_admin_cost import CostBucket, query_cost
from shoprelay.sim.shopify_admin_schema import RequestError, prepare

ORDERS_WITH_LINES = """
{ orders(first: 10) {
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id name lineItems(first: 5) { nodes { title variant { id } } } } }
} }
"""


@pytest.mark.parametrize(
    ("query", "cost"),
    [
        # An object is 1; its scalars are free.
        ("{ shop { name currencyCode ianaTimezone } }", 1),
        # Two objects, and a list of objects counts as one.
        ("{ shop { name } currentAppInstallation { accessScopes { handle } } }", 3),
        # A connection: 2 + first x (1 for the node + what it selects).
        ("{ orders(first: 10) { nodes { id customer { id } } } }", 2 + 10 * (1 + 1)),
        # Nested: 2 + 10 x (1 + (2 + 5 x (1 + 1))); pageInfo is free.
        (ORDERS_WITH_LINES, 2 + 10 * (1 + 2 + 5 * 2)),
        # An interface costs its dearest selection.
        (
            '{ node(id: "gid://shopify/Order/1") '
            "{ id ... on Order { customer { id } } ... on Customer { email } } }",
            1 + 1,
        ),
        # Every mutation field costs 10.
        ('mutation { webhookSubscriptionDelete(id: "x") { userErrors { message } } }', 10),
    ],
)
def test_requested_cost(query: str, cost: int) -> None:
    assert query_cost(prepare(query, None)) == cost


def test_the_page_size_may_come_from_a_variable() -> None:
    request = prepare("query($n: Int!) { orders(first: $n) { nodes { id } } }", {"n": 40})
    assert query_cost(request) == 2 + 40


def test_actual_cost_counts_the_nodes_that_came_back() -> None:
    request = prepare(ORDERS_WITH_LINES, None)
    lines = {"nodes": [{"title": "a", "variant": {"id": "v"}}, {"title": "b", "variant": None}]}
    data = {"orders": {"pageInfo": {}, "edges": [{"cursor": "c", "node": {"lineItems": lines}}]}}
    # 2 + one order (1 + its lines: 2 + (1 + 1) + (1 + 0 for the null variant)).
    assert query_cost(request, data) == 2 + (1 + 2 + 2 + 1)


def test_a_query_the_schema_does_not_have_is_refused_in_shopifys_words() -> None:
    with pytest.raises(RequestError) as refused:
        prepare("{ orders(first: 1) { nodes { id colour } } }", None)
    (error,) = refused.value.errors
    assert error["message"] == "Field 'colour' doesn't exist on type 'Order'"
    assert error["extensions"] == {"code": "undefinedField"}


def test_the_bucket_charges_refunds_and_refills() -> None:
    bucket = CostBucket(maximum=100, restore_rate=10, updated=0.0)
    bucket.refill(now=0.0)
    assert bucket.take(80, now=0.0)
    bucket.refund(80, 30)  # the query cost less than asked: 50 come back
    assert bucket.available == 70
    assert not bucket.take(90, now=0.0)  # throttled, nothing charged
    assert bucket.throttled == 1
    assert bucket.take(90, now=2.0)  # two seconds later 20 more are there
    assert bucket.available == pytest.approx(0.0)
    bucket.refill(now=100.0)
    assert bucket.available == 100  # never above the maximum
