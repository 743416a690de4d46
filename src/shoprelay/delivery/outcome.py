"""Classify one Klaviyo reply into what the dispatcher should do with its items (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

_EXPECTED_IN = re.compile(r"available in (\d+) second")


@dataclass(frozen=True)
class Quota:
    """What Klaviyo says is left of the steady window, from `RateLimit-*` on a 2xx."""

    remaining: int
    reset_at: float


@dataclass(frozen=True)
class KlaviyoError:
    """One item of a JSON:API `errors` array."""

    code: str
    detail: str
    pointer: str | None = None


@dataclass(frozen=True)
class Delivered:
    """Klaviyo accepted the request."""

    status: int
    quota: Quota | None = None


@dataclass(frozen=True)
class RetryLater:
    """A transient failure; `delay_hint` is Klaviyo's Retry-After, if it gave one."""

    delay_hint: float | None
    reason: str
    status: int | None = None

    @property
    def throttled(self) -> bool:
        return self.status == 429


@dataclass(frozen=True)
class Refused:
    """Klaviyo refused the request for good; every error it listed is kept."""

    status: int
    errors: tuple[KlaviyoError, ...]

    @property
    def detail(self) -> str:
        return "; ".join(error.detail for error in self.errors) or f"HTTP {self.status}"

    @property
    def pointer(self) -> str | None:
        return self.errors[0].pointer if self.errors else None

    @property
    def code(self) -> str | None:
        return self.errors[0].code if self.errors else None


@dataclass(frozen=True)
class PauseAccount:
    """The key is bad (401) or lacks a scope (403 JSON): nothing for this account can succeed."""

    status: int
    reason: str


@dataclass(frozen=True)
class DuplicateProfile:
    """409: the identifiers sent belong to two different profiles."""

    duplicate_profile_id: str | None


Outcome = Delivered | RetryLater | Refused | PauseAccount | DuplicateProfile


# One return per row of Klaviyo's status table reads better than a lookup of lambdas.
def classify(  # noqa: PLR0911
    status: int, headers: Mapping[str, str], body: Any, now: float
) -> Outcome:
    """Turn one HTTP response into an outcome; `headers` keys are lower-case."""
    errors = _errors(body)
    if 200 <= status < 300:
        return Delivered(status, _quota(headers, now))
    if status == 429:
        hint = _retry_after(headers, now) or _expected_in(errors) or 1.0
        return RetryLater(hint, "429 throttled", status)
    if status == 401:
        return PauseAccount(status, _reason(status, errors, "not authorized"))
    if status == 403:
        if not isinstance(body, dict):
            # An HTML 403 is a Cloudflare challenge, not a verdict on the key.
            return RetryLater(_retry_after(headers, now), "403 challenge (non-JSON)", status)
        return PauseAccount(status, _reason(status, errors, "forbidden: key lacks a scope"))
    if status == 409 and any(error.code == "duplicate_profile" for error in errors):
        return DuplicateProfile(_duplicate_id(body))
    if status == 408 or status >= 500:
        return RetryLater(_retry_after(headers, now), f"{status} server error", status)
    return Refused(status, tuple(errors))


def transport_failure(reason: str) -> RetryLater:
    """A timeout or connection error: Klaviyo may or may not have the request."""
    return RetryLater(None, reason)


def _errors(body: Any) -> list[KlaviyoError]:
    raw = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(raw, list):
        return []
    found = []
    for error in raw:
        if not isinstance(error, dict):
            continue
        source = error.get("source")
        source = source if isinstance(source, dict) else {}
        found.append(
            KlaviyoError(
                code=str(error.get("code") or ""),
                detail=str(error.get("detail") or error.get("title") or ""),
                pointer=source.get("pointer") if isinstance(source.get("pointer"), str) else None,
            )
        )
    return found


def _reason(status: int, errors: list[KlaviyoError], default: str) -> str:
    return f"{status} {errors[0].detail if errors else default}"


def _duplicate_id(body: Any) -> str | None:
    for error in (body or {}).get("errors") or []:
        meta = error.get("meta") if isinstance(error, dict) else None
        if isinstance(meta, dict) and isinstance(meta.get("duplicate_profile_id"), str):
            return str(meta["duplicate_profile_id"])
    return None


def _retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Retry-After as seconds: either a number or an HTTP date."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


def _expected_in(errors: list[KlaviyoError]) -> float | None:
    """The 429 body says "Expected available in N seconds" even when a proxy drops headers."""
    for error in errors:
        match = _EXPECTED_IN.search(error.detail)
        if match:
            return float(match.group(1))
    return None


def _quota(headers: Mapping[str, str], now: float) -> Quota | None:
    try:
        remaining = int(headers["ratelimit-remaining"])
        reset = float(headers["ratelimit-reset"])
    except (KeyError, ValueError):
        return None
    return Quota(remaining=remaining, reset_at=now + reset)
