"""Pure rules of the Klaviyo simulator: schemas, limits, faults, identity and upserts."""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from tests.support.klaviyo_schema import validate_request

from shoprelay.sim import klaviyo_rules
from shoprelay.sim.klaviyo_config import RateLimit, spec_limits
from shoprelay.sim.klaviyo_event_api import profile_groups
from shoprelay.sim.klaviyo_faults import Fault, Faults
from shoprelay.sim.klaviyo_limits import RateLimiter
from shoprelay.sim.klaviyo_profiles import ProfileConflictError, ProfileStore
from shoprelay.sim.klaviyo_rules import request_check, request_validator, schema_errors

NOW = datetime(2026, 7, 20, tzinfo=UTC)
EVENT: dict[str, Any] = {
    "data": {
        "type": "event",
        "attributes": {
            "metric": {"data": {"type": "metric", "attributes": {"name": "Placed Order"}}},
            "profile": {"data": {"type": "profile", "attributes": {"email": "a@example.com"}}},
            "properties": {"OrderId": "1"},
            "time": "2026-07-20T14:03:11Z",
            "value": 12.5,
        },
    }
}


def with_attribute(name: str, value: Any) -> dict[str, Any]:
    """EVENT with one event attribute replaced."""
    body = copy.deepcopy(EVENT)
    body["data"]["attributes"][name] = value
    return body


BODIES = [
    EVENT,
    with_attribute("time", 1721484191),
    with_attribute("time", "not a time"),
    with_attribute("time", None),
    with_attribute("value", True),
    with_attribute("value", 3),
    with_attribute("properties", []),
    with_attribute("metric", {"data": {"type": "metrics", "attributes": {"name": "x"}}}),
    with_attribute("metric", {"data": {"type": "metric"}}),
    {"data": {"type": "event"}},
    {"data": []},
    {},
]


@pytest.mark.parametrize("body", BODIES)
def test_compiled_check_agrees_with_jsonschema(body: dict[str, Any]) -> None:
    """The fast compiled schema check says valid exactly when jsonschema does."""
    assert request_check("create_event")(body) == request_validator("create_event").is_valid(body)


def test_location_one_of_accepts_string_number_or_null() -> None:
    """Latitude is a string, a number or null, as the spec's oneOf allows, but not a list."""
    for latitude, valid in (("40.7", True), (40.7, True), (None, True), ([40.7], False)):
        profile = {"data": {"type": "profile", "attributes": {"location": {"latitude": latitude}}}}
        assert request_check("create_or_update_profile")(profile) is valid


def test_missing_property_points_at_itself() -> None:
    """A missing required property is reported at the pointer where it belongs."""
    errors = schema_errors("create_event", with_attribute("metric", {"data": {"type": "metric"}}))
    assert [error.pointer for error in errors] == ["/data/attributes/metric/data/attributes"]
    no_name = with_attribute("metric", {"data": {"type": "metric", "attributes": {}}})
    pointers = [error.pointer for error in schema_errors("create_event", no_name)]
    assert pointers == ["/data/attributes/metric/data/attributes/name"]


def test_validate_request_lists_each_violation() -> None:
    """The test-support validator reports every violation with its pointer, and [] when valid."""
    assert validate_request("create_event", EVENT) == []
    assert validate_request("create_event", with_attribute("time", 5)) == [
        "/data/attributes/time: 5 is not of type 'string', 'null'"
    ]


def test_spec_limits_are_the_documented_tiers() -> None:
    """Default limits come from the spec's x-klaviyo-ratelimit."""
    limits = spec_limits()
    assert limits["create_event"] == RateLimit(350, 3500)
    assert limits["bulk_create_events"] == RateLimit(10, 150)
    assert limits["create_or_update_profile"] == RateLimit(75, 750)
    assert limits["get_errors_for_bulk_import_profiles_job"] == RateLimit(10, 150)


def test_burst_window_is_fixed_and_resets() -> None:
    """The burst window admits `burst` requests, throttles the rest, and restarts a second later."""
    limiter, limit = RateLimiter(), RateLimit(burst=2, steady=100)
    answers = [limiter.admit("pk", "op", limit, now) for now in (0.0, 0.1, 0.5)]
    assert [answer.allowed for answer in answers] == [True, True, False]
    assert answers[2].retry_after == 1
    assert limiter.admit("pk", "op", limit, 1.0).allowed
    assert limiter.admit("pk", "other", limit, 1.0).allowed
    assert limiter.highest_counts()["op"] == {"burst": 3, "steady": 4}


def test_steady_window_reports_remaining_and_reset() -> None:
    """Headers describe the steady window; Retry-After waits for the steady window's end."""
    limiter, limit = RateLimiter(), RateLimit(burst=10, steady=2)
    first = limiter.admit("pk", "op", limit, 100.0)
    assert first.headers() == {
        "RateLimit-Limit": "2",
        "RateLimit-Remaining": "1",
        "RateLimit-Reset": "60",
    }
    limiter.admit("pk", "op", limit, 110.0)
    third = limiter.admit("pk", "op", limit, 130.5)
    assert (third.allowed, third.retry_after) == (False, 30)


def test_fault_draw_follows_fractions() -> None:
    """Faults are drawn in their configured proportions from the seeded RNG."""
    faults = Faults(rate_500=0.25, rate_429=0.25)
    rng = random.Random(1)
    draws = [faults.draw(rng) for _ in range(4000)]
    assert 900 < draws.count(Fault.SERVER_ERROR) < 1100
    assert 900 < draws.count(Fault.THROTTLE) < 1100


