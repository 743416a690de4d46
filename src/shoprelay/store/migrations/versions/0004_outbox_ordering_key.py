"""Outbox ordering keys: one customer's profile versions reach Klaviyo in queue order.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 03:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("ordering_key", sa.String(200), nullable=True))
        batch.create_index("ix_outbox_ordering", ["ordering_key", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_ordering")
        batch.drop_column("ordering_key")
