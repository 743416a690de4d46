"""The bare endpoint: the same server stack as `shoprelay serve`, doing nothing but read the body.

Run as `python -m bench.bare --port P`. It is served exactly as `shoprelay serve` serves its app
(uvicorn.Server inside asyncio.run, same options), so the ratio isolates shoprelay's own work.
"""

from __future__ import annotations

import argparse
import asyncio

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def receive(request: Request) -> Response:
    """Read the whole body, answer 200 with a body the size of shoprelay's."""
    await request.body()
    return JSONResponse({"outcome": "processed"})


def main() -> None:
    """Serve the bare app on 127.0.0.1 until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    app = Starlette(routes=[Route("/webhooks/shopify", receive, methods=["POST"])])
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    asyncio.run(uvicorn.Server(config).serve())


if __name__ == "__main__":
    main()
