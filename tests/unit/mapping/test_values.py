"""Pure value parsing: money, phones, times, tolerant reads."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from shoprelay.mapping.values import (
    as_dicts,
    clip,
    count,
    e164,
    email_address,
    identifier,
    money,
    optional_money,
    optional_time,
    parse_time,
    text,
)


def test_money_parses_shopify_strings_exactly() -> None:
    """A money string becomes the exact Decimal, and arithmetic on it stays exact."""
    assert money("12.30") == Decimal("12.30")
    assert money("19.99") * 3 == Decimal("59.97")


def test_money_takes_json_numbers_through_their_text() -> None:
    """A JSON number (refund line subtotals) keeps its written digits, not the float's error."""
    assert money(89.99) == Decimal("89.99")
    assert money(99) == Decimal(99)
    assert money(0.1) + money(0.2) == Decimal("0.3")


@pytest.mark.parametrize("raw", ["abc", "", None, True, [], {}, "NaN", "Infinity"])
def test_money_rejects_what_is_not_an_amount(raw: object) -> None:
    """Anything but a finite number raises ValueError, never TypeError."""
    with pytest.raises(ValueError, match="amount"):
        money(raw)


def test_optional_money_is_none_when_absent() -> None:
    """An absent or empty amount is unknown, not zero."""
    assert optional_money(None) is None
    assert optional_money("") is None
    assert optional_money("0.00") == Decimal(0)


@pytest.mark.parametrize(
    ("raw", "hint", "expected"),
    [
        ("+16135550142", None, "+16135550142"),
        ("(613) 555-0142", "CA", "+16135550142"),
        ("613-555-0142", "ca", "+16135550142"),
        ("+85291234567", None, "+85291234567"),
    ],
)
def test_e164_normalises_valid_numbers(raw: str, hint: str | None, expected: str) -> None:
    """A valid number in any common notation comes out in E.164."""
    assert e164(raw, hint) == expected


@pytest.mark.parametrize(
    ("raw", "hint"),
    [
        ("555-555-5555", "CA"),  # no such area code
        ("+85200000000", None),  # the scrubbed phone in the real order sample
        ("613-555-0142", None),  # no country to read it in
        ("not a phone", "US"),
        ("", "US"),
        (None, "US"),
        (6135550142, "US"),
    ],
)
def test_e164_is_none_for_invalid_numbers(raw: object, hint: str | None) -> None:
    """A number that is not a valid phone number is None, so Klaviyo never sees it."""
    assert e164(raw, hint) is None


def test_parse_time_converts_shop_offsets_to_utc() -> None:
    """Shopify's -05:00 timestamps become aware UTC datetimes."""
    moment = parse_time("2021-12-31T19:00:00-05:00")
    assert moment == datetime(2022, 1, 1, 0, 0, tzinfo=UTC)
    assert moment.tzinfo is UTC


def test_parse_time_reads_nanosecond_z_times() -> None:
    """X-Shopify-Triggered-At's nine fractional digits and Z parse (truncated to microseconds)."""
    assert parse_time("2023-03-29T18:00:27.877041743Z") == datetime(
        2023, 3, 29, 18, 0, 27, 877041, tzinfo=UTC
    )


@pytest.mark.parametrize("raw", ["2021-12-31T19:00:00", "yesterday", 1640995200, None])
def test_parse_time_rejects_naive_and_non_times(raw: object) -> None:
    """A time without an offset, or not a time at all, raises ValueError."""
    with pytest.raises(ValueError, match="timestamp"):
        parse_time(raw)


def test_optional_time_is_none_when_absent() -> None:
    """An absent timestamp is None."""
    assert optional_time(None) is None
    assert optional_time("") is None


def test_tolerant_reads_skip_wrong_types() -> None:
    """Readers return None or empty for wrong types instead of raising."""
    assert as_dicts([{"a": 1}, "x", None]) == [{"a": 1}]
    assert as_dicts("oops") == []
    assert text("  ") is None
    assert text(5) is None
    assert identifier(True) is None
    assert identifier(820982911946154508) == 820982911946154508
    assert count(-1) is None
    assert count(True) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" bob@biller.com ", "bob@biller.com"),
        ("bob@localhost", None),
        ("bob biller@x.com", None),
        ("@x.com", None),
        (None, None),
    ],
)
def test_email_address_keeps_only_plausible_addresses(raw: object, expected: str | None) -> None:
    """Only something Klaviyo would take as an email is kept."""
    assert email_address(raw) == expected


def test_clip_never_splits_a_character() -> None:
    """Clipping counts UTF-8 bytes and drops a partial multi-byte character."""
    assert clip("ab測", 4) == "ab"
    assert clip("short", 100) == "short"
