"""A receiving process's memory follows its limit of pending bytes, not the webhooks sent to it."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
from tests.support.harness import WEBHOOK_SECRET, free_port, wait_until_healthy

from shoprelay.sim import shopify as sender

SERVER = Path(__file__).parents[1] / "support" / "webhook_server.py"
SHOP = "flood.myshopify.com"
MIB = 1024 * 1024
PENDING_LIMIT = 8 * MIB
BODY_BYTES = 1_500_000
SENDERS = 200
# Each sender takes about this long over its body, so that all of them are under way at once.
PIECES, PIECE_SECONDS = 15, 0.05
# Each admitted body is held a few times over while it is read, joined, verified and parsed,
# and the allocator keeps some of what was freed: a small multiple of the limit, plus room
# for the connections and the interpreter's own garbage. Without the limit every body is
# read at once: SENDERS x BODY_BYTES, 286 MiB, held at least once.
GROWTH_BOUND = 4 * PENDING_LIMIT + 24 * MIB


@dataclass
class Server:
    url: str
    pid: int
    database: Path

    def kib(self, field: str) -> int:
        """One `kB` field of the process's /proc status: VmRSS now, VmHWM its peak."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
        raise AssertionError(f"{field} not in /proc/{self.pid}/status")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """One receiver, as `serve` runs it, in a process of its own, on SQLite."""
    if not Path("/proc/self/status").exists():
        pytest.skip("reads the server's memory from /proc")
    port, database = free_port(), tmp_path / "flood.db"
    environ = os.environ | {
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "SHOPIFY_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "KLAVIYO_PRIVATE_API_KEY": "pk_flood_test",
        "KLAVIYO_API_URL": "http://127.0.0.1:9",
        "SHOPIFY_MAX_PENDING_BYTES": str(PENDING_LIMIT),
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, str(SERVER), str(port)],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(process, url)
        yield Server(url, process.pid, database)
    finally:
        process.terminate()
        process.wait(timeout=30)


def large_webhook() -> tuple[bytes, dict[str, str]]:
    """A signed products/update of BODY_BYTES: acknowledged and receipted, nothing to send."""
    product = {"id": 1, "title": "Flood", "body_html": ""}
    padding = BODY_BYTES - len(sender.encode(product))
    body = sender.encode(product | {"body_html": "x" * padding})
    return body, sender.headers("products/update", body, WEBHOOK_SECRET.encode(), SHOP)


def overloaded_count(metrics: str) -> float:
    for line in metrics.splitlines():
        if line.startswith('shoprelay_webhooks_total{outcome="overloaded"}'):
            return float(line.split()[-1])
    return 0.0


def receipts(database: Path) -> set[str]:
    with sqlite3.connect(database) as conn:
        return {row[0] for row in conn.execute("SELECT webhook_id FROM webhook_receipts")}


async def test_a_flood_of_large_webhooks_stays_within_the_pending_bytes(server: Server) -> None:
    """SENDERS signed bodies of BODY_BYTES sent side by side: the process grows by a bounded
    multiple of its limit of pending bytes; what does not fit is refused with 503 (counted,
    with Retry-After), and every webhook answered 200 is stored."""
    body, headers = large_webhook()
    limits = httpx.Limits(max_connections=SENDERS, max_keepalive_connections=SENDERS)
    async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as client:

        async def slowly() -> AsyncIterator[bytes]:
            size = -(-len(body) // PIECES)
            for start in range(0, len(body), size):
                yield body[start : start + size]
                await asyncio.sleep(PIECE_SECONDS)

        async def post(webhook_id: str) -> httpx.Response:
            sent = headers | {"X-Shopify-Webhook-Id": webhook_id, "Content-Length": str(len(body))}
            return await client.post(sender.WEBHOOK_PATH, content=slowly(), headers=sent)

        # Warm: allocations made once (connections, statements, caches) are not the flood's.
        for n in range(3):
            assert (await post(f"warm-{n}")).status_code == 200
        resting_kib = server.kib("VmRSS")
        answers = await asyncio.gather(*(post(f"flood-{n}") for n in range(SENDERS)))
        peak_kib = server.kib("VmHWM")
        metrics = (await client.get("/metrics")).text

    by_id = {f"flood-{n}": answer for n, answer in enumerate(answers)}
    taken = {webhook_id for webhook_id, answer in by_id.items() if answer.status_code == 200}
    refused = {webhook_id for webhook_id, answer in by_id.items() if answer.status_code == 503}
    assert taken | refused == set(by_id), {answer.status_code for answer in answers}
    assert taken, "the pending bytes take some of the flood"
    assert refused, "and refuses the rest"
    for webhook_id in refused:
        assert orjson.loads(by_id[webhook_id].content)["outcome"] == "overloaded"
        assert by_id[webhook_id].headers["retry-after"] == "5"
    assert overloaded_count(metrics) == len(refused)
    stored = receipts(server.database)
    assert taken <= stored
    assert not refused & stored
    growth = (peak_kib - resting_kib) * 1024
    assert growth < GROWTH_BOUND, (
        f"grew {growth / MIB:.0f} MiB for {PENDING_LIMIT / MIB:.0f} MiB pending"
    )
