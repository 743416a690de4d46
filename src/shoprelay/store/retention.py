"""Delivered items keep their dedup key for good, and their body only for a while.

An outbox body is a customer's profile and order, kept after delivery only in case someone
looks. Past the retention window it is cleared: the row, with its key, stays, so a late
redelivery or a re-mapped order still queues nothing twice. Dead letters keep their bodies
until a person replays or purges them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import orjson
from sqlalchemy import Connection, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shoprelay.store.database import Store
from shoprelay.store.outbox import Status
from shoprelay.store.receipts import get_cursor
from shoprelay.store.schema import cursors, outbox

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
        clear = functools.partial(_clear, store, ids=old, now=now)
        cleared += await store.run_in_transaction(clear, durable=False)
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


def _clear(store: Store, conn: Connection, *, ids: list[int], now: float) -> int:
    """Clear these rows' bodies where settled, and move the cursor past them, atomically."""
    result = conn.execute(
        update(outbox)
        .where(
            store.dialect.one_of(outbox.c.id, ids),
            store.dialect.not_indexed(outbox.c.status).in_(SETTLED),
            outbox.c.body != CLEARED_BODY,
        )
        .values(body=CLEARED_BODY)
    )
    position = orjson.dumps({"after_id": max(ids)}).decode()
    mark = store.dialect.insert(cursors).values(name=CURSOR, value=position, updated_at=now)
    conn.execute(
        mark.on_conflict_do_update(
            index_elements=["name"], set_={"value": mark.excluded.value, "updated_at": now}
        )
    )
    return int(result.rowcount)
