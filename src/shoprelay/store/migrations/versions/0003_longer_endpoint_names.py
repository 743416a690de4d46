"""Endpoint names up to 64 characters: Klaviyo's longest operationId has 39.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("delivery_pauses", "delivery_errors")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column("endpoint", type_=sa.String(64), existing_type=sa.String(32))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column("endpoint", type_=sa.String(32), existing_type=sa.String(64))
