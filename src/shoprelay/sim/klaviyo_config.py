"""Settings of one simulated Klaviyo account, with rate limits read from the spec."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

WINDOW_SECONDS = {"s": 1, "m": 60}
# The one private key a simulated account accepts unless told otherwise; public, not a secret.
DEMO_API_KEY = "pk_sim_demo"


@dataclass(frozen=True)
class RateLimit:
    """Requests allowed per fixed 1-second burst window and per fixed 60-second steady window."""

    burst: int
    steady: int


@functools.cache
def spec_operations() -> dict[str, dict[str, Any]]:
    """The operations extracted from Klaviyo's OpenAPI spec (tools/extract_klaviyo_schemas.py)."""
    text = resources.files("shoprelay.sim").joinpath("data/klaviyo_schemas.json").read_text()
    operations: dict[str, dict[str, Any]] = json.loads(text)["operations"]
    return operations


def parse_rate(rate: str, window: str) -> int:
    """'350/s' → 350, checking that the spec's unit is the window we enforce."""
    count, unit = rate.split("/")
    if unit != window:
        raise ValueError(f"rate {rate!r} is not per {window!r}")
    return int(count)


def spec_limits() -> dict[str, RateLimit]:
    """Burst and steady limits per operationId, from `x-klaviyo-ratelimit`."""
    return {
        operation_id: RateLimit(
            burst=parse_rate(operation["ratelimit"]["burst"], "s"),
            steady=parse_rate(operation["ratelimit"]["steady"], "m"),
        )
        for operation_id, operation in spec_operations().items()
    }


@dataclass
class KlaviyoSimConfig:
    """How the simulated account behaves; `limits` overrides the spec's per operationId."""

    api_keys: frozenset[str] | set[str] = field(default_factory=lambda: {DEMO_API_KEY})
    limits: dict[str, RateLimit] = field(default_factory=spec_limits)
    enforce_limits: bool = True
    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_503: float = 0.0
    rate_slow: float = 0.0
    slow_seconds: float = 0.5
    rate_timeout: float = 0.0
    timeout_seconds: float = 30.0
    rate_error_after_accept: float = 0.0
    seed: int | None = 0
    bulk_job_delay_seconds: float = 0.2
    # The account's IANA time zone (GET /api/accounts), Klaviyo's for its charts' days.
    timezone: str = "UTC"
    # Keys given here hold only these scopes (a 403 for the rest); other keys hold all.
    key_scopes: dict[str, frozenset[str]] = field(default_factory=dict)

    def limit_for(self, operation_id: str) -> RateLimit:
        """The limit in force for one operation: an override if given, else the spec's."""
        return self.limits.get(operation_id) or spec_limits()[operation_id]

    def scopes_of(self, key: str) -> frozenset[str] | None:
        """The scopes a key holds; None for every scope."""
        return self.key_scopes.get(key)
