"""Shopify's search syntax for the `query` argument, and the sort keys, over stored resources.

Supported terms: `updated_at`, `created_at`, `processed_at` and `id`, with `:`, `:>`, `:>=`,
`:<`, `:<=`, values bare or quoted, joined by spaces or AND. A term Shopify would not know for
the resource is ignored with a warning, as Shopify does (`extensions.search`).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from shoprelay.sim.shopify_admin_shop import Stored

SHOP_ZONE = timezone(timedelta(hours=-5))
_TERM = re.compile(r"""(\w+):(>=|<=|>|<|=)?('[^']*'|"[^"]*"|\S+)""")
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "=": operator.eq,
}
_TIMES = {"updated_at": "updated", "created_at": "created", "processed_at": "created"}
SORT_KEYS: dict[str, Callable[[Stored], Any]] = {
    "ID": lambda s: s.id,
    "UPDATED_AT": lambda s: s.updated,
    "CREATED_AT": lambda s: s.created,
    "PROCESSED_AT": lambda s: s.created,
    "ORDER_NUMBER": lambda s: s.number,
}


class SearchError(ValueError):
    """A term whose value cannot be read (a date that is not a date)."""


@dataclass
class Search:
    """A parsed `query`: the tests a resource must pass, and warnings for ignored terms."""

    tests: list[Callable[[Stored], bool]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)

    def matches(self, stored: Stored) -> bool:
        return all(test(stored) for test in self.tests)


def parse_search(text: str | None) -> Search:
    search = Search()
    if not text:
        return search
    for name, op, raw in _TERM.findall(text):
        value = raw.strip("'\"")
        compare = _COMPARE[op or "="]
        if name in _TIMES:
            moment = _moment(value)
            attribute = _TIMES[name]
            search.tests.append(
                lambda s, a=attribute, c=compare, m=moment: c(getattr(s, a), m)  # type: ignore[misc]
            )
        elif name == "id":
            wanted = int(value.rsplit("/", 1)[-1])
            search.tests.append(lambda s, c=compare, w=wanted: c(s.id, w))  # type: ignore[misc]
        else:
            search.warnings.append(
                {"field": name, "message": "Invalid search field for this query."}
            )
    return search


def _moment(value: str) -> float:
    """A search date: ISO-8601 with Z or an offset, or a bare date or time in the shop's zone."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise SearchError(f"Invalid date: {value}") from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=SHOP_ZONE)
    return moment.timestamp()


def sort_key(name: str | None) -> Callable[[Stored], Any]:
    return SORT_KEYS.get(name or "ID", SORT_KEYS["ID"])


def found(
    stored: list[Stored], search: Search, key_name: str | None, visible: Callable[[Stored], bool]
) -> list[Stored]:
    """The resources that match, sorted by the sort key then id (cursor order)."""
    key = sort_key(key_name)
    hits = [s for s in stored if visible(s) and search.matches(s)]
    hits.sort(key=lambda s: (key(s), s.id))
    return hits


def position(key_name: str | None) -> Callable[[Stored, int], Any]:
    """A cursor position: [sort value, id], so a page boundary survives edits."""
    key = sort_key(key_name)
    return lambda s, _index: [key(s), s.id]
