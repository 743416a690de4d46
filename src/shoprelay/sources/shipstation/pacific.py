"""ShipStation's clock: naive US Pacific wall-clock time, converted to and from aware UTC."""

from __future__ import annotations

from datetime import datetime, timedelta

from shoprelay.mapping.shipstation import PACIFIC

FILTER_FORMAT = "%Y-%m-%d %H:%M:%S"


def _repeats_later(wall: datetime) -> timedelta:
    """How far the wall clock steps back after this moment (fall-back), else zero."""
    if wall.fold == 1:
        return timedelta(0)
    second_pass = wall.replace(fold=1)
    step = (wall.utcoffset() or timedelta(0)) - (second_pass.utcoffset() or timedelta(0))
    return max(step, timedelta(0))


def since_filter(moment: datetime) -> str:
    """A `...DateStart` filter that includes everything stamped at or after `moment`.

    In the first pass of the fall-back hour, later changes are stamped with smaller wall-clock
    times (01:10 PST comes after 01:50 PDT), so the filter starts one hour earlier.
    """
    wall = moment.astimezone(PACIFIC)
    return (wall - _repeats_later(wall)).strftime(FILTER_FORMAT)


def _repeated_earlier(wall: datetime) -> timedelta:
    """How far the wall clock stood ahead before this moment (fall-back second pass), else zero."""
    if wall.fold == 0:
        return timedelta(0)
    first_pass = wall.replace(fold=0)
    step = (first_pass.utcoffset() or timedelta(0)) - (wall.utcoffset() or timedelta(0))
    return max(step, timedelta(0))


def until_filter(moment: datetime) -> str:
    """A `...DateEnd` filter that includes everything stamped at or before `moment`.

    In the second pass of the fall-back hour, earlier changes carry larger wall-clock times
    (01:50 PDT came before 01:10 PST), so the filter ends one hour later.
    """
    wall = moment.astimezone(PACIFIC)
    return (wall + _repeated_earlier(wall)).strftime(FILTER_FORMAT)
