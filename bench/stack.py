"""The pieces every scenario runs: the Klaviyo simulator and `shoprelay serve`, as subprocesses."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.processes import Server, free_port, running
from bench.webhooks import SECRET

SIM_KEY = "pk_sim_demo"  # the simulator's default account key


def shoprelay_env(database_url: str, klaviyo_url: str, *, bulk: bool = True) -> dict[str, str]:
    """The environment `shoprelay serve` runs with in every scenario."""
    return {
        "DATABASE_URL": database_url,
        "SHOPIFY_WEBHOOK_SECRET": SECRET,
        "KLAVIYO_PRIVATE_API_KEY": SIM_KEY,
        "KLAVIYO_API_URL": klaviyo_url,
        "KLAVIYO_BULK": "true" if bulk else "false",
        "LOG_LEVEL": "WARNING",
    }


@contextlib.contextmanager
def klaviyo_and_shoprelay(
    database_url: str,
    logs: Path,
    *,
    bulk: bool = True,
    name: str = "shoprelay",
    workers: int = 1,
) -> Iterator[tuple[Server, Server]]:
    """The simulator (real limits) and shoprelay pointed at it, both stopped on exit."""
    with running("klaviyo-sim", ["shoprelay", "sim", "klaviyo"], {}, logs) as sim:
        env = shoprelay_env(database_url, sim.base_url, bulk=bulk)
        # The admin listener on a free port too: 8001 may be taken where the bench runs.
        admin_port = str(free_port())
        command = ["shoprelay", "serve", "--workers", str(workers), "--admin-port", admin_port]
        with running(name, command, env, logs) as shoprelay:
            yield sim, shoprelay


def sim_get(sim: Server, path: str) -> Any:
    """GET one of the simulator's /_sim documents."""
    response = httpx.get(f"{sim.base_url}{path}", timeout=60)
    response.raise_for_status()
    return response.json()


def sim_post(sim: Server, path: str, document: dict[str, Any]) -> Any:
    """POST a JSON document to one of the simulator's /_sim endpoints."""
    response = httpx.post(f"{sim.base_url}{path}", json=document, timeout=60)
    response.raise_for_status()
    return response.json()
