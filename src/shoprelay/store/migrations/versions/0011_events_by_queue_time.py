"""Events by queue time: `reconcile` and the dashboard count a window of days of events
without reading the whole outbox, whose settled rows stay for good.

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-04 23:55:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_outbox_events_by_queue_time", "outbox", ["kind", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_events_by_queue_time", table_name="outbox")
