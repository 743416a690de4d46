"""kill -9 of `shoprelay serve` in the middle of a webhook stream loses nothing acknowledged."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import IO, Any

import httpx
from tests.support.harness import (
    KLAVIYO_KEY,
    WEBHOOK_SECRET,
    KlaviyoSimServer,
    eventually,
    free_port,
    klaviyo_sim,
)

from shoprelay.mapping.shopify import order_to_events
from shoprelay.mapping.shopify_fields import ShopifyMetrics
from shoprelay.sim import shopify as sender
from shoprelay.sim.shopify_orders import fake_order
from shoprelay.sim.shopify_payloads import fake_customer

SHOP = "kill9-shop.myshopify.com"
_logs: dict[int, IO[bytes]] = {}
# Each webhook port's admin port, kept for a serve started again on the same port.
_admin_ports: dict[int, int] = {}


def admin_url(port: int) -> str:
    """The admin listener of the `serve_process` whose webhooks go to `port`."""
    return f"http://127.0.0.1:{_admin_ports.setdefault(port, free_port())}"


@asynccontextmanager
async def serve_process(
    database_url: str, klaviyo_url: str, port: int, workers: int = 1
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """`shoprelay serve` as its own process, as an operator runs it."""
    env = os.environ | {
        "DATABASE_URL": database_url,
        "KLAVIYO_API_URL": klaviyo_url,
        "KLAVIYO_PRIVATE_API_KEY": KLAVIYO_KEY,
        "SHOPIFY_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "DELIVERY_BACKOFF_BASE_SECONDS": "0.05",
        "DELIVERY_LEASE_SECONDS": "2",
        "LOG_LEVEL": "WARNING",
    }
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shoprelay",
            "serve",
            "--port",
            str(port),
            "--admin-port",
            admin_url(port).rsplit(":", 1)[1],
            "--workers",
            str(workers),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its workers can be killed with it, as one group
    )
    _logs[process.pid] = log
    try:
        async with httpx.AsyncClient() as client:

            async def healthy() -> bool:
                if process.poll() is not None:
                    raise AssertionError(output(process))
                with suppress(httpx.TransportError):
                    return (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
                return False

            await eventually(healthy, timeout=30, interval=0.1)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            # Off the loop: the simulator the workers are still talking to runs on it.
            with suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(process.wait, 15)
        # Workers outliving their parent would go on delivering from the next test's outbox.
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await asyncio.to_thread(process.wait)
        del _logs[process.pid]
        log.close()


@asynccontextmanager
async def two_workers(
    database_url: str,
) -> AsyncIterator[tuple[int, KlaviyoSimServer, subprocess.Popen[bytes]]]:
    """`serve --workers 2` on a free port, delivering to a fresh simulator."""
    port = free_port()
    async with (
        klaviyo_sim() as sim,
        serve_process(database_url, sim.url, port, workers=2) as server,
    ):
        yield port, sim, server


def output(process: subprocess.Popen[bytes]) -> str:
    """What a `serve_process` has printed so far."""
    log = _logs[process.pid]
    log.seek(0)
    return log.read().decode(errors="replace")


def orders(n: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(9)
    for number in range(1001, 1001 + n):
        yield fake_order(rng, fake_customer(rng), number=number)


async def post_all(
    port: int, payloads: dict[int, dict[str, Any]], failures: dict[int, str] | None = None
) -> dict[int, bool]:
    """Send order webhooks (by index, which is also the delivery id) and note which got 200."""
    acked: dict[int, bool] = {}
    gate = asyncio.Semaphore(16)
    failures = {} if failures is None else failures
    async with httpx.AsyncClient(timeout=30) as client:

        async def post(index: int, payload: dict[str, Any]) -> None:
            body = sender.encode(payload)
            headers = sender.headers(
                "orders/create", body, WEBHOOK_SECRET.encode(), SHOP, f"wh-{index}"
            )
            async with gate:
                try:
                    response = await client.post(
                        f"http://127.0.0.1:{port}/webhooks/shopify", content=body, headers=headers
                    )
                    acked[index] = response.status_code == 200
                    if not acked[index]:
                        failures[index] = f"{response.status_code} {response.text[:200]}"
                except httpx.TransportError as error:
                    acked[index] = False
                    failures[index] = repr(error)

        await asyncio.gather(*(post(i, p) for i, p in payloads.items()))
    return acked


def expected_events(payloads: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(metric, unique_id) of every event these orders should become."""
    return {
        (event.metric, event.unique_id)
        for payload in payloads
        for event in order_to_events(payload, SHOP, ShopifyMetrics())
    }


def recorded(sim: KlaviyoSimServer) -> set[tuple[str, str | None]]:
    return {(event.metric, event.unique_id) for event in sim.sim.events}


