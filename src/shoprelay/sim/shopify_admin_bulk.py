"""Bulk query operations: created -> running -> completed, and their JSONL result.

Shopify's rules (bulkOperationRunQuery, 2026-10): the query needs at least one connection, at
most five, nested at most two deep; nested connections need no `first`, and none may sit inside
a list field (`Order.refunds` is a list, so `refunds { refundLineItems }` is refused). In the
JSONL each node of the top connection is one line; each node of a nested connection is a line
of its own after its parent, with `"__parentId"` naming the nearest enclosing object's id.
Everything else (objects, lists) stays inline in its node's line.
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from graphql import (
    FieldNode,
    GraphQLList,
    GraphQLObjectType,
    SelectionSetNode,
    get_named_type,
    get_nullable_type,
)

from shoprelay.sim.shopify_admin_cost import _node_selection
from shoprelay.sim.shopify_admin_execute import Execution, FieldError, arguments, collect, select
from shoprelay.sim.shopify_admin_schema import Request, RequestError, admin_schema, prepare

MAX_CONNECTIONS, MAX_DEPTH = 5, 2
TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELED", "EXPIRED"})
# (root field, its arguments) -> the root records, in order, one at a time.
RootReader = Callable[[str, dict[str, Any]], Iterator[dict[str, Any]]]


class BulkQueryInvalid(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class BulkOperation:
    number: int
    query: str
    created_at: str
    status: str = "CREATED"
    completed_at: str | None = None
    error_code: str | None = None
    object_count: int = 0
    root_object_count: int = 0
    file_size: int | None = None
    path: Path | None = None
    url: str | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def gid(self) -> str:
        return f"gid://shopify/BulkOperation/{self.number}"

    def record(self) -> dict[str, Any]:
        return {
            "__typename": "BulkOperation",
            "id": self.gid,
            "type": "QUERY",
            "status": self.status,
            "query": self.query,
            "createdAt": self.created_at,
            "completedAt": self.completed_at,
            "errorCode": self.error_code,
            "objectCount": str(self.object_count),
            "rootObjectCount": str(self.root_object_count),
            "fileSize": None if self.file_size is None else str(self.file_size),
            "url": self.url if self.status == "COMPLETED" else None,
            "partialDataUrl": None,
        }


def check(query: str) -> Request:
    """The bulk query, parsed and validated, or BulkQueryInvalid with Shopify's reason."""
    try:
        request = prepare(query, None)
    except RequestError as error:
        raise BulkQueryInvalid(f"Invalid bulk query: {error.errors[0]['message']}") from error
    if request.is_mutation:
        raise BulkQueryInvalid("Invalid bulk query: bulkOperationRunQuery takes a query")
    schema = admin_schema()
    assert schema.query_type is not None
    roots = list(collect(request.operation.selection_set, "QueryRoot", request))
    depths = list(_connections(request, schema.query_type, request.operation.selection_set, 0))
    if not depths or not _is_connection(schema.query_type, roots[0][1]):
        raise BulkQueryInvalid("Bulk queries must contain at least one connection.")
    if len(roots) != 1:
        raise BulkQueryInvalid("Bulk queries must have exactly one top-level field.")
    if len(depths) > MAX_CONNECTIONS:
        raise BulkQueryInvalid(
            f"Bulk queries cannot contain more than {MAX_CONNECTIONS} connections."
        )
    if max(depths) > MAX_DEPTH:
        raise BulkQueryInvalid(
            "Bulk queries cannot contain connections with a nesting depth greater than "
            f"{MAX_DEPTH}."
        )
    return request


def _is_connection(parent: GraphQLObjectType, node: FieldNode) -> bool:
    defn = parent.fields.get(node.name.value)
    return defn is not None and get_named_type(defn.type).name.endswith("Connection")


def _connections(
    request: Request,
    parent: Any,
    selection_set: SelectionSetNode,
    depth: int,
    *,
    in_list: bool = False,
) -> Iterator[int]:
    """The nesting depth of every connection in the selection (the top one is depth 1)."""
    if not isinstance(parent, GraphQLObjectType):
        return
    for _, node in collect(selection_set, parent.name, request):
        defn = parent.fields.get(node.name.value)
        if defn is None or node.selection_set is None:
            continue
        named = get_named_type(defn.type)
        if named.name.endswith("Connection"):
            if in_list:
                raise BulkQueryInvalid(
                    "Queries that contain a connection field within a list field are not "
                    f"currently supported: {parent.name}.{node.name.value}."
                )
            yield depth + 1
            node_type, inner = _node_selection(named, node.selection_set, request)
            if inner is not None:
                yield from _connections(request, node_type, inner, depth + 1)
        else:
            listed = in_list or isinstance(get_nullable_type(defn.type), GraphQLList)
            yield from _connections(request, named, node.selection_set, depth, in_list=listed)


def jsonl_lines(request: Request, roots: RootReader, operation: BulkOperation) -> Iterator[bytes]:
    """Each line of the result, counting objects on `operation` as it goes."""
    schema = admin_schema()
    assert schema.query_type is not None
    ((_, root),) = list(collect(request.operation.selection_set, "QueryRoot", request))
    defn = schema.query_type.fields[root.name.value]
    args = arguments(defn, root, request.variables) if root.arguments else {}
    assert root.selection_set is not None
    node_type, selection = _node_selection(get_named_type(defn.type), root.selection_set, request)
    execution = Execution(request, unpaged=True)
    for record in roots(root.name.value, args):
        if selection is None:
            continue
        node = select(execution, record, record.get("__typename", node_type.name), selection)
        if node is None:
            continue
        operation.root_object_count += 1
        for line in _split(node, selection, record["__typename"], request, record["id"]):
            operation.object_count += 1
            yield orjson.dumps(line) + b"\n"


