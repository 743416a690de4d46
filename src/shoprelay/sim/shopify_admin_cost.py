"""Shopify's calculated query cost, and the leaky bucket it is charged to.

Requested cost is static (shopify.dev, GraphQL Admin API rate limits): scalars and enums 0,
objects 1, a connection 2 plus `first` (or `last`) times the cost of one node, a mutation 10;
for a union or interface, the dearest of the selections. Actual cost is the same sum over what
came back: a page of 3 orders costs for 3, not for `first`. The bucket must hold the requested
cost before the query runs; the difference to the actual cost is refunded afterwards.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    InlineFragmentNode,
    SelectionSetNode,
    get_named_type,
    is_abstract_type,
    is_leaf_type,
)

from shoprelay.sim.shopify_admin_execute import arguments
from shoprelay.sim.shopify_admin_schema import Request, admin_schema

MUTATION_COST = 10
CONNECTION_COST = 2
MAX_QUERY_COST = 1000


def query_cost(request: Request, data: dict[str, Any] | None = None) -> int:
    """Requested cost of the operation, or, given its `data`, the actual cost."""
    schema = admin_schema()
    root = schema.mutation_type if request.is_mutation else schema.query_type
    assert root is not None
    if request.is_mutation:
        # Each top-level mutation field costs 10, whatever it selects.
        fields = list(_fields(request, request.operation.selection_set))
        return MUTATION_COST * len(fields)
    selection = request.operation.selection_set
    return _selection_cost(request, root, selection, data, measured=data is not None)


def _fields(request: Request, selection_set: SelectionSetNode) -> list[tuple[str | None, Any]]:
    """(type condition, field) for every field, fragments flattened with their condition."""
    found: list[tuple[str | None, Any]] = []
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            found.append((None, selection))
        elif isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition.name.value if selection.type_condition else None
            found += [(condition or c, f) for c, f in _fields(request, selection.selection_set)]
        elif isinstance(selection, FragmentSpreadNode):
            fragment = request.fragments[selection.name.value]
            condition = fragment.type_condition.name.value
            found += [(c or condition, f) for c, f in _fields(request, fragment.selection_set)]
    return found


def _selection_cost(
    request: Request,
    parent: Any,
    selection_set: SelectionSetNode,
    data: Any,
    *,
    measured: bool,
) -> int:
    schema = admin_schema()
    by_condition: dict[str | None, int] = {}
    for condition, node in _fields(request, selection_set):
        name = node.name.value
        if name == "__typename":
            continue
        owner = schema.type_map[condition] if condition else parent
        if not isinstance(owner, GraphQLObjectType) and is_abstract_type(owner):
            fields = owner.fields  # type: ignore[union-attr]
        elif isinstance(owner, GraphQLObjectType):
            fields = owner.fields
        else:
            fields = parent.fields
        runtime = data.get("__typename") if condition and isinstance(data, dict) else None
        if runtime and runtime != condition and not _is_within(str(condition), runtime):
            continue
        if name not in fields:
            continue
        key = node.alias.value if node.alias else name
        child = data.get(key) if isinstance(data, dict) else None
        cost = _field_cost(request, fields[name], node, child, measured=measured)
        by_condition[condition] = by_condition.get(condition, 0) + cost
    common = by_condition.pop(None, 0)
    return common + max(by_condition.values(), default=0)


def _is_within(condition: str, runtime: str) -> bool:
    schema = admin_schema()
    wanted, actual = schema.type_map[condition], schema.type_map[runtime]
    return is_abstract_type(wanted) and schema.is_sub_type(wanted, actual)


def _field_cost(request: Request, defn: Any, node: FieldNode, data: Any, *, measured: bool) -> int:
    named = get_named_type(defn.type)
    if is_leaf_type(named) or node.selection_set is None:
        return 0
    if named.name == "PageInfo":
        return 0
    if named.name.endswith("Connection"):
        return _connection_cost(request, defn, node, data, measured=measured)
    if measured and data is None:
        return 0
    if measured and isinstance(data, list):
        # A list is one object to Shopify, sized by its dearest element.
        return 1 + max(
            (
                _selection_cost(request, named, node.selection_set, item, measured=True)
                for item in data
            ),
            default=0,
        )
    return 1 + _selection_cost(request, named, node.selection_set, data, measured=measured)


def _connection_cost(
    request: Request, defn: Any, node: FieldNode, data: Any, *, measured: bool
) -> int:
    """2, plus one node's cost times `first` (requested) or times the nodes returned (actual)."""
    assert node.selection_set is not None
    named = get_named_type(defn.type)
    node_type, node_selection = _node_selection(named, node.selection_set, request)
    if node_selection is None:
        return CONNECTION_COST
    if measured:
        nodes = _returned_nodes(data, node.selection_set, request)
        return CONNECTION_COST + sum(
            1 + _selection_cost(request, node_type, node_selection, item, measured=True)
            for item in nodes
        )
    args = arguments(defn, node, request.variables)
    size = args.get("first") or args.get("last") or 1
    per_node = 1 + _selection_cost(request, node_type, node_selection, None, measured=False)
    return CONNECTION_COST + int(size) * per_node


