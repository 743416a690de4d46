"""`python -m bench [scenario ...]`: run the benchmarks; `make bench` runs them all."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import uvloop

from bench import databases, drain, endtoend, ingest, memory, paths, shipstation, shopify

# The order they run in: the priority.
SCENARIOS = ("ingest", "endtoend", "drain", "shipstation", "shopify")
# Run by name: filling a million-item backlog takes minutes (`python -m bench memory`), and the
# hot paths are a tool for changes (`python -m bench paths`), not the figures.
EXTRA_SCENARIOS = ("memory", "paths")


def parse() -> argparse.Namespace:
    """The command line: scenarios, backends and sizes."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "scenarios", nargs="*", help=f"any of {', '.join(SCENARIOS)} (default: all)"
    )
    parser.add_argument("--backend", choices=[*databases.BACKENDS, "both"], default="both")
    parser.add_argument("-n", "--webhooks", type=int, default=5_000, help="ingest: measured")
    parser.add_argument("-c", "--concurrency", type=int, default=64, help="ingest: connections")
    parser.add_argument("--warmup", type=int, default=500, help="ingest: unmeasured first")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="ingest: serve --workers N each"
    )
    parser.add_argument("--rate", type=float, default=10.0, help="endtoend: webhooks/s")
    parser.add_argument("--seconds", type=float, default=12.0, help="endtoend: how long")
    parser.add_argument("--events", type=int, default=200_000, help="drain: backlog events")
    parser.add_argument("--profiles", type=int, default=40_000, help="drain: backlog profiles")
    parser.add_argument("--window", type=float, default=60.0, help="drain: measured seconds")
    parser.add_argument("--backlog", type=int, default=1_000_000, help="memory: large backlog")
    parser.add_argument(
        "--orders",
        type=int,
        nargs=2,
        default=[2_000, 10_000],
        metavar=("SMALL", "LARGE"),
        help="shopify: orders in the shop for the two backfills (the issue's size: 5000 20000)",
    )
    args = parser.parse_args()
    # argparse cannot combine nargs="*" with choices when none are given, so check here.
    if unknown := set(args.scenarios) - set(SCENARIOS) - set(EXTRA_SCENARIOS):
        parser.error(f"unknown scenario: {', '.join(sorted(unknown))}")
    return args


async def main(args: argparse.Namespace) -> None:
    """Run the chosen scenarios (all by default) in a scratch folder."""
    scenarios = args.scenarios or SCENARIOS
    backends = databases.BACKENDS if args.backend == "both" else (args.backend,)
    with tempfile.TemporaryDirectory(prefix="shoprelay-bench-") as scratch:
        work = Path(scratch)
        if "ingest" in scenarios:
            workers = tuple(args.workers)
            load = ingest.IngestSize(args.webhooks, args.concurrency, args.warmup, workers)
            await ingest.run(backends, load, work)
        if "endtoend" in scenarios:
            await endtoend.run(backends, endtoend.EndToEndSize(args.rate, args.seconds), work)
        if "drain" in scenarios:
            backlog = drain.DrainSize(args.events, args.profiles, window=args.window)
            await drain.run(backends, backlog, work)
        if "shipstation" in scenarios:
            await shipstation.run(shipstation.ShipStationSize(), work)
        if "shopify" in scenarios:
            await shopify.run(backends, shopify.ShopifySize(orders=tuple(args.orders)), work)
        if "memory" in scenarios:
            await memory.run(backends, memory.MemorySize(large=args.backlog), work)
        if "paths" in scenarios:
            await paths.run(paths.PathsSize(), work)


if __name__ == "__main__":
    uvloop.run(main(parse()))
