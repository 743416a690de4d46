"""Klaviyo deletion jobs for someone's identifiers: one outbox item per email and phone."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from shoprelay.mapping.values import e164, email_address
from shoprelay.store.outbox import NewItem

KIND = "deletion"


def deletion_items(
    emails: Sequence[str], phones: Sequence[str], source: str, request_key: str
) -> list[NewItem]:
    """One item per valid email and E.164 phone (Klaviyo takes one identifier a job).

    The dedup key is a digest salted with the request's own key: a redelivered request
    queues nothing twice, and the key names no one.
    """
    wanted = {("email", email.lower()) for raw in emails if (email := email_address(raw))}
    wanted |= {("phone_number", phone) for raw in phones if (phone := e164(raw))}
    items = []
    for name, value in sorted(wanted):
        digest = hashlib.sha256(f"{request_key}\x00{name}\x00{value}".encode()).hexdigest()[:32]
        items.append(NewItem(KIND, f"deletion:{digest}", {name: value}, source))
    return items
