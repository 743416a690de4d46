"""Retention finds the settled items that still hold a body, whenever they settled.

A partial index holds only them, in queue-time order, so a pass reads what it clears and the
open dead letters' items, not the outbox. Dead letters get two: the open ones in creation
order, so `dlq replay --all` reads each batch from its place instead of sorting them all,
and one by outbox item, as a body is kept while its item has an open letter.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 21:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SETTLED_WITH_BODY = "status NOT IN ('pending', 'in_flight') AND body <> '{}'"


def upgrade() -> None:
    op.create_index(
        "ix_outbox_settled_bodies",
        "outbox",
        ["created_at", "id"],
        sqlite_where=sa.text(SETTLED_WITH_BODY),
        postgresql_where=sa.text(SETTLED_WITH_BODY),
    )
    op.create_index(
        "ix_dead_letters_open_in_order",
        "dead_letters",
        ["created_at", "id"],
        sqlite_where=sa.text("replayed_at IS NULL"),
        postgresql_where=sa.text("replayed_at IS NULL"),
    )
    op.create_index("ix_dead_letters_outbox", "dead_letters", ["outbox_id"])


def downgrade() -> None:
    op.drop_index("ix_dead_letters_outbox", table_name="dead_letters")
    op.drop_index("ix_dead_letters_open_in_order", table_name="dead_letters")
    op.drop_index("ix_outbox_settled_bodies", table_name="outbox")
