"""Commit webhook deliveries in groups: one transaction, a few statements, for many requests."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import orjson
import structlog
from prometheus_client import Counter
from sqlalchemy import Connection

from shoprelay.store.database import Store
from shoprelay.store.dialects import Dialect
from shoprelay.store.plans import Plan, ResourceRef
from shoprelay.store.states import state_keys, states_query
from shoprelay.store.webhooks import ResourceVersion, WebhookWrite, WebhookWriter

log = structlog.get_logger("shoprelay.ingest")


@dataclass(frozen=True)
class WebhookDelivery:
    """One verified webhook delivery and what it should change."""

    source: str
    shop: str
    webhook_id: str
    topic: str
    plan: Plan
    raw_body: bytes


@dataclass(frozen=True)
class WebhookOutcome:
    """What became of a delivery: its receipt's outcome, and what it queued."""

    outcome: str  # processed | duplicate | stale | ignored | unprocessable
    items: int = 0
    reason: str | None = None
    # The delivery lanes (account, kind) its items joined: only those need waking.
    lanes: frozenset[tuple[str, str]] = frozenset()


# A submitted delivery, and the future its request awaits.
Waiting: TypeAlias = tuple[WebhookDelivery, "asyncio.Future[WebhookOutcome]"]


def _load_versions(
    conn: Connection, dialect: Dialect, source: str, shop: str, refs: Sequence[ResourceRef]
) -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    ids_by_kind: dict[str, set[str]] = {}
    for ref in refs:
        ids_by_kind.setdefault(ref.kind, set()).add(ref.id)
    known = {}
    for kind, ids in ids_by_kind.items():
        for row in conn.execute(states_query(dialect), state_keys(source, shop, kind, sorted(ids))):
            known[(row.kind, row.resource_id)] = (
                row.version,
                orjson.loads(row.state) if row.state else {},
            )
    return known


def _decide(
    delivery: WebhookDelivery, known: dict[tuple[str, str], tuple[str, dict[str, Any]]]
) -> Plan:
    """Finish plans that need stored state, and turn out-of-date payloads into stale ones."""
    plan = delivery.plan
    if plan.finish is not None and plan.needs is not None:
        found = known.get((plan.needs.kind, plan.needs.id))
        plan = plan.finish(found[1] if found else None)
    ref = plan.resource
    if plan.outcome != "processed" or ref is None:
        return plan
    stored = known.get((ref.kind, ref.id))
    if stored is not None and ref.version < stored[0]:
        return Plan("stale", resource=ref, reason="older than the version already applied")
    known[(ref.kind, ref.id)] = (ref.version, plan.state or (stored[1] if stored else {}))
    return plan


POSTGRES_WRITERS = 2
# Deliveries waiting for a writer, beyond the groups being committed. A few full groups keep
# the writers busy; more would only make each webhook wait longer, and hold its body meanwhile.
MAX_WAITING = 1024

# Labelled, so its value is made on first use, after `serve` has switched metrics to files.
WRITER_ERRORS = Counter(
    "shoprelay_ingest_writer_errors_total",
    "Unexpected errors the ingest writer survived, by step",
    ["step"],
)


class IngestOverloaded(Exception):
    """Too many deliveries wait for a commit already: this one is refused, not queued."""


class IngestStopped(Exception):
    """No writer runs to commit the delivery."""


