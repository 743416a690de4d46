"""The Shopify simulator reads Shopify's search syntax for `query:` as Shopify does."""

from __future__ import annotations

from datetime import UTC, datetime

from shoprelay.sim.shopify_admin_search import parse_search
from shoprelay.sim.shopify_admin_shop import Stored


def stored(updated: str, created: str = "2026-01-01T00:00:00Z", number: int = 1) -> Stored:
    moment = datetime.fromisoformat(updated.replace("Z", "+00:00"))
    start = datetime.fromisoformat(created.replace("Z", "+00:00"))
    return Stored(
        id=number, created=start.timestamp(), updated=moment.timestamp(), number=1, blob=b""
    )


def test_updated_at_bounds_quoted_or_bare_and_joined_by_and() -> None:
    search = parse_search(
        "updated_at:>='2026-11-01T00:00:00Z' AND updated_at:<2026-11-02T00:00:00+00:00"
    )
    assert search.matches(stored("2026-11-01T00:00:00Z"))  # >= takes the bound itself
    assert search.matches(stored("2026-11-01T23:59:59Z"))
    assert not search.matches(stored("2026-10-31T23:59:59Z"))
    assert not search.matches(stored("2026-11-02T00:00:00Z"))
    assert search.warnings == []


def test_a_bare_date_is_midnight_in_the_shops_zone() -> None:
    search = parse_search("created_at:>=2026-11-01")
    # The shop's zone is UTC-5: its midnight is 05:00 UTC.
    assert not search.matches(stored("2026-12-01T00:00:00Z", created="2026-11-01T04:59:59Z"))
    assert search.matches(stored("2026-12-01T00:00:00Z", created="2026-11-01T05:00:00Z"))


def test_an_unknown_field_is_ignored_with_a_warning() -> None:
    search = parse_search("colour:red updated_at:>2026-01-01T00:00:00Z")
    assert search.warnings == [
        {"field": "colour", "message": "Invalid search field for this query."}
    ]
    assert search.matches(stored(datetime(2026, 5, 1, tzinfo=UTC).isoformat()))
