"""One receiving process as `serve` runs it, for tests that watch its memory from outside.

Run as `python tests/support/webhook_server.py PORT`, with the settings in the environment;
it takes webhooks (and /metrics) until SIGTERM, and delivers nothing.
"""

from __future__ import annotations

import asyncio
import sys

import uvicorn

from shoprelay.config import load_settings
from shoprelay.service import Service
from shoprelay.web.app import create_app


async def main(port: int) -> None:
    settings = load_settings()
    service = await Service.open(settings, background=False)
    config = uvicorn.Config(
        create_app(service),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        http="httptools",
        proxy_headers=False,
        limit_concurrency=settings.RECEIVER_MAX_CONNECTIONS,
    )
    try:
        await uvicorn.Server(config).serve()
    finally:
        await service.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
