"""What a source decides one webhook should change, for the group commit to apply."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shoprelay.store.outbox import NewItem

# Sorts before every real timestamp, so any dated version wins over it.
UNDATED = "0000-00-00T00:00:00.000000Z"


@dataclass(frozen=True)
class ResourceRef:
    """One version of a source's resource; versions compare as text."""

    kind: str  # as the source names it: "order", "customer"...
    id: str
    version: str = UNDATED


@dataclass(frozen=True)
class Plan:
    """The effects of one webhook, decided before its transaction."""

    outcome: str  # "processed" | "ignored" | "unprocessable"; the commit may make it "stale"
    items: list[NewItem] = field(default_factory=list)
    resource: ResourceRef | None = None
    state: dict[str, Any] | None = None
    reason: str | None = None
    # For the source's log; the store does not read them.
    notes: tuple[str, ...] = ()
    # A plan that needs another resource's stored state (a refund needs its order's customer).
    needs: ResourceRef | None = None
    finish: Callable[[dict[str, Any] | None], Plan] | None = None
