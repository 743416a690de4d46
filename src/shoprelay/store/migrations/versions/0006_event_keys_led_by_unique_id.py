"""Event outbox keys led by the event's unique_id, so new keys append to the unique index.

A key was `event:` and a 32-hex digest of (metric, unique_id): each new event's key landed on
a random page of `uq_outbox_dedup_key`, so a group commit touched a page or more an order.
With the unique_id first (`event:<unique_id>#<digest>`, the same digest), keys of growing
source ids land on the index's last pages, and the group commit's outbox insert touches few
(figures in docs/performance-history.md). Existing keys are rewritten from their row's own
body, so an event queued before the upgrade still deduplicates after it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 23:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PREFIX_CHARS = 150  # mapping.klaviyo.KEY_PREFIX_CHARS when this revision was written
OLD_KEY_CHARS = len("event:") + 32

# Per dialect: the body's unique_id, and the first n characters / last n characters of a text.
_SQLITE = ("json_extract(body, '$.unique_id')", "substr({}, 1, {})", "substr({}, -{})")
_POSTGRESQL = ("(body::jsonb ->> 'unique_id')", "left({}, {})", "right({}, {})")


def _functions() -> tuple[str, str, str]:
    return _SQLITE if op.get_bind().dialect.name == "sqlite" else _POSTGRESQL


def upgrade() -> None:
    unique_id, first, _ = _functions()
    op.execute(
        f"UPDATE outbox SET dedup_key = "  # noqa: S608 - this module's constants only
        f"'event:' || {first.format(unique_id, PREFIX_CHARS)} || '#' || substr(dedup_key, 7) "
        f"WHERE kind = 'event' AND dedup_key LIKE 'event:%' "
        f"AND length(dedup_key) = {OLD_KEY_CHARS} AND {unique_id} IS NOT NULL"
    )


def downgrade() -> None:
    _, _, last = _functions()
    op.execute(
        f"UPDATE outbox SET dedup_key = 'event:' || {last.format('dedup_key', 32)} "  # noqa: S608
        "WHERE kind = 'event' AND dedup_key LIKE 'event:%#%'"
    )
