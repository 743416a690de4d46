"""Injected failures: which fault, if any, a request gets, drawn from a seeded RNG."""

from __future__ import annotations

import enum
import random
from dataclasses import asdict, dataclass, fields
from typing import Any


class Fault(enum.StrEnum):
    """What the simulator does to one request instead of (or after) answering normally."""

    NONE = "none"
    THROTTLE = "rate_429"
    SERVER_ERROR = "rate_500"
    UNAVAILABLE = "rate_503"
    TIMEOUT = "rate_timeout"
    SLOW = "rate_slow"
    ERROR_AFTER_ACCEPT = "rate_error_after_accept"


@dataclass(frozen=True)
class Faults:
    """Fractions of requests that get each fault; they are exclusive, so they sum to ≤ 1."""

    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_503: float = 0.0
    rate_timeout: float = 0.0
    rate_slow: float = 0.0
    rate_error_after_accept: float = 0.0
    slow_seconds: float = 0.5
    timeout_seconds: float = 30.0
    revoked: bool = False

    def __post_init__(self) -> None:
        rates = [getattr(self, fault.value) for fault in Fault if fault is not Fault.NONE]
        if any(not 0.0 <= rate <= 1.0 for rate in rates) or sum(rates) > 1.0 + 1e-9:
            raise ValueError("fault rates must each be in [0, 1] and sum to at most 1")
        if self.slow_seconds < 0 or self.timeout_seconds < 0:
            raise ValueError("slow_seconds and timeout_seconds must not be negative")

    @classmethod
    def from_json(cls, document: dict[str, Any], base: Faults) -> Faults:
        """`base` with the fields present in `document` replaced; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = set(document) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return cls(**{**asdict(base), **document})

    def to_json(self) -> dict[str, Any]:
        """The settings as a JSON object."""
        return asdict(self)

    def draw(self, rng: random.Random) -> Fault:
        """Pick one fault (or none) for a request, with one uniform draw."""
        point = rng.random()
        for fault in Fault:
            if fault is Fault.NONE:
                continue
            point -= getattr(self, fault.value)
            if point < 0:
                return fault
        return Fault.NONE
