"""The dead-letter queue: record, list, show, requeue and purge."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, delete, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shoprelay.store import dialects
from shoprelay.store.database import Store
from shoprelay.store.outbox import Status
from shoprelay.store.retention import clear_bodies
from shoprelay.store.schema import dead_letters, outbox

# Most dead letters a purge deletes in one transaction.
PURGE_BATCH = 500


@dataclass(frozen=True)
class DeadLetter:
    id: int
    origin: str  # "delivery" | "webhook" | "source"
    source: str
    reason: str
    detail: str | None
    pointer: str | None
    status_code: int | None
    topic: str | None
    scope: str | None
    outbox_id: int | None
    created_at: float
    replayed_at: float | None
    payload: bytes | None = None
    body: str | None = None  # the outbox item's JSON, for delivery dead letters

    def summary(self) -> dict[str, Any]:
        """What `dlq list` shows: ids, reasons and places, no customer data."""
        return {
            "id": self.id,
            "origin": self.origin,
            "source": self.source,
            "topic": self.topic,
            "reason": self.reason,
            "status_code": self.status_code,
            "pointer": self.pointer,
            "created_at": self.created_at,
            "replayed_at": self.replayed_at,
        }


async def record(
    conn: AsyncConnection,
    *,
    origin: str,
    source: str,
    reason: str,
    now: float,
    detail: str | None = None,
    topic: str | None = None,
    scope: str | None = None,
    payload: bytes | None = None,
) -> int:
    """Keep something verified but unprocessable, with its reason, for a person to see."""
    result = await conn.execute(
        dead_letters.insert()
        .values(
            origin=origin,
            source=source,
            reason=reason,
            detail=detail,
            topic=topic,
            scope=scope,
            payload=payload,
            created_at=now,
        )
        .returning(dead_letters.c.id)
    )
    return int(result.scalar_one())


def _dead_letter(row: Any, *, full: bool) -> DeadLetter:
    return DeadLetter(
        id=row.id,
        origin=row.origin,
        source=row.source,
        reason=row.reason,
        detail=row.detail,
        pointer=row.pointer,
        status_code=row.status_code,
        topic=row.topic,
        scope=row.scope,
        outbox_id=row.outbox_id,
        created_at=row.created_at,
        replayed_at=row.replayed_at,
        payload=row.payload if full else None,
        body=row.body if full else None,
    )


def _select() -> Select[Any]:
    return select(dead_letters, outbox.c.body).outerjoin(
        outbox, outbox.c.id == dead_letters.c.outbox_id
    )


async def list_open(
    conn: AsyncConnection,
    *,
    since: float | None = None,
    limit: int | None = 100,
    include_replayed: bool = False,
) -> list[DeadLetter]:
    """Dead letters, newest first; by default only those not yet replayed."""
    query = _select().order_by(dead_letters.c.id.desc())
    if not include_replayed:
        query = query.where(dead_letters.c.replayed_at.is_(None))
    if since is not None:
        query = query.where(dead_letters.c.created_at >= since)
    if limit is not None:
        query = query.limit(limit)
    return [_dead_letter(row, full=False) for row in (await conn.execute(query)).all()]


async def get(conn: AsyncConnection, ids: Sequence[int]) -> list[DeadLetter]:
    query = _select().where(dialects.of(conn).one_of(dead_letters.c.id, ids))
    query = query.order_by(dead_letters.c.id)
    return [_dead_letter(row, full=True) for row in (await conn.execute(query)).all()]


async def last_id(conn: AsyncConnection) -> int:
    """The newest dead letter's id, 0 when there is none; later ones have higher ids."""
    return int((await conn.execute(select(func.max(dead_letters.c.id)))).scalar() or 0)


async def open_after(
    conn: AsyncConnection,
    after: DeadLetter | None,
    *,
    through_id: int,
    since: float | None = None,
    limit: int,
) -> list[DeadLetter]:
    """Up to `limit` open dead letters in full, oldest first, from the one after `after`, of
    those with ids up to `through_id`."""
    query = open_after_query(after, through_id=through_id, since=since, limit=limit)
    return [_dead_letter(row, full=True) for row in (await conn.execute(query)).all()]


def open_after_query(
    after: DeadLetter | None, *, through_id: int, since: float | None = None, limit: int
) -> Select[Any]:
    """`open_after`'s query. ix_dead_letters_open_in_order holds the open letters in this
    order: each batch seeks its place there, however many letters came before."""
    query = _select().where(dead_letters.c.replayed_at.is_(None), dead_letters.c.id <= through_id)
    if since is not None:
        query = query.where(dead_letters.c.created_at >= since)
    if after is not None:
        position = tuple_(dead_letters.c.created_at, dead_letters.c.id)
        query = query.where(position > (after.created_at, after.id))
    return query.order_by(dead_letters.c.created_at, dead_letters.c.id).limit(limit)


async def count_open(conn: AsyncConnection) -> int:
    query = select(func.count()).where(dead_letters.c.replayed_at.is_(None))
    return int((await conn.execute(query)).scalar() or 0)


