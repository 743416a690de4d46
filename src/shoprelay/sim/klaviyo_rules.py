"""Validation rules from Klaviyo's spec and docs: schema, identifiers, E.164, times and limits."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from shoprelay.sim.klaviyo_config import spec_operations
from shoprelay.sim.klaviyo_errors import ApiError, invalid
from shoprelay.sim.klaviyo_schema import compile_schema

KB = 1024
MAX_BODY_BYTES = {
    "create_event": 5 * KB * KB,
    "bulk_create_events": 5 * KB * KB,
    "create_or_update_profile": 100 * KB,
    "bulk_import_profiles": 5 * KB * KB,
    "bulk_subscribe_profiles": 5 * KB * KB,
    "bulk_unsubscribe_profiles": 5 * KB * KB,
    "request_profile_deletion": 100 * KB,
    "query_metric_aggregates": 100 * KB,
}
MAX_STRING_BYTES = 100 * KB
MAX_PROFILE_BYTES = 100 * KB
MAX_BULK_EVENTS = 1_000
MAX_BULK_PROFILES = 10_000
MAX_EVENT_PROPERTIES = 400
MAX_METRIC_NAME = 127  # "must be less than 128 characters"
EARLIEST_EVENT = datetime(1990, 1, 1, tzinfo=UTC)
LATEST_EVENT_AHEAD = timedelta(days=365)
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
EVENT_IDENTIFIERS = ("email", "phone_number", "external_id", "anonymous_id", "_kx")
PROFILE_IDENTIFIERS = ("email", "phone_number", "external_id", "_kx")
FORMATS = FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def is_date_time(value: object) -> bool:
    """ISO 8601 date-time; non-strings are left to the `type` keyword."""
    if isinstance(value, str):
        datetime.fromisoformat(value)
    return True


@functools.cache
def request_validator(operation_id: str) -> Draft202012Validator:
    """The compiled, cached validator for an operation's request body."""
    schema = spec_operations()[operation_id]["request_schema"]
    return Draft202012Validator(schema, format_checker=FORMATS)


def error_pointer(error: ValidationError) -> str:
    """The JSON pointer of a schema error; a missing property points at where it belongs."""
    parts = [str(part) for part in error.absolute_path]
    required = error.validator_value
    if (
        error.validator == "required"
        and isinstance(error.instance, dict)
        and isinstance(required, list)
    ):
        missing = [name for name in required if name not in error.instance]
        parts.extend(missing[:1])
    return "/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


@functools.cache
def request_check(operation_id: str) -> Callable[[Any], bool]:
    """The compiled yes/no check for an operation's body (jsonschema's if it won't compile)."""
    check = compile_schema(spec_operations()[operation_id]["request_schema"])
    return check or request_validator(operation_id).is_valid


def schema_errors(operation_id: str, body: Any) -> list[ApiError]:
    """One `invalid` error per schema violation, each at its own pointer."""
    if request_check(operation_id)(body):
        return []
    errors = request_validator(operation_id).iter_errors(body)
    found = {error_pointer(error): error.message for error in errors}
    return [invalid(message, pointer) for pointer, message in sorted(found.items())]


def parse_event_time(value: str | None, now: datetime) -> datetime:
    """The event time truncated to the second (UTC if no offset); `now` when absent."""
    return _utc_second(now) if value is None else _parsed_time(value)


@functools.lru_cache(maxsize=4_096)
def _parsed_time(value: str) -> datetime:
    # Checked, then recorded: twice per event, and an order's events share one time.
    return _utc_second(datetime.fromisoformat(value))


