"""The Shopify simulator's executor answers as GraphQL does: aliases, fragments, directives,
nested connections paged by cursor, and a missing non-null value nulling its parent."""

from __future__ import annotations

from typing import Any

from shoprelay.sim.shopify_admin_execute import Execution, run
from shoprelay.sim.shopify_admin_schema import admin_schema, prepare


def line(number: int) -> dict[str, Any]:
    return {"__typename": "LineItem", "id": f"gid://shopify/LineItem/{number}", "quantity": number}


ORDER = {
    "__typename": "Order",
    "id": "gid://shopify/Order/1",
    "name": "#1001",
    "lineItems": [line(n) for n in range(1, 6)],
}


def answer(query: str, **variables: Any) -> tuple[Any, list[dict[str, Any]]]:
    execution = Execution(prepare(query, variables))
    root = {"order": lambda _args: ORDER, "node": lambda _args: ORDER}
    query_type = admin_schema().query_type
    assert query_type is not None
    return run(execution, root, query_type), execution.errors


def test_aliases_fragments_and_typename() -> None:
    data, errors = answer(
        """
        query($id: ID!, $withName: Boolean!) {
          first: node(id: $id) {
            __typename ...Named ... on Order { number: name @include(if: $withName) }
          }
        }
        fragment Named on Order { id }
        """,
        id="gid://shopify/Order/1",
        withName=False,
    )
    assert errors == []
    assert data == {"first": {"__typename": "Order", "id": "gid://shopify/Order/1"}}


def test_a_nested_connection_pages_by_cursor() -> None:
    query = """
    query($after: String) {
      order(id: "gid://shopify/Order/1") {
        lineItems(first: 2, after: $after) {
          pageInfo { hasNextPage endCursor }
          edges { node { quantity } }
        }
      }
    }
    """
    seen, after = [], None
    while True:
        data, errors = answer(query, after=after)
        assert errors == []
        page = data["order"]["lineItems"]
        seen += [edge["node"]["quantity"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [1, 2, 3, 4, 5]


def test_a_connection_without_first_or_last_is_an_error_on_its_field() -> None:
    data, errors = answer(
        '{ order(id: "gid://shopify/Order/1") { name lineItems { nodes { id } } } }'
    )
    # lineItems is non-null, so its parent (the nullable order) becomes null.
    assert data == {"order": None}
    assert errors[0]["path"] == ["order", "lineItems"]
    assert errors[0]["message"] == "you must provide one of first or last"


def test_a_field_the_simulator_does_not_hold_is_named_not_invented() -> None:
    data, errors = answer('{ order(id: "gid://shopify/Order/1") { name note } }')
    assert data == {"order": {"name": "#1001", "note": None}}
    assert errors[0]["message"] == "The simulator does not hold Order.note"


def test_reverse_pages_backwards_by_the_same_cursors() -> None:
    query = """
    query($after: String) {
      order(id: "gid://shopify/Order/1") {
        lineItems(first: 3, after: $after, reverse: true) {
          pageInfo { hasNextPage endCursor } nodes { quantity }
        }
      }
    }
    """
    first, _ = answer(query)
    page = first["order"]["lineItems"]
    assert [node["quantity"] for node in page["nodes"]] == [5, 4, 3]
    rest, _ = answer(query, after=page["pageInfo"]["endCursor"])
    assert [node["quantity"] for node in rest["order"]["lineItems"]["nodes"]] == [2, 1]


def test_a_foreign_cursor_is_an_error_not_a_crash() -> None:
    query = """
    query($after: String) {
      order(id: "gid://shopify/Order/1") { lineItems(first: 3, after: $after) { nodes { id } } }
    }
    """
    _, errors = answer(query, after="WzEsIDJd")  # [1, 2]: an orders cursor
    assert errors[0]["message"] == "Invalid cursor for current pagination sort."