class IngestWriter:
    """Collects deliveries from concurrent requests and commits them together."""

    def __init__(
        self,
        store: Store,
        *,
        max_group: int = 256,
        max_waiting: int = MAX_WAITING,
        clock: Callable[[], float] = time.time,
        on_commit: Callable[[frozenset[tuple[str, str]]], None] | None = None,
    ) -> None:
        self._store = store
        self._max_group = max_group
        self._clock = clock
        self._on_commit = on_commit
        self._queue: asyncio.Queue[Waiting] = asyncio.Queue(max_waiting)
        # SQLite has one writer. PostgreSQL commits two groups side by side: one gathers while
        # the other commits. More writers split a burst into smaller groups, each costing a
        # commit, and so acknowledge fewer webhooks a second, not more.
        self._writers = 1 if store.dialect.single_writer else POSTGRES_WRITERS
        self._webhooks = WebhookWriter(store)
        self._tasks: list[asyncio.Task[None]] = []
        self._running = 0

    @property
    def store(self) -> Store:
        return self._store

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run()) for _ in range(self._writers)]
        self._running = len(self._tasks)
        for task in self._tasks:
            task.add_done_callback(self._writer_ended)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def submit(self, delivery: WebhookDelivery) -> WebhookOutcome:
        """Return once the delivery and everything it produces are committed.

        Raises IngestOverloaded at once when too many wait already, and IngestStopped when no
        writer runs: either way nothing is stored.
        """
        if not self._running:
            raise IngestStopped("the ingest writer is not running")
        future: asyncio.Future[WebhookOutcome] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait((delivery, future))
        except asyncio.QueueFull:
            raise IngestOverloaded(f"{self._queue.maxsize} deliveries wait already") from None
        return await future

    async def _run(self) -> None:
        while True:
            group = [await self._queue.get()]
            while len(group) < self._max_group and not self._queue.empty():
                group.append(self._queue.get_nowait())
            try:
                await self._commit_group(group)
            except asyncio.CancelledError:
                _fail(group, IngestStopped("the ingest writer stopped"))
                raise
            except Exception as exc:
                # Whatever it was, this writer goes on: if it stopped, every later webhook
                # would wait for a commit that never comes.
                WRITER_ERRORS.labels("group").inc()
                log.error("ingest.writer_error", deliveries=len(group), exc_info=True)
                _fail(group, exc)

    async def _commit_group(self, group: list[Waiting]) -> None:
        try:
            outcomes = await self.commit([delivery for delivery, _ in group])
        except Exception:
            log.warning("ingest.group_failed", deliveries=len(group), exc_info=True)
            await self._commit_one_by_one(group)
            return
        self._settle(group, outcomes)

    def _writer_ended(self, task: asyncio.Task[None]) -> None:
        """Once no writer runs, fail what waits and refuse the rest, rather than let them
        wait for ever."""
        self._running -= 1
        if not task.cancelled() and task.exception() is not None:
            WRITER_ERRORS.labels("stopped").inc()
            log.error("ingest.writer_stopped", exc_info=task.exception())
        if self._running:
            return
        stopped = IngestStopped("the ingest writer stopped")
        while not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(stopped)

    async def _commit_one_by_one(self, group: list[Waiting]) -> None:
        """After a failed group, commit each delivery alone: only a bad one answers 500."""
        for delivery, future in group:
            try:
                outcomes = await self.commit([delivery])
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
                continue
            self._settle([(delivery, future)], outcomes)

    def _settle(self, group: list[Waiting], outcomes: list[WebhookOutcome]) -> None:
        for (_, future), outcome in zip(group, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)
        lanes = frozenset().union(*(outcome.lanes for outcome in outcomes))
        if lanes and self._on_commit is not None:
            try:
                self._on_commit(lanes)
            except Exception:
                # The deliveries are committed and answered; delivery still finds the items
                # when it next looks, only later.
                WRITER_ERRORS.labels("wake").inc()
                log.error("ingest.wake_failed", exc_info=True)

    async def commit(self, deliveries: Sequence[WebhookDelivery]) -> list[WebhookOutcome]:
        """Apply a group of deliveries atomically."""
        now = self._clock()

        def work(conn: Connection) -> list[WebhookOutcome]:
            return self._commit(conn, deliveries, now)

        if self._webhooks.one_statement:
            # Reads, then the one atomic write: no transaction needed around them.
            return await self._store.run_autocommit(work)
        return await self._store.run_in_transaction(work, urgent=True)

    def _commit(
        self, conn: Connection, deliveries: Sequence[WebhookDelivery], now: float
    ) -> list[WebhookOutcome]:
        plans = self._decide_all(conn, deliveries)
        writes = [_write(delivery, plan) for delivery, plan in zip(deliveries, plans, strict=True)]
        fresh = self._webhooks.write(conn, writes, now)
        return [
            _outcome(plan) if new else WebhookOutcome("duplicate")
            for plan, new in zip(plans, fresh, strict=True)
        ]

    def _decide_all(self, conn: Connection, deliveries: Sequence[WebhookDelivery]) -> list[Plan]:
        by_scope: dict[tuple[str, str], list[WebhookDelivery]] = {}
        for delivery in deliveries:
            by_scope.setdefault((delivery.source, delivery.shop), []).append(delivery)
        known = {}
        for (source, shop), group in by_scope.items():
            refs = [ref for d in group for ref in (d.plan.resource, d.plan.needs) if ref]
            known[source, shop] = _load_versions(conn, self._store.dialect, source, shop, refs)
        return [_decide(d, known[d.source, d.shop]) for d in deliveries]


def _fail(group: list[Waiting], error: BaseException) -> None:
    """Answer every delivery of the group not answered yet with the error (a 503)."""
    for _, future in group:
        if not future.done():
            future.set_exception(error)


def _outcome(plan: Plan) -> WebhookOutcome:
    lanes = frozenset((item.account, item.kind) for item in plan.items)
    return WebhookOutcome(plan.outcome, len(plan.items), plan.reason, lanes)


def _write(delivery: WebhookDelivery, plan: Plan) -> WebhookWrite:
    """What the delivery writes if it is new: a processed one its items and resource version,
    an unprocessable one its raw bytes and the reason."""
    processed = plan.outcome == "processed"
    ref = plan.resource if processed else None
    resource = None
    if ref is not None:
        state = orjson.dumps(plan.state).decode() if plan.state is not None else None
        resource = ResourceVersion(ref.kind, ref.id, ref.version, state)
    letter = None
    if plan.outcome == "unprocessable":
        letter = (plan.reason or "unprocessable", delivery.raw_body)
    return WebhookWrite(
        shop=delivery.shop,
        webhook_id=delivery.webhook_id,
        topic=delivery.topic,
        outcome=plan.outcome,
        source=delivery.source,
        items=plan.items if processed else (),
        resource=resource,
        letter=letter,
        links=delivery.plan.links,
    )
