"""The one report hook: every delivery outcome is logged and counted here, and nowhere else."""

from __future__ import annotations

import time
from dataclasses import dataclass

import structlog
from prometheus_client import Counter, Gauge, Histogram

from shoprelay.delivery.outcome import (
    Delivered,
    DuplicateProfile,
    Outcome,
    PauseAccount,
    Refused,
    RetryLater,
)

log = structlog.get_logger("shoprelay.delivery")

ITEMS = Counter(
    "shoprelay_delivery_items_total",
    "Outbox items by what their Klaviyo request came to",
    ["endpoint", "outcome"],
)
REQUESTS = Counter(
    "shoprelay_delivery_requests_total", "Requests sent to Klaviyo", ["endpoint", "status"]
)
THROTTLED = Counter("shoprelay_delivery_429_total", "Klaviyo 429 responses", ["endpoint"])
LATENCY = Histogram(
    "shoprelay_delivery_request_seconds",
    "Klaviyo request latency",
    ["endpoint"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
FAULTS = Counter(
    "shoprelay_delivery_faults_total",
    "Errors delivery caught and survived, by where they happened",
    ["where"],
)
LANE_RESTARTS = Counter(
    "shoprelay_delivery_lane_restarts_total", "Delivery lanes that ended and were started again"
)
# Summed over the live processes: /readyz in a receiving process reads the delivering one's.
LANES_FAILING = Gauge(
    "shoprelay_delivery_lanes_failing",
    "Delivery lanes whose last rounds all failed",
    multiprocess_mode="livesum",
)

# When an item last reached Klaviyo, kept past the process that sent it: the dashboard tells
# a stalled pipeline by it.
LAST_DELIVERED = Gauge(
    "shoprelay_delivery_last_delivered_timestamp_seconds",
    "When an outbox item was last delivered to Klaviyo (Unix time)",
    multiprocess_mode="max",
)


@dataclass(frozen=True)
class Attempt:
    """One request and what came of it, as the report hook receives it."""

    account: str
    endpoint: str
    item_ids: tuple[int, ...]
    outcome: Outcome
    seconds: float
    status: int | None = None


def outcome_name(outcome: Outcome) -> str:
    """A short label for logs and metrics."""
    names = {
        Delivered: "delivered",
        RetryLater: "retried",
        Refused: "dead_lettered",
        PauseAccount: "paused",
        DuplicateProfile: "duplicate_profile",
    }
    return names[type(outcome)]


def report(attempt: Attempt) -> None:
    """Log and count one attempt: ids, counts and status codes, never payloads."""
    name = outcome_name(attempt.outcome)
    status = "none" if attempt.status is None else str(attempt.status)
    ITEMS.labels(attempt.endpoint, name).inc(len(attempt.item_ids))
    REQUESTS.labels(attempt.endpoint, status).inc()
    LATENCY.labels(attempt.endpoint).observe(attempt.seconds)
    fields = {
        "account": attempt.account,
        "endpoint": attempt.endpoint,
        "items": len(attempt.item_ids),
        "status": attempt.status,
        "outcome": name,
    }
    outcome = attempt.outcome
    if isinstance(outcome, RetryLater):
        if outcome.throttled:
            THROTTLED.labels(attempt.endpoint).inc()
        log.warning("klaviyo.retry", reason=outcome.reason, delay_hint=outcome.delay_hint, **fields)
    elif isinstance(outcome, Refused):
        # Klaviyo's detail can quote an email or phone, so only the code and pointer go here.
        log.warning("klaviyo.refused", code=outcome.code, pointer=outcome.pointer, **fields)
    elif isinstance(outcome, DuplicateProfile):
        log.info("klaviyo.duplicate_profile", item_ids=attempt.item_ids, **fields)
    elif isinstance(outcome, Delivered):
        LAST_DELIVERED.set(time.time())
        log.debug("klaviyo.delivered", **fields)


def report_pause(account: str, endpoint: str, reason: str, *, paused: bool) -> None:
    """A pause began or ended: loud for the account-wide kind, which needs a person."""
    if not paused:
        log.warning("klaviyo.resumed", account=account, endpoint=endpoint)
    elif endpoint == "*":
        log.error("klaviyo.account_paused", account=account, reason=reason)
    else:
        log.warning("klaviyo.endpoint_paused", account=account, endpoint=endpoint, reason=reason)


def report_gave_up(account: str, item_ids: tuple[int, ...], reason: str) -> None:
    """Items dead-lettered because they ran out of attempts or time."""
    ITEMS.labels("any", "gave_up").inc(len(item_ids))
    log.warning("klaviyo.gave_up", account=account, items=len(item_ids), reason=reason)


def report_fault(where: str, **fields: str) -> None:
    """An error delivery caught and goes on after: logged with its traceback (plain text,
    no frame's locals, see logs.py), and counted."""
    FAULTS.labels(where).inc()
    log.error("delivery.fault", where=where, exc_info=True, **fields)
