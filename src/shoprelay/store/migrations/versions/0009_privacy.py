"""Privacy: each Shopify customer's known emails and phones, and an audit of erasures.

A customers/delete webhook carries only the customer id: the identifiers that earlier
webhooks named are kept with it, so the deletion can reach Klaviyo. The audit records that an
erasure happened and when, with no identifier of whom it was about.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 23:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer_identifiers",
        sa.Column("shop", sa.String(length=255), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("identifier", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("seen_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("shop", "customer_id", "identifier", "value"),
    )
    op.create_table(
        "privacy_audit",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("items_dropped", sa.Integer(), nullable=False),
        sa.Column("rows_erased", sa.Integer(), nullable=False),
        sa.Column("deletion_jobs", sa.Integer(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("privacy_audit")
    op.drop_table("customer_identifiers")
