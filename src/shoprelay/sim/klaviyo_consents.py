"""What the simulated account knows of consent: each profile's per channel, and list members."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class Consent:
    """One channel's marketing consent on one profile."""

    consent: str  # SUBSCRIBED | UNSUBSCRIBED
    updated: datetime
    consented_at: datetime | None = None
    historical: bool = False
    custom_source: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "consent": self.consent,
            "updated": self.updated.isoformat(),
            "consented_at": self.consented_at and self.consented_at.isoformat(),
            "historical_import": self.historical,
            "custom_source": self.custom_source,
        }


@dataclass
class SubscriptionBook:
    """Each profile's consent per channel, and each list's members."""

    consents: dict[str, dict[str, Consent]] = field(default_factory=dict)
    lists: dict[str, set[str]] = field(default_factory=dict)

    def consent(self, profile_id: str, channel: str) -> Consent | None:
        return self.consents.get(profile_id, {}).get(channel)

    def lists_of(self, profile_id: str) -> list[str]:
        return sorted(list_id for list_id, members in self.lists.items() if profile_id in members)
