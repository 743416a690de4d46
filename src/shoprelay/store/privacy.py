"""Erase a person's data from every table, keep the dedup keys, and audit that it happened.

Rows are found by what they say: a lower-cased search of bodies, states and dead letters for
the person's emails, phones and source markers. It reads whole tables, which an erasure,
being rare, can afford; a subject column filled at ingest would miss copies whose source did
not know the customer (a ShipStation shipment to the same email).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import Connection, and_, delete, func, insert, or_, select, tuple_, update

from shoprelay.store.database import Store
from shoprelay.store.outbox import NewItem, Status, new_rows
from shoprelay.store.plans import PrivacyRequest
from shoprelay.store.schema import (
    customer_identifiers,
    dead_letters,
    delivery_errors,
    outbox,
    privacy_audit,
    resource_state,
    webhook_receipts,
)

log = structlog.get_logger("shoprelay.privacy")

# Search terms per statement: each is one LIKE, and a shop's erasure may bring thousands.
NEEDLES_PER_STATEMENT = 100
UNSENT = (Status.PENDING, Status.IN_FLIGHT)
DELETION_KIND = "deletion"  # Klaviyo deletion jobs: never erased by a later request
ERASED_NOTE = "(erased)"

# Builds the Klaviyo deletion jobs for the identifiers found (sources/deletions.py).
Deletions = Callable[[Sequence[str], Sequence[str]], list[NewItem]]


@dataclass(frozen=True)
class Receipt:
    """The webhook delivery that carried the request: it is deduplicated like any other."""

    shop: str
    webhook_id: str
    topic: str


@dataclass(frozen=True)
class Erasure:
    """What an erasure did, in counts only."""

    items_dropped: int  # unsent outbox items that will never be sent
    rows_erased: int  # rows cleared or deleted, those items included
    deletion_jobs: int  # Klaviyo deletion jobs queued
    duplicate: bool = False  # the delivery was received before


@dataclass
class _Found:
    emails: list[str]
    phones: list[str]
    needles: list[str]


async def erase(
    store: Store,
    request: PrivacyRequest,
    now: float,
    *,
    deletions: Deletions,
    receipt: Receipt | None = None,
) -> Erasure:
    """Erase and queue the deletion jobs in one transaction, with the delivery's receipt."""

    def work(conn: Connection) -> Erasure:
        if receipt is not None and not _receive(store, conn, receipt, now):
            return Erasure(0, 0, 0, duplicate=True)
        found = identify(conn, request)
        dropped, erased, hold_until = _erase_outbox(conn, store, found.needles, now)
        erased += _erase_elsewhere(conn, store, request, found)
        jobs = deletions(found.emails, found.phones) if request.propagate else []
        queued = _queue(conn, store, jobs, now, max(now, hold_until))
        conn.execute(
            insert(privacy_audit).values(
                action=request.action,
                items_dropped=dropped,
                rows_erased=erased,
                deletion_jobs=queued,
                at=now,
            )
        )
        return Erasure(dropped, erased, queued)

    erasure = await store.run_in_transaction(work, urgent=True)
    if erasure.duplicate:
        return erasure
    # The audit line names no one: the action and counts only.
    log.info(
        "privacy.erased",
        action=request.action,
        items_dropped=erasure.items_dropped,
        rows_erased=erasure.rows_erased,
        deletion_jobs=erasure.deletion_jobs,
    )
    return erasure


def _receive(store: Store, conn: Connection, receipt: Receipt, now: float) -> bool:
    row = {
        "shop": receipt.shop,
        "webhook_id": receipt.webhook_id,
        "topic": receipt.topic,
        "outcome": "processed",
        "items": 0,
        "received_at": now,
    }
    statement = store.insert_ignore(webhook_receipts).returning(webhook_receipts.c.id)
    return conn.execute(statement, [row]).first() is not None


def identify(conn: Connection, request: PrivacyRequest) -> _Found:
    """The request's identifiers, those stored for its customers, and the search terms."""
    emails = {email.lower() for email in request.emails}
    phones = set(request.phones)
    linked = select(customer_identifiers.c.identifier, customer_identifiers.c.value)
    if request.scope is not None and (request.customer_ids or request.whole_scope):
        linked = linked.where(customer_identifiers.c.shop == request.scope)
        if not request.whole_scope:
            linked = linked.where(customer_identifiers.c.customer_id.in_(request.customer_ids))
        for kind, value in conn.execute(linked):
            (emails if kind == "email" else phones).add(value)
    if not request.whole_scope:
        # The same person's other identifiers, by any customer record that shares one.
        for kind, value in _linked_by_value(conn, [*emails, *phones]):
            (emails if kind == "email" else phones).add(value)
    needles = [f'"{value.lower()}"' for value in sorted(emails | phones)]
    needles += [marker.lower() for marker in request.markers]
    return _Found(sorted(emails), sorted(phones), needles)


def _linked_by_value(conn: Connection, values: Sequence[str]) -> list[tuple[str, str]]:
    if not values:
        return []
    table = customer_identifiers.c
    customers = select(table.shop, table.customer_id).where(table.value.in_(values))
    query = select(table.identifier, table.value).where(
        tuple_(table.shop, table.customer_id).in_(customers)
    )
    return [(str(kind), str(value)) for kind, value in conn.execute(query)]


