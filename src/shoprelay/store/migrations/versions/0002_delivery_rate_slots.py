"""Delivery rate slots: Klaviyo's rate limits shared by every worker on PostgreSQL

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "delivery_rate_slots",
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("endpoint", sa.String(length=64), nullable=False),
        sa.Column("span", sa.String(length=8), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("free_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("account", "endpoint", "span", "slot"),
    )


def downgrade() -> None:
    op.drop_table("delivery_rate_slots")
