"""Named leases: one owner at a time for work that must not run twice, such as a poll."""

from __future__ import annotations

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shoprelay.store.database import Store
from shoprelay.store.schema import leases


async def try_lease(store: Store, name: str, owner: str, *, now: float, ttl: float) -> bool:
    """Take or renew a named lease; False while another live owner holds it."""
    async with store.transaction() as conn:
        await conn.execute(delete(leases).where(leases.c.name == name, leases.c.expires_at < now))
        inserted = await conn.execute(
            store.insert_ignore(leases)
            .values(name=name, owner=owner, expires_at=now + ttl)
            .returning(leases.c.name)
        )
        if inserted.scalar() is not None:
            return True
        renewed = await conn.execute(
            update(leases)
            .where(leases.c.name == name, leases.c.owner == owner)
            .values(expires_at=now + ttl)
        )
        return renewed.rowcount == 1


async def hold_lease(
    conn: AsyncConnection, name: str, owner: str, *, now: float, ttl: float
) -> bool:
    """Renew a lease inside the caller's transaction; False once another owner has taken it.

    The row stays locked until the transaction ends, so no one can take the lease between
    this check and the caller's writes.
    """
    renewed = await conn.execute(
        update(leases)
        .where(leases.c.name == name, leases.c.owner == owner)
        .values(expires_at=now + ttl)
    )
    return renewed.rowcount == 1


async def release_lease(store: Store, name: str, owner: str) -> None:
    async with store.transaction() as conn:
        await conn.execute(delete(leases).where(leases.c.name == name, leases.c.owner == owner))
