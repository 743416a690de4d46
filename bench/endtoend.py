"""Scenario 3, end to end: webhooks at a steady rate, from acknowledgement to Klaviyo."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from bench import databases, report
from bench.load import LoadResult, paced
from bench.processes import Server
from bench.report import Row
from bench.stack import klaviyo_and_shoprelay, sim_get
from bench.webhooks import OrderWebhooks, order_webhooks

SETTLE_TIMEOUT_SECONDS = 60.0
POLL_SECONDS = 0.5
PLACED_ORDER = "/_sim/events?metric=Placed%20Order"


@dataclass(frozen=True)
class EndToEndSize:
    """Webhooks per second and for how long; ~3.5 events per order, single limit 58/s."""

    rate: float = 10.0
    seconds: float = 12.0
    # Unmeasured first: a fresh process's first requests compile statements and open
    # connections, which would otherwise be the p99 of a short run.
    warmup_seconds: float = 2.0
    # `serve` always delivers from a process of its own, woken by its receivers through a
    # pipe; more receivers matter for ingest, which scenario 1 measures with 1 and 2.
    workers: tuple[int, ...] = (1,)
    # Then a stream at a third of Klaviyo's bulk ceiling (2,500 events/s), on the first
    # backend: its batches must not spend the minute's 150 bulk requests in its first seconds.
    stream_rate: float = 250.0
    stream_seconds: float = 20.0


async def accepted_at(sim: Server, wanted: set[str]) -> dict[str, float]:
    """Klaviyo's acceptance time per Placed Order unique_id, waiting until all have arrived."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
    while True:
        events = (await asyncio.to_thread(sim_get, sim, PLACED_ORDER))["data"]
        found = {
            event["unique_id"]: datetime.fromisoformat(event["received_at"]).timestamp()
            for event in events
            if event["unique_id"] in wanted
        }
        if len(found) == len(wanted) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(POLL_SECONDS)


def summarise(webhooks: OrderWebhooks, sent: LoadResult, accepted: dict[str, float]) -> Row:
    """Acknowledgement latency, and acknowledgement-to-acceptance latency per order."""
    delays = [
        accepted[unique_id] - sent.acked_at[index]
        for index, unique_id in enumerate(webhooks.placed_order_ids)
        if unique_id in accepted and index in sent.acked_at
    ]
    ack = report.latency_ms(sent.latencies)
    to_klaviyo = report.latency_ms(delays)
    return {
        "webhooks": len(webhooks.requests),
        "ack_p50_ms": ack["p50_ms"],
        "ack_p99_ms": ack["p99_ms"],
        "delivered": len(delays),
        "missing": len(webhooks.requests) - len(delays),
        "e2e_p50_ms": to_klaviyo["p50_ms"],
        "e2e_p99_ms": to_klaviyo["p99_ms"],
        "e2e_max_ms": to_klaviyo["max_ms"],
    }


async def one(backend: str, size: EndToEndSize, work: Path, workers: int) -> Row:
    """Send at the steady rate to a fresh stack, then wait for Klaviyo to have every order."""
    warmup = round(size.rate * size.warmup_seconds)
    every = order_webhooks(warmup + round(size.rate * size.seconds), seed=11)
    webhooks = OrderWebhooks(every.requests[warmup:], every.placed_order_ids[warmup:])
    async with databases.fresh(backend, work) as url:
        with klaviyo_and_shoprelay(url, work, workers=workers) as (sim, server):
            async with asyncio.timeout(size.seconds * 2 + 60):
                await paced(server.port, every.requests[:warmup], size.rate)
                await accepted_at(sim, set(every.placed_order_ids[:warmup]))
                sent = await paced(server.port, webhooks.requests, size.rate)
            accepted = await accepted_at(sim, set(webhooks.placed_order_ids))
    row = {"backend": backend, "workers": workers, "rate_per_s": size.rate}
    return row | summarise(webhooks, sent, accepted)


async def run(backends: Sequence[str], size: EndToEndSize, work: Path) -> list[Row]:
    """The scenario on each backend."""
    rows = [
        await one(backend, size, work, workers) for backend in backends for workers in size.workers
    ]
    stream = dataclasses.replace(size, rate=size.stream_rate, seconds=size.stream_seconds)
    rows.append(await one(backends[0], stream, work, workers=1))
    notes = [
        "e2e: from the webhook's 200 to the simulator's received_at of its Placed Order event",
        "orders/create at a steady rate (open loop); each order is ~3.5 Klaviyo events",
        f"after {size.warmup_seconds:g} s of unmeasured warm-up at the same rate",
        "workers: `serve --workers N`; one more process delivers, woken through a pipe",
        f"last row: {size.stream_rate:g} orders/s for {size.stream_seconds:g} s, ~"
        f"{size.stream_rate * 3.55 / 2500:.0%} of the bulk ceiling; a delivery that falls behind "
        "shows in e2e_p99_ms",
    ]
    report.show("End to end: acknowledgement to Klaviyo's acceptance", rows, notes)
    report.save("endtoend", asdict(size) | {"backends": list(backends)}, rows, notes)
    return rows
