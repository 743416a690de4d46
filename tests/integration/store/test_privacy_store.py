"""store/privacy.py on both dialects: what an erasure drops, keeps and holds back."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from shoprelay.sources.deletions import deletion_items
from shoprelay.store import outbox, privacy
from shoprelay.store.database import Store
from shoprelay.store.outbox import NewItem, Status
from shoprelay.store.plans import PrivacyRequest
from shoprelay.store.schema import outbox as outbox_table

EMAIL = "Lin.Quirk@example.org"


def event(key: str, email: str) -> NewItem:
    profile = {"data": {"type": "profile", "attributes": {"email": email}}}
    return NewItem("event", key, {"profile": profile, "unique_id": key}, "shopify")


def deletions(emails: Sequence[str], phones: Sequence[str]) -> list[NewItem]:
    return deletion_items(emails, phones, "test", "request-1")


async def rows(store: Store) -> dict[str, tuple[str, str, float]]:
    query = select(
        outbox_table.c.dedup_key,
        outbox_table.c.status,
        outbox_table.c.body,
        outbox_table.c.available_at,
    )
    async with store.read() as conn:
        return {row[0]: (row[1], row[2], row[3]) for row in await conn.execute(query)}


async def test_an_erasure_waits_for_their_items_in_flight_and_keeps_dedup_keys(
    store: Store,
) -> None:
    """An item already leased may still be sent: the deletion job waits for its lease to end.
    Unsent items never go, and their keys still refuse a second enqueue."""
    async with store.transaction() as conn:
        await outbox.enqueue(
            store,
            conn,
            [event("a", EMAIL), event("b", EMAIL.lower()), event("c", "other@example.org")],
            now=100.0,
        )
    (leased,) = await outbox.claim(
        store, account="default", kind="event", limit=1, owner="w", now=100.0, lease_seconds=60
    )
    request = PrivacyRequest("forget", emails=(EMAIL,), propagate=True)

    erasure = await privacy.erase(store, request, 110.0, deletions=deletions)

    assert (erasure.items_dropped, erasure.deletion_jobs) == (2, 1)
    found = await rows(store)
    assert {key: found[key][:2] for key in "abc"} == {
        "a": (Status.ERASED, "{}"),
        "b": (Status.ERASED, "{}"),
        "c": (Status.PENDING, found["c"][1]),
    }
    (job,) = [value for key, value in found.items() if key.startswith("deletion:")]
    assert job[2] == 160.0  # the lease taken at 100 for 60 s
    await outbox.mark_delivered(store, [leased], 111.0)  # a late answer changes nothing
    assert (await rows(store))[leased.dedup_key][0] == Status.ERASED
    async with store.transaction() as conn:
        assert await outbox.enqueue(store, conn, [event("a", EMAIL)], now=120.0) == 0
