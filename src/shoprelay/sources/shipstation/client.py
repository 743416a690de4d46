"""A thin ShipStation V1 client: Basic auth, a header-driven 40/min limiter, retries."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from shoprelay import backoff
from shoprelay.errors import ShoprelayError, SourceAuthError

log = structlog.get_logger(__name__)

Sleep = Callable[[float], Awaitable[None]]
THROTTLED_FALLBACK_SECONDS = 60.0


class ShipStationError(ShoprelayError):
    """ShipStation refused a request for good, or stayed unavailable through every retry."""


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    try:
        return int(headers[name])
    except (KeyError, ValueError):
        return None


@dataclass
class RateWindow:
    """What ShipStation's headers last said about the key's window; all times are monotonic."""

    margin: int
    padding: float
    limit: int | None = None
    remaining: int | None = None
    resets_at: float = 0.0

    def observe(self, headers: Mapping[str, str], now: float) -> None:
        """Read X-Rate-Limit-* from any response."""
        remaining = _header_int(headers, "X-Rate-Limit-Remaining")
        reset = _header_int(headers, "X-Rate-Limit-Reset")
        self.limit = _header_int(headers, "X-Rate-Limit-Limit") or self.limit
        if remaining is not None and reset is not None:
            self.remaining, self.resets_at = remaining, now + reset

    def wait_seconds(self, now: float) -> float:
        """How long to hold the next request so the window keeps `margin` requests spare.

        The margin is for the other apps that share the key's 40 per minute.
        """
        if self.remaining is None or self.remaining > self.margin or now >= self.resets_at:
            return 0.0
        return self.resets_at - now + self.padding

    def throttled_seconds(self, now: float) -> float:
        """How long to wait after a 429: until the window resets, or a minute if unknown."""
        if self.resets_at <= now:
            return THROTTLED_FALLBACK_SECONDS
        return self.resets_at - now + self.padding

    def seconds_to_reset(self, now: float) -> float:
        return max(0.0, self.resets_at - now)


@dataclass(frozen=True)
class ShipStationRetry:
    """How often a GET is tried after a 5xx or a timeout, and how long it waits between tries."""

    attempts: int = 6
    # Full jitter up to base·(2^n - 1) after n failures: 0.5, 1.5, 3.5 … s, under 2^(n-1) s.
    backoff_base: float = 0.5
    backoff_cap: float = 60.0

    def wait(self, failures: int, rng: random.Random) -> float:
        """Seconds to wait after `failures` failed tries of one request."""
        return backoff.delay(failures, rng, self.backoff_base, self.backoff_cap)


class ShipStationClient:
    """GET requests against one ShipStation account, counted and paced."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        api_secret: str,
        *,
        margin: int = 2,
        reset_padding: float = 1.0,
        retry: ShipStationRetry | None = None,
        timeout: float = 30.0,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url, auth=httpx.BasicAuth(api_key, api_secret), timeout=timeout
        )
        self.rate_window = RateWindow(margin=margin, padding=reset_padding)
        self.retry = retry or ShipStationRetry()
        self.requests_used = 0
        self._sleep, self._clock = sleep, clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography

    async def __aenter__(self) -> ShipStationClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def stores(self) -> list[dict[str, Any]]:
        """Every store on the account, inactive ones too, so old orders still find a name."""
        found = await self.get("/stores", {"showInactive": "true"})
        return [store for store in found if isinstance(store, dict)]

    async def page(self, path: str, params: Mapping[str, str | int]) -> dict[str, Any]:
        """One page of a list endpoint: `{<resource>, total, page, pages}`."""
        envelope = await self.get(path, params)
        if not isinstance(envelope, dict):
            raise ShipStationError(f"ShipStation answered GET {path} with a non-object body")
        return envelope

    async def get(self, path: str, params: Mapping[str, str | int]) -> Any:
        """The JSON body of a GET, after pacing, and retrying 429, 5xx and timeouts."""
        for attempt in range(self.retry.attempts):
            await self._pace()
            response = await self._send(path, params, attempt)
            if response is None:
                continue
            if response.status_code == 200:
                return response.json()
            await self._handle_failure(path, response, attempt)
        raise ShipStationError(
            f"ShipStation stayed unavailable for GET {path} after {self.retry.attempts} attempts"
        )

    async def _pace(self) -> None:
        wait = self.rate_window.wait_seconds(self._clock())
        if wait > 0:
            log.debug("shipstation.pacing", seconds=round(wait, 2))
            await self._sleep(wait)

    async def _send(
        self, path: str, params: Mapping[str, str | int], attempt: int
    ) -> httpx.Response | None:
        """One request; None after a timeout or connection error (already backed off)."""
        self.requests_used += 1
        try:
            response = await self._http.get(path, params=dict(params))
        except httpx.TransportError as error:
            kind = type(error).__name__
            log.warning("shipstation.transport_error", path=path, attempt=attempt + 1, error=kind)
            await self._backoff(attempt)
            return None
        self.rate_window.observe(response.headers, self._clock())
        return response

    async def _handle_failure(self, path: str, response: httpx.Response, attempt: int) -> None:
        """Raise for failures that retrying cannot fix; otherwise wait before the next attempt."""
        status = response.status_code
        if status in (401, 403):
            raise SourceAuthError(
                f"ShipStation refused the API key and secret ({status}): check "
                "SHIPSTATION_API_KEY and SHIPSTATION_API_SECRET (V1 keys, Account > API Settings)"
            )
        if status == 429:
            wait = self.rate_window.throttled_seconds(self._clock())
            log.warning("shipstation.throttled", path=path, wait_seconds=round(wait, 2))
            await self._sleep(wait)
            return
        if status >= 500:
            log.warning("shipstation.server_error", path=path, status=status, attempt=attempt + 1)
            await self._backoff(attempt)
            return
        raise ShipStationError(f"ShipStation answered {status} to GET {path}: {_message(response)}")

    async def _backoff(self, attempt: int) -> None:
        await self._sleep(self.retry.wait(attempt + 1, self._rng))


def _message(response: httpx.Response) -> str:
    """ShipStation's `{"message": ...}`, cut short; it names a parameter, never a secret."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    message = body.get("message") if isinstance(body, dict) else None
    return str(message or response.reason_phrase)[:200]