async def requeue_deliveries(
    conn: AsyncConnection, letters: Sequence[DeadLetter], now: float
) -> int:
    """Send dead-lettered outbox items again as if new: attempts and age start from zero."""
    dialect = dialects.of(conn)
    # Only the letters still open when marked: one purged meanwhile took its item's body.
    marked = await conn.execute(
        update(dead_letters)
        .where(
            dialect.one_of(dead_letters.c.id, [letter.id for letter in letters]),
            dead_letters.c.replayed_at.is_(None),
        )
        .values(replayed_at=now)
        .returning(dead_letters.c.outbox_id)
    )
    ids = [outbox_id for outbox_id in marked.scalars().all() if outbox_id is not None]
    if not ids:
        return 0
    dead = dialect.not_indexed(outbox.c.status) == Status.DEAD_LETTERED
    result = await conn.execute(
        update(outbox)
        .where(dialect.one_of(outbox.c.id, ids), dead)
        .values(status=Status.PENDING, attempts=0, available_at=now, created_at=now)
    )
    return result.rowcount


async def mark_replayed(conn: AsyncConnection, ids: Sequence[int], now: float) -> None:
    await conn.execute(
        update(dead_letters)
        .where(dialects.of(conn).one_of(dead_letters.c.id, ids))
        .values(replayed_at=now)
    )


async def purge(
    store: Store, *, ids: Sequence[int] | None = None, before: float | None = None
) -> int:
    """Delete dead letters for good: named ones, or all created before a time; how many.

    A purged letter's item loses its body as well, the row and its dedup key staying: no one
    can read or replay it any more. Each batch deletes its letters and clears their items'
    bodies in one transaction, so an interrupted purge has done both or neither for each.
    """
    chosen = select(dead_letters.c.id)
    if ids is not None:
        chosen = chosen.where(store.dialect.one_of(dead_letters.c.id, ids))
    if before is not None:
        chosen = chosen.where(dead_letters.c.created_at < before)
    # On SQLite a transaction holds the one write lock that webhooks wait for.
    step = min(PURGE_BATCH, store.dialect.rows_per_write or PURGE_BATCH)
    statement = (
        delete(dead_letters)
        .where(dead_letters.c.id.in_(chosen.limit(step)))
        .returning(dead_letters.c.outbox_id)
    )
    purged = 0
    while True:
        async with store.transaction() as conn:
            items = (await conn.execute(statement)).scalars().all()
            await clear_bodies(conn, [item for item in items if item is not None])
        purged += len(items)
        if len(items) < step:
            return purged


@dataclass(frozen=True)
class LetterFilter:
    """Which open dead letters an operator picked: each field set narrows the choice."""

    origin: str | None = None
    topic: str | None = None
    reason: str | None = None  # a piece of the reason's text, any case
    since: float | None = None  # created at or after
    before: float | None = None  # created before

    def apply(self, query: Select[Any]) -> Select[Any]:
        query = query.where(dead_letters.c.replayed_at.is_(None))
        if self.origin:
            query = query.where(dead_letters.c.origin == self.origin)
        if self.topic:
            query = query.where(dead_letters.c.topic == self.topic)
        if self.reason:
            query = query.where(dead_letters.c.reason.icontains(self.reason, autoescape=True))
        if self.since is not None:
            query = query.where(dead_letters.c.created_at >= self.since)
        if self.before is not None:
            query = query.where(dead_letters.c.created_at < self.before)
        return query


async def list_matching(
    conn: AsyncConnection, chosen: LetterFilter, *, limit: int
) -> list[DeadLetter]:
    """Open dead letters the filter picks, newest first, without their bodies."""
    query = chosen.apply(_select()).order_by(dead_letters.c.id.desc()).limit(limit)
    return [_dead_letter(row, full=False) for row in (await conn.execute(query)).all()]


async def count_matching(conn: AsyncConnection, chosen: LetterFilter) -> int:
    query = chosen.apply(select(func.count()).select_from(dead_letters))
    return int((await conn.execute(query)).scalar() or 0)


async def ids_matching(
    conn: AsyncConnection, chosen: LetterFilter, *, after_id: int, through_id: int, limit: int
) -> list[int]:
    """Up to `limit` ids the filter picks, in order, past `after_id` and up to `through_id`."""
    query = chosen.apply(select(dead_letters.c.id)).where(
        dead_letters.c.id > after_id, dead_letters.c.id <= through_id
    )
    result = await conn.execute(query.order_by(dead_letters.c.id).limit(limit))
    return [int(found) for found in result.scalars().all()]


async def open_facets(conn: AsyncConnection) -> dict[str, list[str]]:
    """The origins and topics open letters have, for the dashboard's filter choices."""
    found: dict[str, list[str]] = {}
    for name, column in (("origin", dead_letters.c.origin), ("topic", dead_letters.c.topic)):
        query = (
            select(column)
            .where(dead_letters.c.replayed_at.is_(None), column.is_not(None))
            .distinct()
            .order_by(column)
            .limit(200)
        )
        found[name] = [str(value) for value in (await conn.execute(query)).scalars().all()]
    return found
