"""Scenario 1, ingest: signed order webhooks at concurrency C, against a bare endpoint too."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import databases, report
from bench.load import closed_loop
from bench.processes import Server, running, steal_ticks
from bench.report import Row
from bench.stack import klaviyo_and_shoprelay, sim_post
from bench.webhooks import order_webhooks

TARGET_PER_SECOND = 1500
TARGET_P99_MS = 100.0
LOAD_TIMEOUT_SECONDS = 300.0


@dataclass(frozen=True)
class IngestSize:
    """How much load: measured webhooks, connections, and unmeasured warm-up webhooks."""

    webhooks: int = 5_000
    concurrency: int = 64
    warmup: int = 500
    workers: tuple[int, ...] = (1, 2)
    # Worker counts also run with delivery paused: the ingest path alone, without the
    # delivery and the simulator that share this machine's cores in the other rows.
    paused: tuple[int, ...] = (2,)


async def measure(
    server: Server, requests: Sequence[bytes], size: IngestSize, sim: Server | None = None
) -> Row:
    """Warm up, then send the measured requests; throughput, latency and who used the CPU."""
    measured = requests[size.warmup :]
    async with asyncio.timeout(LOAD_TIMEOUT_SECONDS):
        await closed_loop(server.port, requests[: size.warmup], size.concurrency)
        server_cpu, client_cpu = server.cpu_seconds(), time.process_time()
        sim_cpu = sim.cpu_seconds() if sim else 0.0
        steal_before, ticks_before = steal_ticks()
        result = await closed_loop(server.port, measured, size.concurrency)
    steal_after, ticks_after = steal_ticks()
    stolen, ticks = steal_after - steal_before, ticks_after - ticks_before
    server_cpu, client_cpu = server.cpu_seconds() - server_cpu, time.process_time() - client_cpu
    sim_cpu = sim.cpu_seconds() - sim_cpu if sim else 0.0
    cpu_per_webhook = (server_cpu + client_cpu + sim_cpu) / len(measured)
    return {
        "webhooks": len(measured),
        "concurrency": size.concurrency,
        "acked_per_s": round(len(measured) / result.elapsed, 1),
        **report.latency_ms(result.latencies),
        "non_200": sum(count for status, count in result.statuses.items() if status != 200),
        "server_cpu_pct": round(100 * server_cpu / result.elapsed),
        "client_cpu_pct": round(100 * client_cpu / result.elapsed),
        "sim_cpu_pct": round(100 * sim_cpu / result.elapsed),
        "steal_pct": round(100 * stolen / ticks, 1) if ticks else 0.0,
        "cpu_us_per_webhook": round(1e6 * cpu_per_webhook),
        "cpu_cap_per_s": round((os.cpu_count() or 1) / cpu_per_webhook),
        "peak_rss_mib": round(server.peak_rss_mib(), 1),
    }


async def bare(requests: Sequence[bytes], size: IngestSize, logs: Path) -> Row:
    """The same load against the bare endpoint on the same server stack."""
    with running("bare", ["bench.bare"], {}, logs) as server:
        return {"run": "bare endpoint", "backend": "-"} | await measure(server, requests, size)


async def shoprelay(
    backend: str,
    requests: Sequence[bytes],
    size: IngestSize,
    work: Path,
    workers: int,
    *,
    paused: bool = False,
) -> Row:
    """The load against `shoprelay serve --workers N` on a fresh database of `backend`."""
    async with databases.fresh(backend, work) as url:
        with klaviyo_and_shoprelay(url, work, workers=workers) as (sim, server):
            run = f"shoprelay ({workers} worker{'s' if workers > 1 else ''})"
            if paused:
                # The simulator refuses the key: delivery pauses at its first request.
                await asyncio.to_thread(sim_post, sim, "/_sim/faults", {"revoked": True})
                run += ", delivery paused"
            return {"run": run, "backend": backend} | await measure(server, requests, size, sim)


def verdict(row: Row) -> str:
    """Whether a shoprelay row meets the issue's targets."""
    fast = row["acked_per_s"] >= TARGET_PER_SECOND
    prompt = row["p99_ms"] < TARGET_P99_MS
    return "met" if fast and prompt and not row["non_200"] else "NOT met"


async def run(backends: Sequence[str], size: IngestSize, work: Path) -> list[Row]:
    """Bare endpoint first, then shoprelay on each backend; ratios against the bare figure."""
    requests = order_webhooks(size.warmup + size.webhooks).requests
    baseline = await bare(requests, size, work)
    rows = [baseline]
    runs = [(workers, False) for workers in size.workers]
    runs += [(workers, True) for workers in size.paused]
    for backend in backends:
        for workers, paused in runs:
            row = await shoprelay(backend, requests, size, work, workers, paused=paused)
            row["vs_bare"] = report.ratio(row["acked_per_s"], baseline["acked_per_s"])
            row["target"] = verdict(row)
            rows.append(row)
    notes = [
        f"target: >= {TARGET_PER_SECOND:,} signed order webhooks/s, p99 < {TARGET_P99_MS:.0f} ms",
        "vs_bare: acknowledged/s relative to the bare endpoint, same run, same load",
        "cpu_pct: 100 = one core; client, server and Klaviyo simulator share the machine's cores",
        "steal_pct: of the machine's CPU time meanwhile, the share its hypervisor gave to others",
        "cpu_us_per_webhook: CPU of all three per acknowledged webhook (PostgreSQL's own not "
        "counted); cpu_cap_per_s: the rate at which that would fill every core",
        "shoprelay runs its dispatcher meanwhile, delivering to the simulator (also on this host)",
        "delivery paused: the simulator refuses the key, so only webhooks use the machine",
        "workers: `serve --workers N` receivers share the socket; with N >= 2 one more delivers",
    ]
    report.show("Ingest: signed orders/create webhooks", rows, notes)
    report.save("ingest", asdict(size) | {"backends": list(backends)}, rows, notes)
    return rows
