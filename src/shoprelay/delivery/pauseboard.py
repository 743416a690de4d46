"""This process's view of the shared pauses: the store's rows plus the ones it just set."""

from __future__ import annotations

import math

from shoprelay.store.pauses import ALL_ENDPOINTS, Pause


class PauseBoard:
    """Which (account, endpoint) pairs may not be sent to, and until when."""

    def __init__(self) -> None:
        self.pauses: dict[tuple[str, str], Pause] = {}
        self._noted_at: dict[tuple[str, str], float] = {}

    def refresh(self, rows: list[Pause], read_started: float) -> list[tuple[str, str]]:
        """Adopt the store's pauses; returns the pauses that were lifted by someone else.

        A pause this process set after the read began is kept: the read could not see it yet.
        """
        fresh = {(pause.account, pause.endpoint): pause for pause in rows}
        for key, noted in self._noted_at.items():
            if noted >= read_started and key in self.pauses:
                fresh.setdefault(key, self.pauses[key])
        lifted = [key for key in self.pauses if key not in fresh]
        self.pauses = fresh
        self._noted_at = {k: v for k, v in self._noted_at.items() if v >= read_started}
        return lifted

    def note(self, pause: Pause, now: float) -> bool:
        """Record a pause this process just set; True if it was not already in force."""
        key = (pause.account, pause.endpoint)
        known = self.pauses.get(key)
        self.pauses[key] = pause
        self._noted_at[key] = now
        return known is None or (known.until is not None and known.until <= now)

    def lift(self, account: str, endpoint: str) -> None:
        self.pauses.pop((account, endpoint), None)
        self._noted_at.pop((account, endpoint), None)

    def until(self, account: str, endpoint: str, now: float) -> float | None:
        """When sending to this endpoint may resume (inf: not by itself); None if not paused."""
        found = [
            pause.until if pause.until is not None else math.inf
            for key in ((account, ALL_ENDPOINTS), (account, endpoint))
            if (pause := self.pauses.get(key)) is not None
        ]
        latest = max(found, default=None)
        return latest if latest is not None and latest > now else None

    def account_paused(self, account: str) -> bool:
        """True while the whole account waits for a working key."""
        return (account, ALL_ENDPOINTS) in self.pauses

    def paused_accounts(self) -> list[str]:
        return [account for account, endpoint in self.pauses if endpoint == ALL_ENDPOINTS]