async def customers_with(store: Store, values: Sequence[str]) -> list[tuple[str, str]]:
    """(shop, customer id) of every customer whose webhooks named one of these identifiers."""
    if not values:
        return []
    table = customer_identifiers.c
    lowered = [value.lower() for value in values]
    query = (
        select(table.shop, table.customer_id)
        .where(table.value.in_([*values, *lowered]))
        .distinct()
        .order_by(table.shop, table.customer_id)
    )
    async with store.read() as conn:
        return [(str(shop), str(customer)) for shop, customer in await conn.execute(query)]


def chunks(needles: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(needles), NEEDLES_PER_STATEMENT):
        yield needles[start : start + NEEDLES_PER_STATEMENT]


def mentions(column: Any, needles: Sequence[str]) -> Any:
    """Whether the text of `column` holds any of the (lower-case) needles, in any case."""
    lowered = func.lower(column)
    return or_(*(lowered.contains(needle, autoescape=True) for needle in needles))


def _erase_outbox(
    conn: Connection, store: Store, needles: Sequence[str], now: float
) -> tuple[int, int, float]:
    """Unsent items become `erased`, every body `{}`; the dedup keys stay, so nothing that
    names them is queued again. Also when the last of them in flight stops being held."""
    dropped = erased = 0
    hold_until = now
    for chunk in chunks(needles):
        found = conn.execute(
            select(outbox.c.id, outbox.c.status, outbox.c.lease_until).where(
                outbox.c.kind != DELETION_KIND, mentions(outbox.c.body, chunk)
            )
        ).all()
        unsent = [row.id for row in found if row.status in UNSENT]
        settled = [row.id for row in found if row.status not in UNSENT]
        # A sender that claimed one before now may still send it: the deletion jobs wait.
        leases = [row.lease_until for row in found if row.status == Status.IN_FLIGHT]
        hold_until = max([hold_until, *(lease for lease in leases if lease is not None)])
        if unsent:
            conn.execute(
                update(outbox)
                .where(store.dialect.one_of(outbox.c.id, unsent))
                .values(
                    status=Status.ERASED,
                    body="{}",
                    last_error=None,
                    lease_owner=None,
                    lease_until=None,
                )
            )
        if settled:
            conn.execute(
                update(outbox)
                .where(store.dialect.one_of(outbox.c.id, settled))
                .values(body="{}", last_error=None)
            )
        # Their dead letters go with them: a letter is only ever replayed through its item.
        ids = unsent + settled
        if ids:
            erased += conn.execute(
                delete(dead_letters).where(store.dialect.one_of(dead_letters.c.outbox_id, ids))
            ).rowcount
        dropped += len(unsent)
        erased += len(ids)
    return dropped, erased, hold_until


def _erase_elsewhere(conn: Connection, store: Store, request: PrivacyRequest, found: _Found) -> int:
    """Dead letters, stored states, known identifiers and delivery errors that name them."""
    erased = 0
    payload = store.dialect.bytes_as_text(dead_letters.c.payload)
    for chunk in chunks(found.needles):
        erased += conn.execute(
            delete(dead_letters).where(
                or_(mentions(payload, chunk), mentions(dead_letters.c.detail, chunk),
                    mentions(dead_letters.c.reason, chunk))
            )
        ).rowcount  # fmt: skip
        erased += conn.execute(
            update(resource_state).where(mentions(resource_state.c.state, chunk)).values(state=None)
        ).rowcount
        erased += conn.execute(
            update(delivery_errors)
            .where(mentions(delivery_errors.c.detail, chunk))
            .values(detail=ERASED_NOTE)
        ).rowcount
    erased += _erase_scope(conn, request)
    values = [*found.emails, *found.phones]
    if values:
        erased += conn.execute(
            delete(customer_identifiers).where(customer_identifiers.c.value.in_(values))
        ).rowcount
    return erased


def _erase_scope(conn: Connection, request: PrivacyRequest) -> int:
    """What the request's shop keeps about its customers, or about itself."""
    if request.scope is None:
        return 0
    erased = 0
    in_scope = resource_state.c.scope == request.scope
    if request.whole_scope:
        erased += conn.execute(delete(resource_state).where(in_scope)).rowcount
        erased += conn.execute(
            delete(dead_letters).where(
                dead_letters.c.origin == "webhook", dead_letters.c.scope == request.scope
            )
        ).rowcount
        return (
            erased
            + conn.execute(
                delete(customer_identifiers).where(customer_identifiers.c.shop == request.scope)
            ).rowcount
        )
    if request.resources:
        keys = [(ref.kind, ref.id) for ref in request.resources]
        erased += conn.execute(
            update(resource_state)
            .where(in_scope, tuple_(resource_state.c.kind, resource_state.c.resource_id).in_(keys))
            .values(state=None)
        ).rowcount
    if request.customer_ids:
        erased += conn.execute(
            delete(customer_identifiers).where(
                and_(
                    customer_identifiers.c.shop == request.scope,
                    customer_identifiers.c.customer_id.in_(request.customer_ids),
                )
            )
        ).rowcount
    return erased


def _queue(
    conn: Connection, store: Store, jobs: list[NewItem], now: float, available_at: float
) -> int:
    if not jobs:
        return 0
    rows = [{**row, "available_at": available_at} for row in new_rows(jobs, now)]
    statement = store.insert_ignore(outbox).returning(outbox.c.id)
    return len(conn.execute(statement, rows).all())
