"""classify(): one Klaviyo reply in, one outcome out."""

from __future__ import annotations

from shoprelay.delivery.outcome import (
    Delivered,
    DuplicateProfile,
    PauseAccount,
    Quota,
    Refused,
    RetryLater,
    classify,
    transport_failure,
)

NOW = 1_000.0


def errors(*items: dict[str, object]) -> dict[str, object]:
    return {"errors": list(items)}


def test_accepted_carries_the_steady_quota() -> None:
    """A 202 is delivered, with RateLimit-Remaining/Reset read as an absolute reset time."""
    headers = {"ratelimit-remaining": "12", "ratelimit-reset": "30"}
    assert classify(202, headers, None, NOW) == Delivered(202, Quota(12, NOW + 30))


def test_throttled_uses_retry_after() -> None:
    """A 429 retries no sooner than Retry-After."""
    outcome = classify(429, {"retry-after": "7"}, None, NOW)
    assert isinstance(outcome, RetryLater)
    assert outcome.delay_hint == 7.0
    assert outcome.throttled


def test_throttled_without_header_reads_the_body() -> None:
    """Without Retry-After, the body's "Expected available in N seconds" is the hint."""
    body = errors({"code": "throttled", "detail": "Expected available in 3 seconds."})
    assert classify(429, {}, body, NOW) == RetryLater(3.0, "429 throttled", 429)


def test_server_errors_retry() -> None:
    """500, 502, 503, 504, 524 and 525 are transient."""
    for status in (500, 502, 503, 504, 524, 525):
        assert isinstance(classify(status, {}, "<html>", NOW), RetryLater)


def test_html_403_is_a_challenge_not_a_bad_key() -> None:
    """A Cloudflare challenge page retries; a JSON 403 means the key lacks a scope."""
    assert isinstance(classify(403, {}, "<html>challenge</html>", NOW), RetryLater)
    scope = classify(403, {}, errors({"code": "permission_denied", "detail": "no scope"}), NOW)
    assert isinstance(scope, PauseAccount)


def test_unauthorized_pauses_the_account() -> None:
    """A 401 pauses; its reason is Klaviyo's detail, with no key in it."""
    outcome = classify(401, {}, errors({"code": "x", "detail": "Incorrect credentials."}), NOW)
    assert outcome == PauseAccount(401, "401 Incorrect credentials.")


def test_bad_request_keeps_every_error_and_pointer() -> None:
    """A 400 dead-letters with all of Klaviyo's errors."""
    body = errors(
        {"code": "invalid", "detail": "bad time", "source": {"pointer": "/data/attributes/time"}},
        {"code": "invalid", "detail": "bad phone", "source": {"parameter": "x"}},
    )
    outcome = classify(400, {}, body, NOW)
    assert isinstance(outcome, Refused)
    assert outcome.pointer == "/data/attributes/time"
    assert outcome.code == "invalid"
    assert outcome.detail == "bad time; bad phone"
    assert len(outcome.errors) == 2


def test_duplicate_profile_names_the_other_profile() -> None:
    """409 duplicate_profile carries meta.duplicate_profile_id."""
    body = errors(
        {"code": "duplicate_profile", "detail": "dup", "meta": {"duplicate_profile_id": "P1"}}
    )
    assert classify(409, {}, body, NOW) == DuplicateProfile("P1")


def test_other_conflicts_dead_letter() -> None:
    """A 409 of another kind is not retried."""
    assert isinstance(classify(409, {}, errors({"code": "conflict", "detail": "x"}), NOW), Refused)


def test_transport_failures_retry() -> None:
    """Timeouts and connection errors retry with no hint."""
    assert transport_failure("timeout") == RetryLater(None, "timeout")
