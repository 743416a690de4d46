"""Hot paths in one process, on SQLite: what one order, one group commit and one event cost.

The HTTP scenarios show what a change does to the whole; these show where a change acts,
with far less noise. "beside a busy thread" runs the step while another thread spins in
Python, as the event loop does under load: a step that releases and retakes the GIL many
times while holding SQLite's write lock then waits for it each time.
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection

from bench import report
from bench.report import Row
from bench.webhooks import SHOP, order_webhooks
from shoprelay.delivery.requests import plan_bulk_events
from shoprelay.mapping.shopify_fields import ShopifyMetrics
from shoprelay.sim.klaviyo_rules import request_check, string_size_errors
from shoprelay.sources.shopify.receive import plan_body
from shoprelay.sources.shopify.topics import SOURCE
from shoprelay.store import outbox
from shoprelay.store.database import Store
from shoprelay.store.ingest import IngestWriter, WebhookDelivery

TOPIC = "orders/create"


@dataclass(frozen=True)
class PathsSize:
    """Orders committed (their events feed the claims), orders per group, events per claim."""

    orders: int = 5_000
    group: int = 24
    batch: int = 1_000
    rounds: int = 8


def bodies(count: int) -> list[bytes]:
    """Signed bench orders, without their HTTP heads."""
    return [request.split(b"\r\n\r\n", 1)[1] for request in order_webhooks(count).requests]


@contextlib.contextmanager
def busy_thread(on: bool) -> Iterator[None]:
    """Another thread running Python all the time, as a loaded event loop does."""
    stop = threading.Event()

    def spin() -> None:
        total = 0
        while not stop.is_set():
            for number in range(1_000):
                total += number

    thread = threading.Thread(target=spin, daemon=True)
    if on:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        if on:
            thread.join()


def mapping(orders: Sequence[bytes]) -> Row:
    """plan_body (parse and map) per order, best of five passes."""
    metrics, best = ShopifyMetrics(), float("inf")
    for _ in range(5):
        started = time.process_time()
        for body in orders:
            plan_body(TOPIC, SHOP, body, metrics)
        best = min(best, (time.process_time() - started) / len(orders))
    return {"path": "map one order (parse, plan)", "alone": round(best * 1e6, 1), "unit": "µs"}


async def timed(steps: Sequence[Callable[[], Awaitable[Any]]], busy: bool) -> float:
    """Median wall time of the steps, in milliseconds."""
    times = []
    with busy_thread(busy):
        for step in steps:
            started = time.perf_counter()
            await step()
            times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1e3, 1)


async def group_commit(store: Store, orders: Sequence[bytes], size: PathsSize) -> Row:
    """One group commit of `size.group` new orders."""
    metrics, writer = ShopifyMetrics(), IngestWriter(store)
    deliveries = [
        WebhookDelivery(
            SOURCE, SHOP, f"paths-{n}", TOPIC, plan_body(TOPIC, SHOP, body, metrics), body
        )
        for n, body in enumerate(orders)
    ]
    groups = [deliveries[i : i + size.group] for i in range(0, len(deliveries), size.group)]
    half = len(groups) // 2
    row: Row = {"path": f"group commit of {size.group} orders", "unit": "ms"}
    for name, part, busy in (("alone", groups[:half], False), ("busy", groups[half:], True)):
        row[name] = await timed([_commit(writer, group) for group in part], busy)
    return row


def _commit(writer: IngestWriter, group: list[WebhookDelivery]) -> Callable[[], Awaitable[Any]]:
    return lambda: writer.commit(group)


async def claims(store: Store, size: PathsSize) -> tuple[Row, Row]:
    """A claim of `size.batch` events: its write transaction, and the whole claim."""
    held: list[float] = []
    run_in_transaction = store.run_in_transaction

    async def measured(
        work: Callable[[Connection], Any], *, urgent: bool = False, durable: bool = True
    ) -> Any:
        started = time.perf_counter()
        try:
            return await run_in_transaction(work, urgent=urgent, durable=durable)
        finally:
            held.append(time.perf_counter() - started)

    store.run_in_transaction = measured  # type: ignore[method-assign]
    lock: Row = {"path": f"claim of {size.batch} events: write transaction", "unit": "ms"}
    whole: Row = {"path": f"claim of {size.batch} events: in all", "unit": "ms"}
    try:
        for name, busy in (("alone", False), ("busy", True)):
            held.clear()
            whole[name] = await timed([lambda: _claim(store, size)] * (size.rounds // 2), busy)
            lock[name] = round(statistics.median(held) * 1e3, 1)
    finally:
        del store.run_in_transaction
    return lock, whole


async def _claim(store: Store, size: PathsSize) -> list[outbox.Item]:
    return await outbox.claim(
        store, account="default", kind="event", limit=size.batch, owner="paths", now=2e9,
        lease_seconds=60,
    )  # fmt: skip


async def delivery(store: Store, size: PathsSize) -> list[Row]:
    """Server CPU per event delivered in bulk: claim, pack (the encoded body), record."""
    spent = dict.fromkeys(("claim", "pack and encode", "record"), 0.0)
    events = 0
    for _ in range(size.rounds):
        started = time.process_time()
        items = await _claim(store, size)
        claimed = time.process_time()
        plan_bulk_events([(item.id, item.body) for item in items])
        packed = time.process_time()
        await outbox.mark_delivered(store, items, 2e9)
        recorded = time.process_time()
        spent["claim"] += claimed - started
        spent["pack and encode"] += packed - claimed
        spent["record"] += recorded - packed
        events += len(items)
    return [
        {"path": f"deliver one event: {step}", "alone": round(cpu / events * 1e6, 1), "unit": "µs"}
        for step, cpu in spent.items()
    ]


async def simulator(store: Store, size: PathsSize) -> list[Row]:
    """What the Klaviyo simulator spends checking one full bulk body (it shares the cores)."""
    items = await _claim(store, size)
    raw = plan_bulk_events([(item.id, item.body) for item in items]).requests[0].body
    body, check = orjson.loads(raw), request_check("bulk_create_events")
    rows = []
    for name, step in (
        ("schema check", lambda: check(body)),
        ("string sizes", lambda: string_size_errors(body, raw)),
    ):
        times = []
        for _ in range(5):
            started = time.process_time()
            step()
            times.append(time.process_time() - started)
        path = f"simulator, {len(items)}-event body: {name}"
        rows.append({"path": path, "alone": round(statistics.median(times) * 1e3, 1), "unit": "ms"})
    return rows


async def run(size: PathsSize, work: Path) -> list[Row]:
    """Every path on a fresh SQLite store; busy ÷ alone in the same run."""
    orders = bodies(size.orders)
    # As `serve` does: start-up objects out of GC, young generation collected less often.
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    rows = [mapping(orders[:2_000])]
    store = await Store.open(f"sqlite+aiosqlite:///{work / 'paths.db'}")
    try:
        rows.append(await group_commit(store, orders, size))
        # The commits queued ~3.5 events an order: enough for 2 x rounds claims and one more.
        rows += await claims(store, size)
        rows += await delivery(store, size)
        rows += await simulator(store, size)
    finally:
        await store.close()
    for row in rows:
        if "busy" in row:
            row["busy_vs_alone"] = report.ratio(row["busy"], row["alone"])
    notes = [
        "busy: the same step while another thread runs Python without pause",
        "alone and busy are medians; µs rows are process CPU per order or per event",
    ]
    report.show("Hot paths (SQLite, one process)", rows, notes)
    report.save("paths", asdict(size), rows, notes)
    return rows