def _node_selection(
    connection: Any, selection_set: SelectionSetNode, request: Request
) -> tuple[Any, SelectionSetNode | None]:
    """The node type and one merged selection of `nodes { }` and `edges { node { } }`."""
    merged: tuple[Any, SelectionSetNode | None] = request.remembered(
        "nodes",
        selection_set,
        connection.name,
        lambda: _merge_node_selection(connection, selection_set, request),
    )
    return merged


def _merge_node_selection(
    connection: Any, selection_set: SelectionSetNode, request: Request
) -> tuple[Any, SelectionSetNode | None]:
    node_type = get_named_type(connection.fields["nodes"].type)
    merged: list[Any] = []
    for _, field_node in _fields(request, selection_set):
        if field_node.name.value == "nodes" and field_node.selection_set:
            merged += field_node.selection_set.selections
        if field_node.name.value == "edges" and field_node.selection_set:
            for _, inner in _fields(request, field_node.selection_set):
                if inner.name.value == "node" and inner.selection_set:
                    merged += inner.selection_set.selections
    if not merged:
        return node_type, None
    return node_type, SelectionSetNode(selections=tuple(merged))


def _returned_nodes(data: Any, selection_set: SelectionSetNode, request: Request) -> list[Any]:
    """The nodes a connection answer holds, once each (from `nodes` or from `edges`)."""
    if not isinstance(data, dict):
        return []
    for _, field_node in _fields(request, selection_set):
        key = field_node.alias.value if field_node.alias else field_node.name.value
        if field_node.name.value == "nodes" and isinstance(data.get(key), list):
            return [n for n in data[key] if n is not None]
        if field_node.name.value == "edges" and isinstance(data.get(key), list):
            edges = [e for e in data[key] if isinstance(e, dict)]
            return [_edge_node(e, field_node, request) for e in edges]
    return []


def _edge_node(edge: dict[str, Any], edges: FieldNode, request: Request) -> Any:
    assert edges.selection_set is not None
    for _, inner in _fields(request, edges.selection_set):
        if inner.name.value == "node":
            return edge.get(inner.alias.value if inner.alias else "node")
    return {}


@dataclass
class CostBucket:
    """The leaky bucket of one app on one shop (standard plan: 2000 points, 100 a second)."""

    maximum: float = 2000.0
    restore_rate: float = 100.0
    available: float = field(default=-1.0)
    updated: float = field(default_factory=time.monotonic)
    throttled: int = 0
    spent: int = 0

    def __post_init__(self) -> None:
        if self.available < 0:
            self.available = self.maximum

    def refill(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        gained = (now - self.updated) * self.restore_rate
        self.available = min(self.maximum, self.available + gained)
        self.updated = now

    def take(self, cost: int, now: float | None = None) -> bool:
        """Charge `cost` if the bucket holds it; False (and counted) when it does not."""
        self.refill(now)
        if cost > self.available:
            self.throttled += 1
            return False
        self.available -= cost
        return True

    def refund(self, requested: int, actual: int) -> None:
        """Give back what the query did not use; `spent` counts what it did."""
        self.available = min(self.maximum, self.available + max(0, requested - actual))
        self.spent += actual

    def status(self) -> dict[str, Any]:
        self.refill()
        return {
            "maximumAvailable": float(self.maximum),
            "currentlyAvailable": int(self.available),
            "restoreRate": float(self.restore_rate),
        }
