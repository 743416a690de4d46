"""Runs a validated operation over plain dict records: a small, fast GraphQL executor.

Records are dicts keyed by GraphQL field names with a `__typename`. A value may be a callable
taking the field's arguments (a resolver); a list under a `...Connection` field is paged here,
so nested connections (`lineItems(first: 5)`) need no code of their own. A field the simulator
does not hold is an error naming it, never a made-up value.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    InlineFragmentNode,
    NamedTypeNode,
    SelectionSetNode,
    Undefined,
    execute_sync,
    is_abstract_type,
    value_from_ast,
)

from shoprelay.sim.shopify_admin_schema import Request, admin_schema

Record = dict[str, Any]
MAX_PAGE = 250
INTROSPECTION = frozenset({"__schema", "__type"})


class FieldError(Exception):
    """A field that cannot be answered; the rest of the answer stands (Shopify's partial data)."""

    def __init__(self, message: str, extensions: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extensions = extensions or {}


class _Null(Exception):
    """A non-null field came out null: null its nearest nullable parent, as GraphQL says."""


@dataclass
class Execution:
    request: Request
    errors: list[dict[str, Any]] = field(default_factory=list)
    # Bulk operations read every node: no `first` needed, none applied.
    unpaged: bool = False

    def fail(self, node: FieldNode, path: list[str | int], error: FieldError) -> None:
        loc = node.loc.source.get_location(node.loc.start) if node.loc else None
        entry: dict[str, Any] = {"message": error.message, "path": list(path)}
        if loc is not None:
            entry["locations"] = [{"line": loc.line, "column": loc.column}]
        if error.extensions:
            entry["extensions"] = error.extensions
        self.errors.append(entry)


def arguments(defn: GraphQLField, node: FieldNode, variables: dict[str, Any]) -> dict[str, Any]:
    """The arguments given explicitly, coerced; defaults are the resolver's to apply."""
    found: dict[str, Any] = {}
    for argument in node.arguments or ():
        name = argument.name.value
        value = value_from_ast(argument.value, defn.args[name].type, variables)
        if value is not Undefined:  # a variable that was not given
            found[name] = value
    return found


def collect(
    selection_set: SelectionSetNode, type_name: str, request: Request
) -> list[tuple[str, FieldNode]]:
    """(response key, field) pairs selected on an object of `type_name`, fragments expanded."""
    found: list[tuple[str, FieldNode]] = request.remembered(
        "collect",
        selection_set,
        type_name,
        lambda: list(_collect(selection_set, type_name, request)),
    )
    return found


def _collect(
    selection_set: SelectionSetNode, type_name: str, request: Request
) -> Iterator[tuple[str, FieldNode]]:
    schema = admin_schema()
    runtime = schema.type_map[type_name]
    for selection in selection_set.selections:
        if not _included(selection, request.variables):
            continue
        if isinstance(selection, FieldNode):
            key = selection.alias.value if selection.alias else selection.name.value
            yield key, selection
            continue
        condition: NamedTypeNode | None
        if isinstance(selection, FragmentSpreadNode):
            fragment = request.fragments[selection.name.value]
            condition, inner = fragment.type_condition, fragment.selection_set
        else:
            assert isinstance(selection, InlineFragmentNode)
            condition, inner = selection.type_condition, selection.selection_set
        if condition is None or _applies(condition.name.value, runtime):
            yield from _collect(inner, type_name, request)


def _applies(condition: str, runtime: GraphQLNamedType) -> bool:
    schema = admin_schema()
    wanted = schema.type_map[condition]
    if wanted is runtime:
        return True
    return (
        is_abstract_type(wanted)
        and isinstance(runtime, GraphQLObjectType)
        and schema.is_sub_type(wanted, runtime)
    )


def _included(selection: Any, variables: dict[str, Any]) -> bool:
    for directive in selection.directives or ():
        name = directive.name.value
        if name not in ("skip", "include"):
            continue
        condition = directive.arguments[0].value
        value = (
            variables.get(condition.name.value) if condition.kind == "variable" else condition.value
        )
        if (name == "skip") == bool(value):
            return False
    return True


def run(execution: Execution, root: Record, root_type: GraphQLObjectType) -> Record | None:
    """Execute the operation's selection over `root`; errors go on the execution."""
    request = execution.request
    selection = request.operation.selection_set
    if any(
        node.name.value in INTROSPECTION for _, node in collect(selection, root_type.name, request)
    ):
        # Introspection is the schema's own business: graphql-core answers it from Shopify's schema.
        name = request.operation.name.value if request.operation.name else None
        result = execute_sync(
            admin_schema(), request.document, variable_values=request.variables, operation_name=name
        )
        execution.errors += [dict(error.formatted) for error in result.errors or ()]
        return result.data
    try:
        return _select(execution, root, root_type.name, selection, [])
    except _Null:
        return None


def select(
    execution: Execution, record: Record, type_name: str, selection_set: SelectionSetNode
) -> Record | None:
    """One object's selection, as `run` does for the root (bulk operations use it per node)."""
    try:
        return _select(execution, record, type_name, selection_set, [])
    except _Null:
        return None


def _select(
    execution: Execution,
    record: Record,
    type_name: str,
    selection_set: SelectionSetNode,
    path: list[str | int],
) -> Record:
    parent = admin_schema().type_map[type_name]
    assert isinstance(parent, GraphQLObjectType)
    answer: Record = {}
    for key, node in collect(selection_set, type_name, execution.request):
        name = node.name.value
        if name == "__typename":
            answer[key] = type_name
            continue
        defn = parent.fields[name]
        here = [*path, key]
        try:
            args = arguments(defn, node, execution.request.variables) if node.arguments else {}
            value = record.get(name, _MISSING)
            if value is _MISSING:
                raise FieldError(f"The simulator does not hold {type_name}.{name}")
            if callable(value):
                value = value(args)
            answer[key] = _complete(execution, defn.type, value, node=node, args=args, path=here)
        except FieldError as error:
            execution.fail(node, here, error)
            if isinstance(defn.type, GraphQLNonNull):
                raise _Null from error
            answer[key] = None
    return answer


_MISSING = object()


def _complete(
    execution: Execution,
    type_: GraphQLOutputType,
    value: Any,
    *,
    node: FieldNode,
    args: dict[str, Any],
    path: list[str | int],
) -> Any:
    if isinstance(type_, GraphQLNonNull):
        result = _complete(execution, type_.of_type, value, node=node, args=args, path=path)
        if result is None:
            raise _Null
        return result
    if value is None:
        return None
    if isinstance(type_, GraphQLList):
        items = value if execution.unpaged else value[: args.get("first", len(value))]
        completed = []
        for index, item in enumerate(items):
            try:
                completed.append(
                    _complete(
                        execution, type_.of_type, item, node=node, args={}, path=[*path, index]
                    )
                )
            except _Null:
                completed.append(None)
        return completed
    named = type_
    if not isinstance(named, GraphQLObjectType) and not is_abstract_type(named):
        return value  # scalars and enums are stored as Shopify serializes them
    if named.name.endswith("Connection") and isinstance(value, list):
        value = connection(value, args, unpaged=execution.unpaged)
    type_name = value.get("__typename", named.name)
    assert node.selection_set is not None
    try:
        return _select(execution, value, type_name, node.selection_set, path)
    except _Null:
        return None


# --- connections ------------------------------------------------------------------------------


def encode_cursor(position: Any) -> str:
    """An opaque cursor, as Shopify's are (base64 of JSON)."""
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


def decode_cursor(cursor: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError as error:
        raise FieldError(f"Invalid cursor for current pagination sort: {cursor}") from error


def page_size(args: dict[str, Any]) -> int:
    """`first` or `last`, required and at most 250, as Shopify checks them."""
    first, last = args.get("first"), args.get("last")
    if first is None and last is None:
        raise FieldError("you must provide one of first or last")
    if first is not None and last is not None:
        raise FieldError("providing both first and last is not supported")
    size = int(first if first is not None else last or 0)
    if size > MAX_PAGE or size < 0:
        raise FieldError(
            f"The query argument `{'first' if first is not None else 'last'}` "
            f"must be between 0 and {MAX_PAGE}",
            {"code": "BAD_REQUEST"},
        )
    return size


def connection(
    items: list[Any],
    args: dict[str, Any],
    *,
    unpaged: bool = False,
    position: Callable[[Any, int], Any] = lambda item, index: index,
) -> Record:
    """A connection over a sorted list, with cursors from `position(item, index)`.

    `after`/`before` name positions; comparing positions keeps paging right when the list
    changed between pages (a position is a sort value and an id for top-level lists).
    """
    positions = [position(item, index) for index, item in enumerate(items)]
    if args.get("reverse"):
        items, positions = items[::-1], positions[::-1]
    start, end = 0, len(items)
    if "after" in args and args["after"] is not None:
        start = _first_beyond(positions, _key(decode_cursor(args["after"])), args)
    if "before" in args and args["before"] is not None:
        end = _first_beyond(positions, _key(decode_cursor(args["before"])), args, before=True)
    chosen = list(range(start, end))
    if not unpaged:
        size = page_size(args)
        chosen = chosen[:size] if args.get("first") is not None else chosen[-size:] if size else []
    nodes = [items[i] for i in chosen]
    edges = [{"cursor": encode_cursor(positions[i]), "node": items[i]} for i in chosen]
    info = {
        "hasNextPage": bool(chosen) and chosen[-1] < len(items) - 1,
        "hasPreviousPage": bool(chosen) and chosen[0] > 0,
        "startCursor": edges[0]["cursor"] if edges else None,
        "endCursor": edges[-1]["cursor"] if edges else None,
    }
    return {"nodes": nodes, "edges": edges, "pageInfo": info}


def _key(position: Any) -> Any:
    return tuple(position) if isinstance(position, list) else position


def _first_beyond(
    positions: list[Any], cursor: Any, args: dict[str, Any], *, before: bool = False
) -> int:
    """Index of the first position past `cursor` (or, for `before`, the first at or past it)."""
    descending = bool(args.get("reverse"))
    for index, position in enumerate(positions):
        key = _key(position)
        try:
            past = key < cursor if descending else key > cursor
        except TypeError as error:  # a cursor of another list or sort
            raise FieldError("Invalid cursor for current pagination sort.") from error
        if before and (past or key == cursor):
            return index
        if not before and past:
            return index
    return len(positions)