def _split(
    node: dict[str, Any],
    selection: SelectionSetNode,
    type_name: str,
    request: Request,
    parent_id: str | None,
) -> Iterator[dict[str, Any]]:
    """The node's own line, then its nested connections' nodes as lines of their own."""
    children: list[tuple[dict[str, Any], SelectionSetNode, str, str | None]] = []
    own = _extract(
        node,
        selection,
        type_name=type_name,
        request=request,
        parent_id=node.get("id", parent_id),
        children=children,
    )
    if "__parentId" in node:
        own["__parentId"] = node["__parentId"]
    yield own
    for child, inner, child_type, parent in children:
        yield from _split(child, inner, child_type, request, parent)


def _extract(
    value: dict[str, Any],
    selection: SelectionSetNode,
    *,
    type_name: str,
    request: Request,
    parent_id: str | None,
    children: list[tuple[dict[str, Any], SelectionSetNode, str, str | None]],
) -> dict[str, Any]:
    """`value` without its connections; their nodes go to `children` with their parent id."""
    schema = admin_schema()
    parent = schema.type_map[value.get("__typename", type_name)]
    if not isinstance(parent, GraphQLObjectType):
        return value
    kept: dict[str, Any] = {}
    for key, node in collect(selection, parent.name, request):
        if key not in value:
            continue
        item = value[key]
        defn = parent.fields.get(node.name.value)
        if defn is None or node.selection_set is None or item is None:
            kept[key] = item
            continue
        named = get_named_type(defn.type)
        if named.name.endswith("Connection"):
            node_type, inner = _node_selection(named, node.selection_set, request)
            for child in item.get("nodes") or [e["node"] for e in item.get("edges", [])]:
                if inner is not None and child is not None:
                    tagged = {**child, "__parentId": parent_id}
                    children.append((tagged, inner, node_type.name, parent_id))
            continue
        items = item if isinstance(item, list) else [item]
        inline = [
            _extract(
                x,
                node.selection_set,
                type_name=named.name,
                request=request,
                parent_id=x.get("id", parent_id),
                children=children,
            )
            if isinstance(x, dict)
            else x
            for x in items
        ]
        kept[key] = inline if isinstance(item, list) else inline[0]
    return kept


class BulkOperations:
    """The shop's bulk operations; at most `concurrent` running at once."""

    def __init__(self, concurrent: int = 5, rows_per_tick: int = 200, pause: float = 0.0) -> None:
        self.concurrent, self.rows_per_tick, self.pause = concurrent, rows_per_tick, pause
        self.on_finish: Callable[[BulkOperation], None] = lambda _operation: None
        self.operations: dict[int, BulkOperation] = {}
        self._numbers = itertools.count(1)
        # Made at the first bulk query, so a simulator never served leaves nothing behind.
        self._directory: tempfile.TemporaryDirectory[str] | None = None

    def running(self) -> list[BulkOperation]:
        return [op for op in self.operations.values() if op.status not in TERMINAL]

    def current(self) -> BulkOperation | None:
        return self.operations[max(self.operations)] if self.operations else None

    def start(
        self, query: str, roots: RootReader, url_for: Callable[[BulkOperation], str]
    ) -> BulkOperation:
        """Check the query and start it; BulkQueryInvalid or FieldError (in progress)."""
        request = check(query)
        busy = self.running()
        if len(busy) >= self.concurrent:
            raise FieldError(
                "A bulk query operation for this app and shop is already in progress: "
                f"{busy[0].gid}.",
                {"code": "OPERATION_IN_PROGRESS"},
            )
        operation = BulkOperation(next(self._numbers), query, _now())
        if self._directory is None:
            self._directory = tempfile.TemporaryDirectory(prefix="shopify-sim-bulk-")
        operation.path = Path(self._directory.name) / f"{operation.number}.jsonl"
        operation.url = url_for(operation)
        self.operations[operation.number] = operation
        operation.task = asyncio.get_running_loop().create_task(
            self._work(operation, request, roots)
        )
        return operation

    async def _work(self, operation: BulkOperation, request: Request, roots: RootReader) -> None:
        await asyncio.sleep(0)
        operation.status = "RUNNING"
        assert operation.path is not None
        try:
            with operation.path.open("wb") as out:
                for count, line in enumerate(jsonl_lines(request, roots, operation), 1):
                    out.write(line)
                    if operation.status == "CANCELING":
                        operation.status, operation.completed_at = "CANCELED", _now()
                        self.on_finish(operation)
                        return
                    if count % self.rows_per_tick == 0:
                        await asyncio.sleep(self.pause)
        except FieldError as error:
            denied = error.extensions.get("code") == "ACCESS_DENIED"
            operation.status = "FAILED"
            operation.error_code = "ACCESS_DENIED" if denied else "INTERNAL_SERVER_ERROR"
            operation.completed_at = _now()
            self.on_finish(operation)
            return
        operation.file_size = operation.path.stat().st_size
        operation.status, operation.completed_at = "COMPLETED", _now()
        self.on_finish(operation)

    def cancel(self, number: int) -> BulkOperation | None:
        operation = self.operations.get(number)
        if operation is not None and operation.status not in TERMINAL:
            operation.status = "CANCELING"
        return operation

    def close(self) -> None:
        for operation in self.operations.values():
            if operation.task is not None:
                operation.task.cancel()
        if self._directory is not None:
            self._directory.cleanup()
            self._directory = None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
