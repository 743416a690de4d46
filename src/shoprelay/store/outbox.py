"""The outbox: enqueue, claim, and record each item's outcome. Dialect-neutral."""

from __future__ import annotations

import enum
import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, Select, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shoprelay.store.database import Store
from shoprelay.store.schema import dead_letters, outbox


class Status(enum.StrEnum):
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    DELIVERED = "delivered"
    DEAD_LETTERED = "dead_lettered"
    SUPERSEDED = "superseded"  # a newer version with its ordering key exists: never sent
    ERASED = "erased"  # its person asked to be forgotten: never sent, body cleared


# Kinds whose requests overwrite what Klaviyo holds (a profile upsert, a consent change): an
# older version landing after a newer one would undo it. Their items carry an ordering key and
# version, and every claim of them keeps the newest-last rule.
ORDERED_KINDS = frozenset({"profile", "consent"})
TERMINAL_STATUSES = frozenset(
    {Status.DELIVERED, Status.DEAD_LETTERED, Status.SUPERSEDED, Status.ERASED}
)
DEFAULT_ACCOUNT = "default"


# Claims, leases and outcomes commit with durable=False: they need not wait for the disk. A
# power loss can undo only the last of them, and what it undoes is redone: an item whose claim
# or "delivered" mark is lost goes out again, and Klaviyo drops the copy by its unique_id.
# Enqueues (a webhook's 200 waits on them) and dead letters (a person reads them) stay durable.


@dataclass(frozen=True)
class NewItem:
    """A Klaviyo request we owe: `body` is the resource's JSON:API attributes."""

    kind: str  # "event" | "profile"
    dedup_key: str
    body: dict[str, Any]
    source: str
    account: str = DEFAULT_ACCOUNT
    # Items sharing a key (one customer's profile versions) reach Klaviyo newest last, by
    # `ordering_version` (the source's timestamp, a sortable string), then by queue order.
    ordering_key: str | None = None
    ordering_version: str | None = None
    # `body` as JSON, encoded once at construction: a body JSON cannot carry fails there, and
    # a copy made with another body encodes its own. Not a cached_property: on Python 3.11
    # each first read takes a lock, a tenth of mapping an order.
    encoded: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.ordering_key is not None and self.kind not in ORDERED_KINDS:
            # Claims check ordering only in ordered lanes: a key elsewhere would be ignored.
            raise ValueError(f"an item of kind {self.kind!r} cannot be ordered")
        object.__setattr__(self, "encoded", orjson.dumps(self.body).decode())


@dataclass(frozen=True)
class Item:
    id: int
    kind: str
    account: str
    dedup_key: str
    body: dict[str, Any]
    attempts: int
    created_at: float
    source: str
    lease: str | None = None  # the claim that holds it; outcomes apply only under this lease
    last_error: str | None = None


_ITEM_COLUMNS = (
    outbox.c.id,
    outbox.c.kind,
    outbox.c.account,
    outbox.c.dedup_key,
    outbox.c.body,
    outbox.c.attempts,
    outbox.c.created_at,
    outbox.c.source,
    outbox.c.lease_owner,
    outbox.c.last_error,
)


def _held(store: Store, items: Sequence[Item]) -> Any:
    """Rows still leased by the claims these items came from: a late answer to an expired
    lease must not undo what the worker that took the item over has recorded."""
    return and_(
        store.dialect.one_of(outbox.c.id, [item.id for item in items]),
        store.dialect.not_indexed(outbox.c.status) == Status.IN_FLIGHT,
        outbox.c.lease_owner.in_({item.lease for item in items}),
    )


def _item(row: Any) -> Item:
    return Item(
        id=row.id,
        kind=row.kind,
        account=row.account,
        dedup_key=row.dedup_key,
        body=orjson.loads(row.body),
        attempts=row.attempts,
        created_at=row.created_at,
        source=row.source,
        lease=row.lease_owner,
        last_error=row.last_error,
    )


def new_rows(items: Sequence[NewItem], now: float) -> list[dict[str, Any]]:
    """Outbox rows for new items, ready for an INSERT that skips known dedup keys."""
    return [
        {
            "account": item.account,
            "kind": item.kind,
            "dedup_key": item.dedup_key,
            "body": item.encoded,
            "ordering_key": item.ordering_key,
            "ordering_version": item.ordering_version,
            "source": item.source,
            "status": Status.PENDING,
            "attempts": 0,
            "created_at": now,
            "available_at": now,
        }
        # Sorted by key: concurrent writers then lock unique keys in one order, never a cycle.
        for item in sorted(items, key=lambda item: item.dedup_key)
    ]


