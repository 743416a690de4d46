"""Pacific wall-clock timestamps and filters, both ways, across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shoprelay.mapping.shipstation import pacific_to_utc
from shoprelay.mapping.values import from_sortable_utc, sortable_utc
from shoprelay.sources.shipstation.pacific import since_filter, until_filter


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2015-06-29T08:46:27.0000000", datetime(2015, 6, 29, 15, 46, 27, tzinfo=UTC)),  # PDT
        ("2015-12-29T08:46:27.0000000", datetime(2015, 12, 29, 16, 46, 27, tzinfo=UTC)),  # PST
        ("2015-08-17T09:24:14.78", datetime(2015, 8, 17, 16, 24, 14, 780000, tzinfo=UTC)),
        ("2015-07-02", datetime(2015, 7, 2, 7, 0, tzinfo=UTC)),
        ("2025-03-09T03:00:30.0000000", datetime(2025, 3, 9, 10, 0, 30, tzinfo=UTC)),
        ("2025-03-09T01:59:30.0000000", datetime(2025, 3, 9, 9, 59, 30, tzinfo=UTC)),
    ],
)
def test_response_stamps_become_utc(raw: str, expected: datetime) -> None:
    """Naive Pacific stamps (7, 2 or no fraction digits, date only) map to the right UTC instant."""
    assert pacific_to_utc(raw) == expected


def test_repeated_hour_reads_as_the_earlier_pass() -> None:
    """01:30 on fall-back night is ambiguous; it reads as PDT (fold=0), the earlier instant."""
    assert pacific_to_utc("2025-11-02T01:30:00.0000000") == datetime(2025, 11, 2, 8, 30, tzinfo=UTC)


def test_empty_stamp_is_no_time() -> None:
    """An empty timestamp is no time at all, not midnight."""
    assert pacific_to_utc(" ") is None


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2025, 7, 1, 19, 0, tzinfo=UTC), "2025-07-01 12:00:00"),
        (datetime(2025, 12, 1, 20, 0, tzinfo=UTC), "2025-12-01 12:00:00"),
        (datetime(2025, 3, 9, 10, 0, tzinfo=UTC), "2025-03-09 03:00:00"),
    ],
)
def test_filters_are_pacific_wall_clock(moment: datetime, expected: str) -> None:
    """Filters are sent as Pacific 'yyyy-mm-dd hh:mm:ss', in PDT and PST alike."""
    assert since_filter(moment) == expected
    assert until_filter(moment) == expected


def test_since_filter_in_the_first_pass_reaches_back_an_hour() -> None:
    """From 01:40 PDT, later changes may be stamped 01:00-01:59 PST: the filter starts at 00:40."""
    assert since_filter(datetime(2025, 11, 2, 8, 40, tzinfo=UTC)) == "2025-11-02 00:40:00"


def test_since_filter_in_the_second_pass_is_exact() -> None:
    """From 01:10 PST, every later stamp is 01:10 or more: no widening is needed."""
    assert since_filter(datetime(2025, 11, 2, 9, 10, tzinfo=UTC)) == "2025-11-02 01:10:00"


def test_until_filter_in_the_second_pass_reaches_forward_an_hour() -> None:
    """Up to 01:10 PST, earlier changes can carry stamps up to 01:59 PDT, so the end is 02:10."""
    assert until_filter(datetime(2025, 11, 2, 9, 10, tzinfo=UTC)) == "2025-11-02 02:10:00"


def test_stored_iso_round_trips() -> None:
    """Versions and cursors are sortable UTC ISO strings that parse back to the same instant."""
    moment = datetime(2025, 11, 2, 9, 10, 5, 123456, tzinfo=UTC)
    assert sortable_utc(moment) == "2025-11-02T09:10:05.123456Z"
    assert from_sortable_utc(sortable_utc(moment)) == moment