async def test_kill9_mid_stream_loses_nothing_acknowledged(database_url: str) -> None:
    """Every event of every acknowledged webhook reaches Klaviyo exactly once across a kill -9."""
    payloads = list(orders(240))
    expected = expected_events(payloads)
    port = free_port()
    async with klaviyo_sim() as sim:
        async with serve_process(database_url, sim.url, port) as process:
            stream = asyncio.create_task(post_all(port, dict(enumerate(payloads))))
            await eventually(lambda: len(sim.sim.events) > 50, timeout=60)
            # Every process of it at once, as an OOM kill of its container or systemd does.
            os.killpg(process.pid, signal.SIGKILL)
            acked = await stream
        assert any(acked.values()), "nothing was acknowledged before the kill"
        acked_before = {index for index, ok in acked.items() if ok}
        async with serve_process(database_url, sim.url, port):
            # Shopify retries what was not acknowledged; do the same.
            retried = {i: p for i, p in enumerate(payloads) if i not in acked_before}
            assert all((await post_all(port, retried)).values())
            await eventually(lambda: recorded(sim) >= expected, timeout=120, interval=0.2)
        assert len(sim.sim.events) == len(expected)


async def test_two_workers_share_the_socket_and_one_delivers(database_url: str) -> None:
    """With --workers 2, webhooks landing on either receiver reach Klaviyo exactly once, and
    the admin listener's /metrics counts what every process did."""
    payloads = list(orders(60))
    expected = expected_events(payloads)
    async with two_workers(database_url) as (port, sim, server):
        failures: dict[int, str] = {}
        acked = await post_all(port, dict(enumerate(payloads)), failures)
        assert all(acked.values()), (failures, server.poll(), output(server))
        await eventually(lambda: recorded(sim) >= expected, timeout=60, interval=0.2)
        async with httpx.AsyncClient() as client:
            scrapes = [await scraped(client, f"{admin_url(port)}/metrics") for _ in range(6)]
    assert len(sim.sim.events) == len(expected)
    for metrics in scrapes:
        assert metrics['shoprelay_webhooks_total{outcome="processed"}'] == len(payloads)
        # Counted in the delivery process, which takes no requests itself.
        delivered = sum(
            value
            for name, value in metrics.items()
            if name.startswith("shoprelay_delivery_items_total{") and 'outcome="delivered"' in name
        )
        assert delivered >= len(expected)


async def test_two_workers_each_take_a_share_of_the_connections(database_url: str) -> None:
    """Keep-alive connections opened at once spread over both receivers. On one shared
    socket, whichever receiver woke first accepted them all, and the other sat idle."""
    async with two_workers(database_url) as (port, _, server):
        # /healthz answers once the first receiver listens; the second may still be starting.
        await eventually(lambda: _listening_on(port) == 2, timeout=30, interval=0.1)
        connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(40)]
        try:
            for _, writer in connections:
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: shoprelay\r\n\r\n")
            for reader, _ in connections:
                assert (await reader.readline()).startswith(b"HTTP/1.1 200")
            held = [len(_connections_to(pid, port)) for pid in child_pids(server.pid)]
        finally:
            for _, writer in connections:
                writer.close()
    receivers = sorted(count for count in held if count)
    assert sum(held) == 40
    # Hashed over two sockets, 40 connections leave fewer than 8 on one about once in 20,000.
    assert len(receivers) == 2, held
    assert receivers[0] >= 8, held


def _tcp_sockets(port: int, state: str) -> set[int]:
    """Inodes of the TCP sockets on local `port` in `state` (01 established, 0A listening)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
                found.add(int(fields[9]))
    return found


def _listening_on(port: int) -> int:
    return len(_tcp_sockets(port, "0A"))


def _connections_to(pid: int, port: int) -> set[int]:
    """Socket inodes of established connections to `port` that process `pid` holds."""
    held = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                held.add(int(target[8:-1]))
    return held & _tcp_sockets(port, "01")


async def scraped(client: httpx.AsyncClient, url: str) -> dict[str, float]:
    """One /metrics scrape as {name{labels}: value}, label order as exposed."""
    response = await client.get(url)
    response.raise_for_status()
    samples = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


async def test_the_delivery_process_dying_stops_serve(database_url: str) -> None:
    """No /readyz sees the delivery process, so its death must stop every process with an
    error, for the process manager to restart them, rather than leave receivers queueing."""
    async with two_workers(database_url) as (_, _, server):
        await eventually(lambda: len(child_pids(server.pid)) == 3)
        # Started last: the receivers are forked first.
        os.kill(max(child_pids(server.pid)), signal.SIGKILL)
        code = await asyncio.to_thread(server.wait, 30)
        printed = output(server)
    assert code == 1, printed
    assert "exited with code" in printed


def child_pids(pid: int) -> list[int]:
    """The direct children of `pid`, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
    return found