async def enqueue(store: Store, conn: AsyncConnection, items: Sequence[NewItem], now: float) -> int:
    """Add items in the caller's transaction; an item whose dedup_key exists is skipped."""
    if not items:
        return 0
    statement = store.insert_ignore(outbox).returning(outbox.c.id)
    result = await conn.execute(statement, new_rows(items, now))
    return len(result.all())


async def claim(
    store: Store,
    *,
    account: str,
    kind: str,
    limit: int,
    owner: str,
    now: float,
    lease_seconds: float,
    at_least: int = 1,
) -> list[Item]:
    """Lease up to `limit` ready items, oldest first; no other worker gets them.

    Each claim spends one of an item's attempts: an item whose sender dies, or hangs past
    its lease, still runs out of attempts. Releasing it (a pause, a rate limit) gives the
    attempt back. With `at_least`, lease nothing unless that many are ready.
    """
    lease = f"{owner}/{uuid.uuid4().hex[:12]}"
    until = now + lease_seconds
    leased = update(outbox).values(
        status=Status.IN_FLIGHT,
        lease_owner=lease,
        lease_until=until,
        attempts=outbox.c.attempts + 1,
    )

    def enough_ready(conn: Connection) -> bool:
        enough = ready_query(account=account, kind=kind, now=now, limit=at_least)
        return (
            conn.execute(select(func.count()).select_from(enough.subquery())).scalar() or 0
        ) >= at_least

    def lease_ready(conn: Connection, ready: Select[Any], first: bool) -> int:
        if first and at_least > 1 and not enough_ready(conn):
            return 0
        if kind not in ORDERED_KINDS:
            claimable = store.dialect.claimable(ready)
            return conn.execute(leased.where(outbox.c.id.in_(claimable))).rowcount
        store.dialect.claim_one_at_a_time(conn, f"{account}/{kind}")
        while True:
            ids = conn.execute(store.dialect.claimable(ready)).scalars().all()
            if not ids:
                return 0
            superseded = conn.execute(_supersede(store, ids).returning(outbox.c.id)).scalars().all()
            ids = sorted(set(ids) - set(superseded))
            if ids:
                return conn.execute(leased.where(store.dialect.one_of(outbox.c.id, ids))).rowcount
            # Each round supersedes at least one item, so this ends.

    # The write transactions only mark the rows. Reading them there would step, and wait for
    # the GIL, once per row while holding SQLite's one write lock; a snapshot reads them after.
    # Ordered kinds lease in one transaction: their supersede check looks at the whole claim.
    step = limit if kind in ORDERED_KINDS else _step(store, limit)
    leased_rows = 0
    while leased_rows < limit:
        want = min(step, limit - leased_rows)
        ready = ready_query(account=account, kind=kind, now=now, limit=want)
        work = functools.partial(lease_ready, ready=ready, first=not leased_rows)
        got = await store.run_in_transaction(work, durable=False)
        leased_rows += got
        if got < want:
            break
    if not leased_rows:
        return []
    held = select(*_ITEM_COLUMNS).where(
        outbox.c.status == Status.IN_FLIGHT,
        outbox.c.lease_until == until,
        outbox.c.lease_owner == lease,
    )
    async with store.read() as conn:
        rows = (await conn.execute(held.order_by(outbox.c.id))).all()
    return [_item(row) for row in rows]


def ready_query(*, account: str, kind: str, now: float, limit: int) -> Select[Any]:
    """The ids of the lane's oldest ready items.

    ix_outbox_ready holds them in this order, so the scan stops after `limit` rows instead of
    sorting the whole backlog.
    """
    return (
        select(outbox.c.id)
        .where(
            outbox.c.status == Status.PENDING,
            outbox.c.account == account,
            outbox.c.kind == kind,
            outbox.c.available_at <= now,
            *_ordering_rules(kind),
        )
        .order_by(outbox.c.available_at, outbox.c.id)
        .limit(limit)
    )


def _same_key(other: Any) -> Any:
    return and_(outbox.c.ordering_key.is_not(None), other.c.ordering_key == outbox.c.ordering_key)


def _newer(other: Any) -> Any:
    """`other` is a later version than this row: by source version, then by queue order.

    The version decides, not the commit order: concurrent writers may commit an older version
    after a newer one. Where either has no version (queued by a release before them, as in
    a rolling upgrade), queue order decides.
    """
    mine, theirs = outbox.c.ordering_version, other.c.ordering_version
    both = and_(mine.is_not(None), theirs.is_not(None))
    return or_(
        and_(both, theirs > mine),
        and_(or_(~both, theirs == mine), other.c.id > outbox.c.id),
    )


