"""What shoprelay reads back from Klaviyo: the account's time zone, metric ids, daily counts.

Reads share the client, its origin check, and the pacing of sends: a RateLimiter over the
spec's limits for these three endpoints. A 429 or a transient failure is retried a few
times; a refusal becomes a KlaviyoReadError that says what to do.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import Awaitable, Callable, Collection
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shoprelay import backoff
from shoprelay.delivery.klaviyo import KlaviyoClient, Reply, TransportFailure
from shoprelay.delivery.outcome import Delivered, PauseAccount, RetryLater, classify
from shoprelay.delivery.ratelimit import SPEC_LIMITS, EndpointLimit, Pacer, RateLimiter
from shoprelay.errors import ShoprelayError

# From the spec's `x-klaviyo-ratelimit`, as SPEC_LIMITS gives the endpoints we send to.
READ_LIMITS = {
    "get_accounts": EndpointLimit(1, 15),
    "get_metrics": EndpointLimit(10, 150),
    "query_metric_aggregates": EndpointLimit(3, 60),
}
READ_SCOPES = {
    "get_accounts": "accounts:read",
    "get_metrics": "metrics:read",
    "query_metric_aggregates": "metrics:read",
}
ATTEMPTS = 3
ACCOUNT = "default"
_RNG = random.Random()  # noqa: S311 (jitter, not secrecy)


class KlaviyoReadError(ShoprelayError):
    """Klaviyo would not answer a read; `missing_scope` names the scope a 403 asked for."""

    def __init__(self, message: str, missing_scope: str | None = None) -> None:
        super().__init__(message)
        self.missing_scope = missing_scope


class KlaviyoReads:
    """Reads for `reconcile` and the dashboard, over one KlaviyoClient."""

    def __init__(self, client: KlaviyoClient, clock: Callable[[], float] = time.monotonic):
        self.client = client
        self.limiter = RateLimiter(SPEC_LIMITS | READ_LIMITS)
        self.clock = clock
        self.pacer = Pacer(self.limiter, clock)

    async def close(self) -> None:
        await self.client.close()

    async def account_timezone(self) -> str:
        """The IANA time zone Klaviyo reports and charts the account's days in."""
        body = await self._read("get_accounts", self.client.get_accounts)
        accounts = body.get("data") or []
        zone = accounts[0]["attributes"]["timezone"] if accounts else None
        if not isinstance(zone, str):
            raise KlaviyoReadError("Klaviyo's account has no time zone in its answer")
        return zone

    async def metric_ids(self, names: Collection[str]) -> dict[str, str]:
        """The ids of the API metrics with these names; a name Klaviyo never saw is left out.

        Metrics are per sending mechanism: shoprelay's events land on the "API" metric of a
        name, not on the one Klaviyo's own Shopify integration records.
        """
        candidates: dict[str, list[tuple[bool, str]]] = {}
        url: str | None = None
        while True:
            page = await self._read("get_metrics", functools.partial(self.client.get_metrics, url))
            for metric in page.get("data") or []:
                attributes = metric.get("attributes") or {}
                if attributes.get("name") in names:
                    api = _from_the_api(attributes.get("integration"))
                    candidates.setdefault(attributes["name"], []).append((api, metric["id"]))
            url = (page.get("links") or {}).get("next")
            if not url:
                break
        return {
            name: chosen
            for name, found in candidates.items()
            if (chosen := _choose(found)) is not None
        }

    async def daily_counts(
        self, metric_id: str, zone: str, first: date, last: date
    ) -> dict[date, int]:
        """Events of a metric per day `first` … `last`, days as Klaviyo cuts them in `zone`.

        The filter reaches a day past each end and only whole days are read back, so the
        answer is the same whether Klaviyo reads the bounds in `zone` or in UTC.
        """
        body = {
            "data": {
                "type": "metric-aggregate",
                "attributes": {
                    "metric_id": metric_id,
                    "measurements": ["count"],
                    "interval": "day",
                    "timezone": zone,
                    "filter": [
                        f"greater-or-equal(datetime,{_midnight(first - timedelta(days=1))})",
                        f"less-than(datetime,{_midnight(last + timedelta(days=2))})",
                    ],
                },
            }
        }
        answer = await self._read(
            "query_metric_aggregates", lambda: self.client.query_metric_aggregates(body)
        )
        return _counts_by_day(answer, ZoneInfo(zone), first, last)

    async def _read(self, endpoint: str, send: Callable[[], Awaitable[Reply]]) -> dict[str, Any]:
        """One paced read, retried on 429 and transient failures; the JSON body it answered."""
        for attempt in range(1, ATTEMPTS + 1):
            await self.pacer.acquire(ACCOUNT, endpoint)
            try:
                reply = await send()
            finally:
                self.limiter.answer(ACCOUNT, endpoint, self.clock())
            if isinstance(reply, TransportFailure):
                problem, hint = reply.reason, None
            else:
                outcome = classify(reply.status, reply.headers, reply.body, time.time())
                if isinstance(outcome, Delivered) and isinstance(reply.body, dict):
                    return reply.body
                if not isinstance(outcome, RetryLater):
                    raise _refusal(endpoint, reply.status, outcome)
                problem, hint = outcome.reason, outcome.delay_hint
            if attempt < ATTEMPTS:
                await asyncio.sleep(backoff.delay(attempt, _RNG, 0.5, 8.0, hint))
        raise KlaviyoReadError(f"Klaviyo did not answer {endpoint}: {problem}")


def _refusal(endpoint: str, status: int, outcome: object) -> KlaviyoReadError:
    scope = READ_SCOPES[endpoint]
    if isinstance(outcome, PauseAccount) and status == 403:
        return KlaviyoReadError(
            f"Klaviyo refused {endpoint} (403): the private key lacks the {scope} scope; "
            "add it to the key in Klaviyo (Settings → API keys)",
            missing_scope=scope,
        )
    if isinstance(outcome, PauseAccount):
        return KlaviyoReadError(f"Klaviyo refused the private key ({status}): {outcome.reason}")
    detail = getattr(outcome, "detail", "")
    return KlaviyoReadError(f"Klaviyo refused {endpoint} ({status}): {detail}")


def _from_the_api(integration: Any) -> bool:
    if not isinstance(integration, dict):
        return False
    marks = (integration.get("key"), integration.get("name"), integration.get("category"))
    return any(isinstance(mark, str) and mark.lower() == "api" for mark in marks)


def _choose(found: list[tuple[bool, str]]) -> str | None:
    """The API metric of a name; a metric with no integration only when it is the one."""
    api = [metric_id for from_api, metric_id in found if from_api]
    if api:
        return api[0]
    return found[0][1] if len(found) == 1 else None


def _midnight(day: date) -> str:
    return datetime.combine(day, datetime.min.time()).isoformat()


def _counts_by_day(
    answer: dict[str, Any], zone: ZoneInfo, first: date, last: date
) -> dict[date, int]:
    attributes = (answer.get("data") or {}).get("attributes") or {}
    dates = attributes.get("dates") or []
    rows = attributes.get("data") or []
    counts = {first + timedelta(days=n): 0 for n in range((last - first).days + 1)}
    for row in rows:
        values = (row.get("measurements") or {}).get("count") or []
        for moment, value in zip(dates, values, strict=False):
            day = _local_day(moment, zone)
            if day in counts:
                counts[day] += round(value or 0)
    return counts


def _local_day(moment: str, zone: ZoneInfo) -> date:
    parsed = datetime.fromisoformat(moment)
    if parsed.tzinfo is None:
        return parsed.date()
    return parsed.astimezone(zone).date()
