"""Send slots shared by the processes on one PostgreSQL database, on top of in-process pacing.

Each process paces itself in memory (ratelimit.py), which is exact for its own requests; on
PostgreSQL several processes may deliver for the same account, so each send also takes a send
slot from the database (store/sendslots.py), and together they never exceed Klaviyo's limits.
SQLite runs a single process by design and has no shared send slots.
"""

from __future__ import annotations

from shoprelay.delivery.ratelimit import EndpointLimit, padded
from shoprelay.store import sendslots
from shoprelay.store.database import Store
from shoprelay.store.sendslots import SlotLimits

# Another process cannot see our responses, so a shared slot is freed a window after the send
# rather than after the response: this allows for the time a request takes to reach Klaviyo.
ARRIVAL_ALLOWANCE_SECONDS = 0.25


def slot_limits(limit: EndpointLimit) -> SlotLimits:
    """Slots for one endpoint: as many as its limits, each busy for a padded window."""
    return SlotLimits(
        burst=limit.burst,
        steady=limit.steady,
        burst_busy_seconds=padded(limit.burst_seconds) + ARRIVAL_ALLOWANCE_SECONDS,
        steady_busy_seconds=padded(limit.steady_seconds) + ARRIVAL_ALLOWANCE_SECONDS,
    )


class SharedSendSlots:
    """Takes a send slot of each window from the database, one statement per request."""

    def __init__(self, store: Store, limits: dict[str, EndpointLimit]) -> None:
        self.store = store
        self.limits = {endpoint: slot_limits(limit) for endpoint, limit in limits.items()}
        self.provisioned: set[tuple[str, str]] = set()

    async def take(self, account: str, endpoint: str, now: float) -> float:
        """0 when a request may go now (its slots are taken); else seconds to wait."""
        limits = self.limits[endpoint]
        if (account, endpoint) not in self.provisioned:
            await sendslots.provision(self.store, account, endpoint, limits)
            self.provisioned.add((account, endpoint))
        return await sendslots.take(self.store, account, endpoint, limits, now)

    async def take_turn(self, account: str, endpoint: str, seconds: float, now: float) -> float:
        """0 when this process may send a partial bulk batch now; else seconds to wait."""
        return await sendslots.take_turn(self.store, account, endpoint, seconds, now)


def shared_send_slots(store: Store, limits: dict[str, EndpointLimit]) -> SharedSendSlots | None:
    """Send slots across processes on PostgreSQL; None on SQLite, where one process delivers."""
    return SharedSendSlots(store, limits) if store.backend == "postgresql" else None
