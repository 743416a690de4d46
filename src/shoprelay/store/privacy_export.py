"""Read what shoprelay holds about someone: the export of a data request, and the audit."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Connection, or_, select

from shoprelay.store.database import Store
from shoprelay.store.plans import PrivacyRequest
from shoprelay.store.privacy import chunks, identify, mentions
from shoprelay.store.schema import (
    customer_identifiers,
    dead_letters,
    outbox,
    privacy_audit,
    resource_state,
)


async def export(store: Store, request: PrivacyRequest) -> dict[str, Any]:
    """Everything stored about the request's person, as JSON-ready values."""

    def work(conn: Connection) -> dict[str, Any]:
        found = identify(conn, request)
        payload = store.dialect.bytes_as_text(dead_letters.c.payload)
        items: dict[int, dict[str, Any]] = {}
        letters: dict[int, dict[str, Any]] = {}
        states: dict[tuple[str, ...], dict[str, Any]] = {}
        for chunk in chunks(found.needles):
            for row in conn.execute(select(outbox).where(mentions(outbox.c.body, chunk))):
                items[row.id] = _outbox_entry(row)
            letter_query = select(dead_letters).where(
                or_(mentions(payload, chunk), mentions(dead_letters.c.detail, chunk))
            )
            for row in conn.execute(letter_query):
                letters[row.id] = _letter_entry(row)
            state_query = select(resource_state).where(mentions(resource_state.c.state, chunk))
            for row in conn.execute(state_query):
                states[(row.source, row.scope, row.kind, row.resource_id)] = _state_entry(row)
        return {
            "identifiers": {"email": found.emails, "phone_number": found.phones},
            "outbox": [items[key] for key in sorted(items)],
            "dead_letters": [letters[key] for key in sorted(letters)],
            "resource_state": [states[key] for key in sorted(states)],
        }

    async with store.read() as conn:
        return await conn.run_sync(work)


async def scopes_of(store: Store, customer_id: str) -> list[str]:
    """The shops whose webhooks named this customer id."""
    query = (
        select(customer_identifiers.c.shop)
        .where(customer_identifiers.c.customer_id == customer_id)
        .distinct()
        .order_by(customer_identifiers.c.shop)
    )
    async with store.read() as conn:
        return [str(shop) for shop in (await conn.execute(query)).scalars()]


async def audit(store: Store) -> list[dict[str, Any]]:
    """Every erasure: what kind, when, and how much it erased."""
    query = select(privacy_audit).order_by(privacy_audit.c.id)
    async with store.read() as conn:
        return [dict(row._mapping) for row in await conn.execute(query)]


def _json(raw: str | None) -> Any:
    return orjson.loads(raw) if raw else None


def _outbox_entry(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "status": row.status,
        "source": row.source,
        "created_at": row.created_at,
        "body": _json(row.body),
    }


def _letter_entry(row: Any) -> dict[str, Any]:
    raw = bytes(row.payload) if row.payload is not None else None
    return {
        "id": row.id,
        "origin": row.origin,
        "topic": row.topic,
        "reason": row.reason,
        "detail": row.detail,
        "created_at": row.created_at,
        "payload": raw.decode("utf-8", "replace") if raw is not None else None,
    }


def _state_entry(row: Any) -> dict[str, Any]:
    return {
        "source": row.source,
        "scope": row.scope,
        "kind": row.kind,
        "resource_id": row.resource_id,
        "state": _json(row.state),
    }
