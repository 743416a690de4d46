"""Shopify's own Admin GraphQL schema (2026-10 introspection), and requests checked against it.

A query the real API would refuse is refused here with GraphQL's error, in Shopify's words where
they differ (graphql-ruby: "Field 'x' doesn't exist on type 'Order'").
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    build_client_schema,
    parse,
    validate,
)
from graphql.execution.values import get_variable_values

SCHEMA_FILE = "shopify_admin_2026-10.json.gz"
SCHEMA_VERSION = "2026-10"


@cache
def admin_schema() -> GraphQLSchema:
    """The schema, built once per process (about half a second)."""
    raw = resources.files("shoprelay.sim").joinpath("data", SCHEMA_FILE).read_bytes()
    schema = build_client_schema(json.loads(gzip.decompress(raw))["data"])
    # Shopify's deprecation markers on interface fields fail graphql-core's strict schema
    # check ("Interface field Node.id is not deprecated"); the schema is Shopify's, so trust it.
    schema._validation_errors = []
    return schema


class RequestError(Exception):
    """The request as a whole is refused: parse, validation or variable errors."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors[0]["message"] if errors else "invalid request")
        self.errors = errors


@dataclass
class Request:
    """One parsed, validated operation with its coerced variables."""

    document: DocumentNode
    operation: OperationDefinitionNode
    variables: dict[str, Any]
    fragments: dict[str, FragmentDefinitionNode] = field(default_factory=dict)
    # Work done once per selection (fields collected, connection nodes merged), kept with
    # the selection itself so that its id cannot be reused while the request lives.
    memo: dict[tuple[str, int, str], tuple[Any, Any]] = field(default_factory=dict)

    def remembered(self, kind: str, node: Any, detail: str, make: Callable[[], Any]) -> Any:
        key = (kind, id(node), detail)
        found = self.memo.get(key)
        if found is None or found[0] is not node:
            found = self.memo[key] = (node, make())
        return found[1]

    @property
    def is_mutation(self) -> bool:
        return self.operation.operation == OperationType.MUTATION


def prepare(query: str, variables: dict[str, Any] | None, name: str | None = None) -> Request:
    """Parse, validate against the schema and coerce variables; RequestError if any fails."""
    schema = admin_schema()
    try:
        document = parse(query)
    except GraphQLError as error:
        raise RequestError([shopify_error(error)]) from error
    errors = validate(schema, document)
    if errors:
        raise RequestError([shopify_error(error) for error in errors])
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [op for op in operations if name is None or (op.name and op.name.value == name)]
    if len(chosen) != 1:
        message = "An operation name is required" if chosen else f"No operation named {name!r}"
        raise RequestError([{"message": message}])
    operation = chosen[0]
    coerced = get_variable_values(schema, operation.variable_definitions or (), variables or {})
    problems = coerced if isinstance(coerced, list) else getattr(coerced, "errors", None)
    if problems:
        raise RequestError([shopify_error(error) for error in problems])
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    return Request(document, operation, dict(coerced.coerced), fragments)  # type: ignore[union-attr]


# graphql-core's wording -> graphql-ruby's (Shopify's), with its extensions code.
_RUBY_WORDING = (
    (
        re.compile(r"Cannot query field '(\w+)' on type '(\w+)'\..*", re.S),
        "Field '{0}' doesn't exist on type '{1}'",
        "undefinedField",
    ),
    (
        re.compile(r"Unknown argument '(\w+)' on field '\w+\.(\w+)'\..*", re.S),
        "Field '{1}' doesn't accept argument '{0}'",
        "argumentNotAccepted",
    ),
)


def shopify_error(error: GraphQLError) -> dict[str, Any]:
    """A GraphQL error as Shopify's JSON shows it."""
    formatted: dict[str, Any] = {"message": error.message}
    if error.locations:
        formatted["locations"] = [{"line": x.line, "column": x.column} for x in error.locations]
    if error.path:
        formatted["path"] = list(error.path)
    for pattern, wording, code in _RUBY_WORDING:
        match = pattern.fullmatch(error.message)
        if match:
            formatted["message"] = wording.format(*match.groups())
            formatted["extensions"] = {"code": code}
    return formatted
