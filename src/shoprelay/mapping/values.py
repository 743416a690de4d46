"""Pure value parsing: tolerant JSON reads, Decimal money, E.164 phones, UTC times (and their
sortable text)."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import phonenumbers


def as_dict(value: object) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one: payload fields may hold anything."""
    return value if isinstance(value, dict) else {}


def as_dicts(value: object) -> list[dict[str, Any]]:
    """The objects in `value` if it is a JSON array, skipping anything else."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def text(value: object) -> str | None:
    """A stripped, non-empty string, else None (Shopify sends "" as often as null)."""
    return (value.strip() or None) if isinstance(value, str) else None


def identifier(value: object) -> int | str | None:
    """An id as Shopify sends it: a JSON integer (kept exact, never float) or a string."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return text(value)


def count(value: object) -> int | None:
    """A whole number of at least zero, else None."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def known(values: dict[str, Any]) -> dict[str, Any]:
    """`values` without the unknown (None) ones: Klaviyo clears a field sent as null."""
    return {key: value for key, value in values.items() if value is not None}


_WHITESPACE = re.compile(r"\s")


def email_address(raw: object) -> str | None:
    """`raw` if it looks like an email address Klaviyo would accept, else None."""
    email = text(raw)
    if email is None or _WHITESPACE.search(email):
        return None
    local, _, domain = email.rpartition("@")
    return email if local and "." in domain.strip(".") else None


def money(raw: object) -> Decimal:
    """A decimal amount from Shopify's money string (or, in refund line items, a JSON number)."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float | Decimal):
        raise ValueError(f"not an amount: {type(raw).__name__}")
    try:
        # str() first: Decimal(0.1) would carry the float's binary error into the money.
        amount = Decimal(str(raw).strip())
    except InvalidOperation:
        raise ValueError(f"not an amount: {raw!r}") from None
    if not amount.is_finite():
        raise ValueError(f"not a finite amount: {raw!r}")
    return amount


def optional_money(raw: object) -> Decimal | None:
    """`money()`, with None for an absent or empty amount."""
    if raw is None or raw == "":
        return None
    return money(raw)


def e164(raw: object, country_code_hint: str | None = None) -> str | None:
    """The number in E.164 form, or None when it is not a valid phone number."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    region = country_code_hint.upper() if isinstance(country_code_hint, str) else None
    return _e164(raw, region)


@functools.lru_cache(maxsize=8192)
def _e164(raw: str, region: str | None) -> str | None:
    """Parse and validate; cached, as parsing is mapping's costliest step and customers return.

    The region (ISO 3166 alpha-2) reads numbers written without a +country prefix. Validity,
    not mere shape, is checked because Klaviyo rejects the whole profile otherwise.
    """
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse_time(raw: object) -> datetime:
    """An ISO 8601 timestamp with an offset (Shopify sends the shop's, e.g. -05:00), in UTC."""
    if not isinstance(raw, str):
        raise ValueError(f"not a timestamp: {type(raw).__name__}")
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ValueError(f"not an ISO 8601 timestamp: {raw!r}") from None
    if moment.tzinfo is None:
        raise ValueError(f"timestamp has no UTC offset: {raw!r}")
    return moment.astimezone(UTC)


def optional_time(raw: object) -> datetime | None:
    """`parse_time()`, with None for an absent or empty timestamp."""
    if raw is None or raw == "":
        return None
    return parse_time(raw)


def sortable_utc(moment: datetime) -> str:
    """`moment` in UTC as ISO 8601 with microseconds and a Z, a form that sorts as text.

    Resource versions, event unique_ids and ShipStation's cursors are stored in it, so it
    must not change. The year is always four digits, where strftime's %Y may give fewer.
    """
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def from_sortable_utc(raw: str) -> datetime:
    """The inverse of `sortable_utc()`."""
    return datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(UTC)


def clip(text: str, max_bytes: int) -> str:
    """`text` cut to at most `max_bytes` of UTF-8, never splitting a character."""
    if len(text) * 4 <= max_bytes:  # no character takes more than 4 bytes: nothing to cut
        return text
    encoded = text.encode()
    if len(encoded) <= max_bytes:
        return text
    return encoded[:max_bytes].decode(errors="ignore")
