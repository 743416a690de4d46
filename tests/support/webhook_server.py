"""One receiving process as `serve` runs it, for tests that watch its memory from outside.

Run as `python tests/support/webhook_server.py PORT`, with the settings in the environment;
it takes webhooks until SIGTERM, and delivers nothing. `serve` puts /metrics on the admin
listener; here the same port answers it, for the test to read its counters.
"""

from __future__ import annotations

import asyncio
import sys

import uvicorn
from starlette.types import Receive, Scope, Send

from shoprelay.config import load_settings
from shoprelay.service import Service
from shoprelay.web.admin import create_admin_app
from shoprelay.web.app import create_app


async def main(port: int) -> None:
    settings = load_settings()
    service = await Service.open(settings, background=False)
    webhooks, admin = create_app(service), create_admin_app(service)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        chosen = admin if scope["type"] == "http" and scope["path"] == "/metrics" else webhooks
        await chosen(scope, receive, send)

    config = uvicorn.Config(
        app,
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
