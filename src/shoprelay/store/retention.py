"""Delivered items keep their dedup key for good, and their body only for a while.

An outbox body is a customer's profile and order, kept after delivery only in case someone
looks. Past the retention window it is cleared: the row, with its key, stays, so a late
redelivery or a re-mapped order still queues nothing twice. Dead letters keep their bodies
until a person replays or purges them.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shoprelay.store.database import Store
from shoprelay.store.outbox import Status
from shoprelay.store.receipts import get_cursor, put_cursor
from shoprelay.store.schema import outbox

CLEARED_BODY = "{}"
CURSOR = "outbox.retention"
BATCH = 1_000
SETTLED = (Status.DELIVERED, Status.SUPERSEDED)


async def clear_old_bodies(store: Store, *, before: float, now: float) -> int:
    """Clear the bodies of delivered and superseded items queued before `before`, in id
    order from where the last pass stopped, a dialect's step of rows per transaction; how
    many were cleared.

    Ids grow with queueing time, so a pass reads each old row once, a batch at a time, and
    never the whole table. An item still undelivered when the pass goes by it (an account
    paused for weeks) keeps its body.
    """
    # On SQLite each step holds the one write lock that webhooks wait for: keep steps small.
    step = min(BATCH, store.dialect.rows_per_write or BATCH)
    cleared = 0
    while True:
        async with store.read() as conn:
            after = int((await get_cursor(conn, CURSOR) or {}).get("after_id", 0))
            rows = (
                await conn.execute(
                    select(outbox.c.id, outbox.c.created_at)
                    .where(outbox.c.id > after)
                    .order_by(outbox.c.id)
                    .limit(step)
                )
            ).all()
        old = _leading_old([(row.id, row.created_at) for row in rows], before)
        if not old:
            return cleared
        cleared += await _clear(store, old, now)
        if len(old) < step:
            return cleared


async def cleared_through(conn: AsyncConnection) -> float | None:
    """When the last item the passes have gone by was queued (None before the first pass):
    delivered items queued up to then hold no body."""
    position = await get_cursor(conn, CURSOR)
    if position is None:
        return None
    query = select(outbox.c.created_at).where(outbox.c.id == int(position["after_id"]))
    value = (await conn.execute(query)).scalar()
    return None if value is None else float(value)


def _leading_old(rows: Sequence[tuple[int, float]], before: float) -> list[int]:
    """The ids up to the first row queued at or after `before`."""
    leading = []
    for row_id, created_at in rows:
        if created_at >= before:
            break
        leading.append(row_id)
    return leading


async def _clear(store: Store, ids: list[int], now: float) -> int:
    """Clear these rows' bodies where settled, and move the cursor past them, atomically."""
    async with store.transaction(durable=False) as conn:
        result = await conn.execute(
            update(outbox)
            .where(
                store.dialect.one_of(outbox.c.id, ids),
                store.dialect.not_indexed(outbox.c.status).in_(SETTLED),
                outbox.c.body != CLEARED_BODY,
            )
            .values(body=CLEARED_BODY)
        )
        await put_cursor(store, conn, CURSOR, {"after_id": max(ids)}, now)
    return int(result.rowcount)
