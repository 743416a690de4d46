"""An httpx client for Shopify's GraphQL Admin API, paced by the cost bucket it reports.

Every answer carries `extensions.cost.throttleStatus`; the client keeps that bucket and waits
before a query the bucket could not pay for, so THROTTLED does not happen in normal running.
If it does (or on HTTP 429) it waits for the bucket to refill; 5xx and timeouts retry with
full-jitter backoff; 401/403 raise `ShopifyAuthError` naming what the token lacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import structlog

from shoprelay import backoff
from shoprelay.errors import ShoprelayError, SourceAuthError

log = structlog.get_logger(__name__)

# What a query is assumed to cost before Shopify has said: its first answer tells.
FIRST_GUESS_COST = 100.0
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 60.0


class ShopifyAdminError(ShoprelayError):
    """The Admin API answered with an error shoprelay cannot work around."""


class ShopifyAuthError(ShopifyAdminError, SourceAuthError):
    """Shopify refused the token (401) or the token lacks a scope (403, ACCESS_DENIED)."""


class ShopifyUnreachable(ShopifyAdminError):
    """The shop did not answer, or kept answering 5xx, through every retry."""


@dataclass
class CostBucket:
    """Shopify's leaky bucket as its last answer described it."""

    maximum: float = 1000.0
    available: float = 1000.0
    restore_rate: float = 50.0
    observed_at: float = 0.0

    def now_available(self, now: float) -> float:
        return min(self.maximum, self.available + self.restore_rate * (now - self.observed_at))

    def wait_for(self, cost: float, now: float) -> float:
        """Seconds until the bucket holds `cost` (or is full, for a query dearer than that)."""
        needed = min(cost, self.maximum) - self.now_available(now)
        return max(0.0, needed / self.restore_rate) if self.restore_rate > 0 else 0.0

    def update(self, status: dict[str, Any], now: float) -> None:
        self.maximum = float(status.get("maximumAvailable") or self.maximum)
        self.available = float(status.get("currentlyAvailable") or 0.0)
        self.restore_rate = float(status.get("restoreRate") or self.restore_rate)
        self.observed_at = now

    def spend(self, cost: float, now: float) -> None:
        self.available = self.now_available(now) - cost
        self.observed_at = now


@dataclass
class CostTally:
    """What the queries of a run cost, for the summary and the bench."""

    queries: int = 0
    requested: float = 0.0
    actual: float = 0.0
    throttled: int = 0
    waited_seconds: float = 0.0


def _operation(document: str) -> str:
    words = document.split("(", 1)[0].split()
    return words[1] if len(words) > 1 else "anonymous"


