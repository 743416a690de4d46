"""`shoprelay sim`: run a simulator as a real HTTP server."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

app = typer.Typer(help="Simulators of Klaviyo and ShipStation for demos and tests.")

PortOption = Annotated[int, typer.Option(help="Port to listen on.")]
HostOption = Annotated[str, typer.Option(help="Interface to listen on.")]


@app.command()
def klaviyo(port: PortOption = 8100, host: HostOption = "127.0.0.1") -> None:
    """Klaviyo's API: auth, revision, JSON:API validation, limits, dedup, faults."""
    from shoprelay.sim.klaviyo import create_app

    uvicorn.run(create_app(), host=host, port=port, log_level="warning")


@app.command()
def shipstation(port: PortOption = 8200, host: HostOption = "127.0.0.1") -> None:
    """ShipStation's V1 API: Basic auth, Pacific times, paging, 40 requests a minute."""
    from shoprelay.sim.shipstation import create_app

    uvicorn.run(create_app(), host=host, port=port, log_level="warning")
