"""Scenario 2, drain: a backlog against the simulator's real limits, with bulk on and off."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, select

from bench import backlog, databases, report
from bench.report import Row
from bench.stack import klaviyo_and_shoprelay, sim_get
from shoprelay.store.database import Store
from shoprelay.store.schema import outbox

KINDS = ("event", "profile")
FIRST_DELIVERY_POLL_SECONDS = 0.5
# Klaviyo's ceilings per minute, from the spec's steady limits; bulk jobs carry at most
# 1,000 items each (events by Klaviyo's rule, profiles by our lane's claim size).
CEILING_PER_MINUTE = {
    ("event", True): 150 * 1_000,
    ("event", False): 3_500,
    ("profile", True): 150 * 1_000,
    ("profile", False): 750,
}


@dataclass(frozen=True)
class DrainSize:
    """Backlog and timing: each kind measured over `window` seconds from its first delivery."""

    events: int = 200_000
    profiles: int = 40_000
    # Longest wait for a first delivery (start-up, the first claim) before the window.
    warmup: float = 5.0
    window: float = 60.0


async def _read(url: str, *queries: Any) -> list[list[Any]]:
    """The rows of each query, read through one connection."""
    store = await Store.open(url, migrate=False)
    try:
        async with store.read() as conn:
            return [list((await conn.execute(query)).all()) for query in queries]
    finally:
        await store.close()


async def first_deliveries(url: str) -> dict[str, float]:
    """Per kind, when its first item was delivered."""
    query = select(outbox.c.kind, func.min(outbox.c.delivered_at)).group_by(outbox.c.kind)
    (rows,) = await _read(url, query)
    return {kind: first for kind, first in rows if first is not None}


async def delivered(url: str, window: float) -> dict[str, dict[str, Any]]:
    """Per kind: items delivered in the `window` seconds from its first delivery, and what is
    still not delivered.

    Klaviyo's steady window slides, so with a window of 60 s (the default) no window can hold
    more than the ceiling allows: the burst at the start cannot flatter the rate, and a window
    that starts just after that burst does not understate it. A shorter window can.
    """
    firsts = await first_deliveries(url)

    def counts(kind: str) -> Any:
        # A kind never delivered has no window: from 0, the epoch, it counts nothing.
        first = firsts.get(kind, 0.0)
        in_window = and_(outbox.c.delivered_at >= first, outbox.c.delivered_at < first + window)
        return select(
            func.count().filter(in_window),
            func.count().filter(outbox.c.delivered_at.is_(None)),
        ).where(outbox.c.kind == kind)

    kinds = ("event", "profile")
    results = await _read(url, *(counts(kind) for kind in kinds))
    return {
        kind: {"in_window": rows[0][0], "left": rows[0][1]}
        for kind, rows in zip(kinds, results, strict=True)
    }


async def measure(url: str, bulk: bool, size: DrainSize, logs: Path) -> list[Row]:
    """Start delivery over the backlog, let the window pass, then count what was delivered."""
    with klaviyo_and_shoprelay(url, logs, bulk=bulk) as (sim, server):
        started = time.time()
        cpu_before = server.cpu_seconds()
        firsts = await first_deliveries(url)
        while len(firsts) < len(KINDS) and time.time() < started + size.warmup:
            await asyncio.sleep(FIRST_DELIVERY_POLL_SECONDS)
            firsts = await first_deliveries(url)
        # Each kind gets its whole window from its own first delivery.
        latest = max(firsts.values(), default=started + size.warmup)
        await asyncio.sleep(max(0.0, latest + size.window - time.time()))
        stats = await asyncio.to_thread(sim_get, sim, "/_sim/stats")
        cpu = server.cpu_seconds() - cpu_before
        elapsed = time.time() - started
        rss = server.peak_rss_mib()
        counts = await delivered(url, size.window)
    run = {
        "throttled_429": stats["throttled"],
        "server_cpu_pct": round(100 * cpu / elapsed),
        "peak_rss_mib": round(rss, 1),
    }
    return [_row(kind, bulk, counts.get(kind, {}), size) | run for kind in KINDS]


def _row(kind: str, bulk: bool, count: dict[str, int], size: DrainSize) -> Row:
    per_minute = count.get("in_window", 0) * 60 / size.window
    ceiling = CEILING_PER_MINUTE[(kind, bulk)]
    return {
        "run": "bulk" if bulk else "single",
        "kind": kind,
        "per_min": round(per_minute),
        "ceiling_per_min": ceiling,
        "pct_of_ceiling": round(100 * per_minute / ceiling, 1),
        "backlog_left": count.get("left", 0),
    }


async def drain_copy(
    backend: str, template: str, bulk: bool, size: DrainSize, work: Path
) -> list[Row]:
    """Drain a copy of the backlog in `template`, with bulk on or off."""
    logs = work / f"{backend}-{'bulk' if bulk else 'single'}"
    logs.mkdir(exist_ok=True)
    async with databases.fresh(backend, work, template=databases.database_name(template)) as url:
        rows = await measure(url, bulk, size, logs)
    return [row | {"backend": backend} for row in rows]


async def all_backends(backends: Sequence[str], size: DrainSize, work: Path) -> list[Row]:
    """Per backend: fill one backlog, then drain a copy with bulk on and another with bulk off.

    One at a time: run side by side, the single-request runs shared the cores and PostgreSQL's
    fell to 79-92 % of its ceiling.
    """
    rows: list[Row] = []
    for backend in backends:
        async with databases.fresh(backend, work) as template:
            seconds = await backlog.fill(template, size.events, size.profiles)
            report.console.print(f"  {backend}: backlog enqueued in {seconds:.1f} s")
            for bulk in (True, False):
                rows += await drain_copy(backend, template, bulk, size, work)
    return rows


def with_ratios(rows: list[Row]) -> list[Row]:
    """Add bulk ÷ single per backend and kind to the bulk rows."""
    single = {(r["backend"], r["kind"]): r["per_min"] for r in rows if r["run"] == "single"}
    for row in rows:
        if row["run"] == "bulk":
            row["bulk_vs_single"] = report.ratio(
                row["per_min"], single[(row["backend"], row["kind"])]
            )
    return rows


async def run(backends: Sequence[str], size: DrainSize, work: Path) -> list[Row]:
    """The scenario on each backend."""
    rows = with_ratios(await all_backends(backends, size, work))
    notes = [
        f"rate: items delivered in the {size.window:.0f} s from each kind's first delivery "
        "(the outbox's delivered_at)",
        "ceilings: bulk 150 jobs/min x 1,000; single events 3,500/min; profiles 750/min",
        "backlog_left 0: the kind ran out inside the window, so its rate is a lower bound",
        "throttled_429: 429s the simulator sent (it enforces Klaviyo's limits)",
    ]
    report.show("Drain: a backlog against Klaviyo's limits", rows, notes)
    report.save("drain", asdict(size) | {"backends": list(backends)}, rows, notes)
    return rows
