"""The last applied version of each source resource, and the state stored with it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from shoprelay.store import dialects
from shoprelay.store.database import Store
from shoprelay.store.dialects import Dialect
from shoprelay.store.schema import resource_state


@dataclass(frozen=True)
class ResourceState:
    version: str
    state: dict[str, Any]


async def get_states(
    conn: AsyncConnection, source: str, scope: str, kind: str, ids: Iterable[str]
) -> dict[str, ResourceState]:
    """The stored version and state of each named resource that has one."""
    wanted = list(ids)
    if not wanted:
        return {}
    keys = state_keys(source, scope, kind, wanted)
    rows = (await conn.execute(states_query(dialects.of(conn)), keys)).all()
    return {
        row.resource_id: ResourceState(row.version, orjson.loads(row.state) if row.state else {})
        for row in rows
    }


_states_queries: dict[str, Any] = {}


def states_query(dialect: Dialect) -> Any:
    """Select the version and state of resources by key; bind `state_keys(…)`.

    Built once per dialect. One kind per query: a row-value IN over (kind, resource_id)
    would let SQLite use only the key's prefix and read every resource of the shop.
    """
    if (query := _states_queries.get(dialect.name)) is None:
        query = _states_queries[dialect.name] = _build_states_query(dialect)
    return query


def state_keys(source: str, scope: str, kind: str, ids: list[str]) -> dict[str, Any]:
    """The values `states_query` binds: one kind of resource of one scope, and their ids."""
    return {"source": source, "scope": scope, "kind": kind, "ids": ids}


def _build_states_query(dialect: Dialect) -> Any:
    query = select(
        resource_state.c.kind,
        resource_state.c.resource_id,
        resource_state.c.version,
        resource_state.c.state,
    ).where(
        resource_state.c.source == bindparam("source"),
        resource_state.c.scope == bindparam("scope"),
        resource_state.c.kind == bindparam("kind"),
    )
    return dialect.each_by_key(query, resource_state.c.resource_id, "ids")


def newer_state_upsert(store: Store, ceiling: str | None = None) -> Any:
    """An upsert of resource versions and states that never replaces a newer version.

    `ceiling` (default each row's own version) is the newest stored version a write may
    replace, for sources whose versions are uncertain by a margin.
    """
    statement = store.dialect.insert(resource_state)
    return statement.on_conflict_do_update(
        index_elements=["source", "scope", "kind", "resource_id"],
        set_={
            "version": statement.excluded.version,
            "state": statement.excluded.state,
            "updated_at": statement.excluded.updated_at,
        },
        # Another writer may have applied a newer version since this one was read.
        where=resource_state.c.version <= (ceiling or statement.excluded.version),
    )


async def put_newer_state(
    store: Store,
    conn: AsyncConnection,
    *,
    source: str,
    scope: str,
    kind: str,
    resource_id: str,
    version: str,
    state: dict[str, Any],
    now: float,
    ceiling: str | None = None,
) -> None:
    """Insert or replace the resource's version and state, unless the stored version is newer."""
    row = {
        "source": source,
        "scope": scope,
        "kind": kind,
        "resource_id": resource_id,
        "version": version,
        "state": orjson.dumps(state).decode(),
        "updated_at": now,
    }
    await conn.execute(newer_state_upsert(store, ceiling), [row])


async def count_states(conn: AsyncConnection, source: str, kind: str) -> int:
    query = select(func.count()).where(
        resource_state.c.source == source, resource_state.c.kind == kind
    )
    return int((await conn.execute(query)).scalar() or 0)
