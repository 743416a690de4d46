"""A fast yes/no check compiled from the spec's schemas; jsonschema explains the failures.

jsonschema spends ~100 ms on a 1,000-event bulk body, which the benchmarks cannot afford.
The extracted schemas use only a handful of keywords, so they compile to plain closures;
a schema using any other keyword is not compiled, and callers fall back to jsonschema.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

Check = Callable[[Any], bool]
ANNOTATIONS = frozenset({"$schema", "default", "description", "example", "title"})
JSON_TYPES: dict[str, Check] = {
    "object": lambda value: isinstance(value, dict),
    "array": lambda value: isinstance(value, list),
    "string": lambda value: isinstance(value, str),
    "boolean": lambda value: isinstance(value, bool),
    "null": lambda value: value is None,
    "number": lambda value: isinstance(value, int | float) and not isinstance(value, bool),
    "integer": lambda value: (
        (isinstance(value, int) and not isinstance(value, bool))
        or (isinstance(value, float) and value.is_integer())
    ),
}


PARSED_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "null": (type(None),),
    "number": (int, float),
    "integer": (int,),
}


class UnsupportedSchemaError(Exception):
    """The schema uses a keyword this compiler does not know."""


def is_date_time(value: Any) -> bool:
    """ISO 8601 date-time for strings; other types are the `type` keyword's business."""
    if not isinstance(value, str):
        return True
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def compile_schema(schema: Mapping[str, Any]) -> Check | None:
    """A function telling whether a value is valid, or None if the schema can't be compiled."""
    try:
        return compile_node(schema)
    except UnsupportedSchemaError:
        return None


def compile_node(schema: Mapping[str, Any]) -> Check:
    """All of one schema node's keywords, combined."""
    checks = [compile_keyword(name, value, schema) for name, value in schema.items()]
    active = tuple(check for check in checks if check is not None)
    # Most nodes have one or two keywords: skip the loop (a bulk body has ~10^5 nodes).
    if not active:
        return lambda _: True
    if len(active) == 1:
        return active[0]
    if len(active) == 2:
        first, second = active
        return lambda value: first(value) and second(value)

    def check_all(value: Any) -> bool:
        for check in active:  # noqa: SIM110 - all() makes a generator per node
            if not check(value):
                return False
        return True

    return check_all


def compile_keyword(name: str, value: Any, schema: Mapping[str, Any]) -> Check | None:
    """One keyword as a check (None for annotations)."""
    if name in ANNOTATIONS:
        return None
    if name == "format" and value == "date-time":
        return is_date_time
    compiler = KEYWORDS.get(name)
    if compiler is None:
        raise UnsupportedSchemaError(name)
    return compiler(value)


def compile_required(names: list[str]) -> Check:
    """The `required` keyword."""
    required = frozenset(names)
    return lambda data: not isinstance(data, dict) or data.keys() >= required


def compile_enum(values: list[Any]) -> Check:
    """The `enum` keyword (type-strict, so True is not 1)."""
    allowed = tuple(values)
    # Spec enums hold strings: one set lookup for those, the slow comparison for the rest.
    strings = frozenset(item for item in allowed if type(item) is str)

    def check(data: Any) -> bool:
        if type(data) is str:
            return data in strings
        return any(data == item and type(data) is type(item) for item in allowed)

    return check


def compile_items(schema: Mapping[str, Any]) -> Check:
    """The `items` keyword with a single schema."""
    item_check = compile_node(schema)

    def check(data: Any) -> bool:
        if not isinstance(data, list):
            return True
        for item in data:  # noqa: SIM110 - all() makes a generator per array
            if not item_check(item):
                return False
        return True

    return check


def compile_one_of(schemas: list[Mapping[str, Any]]) -> Check:
    """The `oneOf` keyword: exactly one option matches."""
    options = [compile_node(option) for option in schemas]
    return lambda data: sum(option(data) for option in options) == 1


def compile_type(value: str | list[str]) -> Check:
    """The `type` keyword: one JSON type or any of several."""
    names = [value] if isinstance(value, str) else list(value)
    if any(name not in JSON_TYPES for name in names):
        raise UnsupportedSchemaError(f"type {value!r}")
    tests = [JSON_TYPES[name] for name in names]
    if len(tests) == 1:
        return tests[0]
    # What orjson parses each type to: one set lookup decides most values.
    exact = {python for name in names for python in PARSED_TYPES[name]}
    return lambda data: type(data) in exact or any(test(data) for test in tests)


def compile_properties(properties: Mapping[str, Any]) -> Check:
    """The `properties` keyword: each present property matches its schema."""
    compiled = [(name, compile_node(sub)) for name, sub in properties.items()]

    def check(data: Any) -> bool:
        if not isinstance(data, dict):
            return True
        for name, sub in compiled:  # noqa: SIM110 - all() makes a generator per object
            if name in data and not sub(data[name]):
                return False
        return True

    return check


KEYWORDS: dict[str, Callable[[Any], Check]] = {
    "type": compile_type,
    "properties": compile_properties,
    "required": compile_required,
    "enum": compile_enum,
    "items": compile_items,
    "oneOf": compile_one_of,
}
