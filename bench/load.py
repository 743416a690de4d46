"""A very cheap HTTP/1.1 load generator: pre-built request bytes over keep-alive connections.

Server and client share two cores, so the client does almost nothing per request: one write
of ready bytes, then it reads the status line, finds Content-Length and skips the body.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

HOST = "127.0.0.1"
HEAD_END = b"\r\n\r\n"
LENGTH = b"\r\ncontent-length:"


def http_request(path: str, headers: Mapping[str, str], body: bytes) -> bytes:
    """One complete keep-alive POST, ready to write as is (to any port: Host has none)."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {HOST}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one response and return its status; only Content-Length bodies are expected."""
    head = await reader.readuntil(HEAD_END)
    start = head.lower().find(LENGTH)
    if start < 0:
        raise ValueError("response without Content-Length")
    end = head.index(b"\r\n", start + len(LENGTH))
    await reader.readexactly(int(head[start + len(LENGTH) : end]))
    return int(head[9:12])


@dataclass
class LoadResult:
    """What one load run saw: per-request latency and status, and the wall time it took."""

    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    acked_at: dict[int, float] = field(default_factory=dict)
    elapsed: float = 0.0

    def record(self, index: int, status: int, started: float) -> None:
        """Count one answered request."""
        self.latencies.append(time.perf_counter() - started)
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.acked_at[index] = time.time()


async def _connection(
    port: int, requests: Sequence[bytes], order: Iterator[int], result: LoadResult
) -> None:
    """One keep-alive connection sending the next unsent request until none are left."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        for index in order:
            started = time.perf_counter()
            writer.write(requests[index])
            result.record(index, await read_response(reader), started)
    finally:
        writer.close()


async def closed_loop(port: int, requests: Sequence[bytes], concurrency: int) -> LoadResult:
    """Send every request over `concurrency` connections, each waiting for its answer."""
    result, order = LoadResult(), iter(range(len(requests)))
    started = time.perf_counter()
    await asyncio.gather(*(_connection(port, requests, order, result) for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - started
    return result


async def paced(port: int, requests: Sequence[bytes], rate: float) -> LoadResult:
    """Send requests at a steady `rate` per second, whatever the answers' pace (open loop)."""
    result = LoadResult()
    idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    started = time.perf_counter()

    async def send(index: int) -> None:
        pair = idle.get_nowait() if not idle.empty() else await asyncio.open_connection(HOST, port)
        sent = time.perf_counter()
        pair[1].write(requests[index])
        result.record(index, await read_response(pair[0]), sent)
        idle.put_nowait(pair)

    async with asyncio.TaskGroup() as group:
        for index in range(len(requests)):
            await asyncio.sleep(max(0.0, started + index / rate - time.perf_counter()))
            group.create_task(send(index))
    result.elapsed = time.perf_counter() - started
    while not idle.empty():
        idle.get_nowait()[1].close()
    return result
