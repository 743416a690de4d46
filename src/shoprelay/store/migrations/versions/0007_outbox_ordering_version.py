"""Outbox ordering versions: of one key's items, the newest source version wins, whatever
order the items were committed in.

Items queued before this revision have no version; they order among themselves by id, and
below any item that has one.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("ordering_version", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("ordering_version")
