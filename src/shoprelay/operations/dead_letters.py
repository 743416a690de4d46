"""The dashboard's dead-letter queue: filtered lists, one letter in detail with personal data
masked, and replay or purge of chosen letters or of all that match a filter."""

from __future__ import annotations

import re
from typing import Any

import orjson

from shoprelay.mapping.shopify_fields import ShopifyMetrics
from shoprelay.operations.replay import ReplayReport, replay
from shoprelay.store import deadletters
from shoprelay.store.database import Store
from shoprelay.store.deadletters import DeadLetter, LetterFilter

# Letters read, replayed or purged at once by an action on all that match.
BATCH = 500
MASK = "•••"
# Keys whose values name, reach or place a person, in Klaviyo's bodies and Shopify's and
# ShipStation's payloads; under an address key everything is. Not "name": it names metrics
# and products too, and a person's full name sits under an address key.
PERSONAL_KEYS = frozenset(
    {
        "email", "phone", "phone_number", "first_name", "last_name",
        "address1", "address2", "street1", "street2", "street3", "city", "zip",
        "postal_code", "latitude", "longitude", "browser_ip", "ip", "company",
        "contact_email", "customer_email", "customerEmail", "customerUsername",
        "shipTo", "billTo", "shipping_address", "billing_address", "default_address",
        "addresses",
    }
)  # fmt: skip
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")


async def listing(store: Store, chosen: LetterFilter, *, limit: int = 200) -> dict[str, Any]:
    """The open letters the filter picks (newest first, at most `limit`), how many match in
    all, and the choices for each filter."""
    async with store.read() as conn:
        letters = await deadletters.list_matching(conn, chosen, limit=limit)
        matching = await deadletters.count_matching(conn, chosen)
        facets = await deadletters.open_facets(conn)
    return {
        "matching": matching,
        "letters": [letter.summary() for letter in letters],
        "facets": facets,
    }


async def detail(store: Store, letter_id: int, *, unmask: bool = False) -> dict[str, Any] | None:
    """One letter with Klaviyo's error, its pointer and what we sent; None if there is none."""
    async with store.read() as conn:
        found = await deadletters.get(conn, [letter_id])
    if not found:
        return None
    letter = found[0]
    sent: Any = orjson.loads(letter.body) if letter.body else None
    received: Any = _payload(letter)
    text = letter.detail
    if not unmask:
        sent, received = mask(sent), mask(received)
        text = mask_text(text) if text else text
    return letter.summary() | {
        "detail": text,
        "scope": letter.scope,
        "outbox_id": letter.outbox_id,
        "body": sent,
        "payload": received,
        "masked": not unmask,
    }


def _payload(letter: DeadLetter) -> Any:
    if not letter.payload:
        return None
    try:
        return orjson.loads(letter.payload)
    except orjson.JSONDecodeError:
        return letter.payload.decode("utf-8", "replace")


def mask(value: Any, personal: bool = False) -> Any:
    """`value` with every string under a personal key masked, and emails anywhere."""
    if isinstance(value, dict):
        return {key: mask(item, personal or key in PERSONAL_KEYS) for key, item in value.items()}
    if isinstance(value, list):
        return [mask(item, personal) for item in value]
    if isinstance(value, str):
        return _masked(value) if personal else mask_text(value)
    if personal and isinstance(value, int | float) and not isinstance(value, bool):
        return MASK
    return value


def _masked(value: str) -> str:
    if "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}{MASK}@{domain}"
    return f"{value[:1]}{MASK}" if value else value


def mask_text(text: str) -> str:
    """Free text (a Klaviyo error detail, say) with any email address in it masked."""
    return _EMAIL.sub(lambda found: _masked(found.group(0)), text)


async def replay_chosen(
    store: Store, metrics: ShopifyMetrics, ids: list[int] | None, chosen: LetterFilter | None
) -> ReplayReport:
    """Replay the named open letters, or every open letter the filter picks, a batch at a
    time. Letters a replay records (a webhook still unprocessable) wait for the next one."""
    report = ReplayReport(0, 0, 0)
    for batch in await _batches(store, ids, chosen):
        async with store.read() as conn:
            letters = [
                letter
                for letter in await deadletters.get(conn, batch)
                if letter.replayed_at is None
            ]
        if letters:
            report += await replay(store, letters, metrics)
    return report


async def purge_chosen(store: Store, ids: list[int] | None, chosen: LetterFilter | None) -> int:
    """Delete the named letters, or every open letter the filter picks, for good."""
    purged = 0
    for batch in await _batches(store, ids, chosen):
        purged += await deadletters.purge(store, ids=batch)
    return purged


async def _batches(
    store: Store, ids: list[int] | None, chosen: LetterFilter | None
) -> list[list[int]]:
    """The letters an action covers, in batches; those a filter picks are fixed up front."""
    if ids is not None:
        return [ids[start : start + BATCH] for start in range(0, len(ids), BATCH)]
    if chosen is None:
        return []
    batches: list[list[int]] = []
    async with store.read() as conn:
        through_id = await deadletters.last_id(conn)
        after_id = 0
        while batch := await deadletters.ids_matching(
            conn, chosen, after_id=after_id, through_id=through_id, limit=BATCH
        ):
            batches.append(batch)
            after_id = batch[-1]
    return batches
