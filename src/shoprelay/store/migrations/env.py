"""Alembic environment: one history for SQLite and PostgreSQL, run on a given connection."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from shoprelay.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        # Several processes may start at once; only one migrates.
        connection.execute(text("SELECT pg_advisory_xact_lock(7243001)"))
    context.run_migrations()
