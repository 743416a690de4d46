"""KlaviyoClient: one method per endpoint we call, each returning a small reply value."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import structlog
from pydantic import SecretStr

from shoprelay.errors import ConfigError

if TYPE_CHECKING:
    from shoprelay.config import Settings

JSON_API = "application/vnd.api+json"

log = structlog.get_logger("shoprelay.delivery")


@dataclass(frozen=True)
class KlaviyoResponse:
    """What Klaviyo answered: status, lower-case headers, and the JSON body (or text)."""

    status: int
    headers: dict[str, str]
    body: Any
    seconds: float


@dataclass(frozen=True)
class TransportFailure:
    """No answer: a timeout or a broken connection (Klaviyo may or may not have the request),
    or a URL we would not send to."""

    reason: str
    seconds: float


Reply = KlaviyoResponse | TransportFailure


class KlaviyoClient:
    """A thin async client over one connection pool; the key never leaves the headers, and
    goes only to the origin (scheme, host, port) of the base URL."""

    def __init__(
        self,
        base_url: str,
        api_key: SecretStr,
        revision: str,
        *,
        timeout_seconds: float = 30.0,
        max_connections: int = 64,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout_seconds, connect=min(5.0, timeout_seconds)),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            headers={
                "Authorization": f"Klaviyo-API-Key {api_key.get_secret_value()}",
                "revision": revision,
                "Accept": JSON_API,
                "Content-Type": JSON_API,
            },
        )
        self.base_url = base_url
        self._origin = _origin(self._http.base_url)

    @classmethod
    def from_settings(cls, settings: Settings) -> KlaviyoClient:
        """The client for the configured account; the key must be set."""
        if settings.KLAVIYO_PRIVATE_API_KEY is None:
            raise ConfigError("KLAVIYO_PRIVATE_API_KEY: required to deliver to Klaviyo")
        return cls(
            settings.KLAVIYO_API_URL,
            settings.KLAVIYO_PRIVATE_API_KEY,
            settings.KLAVIYO_REVISION,
            timeout_seconds=settings.KLAVIYO_TIMEOUT_SECONDS,
        )

    def __repr__(self) -> str:
        return f"KlaviyoClient(base_url={self.base_url!r})"

    async def close(self) -> None:
        await self._http.aclose()

    async def create_event(self, body: dict[str, Any]) -> Reply:
        """`POST /api/events` (create_event)."""
        return await self._request("POST", "/api/events", body)

    async def bulk_create_events(self, body: bytes) -> Reply:
        """`POST /api/event-bulk-create-jobs` (bulk_create_events)."""
        return await self._request("POST", "/api/event-bulk-create-jobs", body)

    async def import_profile(self, body: dict[str, Any]) -> Reply:
        """`POST /api/profile-import` (create_or_update_profile)."""
        return await self._request("POST", "/api/profile-import", body)

    async def bulk_import_profiles(self, body: bytes) -> Reply:
        """`POST /api/profile-bulk-import-jobs` (bulk_import_profiles)."""
        return await self._request("POST", "/api/profile-bulk-import-jobs", body)

    async def bulk_subscribe_profiles(self, body: bytes) -> Reply:
        """`POST /api/profile-subscription-bulk-create-jobs` (bulk_subscribe_profiles)."""
        return await self._request("POST", "/api/profile-subscription-bulk-create-jobs", body)

    async def bulk_unsubscribe_profiles(self, body: bytes) -> Reply:
        """`POST /api/profile-subscription-bulk-delete-jobs` (bulk_unsubscribe_profiles)."""
        return await self._request("POST", "/api/profile-subscription-bulk-delete-jobs", body)

    async def request_profile_deletion(self, body: dict[str, Any]) -> Reply:
        """`POST /api/data-privacy-deletion-jobs` (request_profile_deletion)."""
        return await self._request("POST", "/api/data-privacy-deletion-jobs", body)

    async def get_profile_import_job(self, job_id: str) -> Reply:
        """`GET /api/profile-bulk-import-jobs/{id}` (get_bulk_import_profiles_job)."""
        return await self._request("GET", f"/api/profile-bulk-import-jobs/{job_id}")

    async def get_profile_import_errors(
        self, job_id: str, before_each: Callable[[], Awaitable[None]] | None = None
    ) -> tuple[list[dict[str, Any]], Reply]:
        """Every import error of a job, following `links.next`; and the last reply, a failure
        when a page could not be read (a next link off Klaviyo's origin is not followed)."""
        url: str | None = f"/api/profile-bulk-import-jobs/{job_id}/import-errors"
        errors: list[dict[str, Any]] = []
        while True:
            if before_each is not None:
                await before_each()
            reply = await self._request("GET", url or "")
            ok = isinstance(reply, KlaviyoResponse) and reply.status == 200
            page = reply.body if isinstance(reply, KlaviyoResponse) else None
            if not ok or not isinstance(page, dict):
                return errors, reply
            errors.extend(page.get("data") or [])
            url = (page.get("links") or {}).get("next")
            if not url:
                return errors, reply

    async def get_accounts(self) -> Reply:
        """`GET /api/accounts` (get_accounts): the key's one account, with its time zone."""
        return await self._request("GET", "/api/accounts?fields[account]=timezone")

    async def get_metrics(self, url: str | None = None) -> Reply:
        """`GET /api/metrics` (get_metrics): a page of metrics; `url` is a `links.next`."""
        return await self._request("GET", url or "/api/metrics?fields[metric]=name,integration")

    async def query_metric_aggregates(self, body: dict[str, Any]) -> Reply:
        """`POST /api/metric-aggregates` (query_metric_aggregates)."""
        return await self._request("POST", "/api/metric-aggregates", body)

    async def _request(
        self, method: str, url: str, body: dict[str, Any] | bytes | None = None
    ) -> Reply:
        content = body if body is None or isinstance(body, bytes) else orjson.dumps(body)
        try:
            request = self._http.build_request(method, url, content=content)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            # A URL from an answer (a next link) that is not one: that page cannot be read.
            return TransportFailure(f"invalid URL ({type(exc).__name__})", 0.0)
        if _origin(request.url) != self._origin:
            # Every request carries the key, so a link elsewhere, even from Klaviyo's own
            # answer, is not followed. Only the origin is logged: a query may hold a token.
            log.warning(
                "klaviyo.foreign_url_refused",
                origin=_origin_text(request.url),
                expected=_origin_text(self._http.base_url),
            )
            return TransportFailure("not sent: the URL is not on KLAVIYO_API_URL's origin", 0.0)
        started = time.monotonic()
        try:
            response = await self._http.send(request)
        except httpx.TimeoutException as exc:
            return TransportFailure(f"timeout ({type(exc).__name__})", time.monotonic() - started)
        except httpx.TransportError as exc:
            # The exception text may hold the URL, never the key: only the class name is kept.
            return TransportFailure(f"connection error ({type(exc).__name__})", 0.0)
        except httpx.HTTPError as exc:
            # E.g. a proxy's broken encoding: transient from here, so retried, then dead-lettered.
            elapsed = time.monotonic() - started
            return TransportFailure(f"HTTP error ({type(exc).__name__})", elapsed)
        return KlaviyoResponse(
            status=response.status_code,
            headers={name.lower(): value for name, value in response.headers.items()},
            body=_parse(response),
            seconds=time.monotonic() - started,
        )


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    # httpx writes scheme and host in lower case and leaves out a default port.
    return (url.scheme, url.host, url.port)


def _origin_text(url: httpx.URL) -> str:
    return f"{url.scheme}://{url.host}" + (f":{url.port}" if url.port is not None else "")


def _parse(response: httpx.Response) -> Any:
    """JSON when it is JSON; otherwise the text (an HTML challenge page, a proxy error)."""
    if not response.content:
        return None
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text


def job_id_of(body: Any) -> str | None:
    """The id of the bulk import job an accepted `POST /api/profile-bulk-import-jobs` names."""
    data = body.get("data") if isinstance(body, dict) else None
    return str(data["id"]) if isinstance(data, dict) and data.get("id") else None


def job_status_of(body: Any) -> str:
    """A bulk import job's status ("queued", "processing", "complete", ...); "" if unknown."""
    data = body.get("data") if isinstance(body, dict) else None
    return str((data.get("attributes") or {}).get("status", "")) if isinstance(data, dict) else ""
