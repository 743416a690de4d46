"""`shoprelay serve` bounds each receiver's connections by RECEIVER_MAX_CONNECTIONS."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.support.harness import KLAVIYO_KEY, WEBHOOK_SECRET, free_port, wait_until_healthy


@pytest.fixture
def serve_url(tmp_path: Path) -> Iterator[str]:
    """`serve --workers 1` on SQLite, each receiver allowed two connections."""
    port = free_port()
    environ = os.environ | {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'limit.db'}",
        "SHOPIFY_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "KLAVIYO_PRIVATE_API_KEY": KLAVIYO_KEY,
        "KLAVIYO_API_URL": "http://127.0.0.1:9",
        "RECEIVER_MAX_CONNECTIONS": "2",
        "LOG_LEVEL": "ERROR",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shoprelay",
            "serve",
            "--port",
            str(port),
            "--admin-port",
            str(free_port()),
            "--workers",
            "1",
        ],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(process, url)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=20)
        # Its workers go with it, whatever became of the supervisor.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


async def test_past_the_connection_limit_the_receiver_answers_503(serve_url: str) -> None:
    """With one connection held open, the next one is over the limit of two (uvicorn counts
    the connection asking); once the first closes, there is room again."""
    one = httpx.Limits(max_connections=1)
    async with httpx.AsyncClient(base_url=serve_url, limits=one, timeout=5) as holder:
        assert (await holder.get("/healthz")).status_code == 200
        async with httpx.AsyncClient(base_url=serve_url, limits=one, timeout=5) as other:
            assert (await other.get("/healthz")).status_code == 503
    # The server sees the first connection close a moment after the client has.
    async with httpx.AsyncClient(base_url=serve_url, limits=one, timeout=5) as later:
        for _ in range(50):
            if (answer := await later.get("/healthz")).status_code == 200:
                break
            await asyncio.sleep(0.1)
    assert answer.status_code == 200
