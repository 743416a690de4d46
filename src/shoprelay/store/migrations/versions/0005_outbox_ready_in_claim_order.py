"""The ready index in the claim's order, id included, so a claim reads only what it takes.

PostgreSQL, with the index ending at available_at, read and sorted a lane's whole backlog for
each claim. SQLite's indexes end with the rowid already, so there the new index is the same.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 18:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_outbox_ready", table_name="outbox")
    op.create_index(
        "ix_outbox_ready", "outbox", ["status", "account", "kind", "available_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_ready", table_name="outbox")
    op.create_index("ix_outbox_ready", "outbox", ["status", "account", "kind", "available_at"])
