"""A backlog for the drain: realistic outbox items, mapped by shoprelay, then cloned to size."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import replace
from itertools import cycle, islice
from typing import Any

from bench.webhooks import SHOP
from shoprelay.mapping.shopify_fields import ShopifyMetrics
from shoprelay.sim.shopify import generate_stream
from shoprelay.sources.shopify.topics import plan
from shoprelay.store.database import Store
from shoprelay.store.outbox import NewItem, new_rows
from shoprelay.store.schema import outbox

TEMPLATE_ORDERS = 300
BATCH = 5_000


def templates(seed: int = 3) -> tuple[list[NewItem], list[NewItem]]:
    """Profiles and events that a store's webhooks map to (what the outbox really holds)."""
    profiles, events = [], []
    metrics = ShopifyMetrics()
    for topic, payload in generate_stream(random.Random(seed), TEMPLATE_ORDERS):
        planned = plan(topic, SHOP, payload, metrics)
        if planned.outcome != "processed" or planned.finish is not None:
            continue
        for item in planned.items:
            if item.kind == "event":
                events.append(item)
            elif item.body.get("email"):
                profiles.append(item)
    return profiles, events


def clone(item: NewItem, copy: int) -> NewItem:
    """A distinct copy: its own dedup key, ordering key and identity at Klaviyo."""
    body = dict(item.body)
    if item.kind == "event":
        body["unique_id"] = f"{body['unique_id']}:{copy}"
    else:
        # Only email and external_id, both made unique: a shared phone would be a 409.
        body.pop("phone_number", None)
        body["email"] = f"b{copy}.{body['email']}"
        body["external_id"] = f"{body.get('external_id', 'bench')}:{copy}"
    # A shared ordering key would make every copy a newer version of one customer's profile,
    # superseding the rest.
    ordering_key = f"{item.ordering_key}:{copy}" if item.ordering_key else None
    return replace(item, dedup_key=f"{item.dedup_key}:{copy}", ordering_key=ordering_key, body=body)


def items(events: int, profiles: int) -> Iterator[NewItem]:
    """`events` events and `profiles` profiles, interleaved as webhooks would produce them."""
    profile_templates, event_templates = templates()
    made_events = (clone(t, n) for n, t in enumerate(islice(cycle(event_templates), events)))
    made_profiles = (clone(t, n) for n, t in enumerate(islice(cycle(profile_templates), profiles)))
    every = max(1, events // max(1, profiles))
    for n, event in enumerate(made_events):
        if n % every == 0:
            yield from islice(made_profiles, 1)
        yield event
    yield from made_profiles


async def fill(url: str, events: int, profiles: int) -> float:
    """Enqueue the backlog into the database at `url`; returns the seconds it took."""
    started = time.perf_counter()
    store = await Store.open(url)
    # Built once: SQLite's multi-row form of it is derived on first use and kept.
    insert = store.insert_ignore(outbox)
    try:
        stream = items(events, profiles)
        while batch := list(islice(stream, BATCH)):
            await _insert(store, insert, new_rows(batch, time.time()))
    finally:
        await store.close()
    return time.perf_counter() - started


async def _insert(store: Store, insert: Any, rows: list[dict[str, Any]]) -> None:
    """Rows into a fresh outbox by the fastest way each database has: every key is new."""
    if store.backend != "postgresql":
        await store.run_in_transaction(lambda conn: store.dialect.insert_rows(conn, insert, rows))
        return
    columns = list(rows[0])
    async with store.transaction() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None  # a pooled connection in use is open
        records = [tuple(row[column] for column in columns) for row in rows]
        await driver.copy_records_to_table(outbox.name, columns=columns, records=records)