def _ordering_rules(kind: str) -> list[Any]:
    """An ordered item waits while another item with its key is in flight: of two versions,
    the one sent second must not race the first."""
    if kind not in ORDERED_KINDS:
        return []
    other = outbox.alias("other")
    # The key's own rows are found by ix_outbox_ordering and their status read there: an
    # index of status would walk every in-flight entry, dead ones included, for each item.
    in_flight = other.c.status.concat("") == Status.IN_FLIGHT
    key_in_flight = select(other.c.id).where(_same_key(other), in_flight).exists()
    return [~key_in_flight]


def _supersede(store: Store, ids: Sequence[int]) -> Any:
    """Of these pending items, those with a newer version of their key that is queued, in
    flight, sent or itself superseded are never sent. A newer version that was dead-lettered
    does not count: the older one is then the newest Klaviyo can take.

    Only the items about to be claimed are checked, so a claim costs the same whatever the
    backlog; an item also checked this way is the only one of its key in its claim.
    """
    newer = outbox.alias("newer")
    newer_exists = (
        select(newer.c.id)
        .where(_same_key(newer), _newer(newer), newer.c.status != Status.DEAD_LETTERED)
        .exists()
    )
    return (
        update(outbox)
        .where(
            store.dialect.one_of(outbox.c.id, ids),
            store.dialect.not_indexed(outbox.c.status) == Status.PENDING,
            outbox.c.ordering_key.is_not(None),
            newer_exists,
        )
        .values(status=Status.SUPERSEDED, last_error="superseded by a newer version")
    )


LEASE_EXPIRED = "its sender stopped or hung before recording an outcome (lease expired)"


@dataclass(frozen=True)
class AttemptLimits:
    """How many attempts, and how long, an item gets before it is dead-lettered."""

    max_attempts: int
    max_age_seconds: float


async def reclaim_expired(store: Store, now: float, limits: AttemptLimits) -> int:
    """Take back items whose lease expired (their worker died or hung): their claim spent an
    attempt, so those out of attempts or time are dead-lettered, the rest queued again."""
    expired = and_(outbox.c.status == Status.IN_FLIGHT, outbox.c.lease_until < now)
    spent = or_(
        outbox.c.attempts >= limits.max_attempts,
        outbox.c.created_at <= now - limits.max_age_seconds,
    )
    given_up = (
        update(outbox)
        .where(expired, spent)
        .values(status=Status.DEAD_LETTERED, lease_owner=None, lease_until=None)
        .returning(outbox.c.id, outbox.c.source, outbox.c.account, outbox.c.attempts)
    )
    requeued = (
        update(outbox)
        .where(expired)
        .values(
            status=Status.PENDING,
            lease_owner=None,
            lease_until=None,
            available_at=now,
            last_error=LEASE_EXPIRED,
        )
    )

    def work(conn: Connection) -> int:
        letters = [
            {
                "origin": "delivery",
                "source": row.source,
                "outbox_id": row.id,
                "reason": f"gave up after {row.attempts} attempts: {LEASE_EXPIRED}",
                "scope": row.account,
                "created_at": now,
            }
            for row in conn.execute(given_up).all()
        ]
        if letters:
            conn.execute(dead_letters.insert(), letters)
        return len(letters) + conn.execute(requeued).rowcount

    # Relaxed, dead letters included: a power loss that undoes this leaves the rows in flight
    # under an expired lease, and the next pass takes them back again.
    return await store.run_in_transaction(work, durable=False)


def _step(store: Store, rows: int) -> int:
    return min(rows, store.dialect.rows_per_write or rows) or 1


async def _update_held(store: Store, items: Sequence[Item], **values: Any) -> int:
    """Update the items still held under their lease, a dialect's step of rows per
    transaction; how many were still held."""
    step, changed = _step(store, len(items)), 0
    for start in range(0, len(items), step):
        statement = update(outbox).where(_held(store, items[start : start + step]))
        changed += (await store.write(statement.values(**values), durable=False)).rowcount
    return changed


async def extend_lease(store: Store, items: Sequence[Item], until: float) -> int:
    """Keep items leased until `until` (e.g. while Klaviyo runs their job); how many still held."""
    return await _update_held(store, items, lease_until=until)


async def _settle(store: Store, items: Sequence[Item], **values: Any) -> None:
    """Record an outcome for items still held under their lease, and free the lease."""
    await _update_held(store, items, lease_owner=None, lease_until=None, **values)


