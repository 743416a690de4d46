"""What every Shopify mapper shares: Klaviyo's limits, metric names, tolerant field readers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from shoprelay.mapping.klaviyo import check_metric_names, json_number
from shoprelay.mapping.values import (
    clip,
    optional_money,
    optional_time,
)

MAX_STRING_BYTES = 100_000
MAX_ARRAY_ITEMS = 4000
EARLIEST_EVENT_TIME = datetime(1990, 1, 1, tzinfo=UTC)


class UnmappableError(ValueError):
    """A payload that cannot become a Klaviyo request; the message is what the dead-letter shows."""


@dataclass(frozen=True)
class ShopifyMetrics:
    """Klaviyo metric names per Shopify event kind; defaults match Klaviyo's own names."""

    placed_order: str = "Placed Order"
    ordered_product: str = "Ordered Product"
    fulfilled_order: str = "Fulfilled Order"
    cancelled_order: str = "Cancelled Order"
    refunded_order: str = "Refunded Order"
    started_checkout: str = "Started Checkout"

    def __post_init__(self) -> None:
        check_metric_names(self)


def payload_of(value: object, kind: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UnmappableError(f"{kind} payload is not a JSON object")
    return value


def amount(payload: dict[str, Any], key: str, what: str) -> Decimal | None:
    try:
        return optional_money(payload.get(key))
    except ValueError as error:
        raise UnmappableError(f"{what}: {key} is {error}") from None


def time_of(payload: dict[str, Any], key: str, what: str) -> datetime | None:
    try:
        return optional_time(payload.get(key))
    except ValueError as error:
        raise UnmappableError(f"{what}: {key} is {error}") from None


def event_time(payload: dict[str, Any], what: str, *keys: str) -> datetime:
    """The first of `keys` that is set, checked against Klaviyo's 1990 floor."""
    for key in keys:
        if (moment := time_of(payload, key, what)) is not None:
            if moment < EARLIEST_EVENT_TIME:
                raise UnmappableError(f"{what}: {key} is before 1990, which Klaviyo rejects")
            return moment
    raise UnmappableError(f"{what} has no {' or '.join(keys)}")


def number(amount: Decimal | None) -> float | int | None:
    return None if amount is None else json_number(amount)


def bounded(value: Any) -> Any:
    """Strings and arrays cut to Klaviyo's per-field limits, so a huge note cannot 400 an event."""
    if isinstance(value, str):
        return value if len(value) <= _SHORT_STRING else clip(value, MAX_STRING_BYTES)
    if isinstance(value, list):
        return [bounded(item) for item in value[:MAX_ARRAY_ITEMS]]
    if isinstance(value, dict):
        # Numbers and short strings, most of an event, need no walk: skip the call for them.
        return {
            key: item if type(item) in _PLAIN or _short(item) else bounded(item)
            for key, item in value.items()
        }
    return value


_PLAIN = frozenset({int, float, bool, type(None)})
_SHORT_STRING = MAX_STRING_BYTES // 4  # a character is at most 4 bytes of UTF-8


def _short(value: Any) -> bool:
    return type(value) is str and len(value) <= _SHORT_STRING
