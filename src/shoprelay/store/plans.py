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
class CustomerLink:
    """An identifier a webhook names for a source's customer: ("email" | "phone_number", value)."""

    customer_id: str
    identifier: str
    value: str


@dataclass(frozen=True)
class PrivacyRequest:
    """Erase someone's data here, and perhaps ask Klaviyo to delete their profile too.

    The store finds their rows by text: their emails and phones, the `markers` their source
    writes into every body about them (an external id), and the customer ids' stored
    identifiers. With `whole_scope`, everything the scope (a shop) sent goes.
    """

    action: str  # the topic ("customers/redact"...), or "forget" from the CLI
    scope: str | None = None  # the shop domain
    customer_ids: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    markers: tuple[str, ...] = ()
    resources: tuple[ResourceRef, ...] = ()  # stored resource states to clear
    whole_scope: bool = False
    propagate: bool = False  # queue a Klaviyo deletion job per email and phone


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
    # Identifiers to remember for a customer id, for a later customers/delete.
    links: tuple[CustomerLink, ...] = ()
    # A redaction or deletion: committed by store/privacy.py, not the group writer.
    privacy: PrivacyRequest | None = None