class AdminClient:
    """One shop's GraphQL Admin endpoint."""

    def __init__(
        self,
        base_url: str,
        token: str,
        version: str,
        *,
        timeout: float = 30.0,
        max_attempts: int = 6,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.endpoint = f"{base_url.rstrip('/')}/admin/api/{version}/graphql.json"
        self._http = httpx.AsyncClient(
            headers={"X-Shopify-Access-Token": token, "Content-Type": "application/json"},
            timeout=timeout,
            transport=transport,
        )
        # Bulk results live elsewhere (signed URLs): the token must never go with them.
        self._downloads = httpx.AsyncClient(timeout=timeout, transport=transport)
        self._max_attempts = max_attempts
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not a secret)
        self._sleep, self._clock = sleep, clock
        self.bucket = CostBucket(observed_at=clock())
        self.tally = CostTally()
        self._costs: dict[str, float] = {}  # last requestedQueryCost per operation
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> AdminClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._downloads.aclose()

    async def query(
        self, document: str, variables: dict[str, Any] | None = None, *, scope: str = ""
    ) -> dict[str, Any]:
        """The `data` of one query or mutation; `scope` names what a 403 means is missing."""
        operation = _operation(document)
        body = orjson.dumps({"query": document, "variables": variables or {}})
        async with self._lock:
            for attempt in range(1, self._max_attempts + 1):
                await self._pace(operation)
                outcome = await self._send(body, operation, scope, attempt)
                if outcome is not None:
                    return outcome
        raise ShopifyUnreachable(
            f"Shopify Admin API at {self.endpoint} did not answer {operation} "
            f"after {self._max_attempts} attempts"
        )

    def requested_cost(self, operation: str) -> float | None:
        """What Shopify last said a query of this operation costs before it runs."""
        return self._costs.get(operation)

    async def _pace(self, operation: str) -> None:
        expected = self._costs.get(operation, FIRST_GUESS_COST)
        wait = self.bucket.wait_for(expected, self._clock())
        if wait > 0:
            self.tally.waited_seconds += wait
            await self._sleep(wait)

    async def _send(
        self, body: bytes, operation: str, scope: str, attempt: int
    ) -> dict[str, Any] | None:
        """The data, or None to try again (after the wait this method took)."""
        try:
            response = await self._http.post(self.endpoint, content=body)
        except (httpx.TimeoutException, httpx.TransportError) as error:
            if attempt == self._max_attempts:
                raise ShopifyUnreachable(
                    f"cannot reach the Shopify Admin API at {self.endpoint}: {error!r}"
                ) from None
            await self._back_off(attempt, f"{type(error).__name__}")
            return None
        status = response.status_code
        if status == 401:
            raise ShopifyAuthError(
                "Shopify refused the Admin API token (401): check SHOPIFY_API_KEY "
                "and that the app is still installed"
            )
        if status == 403:
            raise ShopifyAuthError(_missing_scope(operation, scope, response))
        if status == 429:
            await self._refill(response, attempt)
            return None
        if status >= 500:
            await self._back_off(attempt, f"HTTP {status}")
            return None
        if status != 200:
            raise ShopifyAdminError(f"Shopify answered {operation} with HTTP {status}")
        return await self._answer(response, operation, scope, attempt)

    async def _answer(
        self, response: httpx.Response, operation: str, scope: str, attempt: int
    ) -> dict[str, Any] | None:
        try:
            payload = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            await self._back_off(attempt, "a body that is not JSON")
            return None
        cost = (payload.get("extensions") or {}).get("cost") or {}
        self._observe(operation, cost)
        errors = payload.get("errors") or []
        codes = {(error.get("extensions") or {}).get("code") for error in errors}
        if "THROTTLED" in codes:
            self.tally.throttled += 1
            log.warning("shopify.throttled", operation=operation)
            await self._refill(response, attempt, cost)
            return None
        if "ACCESS_DENIED" in codes:
            raise ShopifyAuthError(_missing_scope(operation, scope, response))
        if "INTERNAL_SERVER_ERROR" in codes:
            await self._back_off(attempt, "INTERNAL_SERVER_ERROR")
            return None
        if errors:
            messages = "; ".join(str(error.get("message")) for error in errors)[:500]
            raise ShopifyAdminError(f"Shopify refused {operation}: {messages}")
        data = payload.get("data")
        if not isinstance(data, dict):
            raise ShopifyAdminError(f"Shopify answered {operation} without data")
        return data

    def _observe(self, operation: str, cost: dict[str, Any]) -> None:
        now = self._clock()
        requested = cost.get("requestedQueryCost")
        actual = cost.get("actualQueryCost")
        if requested is not None:
            self._costs[operation] = float(requested)
        if actual is not None:
            self.tally.queries += 1
            self.tally.requested += float(requested or 0)
            self.tally.actual += float(actual)
        status = cost.get("throttleStatus")
        if isinstance(status, dict):
            self.bucket.update(status, now)
        elif actual is not None:
            self.bucket.spend(float(actual), now)

    async def _refill(
        self, response: httpx.Response, attempt: int, cost: dict[str, Any] | None = None
    ) -> None:
        """Wait until the bucket holds what the refused query asked for; never a fixed sleep."""
        requested = float((cost or {}).get("requestedQueryCost") or FIRST_GUESS_COST)
        wait = self.bucket.wait_for(requested, self._clock())
        retry_after = response.headers.get("Retry-After")
        if retry_after:
            with contextlib.suppress(ValueError):
                wait = max(wait, float(retry_after))
        if wait <= 0:  # the bucket says it is full: our picture is wrong, so back off
            wait = backoff.delay(attempt, self._rng, BACKOFF_BASE_SECONDS, BACKOFF_CAP_SECONDS)
        self.tally.waited_seconds += wait
        await self._sleep(wait)

    async def _back_off(self, attempt: int, reason: str) -> None:
        wait = backoff.delay(attempt, self._rng, BACKOFF_BASE_SECONDS, BACKOFF_CAP_SECONDS)
        log.warning("shopify.retry", reason=reason, attempt=attempt, wait_seconds=round(wait, 2))
        await self._sleep(wait)

    async def lines(self, url: str) -> AsyncIterator[str]:
        """A bulk result, line by line as it streams: never the whole file in memory."""
        async with self._downloads.stream("GET", url) as response:
            if response.status_code != 200:
                raise ShopifyAdminError(
                    "the bulk operation's result could not be downloaded "
                    f"(HTTP {response.status_code})"
                )
            async for line in response.aiter_lines():
                if line.strip():
                    yield line


def _missing_scope(operation: str, scope: str, response: httpx.Response) -> str:
    needed = f" it needs the {scope} scope;" if scope else ""
    return (
        f"Shopify refused {operation} (HTTP {response.status_code}):{needed} add it to the "
        "custom app's Admin API access scopes, then reinstall the app and update SHOPIFY_API_KEY"
    )
