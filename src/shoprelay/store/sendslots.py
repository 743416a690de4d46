"""Send slots shared by every worker on one PostgreSQL database: a rate limit across processes.

Each (account, endpoint, span) has `limit` slots. A send takes one free slot of each span and
marks it busy for one window, so any window holds at most `limit` sends, whichever process sent
them. Taking both slots is one statement: FOR UPDATE SKIP LOCKED keeps concurrent takers off
each other's slots, and nothing changes unless both spans had one free. A `turn` row per
(account, endpoint) passes the turn to send a bulk batch that is not full (delivery/lane.py).
PostgreSQL only: SQLite runs a single process by design, and paces in memory alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy import Float, Integer, TextClause, bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection

from shoprelay.store.database import Store

SPANS = ("burst", "steady")
MIN_WAIT_SECONDS = 0.01
FLOAT_PARAMS = ("now", "free_at", "burst_free_at", "steady_free_at")
INT_PARAMS = ("limit", "burst_limit", "steady_limit")


def _sql(statement: str) -> TextClause:
    """A statement whose numbers are typed: asyncpg cannot infer them inside CASE or a series."""
    floats = [bindparam(name, type_=Float) for name in FLOAT_PARAMS if f":{name}" in statement]
    ints = [bindparam(name, type_=Integer) for name in INT_PARAMS if f":{name}" in statement]
    return text(statement).bindparams(*floats, *ints)


_PROVISION = _sql(
    "INSERT INTO delivery_rate_slots (account, endpoint, span, slot, free_at) "
    "SELECT :account, :endpoint, :span, n, 0 FROM generate_series(0, :limit - 1) AS n "
    "ON CONFLICT DO NOTHING"
)

_TAKE = _sql(
    "WITH burst AS ("
    "  SELECT slot FROM delivery_rate_slots"
    "  WHERE account = :account AND endpoint = :endpoint AND span = 'burst'"
    "  AND slot < :burst_limit AND free_at <= :now LIMIT 1 FOR UPDATE SKIP LOCKED"
    "), steady AS ("
    "  SELECT slot FROM delivery_rate_slots"
    "  WHERE account = :account AND endpoint = :endpoint AND span = 'steady'"
    "  AND slot < :steady_limit AND free_at <= :now LIMIT 1 FOR UPDATE SKIP LOCKED"
    ") "
    "UPDATE delivery_rate_slots AS s SET free_at = CASE s.span "
    "WHEN 'burst' THEN :burst_free_at ELSE :steady_free_at END "
    "WHERE s.account = :account AND s.endpoint = :endpoint "
    "AND ((s.span = 'burst' AND s.slot = (SELECT slot FROM burst)) "
    "OR (s.span = 'steady' AND s.slot = (SELECT slot FROM steady))) "
    "AND EXISTS (SELECT 1 FROM burst) AND EXISTS (SELECT 1 FROM steady) "
    "RETURNING s.span"
)

_NEXT_FREE = _sql(
    "SELECT span, min(free_at) AS free_at FROM delivery_rate_slots "
    "WHERE account = :account AND endpoint = :endpoint AND span IN ('burst', 'steady') "
    "AND slot < CASE span WHEN 'burst' THEN :burst_limit ELSE :steady_limit END "
    "GROUP BY span"
)


# One more row per (account, endpoint): whose turn it is to send a batch that is not full.
_TAKE_TURN = _sql(
    "INSERT INTO delivery_rate_slots (account, endpoint, span, slot, free_at) "
    "VALUES (:account, :endpoint, 'turn', 0, :free_at) "
    "ON CONFLICT (account, endpoint, span, slot) DO UPDATE SET free_at = EXCLUDED.free_at "
    "WHERE delivery_rate_slots.free_at <= :now "
    "RETURNING free_at"
)
_TURN_FREE_AT = _sql(
    "SELECT free_at FROM delivery_rate_slots "
    "WHERE account = :account AND endpoint = :endpoint AND span = 'turn' AND slot = 0"
)


@dataclass(frozen=True)
class SlotLimits:
    """Slots per span, and how long a taken slot stays busy (a window plus margins)."""

    burst: int
    steady: int
    burst_busy_seconds: float
    steady_busy_seconds: float


async def provision(store: Store, account: str, endpoint: str, limits: SlotLimits) -> None:
    """Create the slots of one (account, endpoint); idempotent, and safe from many processes."""
    async with store.transaction() as conn:
        for span, limit in zip(SPANS, (limits.burst, limits.steady), strict=True):
            params = {"account": account, "endpoint": endpoint, "span": span, "limit": limit}
            await conn.execute(_PROVISION, params)


async def take(store: Store, account: str, endpoint: str, limits: SlotLimits, now: float) -> float:
    """0 when a send may go now (a slot of each span is taken); else seconds to wait."""
    params = {
        "account": account,
        "endpoint": endpoint,
        "now": now,
        "burst_limit": limits.burst,
        "steady_limit": limits.steady,
        "burst_free_at": now + limits.burst_busy_seconds,
        "steady_free_at": now + limits.steady_busy_seconds,
    }
    async with _autocommit(store) as conn:
        taken = (await conn.execute(_TAKE, params)).all()
        if len(taken) == len(SPANS):
            return 0.0
        rows = (await conn.execute(_NEXT_FREE, params)).all()
    # A free slot another taker held locked a moment ago makes a wait of ~0: poll shortly.
    free_at = max((row.free_at for row in rows), default=now)
    return max(free_at - now, MIN_WAIT_SECONDS)


async def take_turn(store: Store, account: str, endpoint: str, seconds: float, now: float) -> float:
    """0 when this process may send now, and no other for `seconds`; else seconds to wait."""
    params = {"account": account, "endpoint": endpoint, "now": now, "free_at": now + seconds}
    async with _autocommit(store) as conn:
        if (await conn.execute(_TAKE_TURN, params)).first() is not None:
            return 0.0
        free_at = (await conn.execute(_TURN_FREE_AT, params)).scalar()
    return max((free_at or now) - now, MIN_WAIT_SECONDS)


@contextlib.asynccontextmanager
async def _autocommit(store: Store) -> AsyncIterator[AsyncConnection]:
    """A pooled connection in autocommit: one round trip per statement, no BEGIN or COMMIT."""
    async with store.engine.connect() as raw:
        yield await raw.execution_options(isolation_level="AUTOCOMMIT")