def _utc_second(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def event_errors(attributes: Mapping[str, Any], pointer: str, now: datetime) -> list[ApiError]:
    """The spec's rules for one (schema-valid) event's attributes at `pointer`."""
    errors: list[ApiError] = []
    time = parse_event_time(attributes.get("time"), now)
    if not EARLIEST_EVENT < time <= now + LATEST_EVENT_AHEAD:
        detail = "The time must be after the year 1990 and can only be up to 1 year in the future."
        errors.append(invalid(detail, f"{pointer}/time"))
    name = attributes["metric"]["data"]["attributes"]["name"]
    if not name.strip() or len(name) > MAX_METRIC_NAME:
        detail = "Metric name must be between 1 and 127 characters."
        errors.append(invalid(detail, f"{pointer}/metric/data/attributes/name"))
    if len(attributes["properties"]) > MAX_EVENT_PROPERTIES:
        detail = f"An event can have at most {MAX_EVENT_PROPERTIES} properties."
        errors.append(invalid(detail, f"{pointer}/properties"))
    return errors


def profile_errors(
    profile: Mapping[str, Any], pointer: str, identifiers: tuple[str, ...]
) -> list[ApiError]:
    """Identifier rules for a profile resource object (`data`) at `pointer`."""
    attributes = profile.get("attributes") or {}
    errors: list[ApiError] = []
    if not profile.get("id") and not any(attributes.get(name) for name in identifiers):
        errors.append(invalid("One or more identifiers is required", f"{pointer}/attributes"))
    phone = attributes.get("phone_number")
    if phone is not None and not E164.match(phone):
        detail = f"Invalid phone number format (Example of a valid format: +12345678901): {phone}"
        errors.append(invalid(detail, f"{pointer}/attributes/phone_number"))
    email = attributes.get("email")
    if email is not None and not EMAIL.match(email):
        errors.append(invalid(f"Invalid email address: {email}", f"{pointer}/attributes/email"))
    return errors


def oversized_strings(node: Any, pointer: str) -> Iterator[str]:
    """Pointers of strings larger than 100 KB anywhere under `node`."""
    if isinstance(node, str):
        if _oversized(node):
            yield pointer
        return
    if isinstance(node, dict):
        members: Iterable[tuple[Any, Any]] = node.items()
    elif isinstance(node, list):
        members = enumerate(node)
    else:
        return
    for key, value in members:
        # Leaves inline, pointers built only where needed: a bulk body has ~10^5 values.
        kind = type(value)
        if kind is str:
            if len(value) * 4 > MAX_STRING_BYTES and _oversized(value):
                yield f"{pointer}/{key}"
        elif kind is dict or kind is list:
            yield from oversized_strings(value, f"{pointer}/{key}")


def _oversized(text: str) -> bool:
    return len(text) * 4 > MAX_STRING_BYTES and len(text.encode()) > MAX_STRING_BYTES


def string_size_errors(body: Any, raw: bytes) -> list[ApiError]:
    """An error per string over 100 KB, in `body` parsed from `raw`.

    Walking every value of a bulk body costs more than parsing it, so the walk runs only when
    the raw text could hold such a string.
    """
    if len(raw) <= MAX_STRING_BYTES or (b'\\"' not in raw and not _LONG_RUN.search(raw)):
        return []
    detail = "A single string cannot be larger than 100KB."
    return [invalid(detail, pointer) for pointer in oversized_strings(body, "")]


# A quote and then a string's limit of bytes with no quote. JSON's escapes only lengthen a
# string, so with no escaped quote in the text a string over the limit leaves such a run.
_LONG_RUN = re.compile(b'"[^"]{%d}' % MAX_STRING_BYTES)


def profile_size_error(profile: Any, pointer: str) -> ApiError | None:
    """An error if one profile of a bulk import is over 100 KB."""
    if len(orjson.dumps(profile)) <= MAX_PROFILE_BYTES:
        return None
    return invalid("The maximum allowed payload size per profile is 100KB.", pointer)


def tolerant(check: Callable[..., list[ApiError]], *args: Any) -> list[ApiError]:
    """Run a semantic check on input that may be schema-invalid; the schema errors cover that."""
    try:
        return check(*args)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        return []
