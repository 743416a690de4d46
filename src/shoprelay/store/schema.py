"""SQLAlchemy Core tables: one MetaData, the same on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for a long-lived queue.
Id = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

# The durable outbox: every Klaviyo request we owe, from acknowledgement to delivery.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # "event" | "profile"
    Column("dedup_key", String(200), nullable=False),
    Column("body", Text, nullable=False),  # JSON: the Klaviyo resource attributes
    Column("source", String(32), nullable=False),  # "shopify" | "shipstation"
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("created_at", Float, nullable=False),
    Column("available_at", Float, nullable=False),
    Column("lease_owner", String(64)),
    Column("lease_until", Float),
    Column("delivered_at", Float),
    Column("last_error", Text),
    # Items sharing a key (one customer's profile) reach Klaviyo newest last: of a key's items,
    # the one with the highest (ordering_version, id) wins and no older one is sent after it.
    Column("ordering_key", String(200)),
    Column("ordering_version", String(64)),  # the source's version, a sortable UTC string
    UniqueConstraint("dedup_key", name="uq_outbox_dedup_key"),
)
# The claim's order, id included: without it PostgreSQL sorted a lane's whole backlog per claim.
Index(
    "ix_outbox_ready",
    outbox.c.status,
    outbox.c.account,
    outbox.c.kind,
    outbox.c.available_at,
    outbox.c.id,
)
Index("ix_outbox_lease", outbox.c.status, outbox.c.lease_until)
Index("ix_outbox_ordering", outbox.c.ordering_key, outbox.c.id)
# Events by queue time, for `reconcile` and the dashboard's chart (store/event_days.py): the
# rows a window of days can hold, not the whole outbox, whose settled rows stay for good.
Index("ix_outbox_events_by_queue_time", outbox.c.kind, outbox.c.created_at)
# Settled items that still hold a body: what retention has left to clear, and the items of
# open dead letters. An item enters when it settles and leaves when its body is cleared, so
# claims and retries never write it. store/retention.py queries with this very text: SQLite
# takes a partial index only for a query with the same terms, PostgreSQL's generic plans
# only for constants. `NOT IN` the unsettled statuses, as no index can seek it: for a list
# of settled ones SQLite walked ix_outbox_lease instead.
SETTLED_WITH_BODY = "status NOT IN ('pending', 'in_flight') AND body <> '{}'"
Index(
    "ix_outbox_settled_bodies",
    outbox.c.created_at,
    outbox.c.id,
    sqlite_where=text(SETTLED_WITH_BODY),
    postgresql_where=text(SETTLED_WITH_BODY),
)

# What a person reads and replays: undeliverable items and unprocessable webhooks.
dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("origin", String(16), nullable=False),  # "delivery" | "webhook" | "source"
    Column("source", String(32), nullable=False),
    Column("outbox_id", BigInteger),
    Column("reason", Text, nullable=False),
    Column("detail", Text),
    Column("pointer", Text),
    Column("status_code", Integer),
    Column("topic", String(64)),
    Column("scope", String(255)),  # shop domain or source account
    Column("payload", LargeBinary),  # raw webhook bytes, kept for replay
    Column("created_at", Float, nullable=False),
    Column("replayed_at", Float),
)
Index("ix_dead_letters_open", dead_letters.c.replayed_at, dead_letters.c.created_at)
# Open letters oldest first, for a replay of all of them a batch at a time. A partial index:
# PostgreSQL cannot take ix_dead_letters_open's order past `replayed_at IS NULL`, not being
# an equality, and sorted every open letter for each batch.
Index(
    "ix_dead_letters_open_in_order",
    dead_letters.c.created_at,
    dead_letters.c.id,
    sqlite_where=text("replayed_at IS NULL"),
    postgresql_where=text("replayed_at IS NULL"),
)
# Whether an outbox item has an open dead letter: its body is kept while it has one.
Index("ix_dead_letters_outbox", dead_letters.c.outbox_id)

# One row per webhook delivery: deduplication on (shop, X-Shopify-Webhook-Id).
webhook_receipts = Table(
    "webhook_receipts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("shop", String(255), nullable=False),
    Column("webhook_id", String(255), nullable=False),
    Column("topic", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),  # processed | ignored | stale | unprocessable
    Column("items", Integer, nullable=False, server_default=text("0")),
    Column("received_at", Float, nullable=False),
    UniqueConstraint("shop", "webhook_id", name="uq_webhook_receipts_delivery"),
)
Index("ix_webhook_receipts_outcome", webhook_receipts.c.outcome)

# The last applied version of a source resource (order, customer), and small state with it.
resource_state = Table(
    "resource_state",
    metadata,
    Column("source", String(32), primary_key=True),
    Column("scope", String(255), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("resource_id", String(64), primary_key=True),
    Column("version", String(64), nullable=False),  # sortable UTC ISO-8601
    Column("state", Text),  # JSON, owned by the source
    Column("updated_at", Float, nullable=False),
)

# Poll watermarks, backfill checkpoints and sync reports, as JSON by name.
cursors = Table(
    "cursors",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# Named leases: one ShipStation sync per account, even across processes.
leases = Table(
    "leases",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("owner", String(64), nullable=False),
    Column("expires_at", Float, nullable=False),
)

# Delivery pauses shared by every worker: 429 per endpoint, bad key per account ("*").
delivery_pauses = Table(
    "delivery_pauses",
    metadata,
    Column("account", String(64), primary_key=True),
    Column("endpoint", String(64), primary_key=True),
    Column("reason", String(32), nullable=False),  # "rate_limited" | "auth"
    Column("detail", Text),
    Column("since", Float, nullable=False),
    Column("until", Float),  # None: until a probe or `shoprelay resume` clears it
)

# The last delivery error per account, for `status`.
delivery_errors = Table(
    "delivery_errors",
    metadata,
    Column("account", String(64), primary_key=True),
    Column("endpoint", String(64), nullable=False),
    Column("status_code", Integer),
    Column("detail", Text, nullable=False),
    Column("at", Float, nullable=False),
)

# Klaviyo's rate limits shared by every worker on one PostgreSQL database: `limit` send slots
# per (account, endpoint, span); a send takes a free slot and frees it one window later, so no
# window holds more sends than slots. On SQLite one process delivers, pacing in memory alone.
delivery_rate_slots = Table(
    "delivery_rate_slots",
    metadata,
    Column("account", String(64), primary_key=True),
    Column("endpoint", String(64), primary_key=True),
    Column("span", String(8), primary_key=True),  # "burst" | "steady"
    Column("slot", Integer, primary_key=True),
    Column("free_at", Float, nullable=False),
)

# What earlier webhooks told us about a Shopify customer: every email and phone seen with their
# id, so a customers/delete (which carries only the id) can still name them to Klaviyo.
customer_identifiers = Table(
    "customer_identifiers",
    metadata,
    Column("shop", String(255), primary_key=True),
    Column("customer_id", String(64), primary_key=True),
    Column("identifier", String(16), primary_key=True),  # "email" | "phone_number"
    Column("value", String(255), primary_key=True),
    Column("seen_at", Float, nullable=False),
)

# That an erasure happened, and when, never whom it was about: no shop, id or identifier.
privacy_audit = Table(
    "privacy_audit",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("action", String(32), nullable=False),  # the topic, or "forget"
    Column("items_dropped", Integer, nullable=False),
    Column("rows_erased", Integer, nullable=False),
    Column("deletion_jobs", Integer, nullable=False),
    Column("at", Float, nullable=False),
)