# Kinds whose body names someone only so Klaviyo can forget them: cleared once delivered.
CLEARED_WHEN_DELIVERED = frozenset({"deletion"})


async def mark_delivered(store: Store, items: Sequence[Item], now: float) -> None:
    # A lane's items share one kind.
    cleared = {"body": "{}"} if items and items[0].kind in CLEARED_WHEN_DELIVERED else {}
    await _settle(
        store, items, status=Status.DELIVERED, delivered_at=now, last_error=None, **cleared
    )


async def schedule_retry(
    store: Store, items: Sequence[Item], *, available_at: float, error: str
) -> None:
    """Put the items back in the queue for later; their claim spent the attempt."""
    await _settle(store, items, status=Status.PENDING, available_at=available_at, last_error=error)


async def release(
    store: Store, items: Sequence[Item], *, available_at: float, error: str | None = None
) -> None:
    """Put items back without spending an attempt (paused account, rate limit): the one
    their claim took is given back."""
    noted = {} if error is None else {"last_error": error}
    await _settle(
        store,
        items,
        status=Status.PENDING,
        available_at=available_at,
        attempts=outbox.c.attempts - 1,
        **noted,
    )


async def replace_body(store: Store, item: Item, body: dict[str, Any]) -> None:
    """Store a corrected body, e.g. without an identifier Klaviyo reported as conflicting."""
    await store.write(
        update(outbox).where(_held(store, [item])).values(body=orjson.dumps(body).decode())
    )


@dataclass(frozen=True)
class Failure:
    """Why one item cannot be delivered, in Klaviyo's own words where it gave them."""

    reason: str
    detail: str | None = None
    pointer: str | None = None
    status_code: int | None = None


async def dead_letter(
    store: Store, items: Sequence[Item], failures: Sequence[Failure], now: float
) -> None:
    """Move items to the dead-letter queue, each with its reason, if still held by us."""
    if items:
        await store.run_in_transaction(lambda conn: _dead_letter(store, conn, items, failures, now))


def _dead_letter(
    store: Store, conn: Connection, items: Sequence[Item], failures: Sequence[Failure], now: float
) -> None:
    moved = conn.execute(
        update(outbox)
        .where(_held(store, items))
        .values(status=Status.DEAD_LETTERED, lease_owner=None, lease_until=None)
        .returning(outbox.c.id)
    )
    ours = {row.id for row in moved.all()}
    letters = [
        {
            "origin": "delivery",
            "source": item.source,
            "outbox_id": item.id,
            "reason": failure.reason,
            "detail": failure.detail,
            "pointer": failure.pointer,
            "status_code": failure.status_code,
            "scope": item.account,
            "created_at": now,
        }
        for item, failure in zip(items, failures, strict=True)
        if item.id in ours
    ]
    if letters:
        conn.execute(dead_letters.insert(), letters)


async def counts(conn: AsyncConnection) -> dict[str, int]:
    """How many items are in each state."""
    rows = await conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status))
    found = {str(status): int(n) for status, n in rows.all()}
    return {status.value: found.get(status.value, 0) for status in Status}


async def oldest_pending(conn: AsyncConnection) -> float | None:
    """Creation time of the oldest item not yet delivered."""
    query = select(func.min(outbox.c.created_at)).where(
        or_(outbox.c.status == Status.PENDING, outbox.c.status == Status.IN_FLIGHT)
    )
    value = (await conn.execute(query)).scalar()
    return None if value is None else float(value)


async def lanes(conn: AsyncConnection) -> list[tuple[str, str]]:
    """The (account, kind) pairs that have pending items.

    Found by a seek per pair rather than a GROUP BY, which would read the whole backlog.
    """
    pairs = []
    account = await _next_pending(conn, outbox.c.account, None)
    while account is not None:
        by_account = outbox.c.account == account
        kind = await _next_pending(conn, outbox.c.kind, None, by_account)
        while kind is not None:
            pairs.append((account, kind))
            kind = await _next_pending(conn, outbox.c.kind, kind, by_account)
        account = await _next_pending(conn, outbox.c.account, account)
    return pairs


async def _next_pending(
    conn: AsyncConnection, column: Any, after: str | None, *where: Any
) -> str | None:
    """The smallest value of `column` after `after` among pending items, by one index seek."""
    if after is not None:
        where = (*where, column > after)
    query = (
        select(column).where(outbox.c.status == Status.PENDING, *where).order_by(column).limit(1)
    )
    value = (await conn.execute(query)).scalar()
    return None if value is None else str(value)
