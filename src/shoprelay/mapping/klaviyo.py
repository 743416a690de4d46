"""Klaviyo's shapes: profiles and events as frozen values, and their JSON:API attributes."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

MAX_METRIC_NAME = 127  # Klaviyo: "must be less than 128 characters"


def check_metric_names(metrics: Any) -> None:
    """Refuse a metric-name dataclass with a blank or over-long name, naming the field."""
    for metric in dataclasses.fields(metrics):
        name = getattr(metrics, metric.name)
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_METRIC_NAME:
            raise ValueError(f"metric {metric.name} must be 1 to {MAX_METRIC_NAME} characters")


def unique_id(*parts: object) -> str:
    """A deterministic event id from its source parts, so a resend is deduplicated by Klaviyo."""
    return ":".join(map(str, parts))


def _compact(values: dict[str, Any]) -> dict[str, Any]:
    """Drop unknown fields: Klaviyo clears a field sent as null."""
    return {k: v for k, v in values.items() if v is not None and v not in ({}, "")}


@functools.lru_cache(maxsize=4096)  # an order's events share one time
def klaviyo_time(moment: datetime) -> str:
    """UTC ISO-8601 with a Z, truncated to the second, as Klaviyo stores it."""
    return moment.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


@functools.lru_cache(maxsize=4096)  # a catalogue's prices repeat; equal amounts encode alike
def json_number(value: Decimal) -> float | int:
    """Money is Decimal throughout; only the JSON encoding becomes a number."""
    if value == value.to_integral_value() and abs(value) < 2**53:
        return int(value)
    # A float beyond 2**53 still encodes; an int beyond 64 bits would not.
    return float(value)


@dataclass(frozen=True)
class KlaviyoLocation:
    address1: str | None = None
    address2: str | None = None
    city: str | None = None
    region: str | None = None
    zip: str | None = None
    country: str | None = None

    def to_attributes(self) -> dict[str, Any]:
        return _compact(
            {
                "address1": self.address1,
                "address2": self.address2,
                "city": self.city,
                "region": self.region,
                "zip": self.zip,
                "country": self.country,
            }
        )


@dataclass(frozen=True)
class KlaviyoProfile:
    """A profile; at least one of email, phone_number or external_id identifies it."""

    email: str | None = None
    phone_number: str | None = None
    external_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    location: KlaviyoLocation | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    # What mapping left out and why (e.g. a phone that is not E.164); logged, never sent.
    notes: tuple[str, ...] = ()

    @property
    def identified(self) -> bool:
        return bool(self.email or self.phone_number or self.external_id)

    # An order's events share one profile: its attributes are built once, never mutated.
    _attributes: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_attributes", self._build_attributes())

    def to_attributes(self) -> dict[str, Any]:
        return self._attributes

    def _build_attributes(self) -> dict[str, Any]:
        return _compact(
            {
                "email": self.email,
                "phone_number": self.phone_number,
                "external_id": self.external_id,
                "first_name": self.first_name,
                "last_name": self.last_name,
                "location": self.location.to_attributes() if self.location else None,
                "properties": _compact(self.properties) or None,
            }
        )


@dataclass(frozen=True)
class KlaviyoEvent:
    """One event, with the attributes `POST /api/events` takes."""

    metric: str
    profile: KlaviyoProfile
    properties: dict[str, Any]
    time: datetime
    unique_id: str
    value: Decimal | None = None
    value_currency: str | None = None
    backfill: bool = False

    def to_attributes(self) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            "properties": self.properties,
            "time": klaviyo_time(self.time),
            "unique_id": self.unique_id,
            "metric": {"data": {"type": "metric", "attributes": {"name": self.metric}}},
            "profile": {"data": {"type": "profile", "attributes": self.profile.to_attributes()}},
        }
        if self.value is not None:
            attributes["value"] = json_number(self.value)
        if self.value_currency:
            attributes["value_currency"] = self.value_currency
        if self.backfill:
            attributes["backfill"] = True
        return attributes


# The unique_id's share of an event's outbox key; with the digest it stays under the column's 200.
KEY_PREFIX_CHARS = 150


def dedup_key(unique: str, metric: str) -> str:
    """The outbox key of an event: Klaviyo dedups per (profile, metric, unique_id).

    The digest makes the key unique per (metric, unique_id). The unique_id leads because
    sources' ids grow with time: a new key then lands on the last pages of the unique index,
    not on a random one. Led by the digest alone, a group commit's outbox insert took twice
    as long (migration 0006 has the figures).
    """
    digest = hashlib.sha256(f"{metric}\x00{unique}".encode()).hexdigest()[:32]
    return f"event:{unique[:KEY_PREFIX_CHARS]}#{digest}"