def test_fault_rates_must_fit_in_one() -> None:
    """Rates outside [0, 1], summing past 1, or unknown fields are rejected."""
    with pytest.raises(ValueError, match="sum"):
        Faults(rate_500=0.7, rate_503=0.7)
    with pytest.raises(ValueError, match="unknown"):
        Faults.from_json({"rate_404": 0.1}, Faults())


def test_profile_groups_join_entries_sharing_an_identifier() -> None:
    """Entries that share any identifier, directly or through another entry, are one profile."""
    groups = profile_groups([{"email:a"}, {"phone:1"}, {"email:a", "phone:1"}, {"email:b"}])
    assert groups[0] == groups[1] == groups[2] != groups[3]


def test_upsert_clears_nulls_and_keeps_omitted() -> None:
    """Null clears, omitted stays, location merges, and emails match case-insensitively."""
    store = ProfileStore()
    profile, created = store.upsert(
        {"email": "a@example.com", "first_name": "Ann", "location": {"city": "Oslo", "zip": "1"}},
        NOW,
    )
    again, created_again = store.upsert(
        {"email": "A@Example.com", "first_name": None, "location": {"zip": None}}, NOW
    )
    assert (created, created_again, again.id) == (True, False, profile.id)
    assert again.attributes == {"email": "A@Example.com", "location": {"city": "Oslo"}}


def test_strict_upsert_refuses_two_profiles_lenient_picks_first() -> None:
    """Identifiers of two profiles conflict on profile-import; events attach to the first match."""
    store = ProfileStore()
    first, _ = store.upsert({"email": "a@example.com"}, NOW)
    second, _ = store.upsert({"phone_number": "+15005550006"}, NOW)
    both = {"email": "a@example.com", "phone_number": "+15005550006"}
    with pytest.raises(ProfileConflictError) as conflict:
        store.upsert(both, NOW)
    assert conflict.value.duplicate_profile_id == second.id
    chosen, _ = store.upsert(both, NOW, strict=False)
    assert chosen is first
    assert "phone_number" not in first.attributes


def test_patch_properties_append_unappend_unset() -> None:
    """meta.patch_properties appends to lists, removes values, and unsets keys."""
    store = ProfileStore()
    patch = {"patch_properties": {"append": {"skus": "1"}, "unset": "old"}}
    profile, _ = store.upsert({"email": "a@example.com", "properties": {"old": 1}}, NOW)
    store.upsert({"email": "a@example.com"}, NOW, patch=patch)
    store.upsert(
        {"email": "a@example.com"},
        NOW,
        patch={"patch_properties": {"append": {"skus": ["2", "3"]}}},
    )
    store.upsert(
        {"email": "a@example.com"}, NOW, patch={"patch_properties": {"unappend": {"skus": "2"}}}
    )
    assert profile.attributes["properties"] == {"skus": ["1", "3"]}


def test_strings_over_100_kb_are_found_wherever_they_are() -> None:
    limit = klaviyo_rules.MAX_STRING_BYTES
    body = {
        "data": {
            "attributes": {
                "events": {"data": [{"n": 1}, {"note": "x" * limit, "big": "y" * (limit + 1)}]},
                "name": "é" * (limit // 2 + 1),  # fewer characters than bytes
                "fine": "é" * (limit // 2),
                "count": 3,
            }
        },
        "top": "z" * (limit + 1),
    }
    errors = klaviyo_rules.string_size_errors(body, orjson.dumps(body))
    assert [error.pointer for error in errors] == [
        "/data/attributes/events/data/1/big",
        "/data/attributes/name",
        "/top",
    ]


def test_a_string_over_100_kb_is_found_however_it_is_escaped() -> None:
    """The raw text decides whether the values are walked: escapes must not hide a string."""
    limit = klaviyo_rules.MAX_STRING_BYTES
    for text in ('"' * (limit + 1), '\\"' * (limit // 2 + 1), "\n" * (limit + 1)):
        body = {"short": ["x"] * 1_000, "long": text}
        errors = klaviyo_rules.string_size_errors(body, orjson.dumps(body))
        assert [error.pointer for error in errors] == ["/long"]


def test_a_large_body_of_short_strings_has_no_string_errors() -> None:
    limit = klaviyo_rules.MAX_STRING_BYTES
    for quote in ("say hi", 'say "hi"'):  # walked only with an escaped quote in the text
        body = {"events": [{"note": "y" * limit, "quote": quote} for _ in range(5)]}
        raw = orjson.dumps(body)
        assert len(raw) > 5 * limit
        assert klaviyo_rules.string_size_errors(body, raw) == []


def _bulk(events: Any) -> dict[str, Any]:
    profile = {"type": "profile", "attributes": {"email": "a@example.com"}}
    entry = {
        "type": "event-bulk-create",
        "attributes": {"profile": {"data": profile}, "events": {"data": events}},
    }
    return {
        "data": {
            "type": "event-bulk-create-job",
            "attributes": {"events-bulk-create": {"data": [entry]}},
        }
    }


ATTRIBUTES = EVENT["data"]["attributes"]
NO_PROFILE = {name: value for name, value in ATTRIBUTES.items() if name != "profile"}


@pytest.mark.parametrize(
    "body",
    [
        _bulk([{"type": "event", "attributes": NO_PROFILE}] * 3),
        _bulk([{"type": "event", "attributes": NO_PROFILE}, {"type": "event"}]),
        _bulk([{"type": "event", "attributes": {**NO_PROFILE, "value": "12"}}]),
        _bulk([{"type": "events", "attributes": NO_PROFILE}]),
        _bulk({"type": "event", "attributes": NO_PROFILE}),
        _bulk([]),
    ],
)
def test_compiled_bulk_check_agrees_with_jsonschema(body: dict[str, Any]) -> None:
    check, validator = request_check("bulk_create_events"), request_validator("bulk_create_events")
    assert check(body) == validator.is_valid(body)
