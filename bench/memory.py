"""Memory under a backlog: peak RSS delivering from a million queued items vs a small backlog."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import backlog, databases, report
from bench.report import Row
from bench.stack import klaviyo_and_shoprelay, sim_get


@dataclass(frozen=True)
class MemorySize:
    """Two backlogs whose peak RSS is compared, and how long delivery runs on each."""

    large: int = 1_000_000
    small: int = 50_000
    seconds: float = 20.0


async def peak_rss(backend: str, events: int, seconds: float, work: Path) -> Row:
    """Fill a backlog of `events`, deliver from it for `seconds`, and read the peak RSS."""
    async with databases.fresh(backend, work) as url:
        fill_seconds = await backlog.fill(url, events, 0)
        with klaviyo_and_shoprelay(url, work) as (sim, server):
            await asyncio.sleep(seconds)
            rss = server.peak_rss_mib()
            stats = await asyncio.to_thread(sim_get, sim, "/_sim/stats")
    return {
        "backend": backend,
        "backlog": events,
        "fill_s": round(fill_seconds, 1),
        "peak_rss_mib": round(rss, 1),
        "events_delivered": stats["events_accepted"],
    }


async def run(backends: Sequence[str], size: MemorySize, work: Path) -> list[Row]:
    """The small backlog first, then the large one; the ratio shows whether memory grows."""
    rows = []
    for backend in backends:
        small = await peak_rss(backend, size.small, size.seconds, work)
        large = await peak_rss(backend, size.large, size.seconds, work)
        large["vs_small"] = report.ratio(large["peak_rss_mib"], small["peak_rss_mib"])
        rows += [small, large]
    notes = [
        f"delivery runs {size.seconds:.0f} s on each backlog against the simulator's real limits",
        "vs_small: peak RSS of the large backlog relative to the small one, same run (1.0 = flat)",
        "events_delivered: in those seconds; the same for both backlogs if a claim's cost does not"
        " grow with the backlog",
    ]
    report.show("Memory: peak RSS while delivering from a backlog", rows, notes)
    report.save("memory", asdict(size) | {"backends": list(backends)}, rows, notes)
    return rows
