"""Settled items keep their dedup key for good, and their body only for a while.

An outbox body is a customer's profile and order, kept after the item settles only in case
someone looks. Once the item was queued longer ago than the retention window, the body is
cleared, however late the item settled: the row, with its key, stays, so a late redelivery
or a re-mapped order still queues nothing twice. A dead-lettered item keeps its body while
its dead letter is open, for a person to read and replay; once the letter is purged or
replayed, nothing needs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, and_, or_, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shoprelay.store import dialects
from shoprelay.store.cursors import get_cursor, put_cursor
from shoprelay.store.database import Store
from shoprelay.store.dialects import Dialect
from shoprelay.store.outbox import Status
from shoprelay.store.schema import SETTLED_WITH_BODY, dead_letters, outbox

CLEARED_BODY = "{}"
CURSOR = "outbox.retention"
BATCH = 1_000


async def clear_old_bodies(store: Store, *, before: float, now: float) -> int:
    """Clear the bodies of settled items queued before `before` that nothing needs any more,
    a dialect's step of rows per transaction; how many were cleared.

    ix_outbox_settled_bodies holds only settled items with a body, so a pass reads what it
    clears and the open dead letters' items, however large the outbox. An item settled long
    after it was queued (an account paused for weeks) is cleared by the next pass.
    """
    # On SQLite each step holds the one write lock that webhooks wait for: keep steps small.
    step = min(BATCH, store.dialect.rows_per_write or BATCH)
    cleared = 0
    last: tuple[float, int] | None = None
    while True:
        async with store.read() as conn:
            due = past_the_window(store.dialect, before, step, after=last)
            rows = (await conn.execute(due)).all()
        if rows:
            async with store.transaction(durable=False) as conn:
                cleared += await clear_bodies(conn, [row.id for row in rows])
            last = (rows[-1].created_at, rows[-1].id)
        if len(rows) < step:
            break
    async with store.transaction(durable=False) as conn:
        await put_cursor(store, conn, CURSOR, {"cleared_through": before}, now)
    return cleared


def past_the_window(
    dialect: Dialect, before: float, limit: int, *, after: tuple[float, int] | None = None
) -> Select[Any]:
    """The ids and queue times of the first `limit` items, after `after` in queue order, whose
    bodies are due to be cleared.

    The keyset, not a fresh start each batch, keeps a pass from reading the same open dead
    letters' items again for every batch.
    """
    query = (
        select(outbox.c.id, outbox.c.created_at)
        .where(_due(dialect), outbox.c.created_at < before)
        .order_by(outbox.c.created_at, outbox.c.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(tuple_(outbox.c.created_at, outbox.c.id) > after)
    return query


async def clear_bodies(conn: AsyncConnection, ids: Sequence[int]) -> int:
    """Clear the bodies of those of these items that nothing needs any more, in the caller's
    transaction; how many were cleared. The rows and their dedup keys stay."""
    if not ids:
        return 0
    dialect = dialects.of(conn)
    result = await conn.execute(
        update(outbox)
        .where(dialect.one_of(outbox.c.id, ids), _due(dialect))
        .values(body=CLEARED_BODY)
    )
    return int(result.rowcount)


def _due(dialect: Dialect) -> Any:
    """Settled, still holding a body, and with no open dead letter a person may read or
    replay the item by."""
    open_letter = (
        select(dead_letters.c.id)
        .where(dead_letters.c.outbox_id == outbox.c.id, dead_letters.c.replayed_at.is_(None))
        .exists()
    )
    # `<>`, not a list of settled statuses: an index of status must not stand in for
    # ix_outbox_settled_bodies, whose own terms already leave only settled items.
    status = dialect.not_indexed(outbox.c.status)
    return and_(text(SETTLED_WITH_BODY), or_(status != Status.DEAD_LETTERED, ~open_letter))


async def cleared_through(conn: AsyncConnection) -> float | None:
    """The window's start at the last full pass (None before the first): settled items queued
    before then hold no body, but those with an open dead letter."""
    position = await get_cursor(conn, CURSOR)
    # A cursor of the id-order passes before revision 0008 says nothing of late settlers.
    value = None if position is None else position.get("cleared_through")
    return None if value is None else float(value)
