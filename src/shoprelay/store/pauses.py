"""Delivery pauses that every worker honours, and the last error, for `status`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from shoprelay.store.database import Store
from shoprelay.store.schema import delivery_errors, delivery_pauses

ALL_ENDPOINTS = "*"


@dataclass(frozen=True)
class Pause:
    account: str
    endpoint: str  # an endpoint name, or "*" for the whole account
    reason: str  # "rate_limited" | "auth"
    detail: str | None
    since: float
    until: float | None  # None: until a probe succeeds or a person resumes

    def as_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "endpoint": self.endpoint,
            "reason": self.reason,
            "detail": self.detail,
            "since": self.since,
            "until": self.until,
        }


async def set_pause(
    store: Store,
    *,
    account: str,
    endpoint: str,
    reason: str,
    detail: str | None,
    now: float,
    until: float | None,
) -> None:
    """Pause an endpoint (or a whole account) for every worker; a later pause replaces it."""
    values = {"reason": reason, "detail": detail, "until": until, "since": now}
    async with store.transaction() as conn:
        await store.upsert(
            conn, delivery_pauses, {"account": account, "endpoint": endpoint}, values
        )


async def clear_pause(
    store: Store, *, account: str | None = None, endpoint: str | None = None
) -> int:
    """Lift pauses: one endpoint, one account, or all of them (`shoprelay resume`)."""
    statement = delete(delivery_pauses)
    if account is not None:
        statement = statement.where(delivery_pauses.c.account == account)
    if endpoint is not None:
        statement = statement.where(delivery_pauses.c.endpoint == endpoint)
    async with store.transaction() as conn:
        result = await conn.execute(statement)
    return result.rowcount


async def active_pauses(conn: AsyncConnection, now: float) -> list[Pause]:
    """Pauses in force now: open-ended ones and those whose time has not run out."""
    query = select(delivery_pauses).where(
        or_(delivery_pauses.c.until.is_(None), delivery_pauses.c.until > now)
    )
    return [
        Pause(row.account, row.endpoint, row.reason, row.detail, row.since, row.until)
        for row in (await conn.execute(query)).all()
    ]


async def record_error(
    store: Store, *, account: str, endpoint: str, status_code: int | None, detail: str, now: float
) -> None:
    values = {"endpoint": endpoint, "status_code": status_code, "detail": detail, "at": now}
    async with store.transaction() as conn:
        await store.upsert(conn, delivery_errors, {"account": account}, values)


async def last_errors(conn: AsyncConnection) -> list[dict[str, Any]]:
    rows = (await conn.execute(select(delivery_errors).order_by(delivery_errors.c.at.desc()))).all()
    return [
        {
            "account": row.account,
            "endpoint": row.endpoint,
            "status_code": row.status_code,
            "detail": row.detail,
            "at": row.at,
        }
        for row in rows
    ]
